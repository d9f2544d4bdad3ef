// stdp.wgsl: the STDP update of burst b (SPEC.md section 2 step 5), over the plastic synapses of
// the neurons in a window: the current window list holds every neuron of the plastic span that
// fired in the last wmax bursts (each once), so a burst costs the plastic synapses of recently
// active neurons, never a pass over the brain. Per listed neuron n (one group of LANES lanes):
//
//   incoming plastic synapse s -> n of pair (W, dp, dm), when b >= W and n fired in [b-W+1, b]:
//       s fired in the window too: w += dp, else w = max(0, w - dm)
//   outgoing plastic synapse n -> t, when b >= W, n fired in the window and t did not:
//       w = max(0, w - dm)
//
// so every synapse with a pre or post spike in its window is updated exactly once (by its target
// when post fired, else by its source), and one with neither is left alone. LTD leaves a weight
// of 0 at 0, so the source's side reads a target's stamp only for a weight above 0. A changed weight is
// appended to this burst's changed list (stdp_pre commits it next burst, after the propagation
// that must still use the old weight); an LTP weight raises ctl[STDP_MAXW] (the requantisation
// check). n stays in the list for burst b+1 while it is in the widest window then.
//
// Bindings: group 0 (common.wgsl: H), group 1 (stdp_common.wgsl).
// Dispatch: indirect, grid[STDP_GRID_MAIN..): GROUPS neurons per workgroup.

//!include common.wgsl
//!include stdp_common.wgsl

const GROUPS: u32 = 4u;
const LANES: u32 = WG / GROUPS;

var<workgroup> wg_count: u32;
var<workgroup> wg_iters: u32;
var<workgroup> wg_cnt: array<u32, GROUPS>;
var<workgroup> wg_app_n: atomic<u32>;
var<workgroup> wg_app_base: u32;

// Append the invocations' changed synapses to dirty[cur], one global atomic per workgroup.
// Workgroup-uniform call.
fn append_changed(want: bool, i: u32, lid: u32, cur: u32) {
    if (lid == 0u) {
        atomicStore(&wg_app_n, 0u);
    }
    workgroupBarrier();
    var pos = 0u;
    if (want) {
        pos = atomicAdd(&wg_app_n, 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = atomicLoad(&wg_app_n);
        wg_app_base = 0u;
        if (n > 0u) {
            wg_app_base = atomicAdd(&ctl[STDP_DCNT + cur], n);
        }
    }
    let base = workgroupUniformLoad(&wg_app_base);
    if (want) {
        ps[P.o_dirty + cur * P.n_plastic + base + pos] = i;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = linear_wg(wid, nwg);
    let cur = H.seq & 1u;
    let prv = cur ^ 1u;
    let b = H.burst;
    if (lid == 0u) {
        wg_count = atomicLoad(&ctl[STDP_LCNT + cur]);
    }
    let count = workgroupUniformLoad(&wg_count);
    if (wg * GROUPS >= count) {
        return;  // uniform for the workgroup
    }
    let g = lid / LANES;
    let lane = lid % LANES;
    let item = wg * GROUPS + g;
    var n = 0u;
    var sn = 0u;
    var oa = 0u;
    var n_out = 0u;
    var ia = 0u;
    var total = 0u;
    if (item < count) {
        let id = ps[P.o_list + cur * P.span + item];
        n = id - P.lo;
        sn = ps[P.o_stamp + n];
        oa = pl[P.o_out + n];
        n_out = pl[P.o_out + n + 1u] - oa;
        ia = pl[P.o_in + n];
        total = n_out + pl[P.o_in + n + 1u] - ia;
        if (lane == 0u && in_window(sn, b + 1u, P.wmax)) {
            let at = atomicAdd(&ctl[STDP_LCNT + prv], 1u);
            ps[P.o_list + prv * P.span + at] = id;
        }
    }
    if (lane == 0u) {
        wg_cnt[g] = (total + LANES - 1u) / LANES;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var m = 0u;
        for (var k = 0u; k < GROUPS; k = k + 1u) {
            m = max(m, wg_cnt[k]);
        }
        wg_iters = m;
    }
    let iters = workgroupUniformLoad(&wg_iters);
    var ltp_max = 0u;
    for (var it = 0u; it < iters; it = it + 1u) {
        let j = it * LANES + lane;
        var changed = false;
        var i = 0u;
        if (j < total) {
            if (j < n_out) {
                // n is the source: pre-only synapses (LTD of a weight above 0); a zero weight stays 0
                // and both-fired ones are the target's, so the target is looked at only when w > 0
                i = oa + j;
                let old = bitcast<f32>(ps[P.o_w + i]);
                if (old > 0.0) {
                    let p = pl[P.o_meta + i] & 0xffffu;
                    let win = pl[P.o_pairs + 4u * p];
                    if (b >= win && in_window(sn, b, win)
                            && !in_window(ps[P.o_stamp + pl[P.o_tgt + i] - P.lo], b, win)) {
                        let x = opaque_x(old - bitcast<f32>(pl[P.o_pairs + 4u * p + 2u]));
                        let w = select(0.0, x, x > 0.0);
                        if (bitcast<u32>(w) != bitcast<u32>(old)) {
                            ps[P.o_w + i] = bitcast<u32>(w);
                            changed = true;
                        }
                    }
                }
            } else {
                // n is the target: both fired (LTP, any weight) or post only (LTD of a weight above 0)
                let k = ia + j - n_out;
                let p = pl[P.o_inpair + k];
                let win = pl[P.o_pairs + 4u * p];
                if (b >= win && in_window(sn, b, win)) {
                    i = pl[P.o_inidx + k];
                    let old = bitcast<f32>(ps[P.o_w + i]);
                    var w = old;
                    if (in_window(ps[P.o_stamp + pl[P.o_insrc + k] - P.lo], b, win)) {
                        w = opaque_x(old + bitcast<f32>(pl[P.o_pairs + 4u * p + 1u]));
                        ltp_max = max(ltp_max, bitcast<u32>(w));
                    } else if (old > 0.0) {
                        let x = opaque_x(old - bitcast<f32>(pl[P.o_pairs + 4u * p + 2u]));
                        w = select(0.0, x, x > 0.0);
                    }
                    if (bitcast<u32>(w) != bitcast<u32>(old)) {
                        ps[P.o_w + i] = bitcast<u32>(w);
                        changed = true;
                    }
                }
            }
        }
        append_changed(changed, i, lid, cur);
    }
    if (ltp_max != 0u) {
        atomicMax(&ctl[STDP_MAXW], ltp_max);  // non-negative f32 bits order as the values
    }
}
