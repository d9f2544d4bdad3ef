// stdp.wgsl: the STDP update of burst b (SPEC.md section 2 step 5), the one kernel over plastic
// synapses of a burst: over the plastic synapses of the neurons in a window. The current window
// list holds every neuron of the plastic span that fired in the last wmax bursts (each once), so a
// burst costs the plastic synapses of recently active neurons, never a pass over an area or the
// brain. Per listed neuron n (one group of LANES lanes):
//
//   incoming plastic synapse s -> n of pair (W, dp, dm), when b >= W and n fired in [b-W+1, b]:
//       s fired in the window too: w += dp, else w = max(0, w - dm)
//   outgoing plastic synapse n -> t, when b >= W, n fired in the window and t did not:
//       w = max(0, w - dm)
//
// so every synapse with a pre or post spike in its window is updated exactly once (by its target
// when post fired, else by its source), and one with neither is left alone. LTD leaves a weight
// of 0 at 0, so the source's side reads a target's stamp only for a weight above 0 (or to commit).
//
// The commit (stdp_pre.wgsl's header): a synapse whose source fired in this burst (stamp b) gets
// its weight before this update as committed weight and contribution word when they differ, by
// the thread that owns the synapse this burst (the target's side when it updates it, else the
// source's side), which reads that weight anyway. Words in chunk 0 only (bound here); stdp_pre
// committed those of the other chunks already. Nothing is written for an unchanged weight.
//
// An LTP weight raises ctl[STDP_MAXW] (the requantisation check). n stays in the list for burst
// b+1 while it is in the widest window then (one list atomic per workgroup).
//
// Bindings: group 0 (common.wgsl: H), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of chunk 0
//   @group(2) @binding(1) uniform      C    its synapse range
// Dispatch: indirect, grid[STDP_GRID_MAIN..): GROUPS neurons per workgroup.

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

const GROUPS: u32 = STDP_UPDATE_NEURONS;
const LANES: u32 = WG / GROUPS;

var<workgroup> wg_count: u32;
var<workgroup> wg_scale: u32;
var<workgroup> wg_keep: atomic<u32>;
var<workgroup> wg_keep_base: u32;

// Commit synapse i (its source fired this burst) with `w`, its weight before this burst's update.
fn commit(i: u32, w: u32, s: i32) {
    if (ps[P.o_wq + i] == w) {
        return;
    }
    let at = pl[P.o_pidx + i];
    if (at >= C.base && at - C.base < C.len) {
        ps[P.o_wq + i] = w;
        syn[at - C.base].y = plastic_word(i, bitcast<f32>(w), s);
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
        wg_scale = atomicLoad(&ctl[STDP_SCUR]);
        atomicStore(&wg_keep, 0u);
    }
    let count = workgroupUniformLoad(&wg_count);
    if (wg * GROUPS >= count) {
        return;  // uniform for the workgroup
    }
    let s = bitcast<i32>(wg_scale);  // written before the barrier of the uniform load
    let g = lid / LANES;
    let lane = lid % LANES;
    let item = wg * GROUPS + g;
    var id = 0u;
    var n = 0u;
    var sn = 0u;
    var oa = 0u;
    var n_out = 0u;
    var ia = 0u;
    var total = 0u;
    if (item < count) {
        id = ps[P.o_list + cur * P.span + item];
        n = id - P.lo;
        sn = ps[P.o_stamp + n];
        oa = pl[P.o_out + n];
        n_out = pl[P.o_out + n + 1u] - oa;
        ia = pl[P.o_in + n];
        total = n_out + pl[P.o_in + n + 1u] - ia;
    }
    let fired_now = sn == b;
    var ltp_max = 0u;
    for (var j = lane; j < total; j = j + LANES) {  // no barrier inside: each lane on its own
        if (j < n_out) {
            // n is the source: pre-only synapses (LTD of a weight above 0; a zero weight stays 0)
            // and, when n fired now, the commit of those the target's side does not update
            let i = oa + j;
            let ob = ps[P.o_w + i];
            let old = bitcast<f32>(ob);
            let owe = fired_now && ps[P.o_wq + i] != ob;
            if (old > 0.0 || owe) {
                let p = pl[P.o_meta + i] & 0xffffu;
                let win = pl[P.o_pairs + 4u * p];
                let t_in = b >= win && in_window(ps[P.o_stamp + pl[P.o_tgt + i] - P.lo], b, win);
                if (!t_in) {  // else the target's side updates (and commits) it
                    if (owe) {
                        commit(i, ob, s);
                    }
                    if (old > 0.0 && b >= win && in_window(sn, b, win)) {
                        let x = opaque_x(old - bitcast<f32>(pl[P.o_pairs + 4u * p + 2u]));
                        let w = bitcast<u32>(select(0.0, x, x > 0.0));
                        if (w != ob) {
                            ps[P.o_w + i] = w;
                        }
                    }
                }
            }
        } else {
            // n is the target: both fired (LTP, any weight) or post only (LTD of a weight above 0)
            let k = ia + j - n_out;
            let p = pl[P.o_inpair + k];
            let win = pl[P.o_pairs + 4u * p];
            if (b >= win && in_window(sn, b, win)) {
                let i = pl[P.o_inidx + k];
                let ob = ps[P.o_w + i];
                let old = bitcast<f32>(ob);
                let ss = ps[P.o_stamp + pl[P.o_insrc + k] - P.lo];
                if (in_window(ss, b, win)) {
                    if (ss == b) {
                        commit(i, ob, s);  // the source fired now: its deliveries use `old`
                    }
                    let w = bitcast<u32>(opaque_x(old + bitcast<f32>(pl[P.o_pairs + 4u * p + 1u])));
                    ltp_max = max(ltp_max, w);
                    if (w != ob) {
                        ps[P.o_w + i] = w;
                    }
                } else if (old > 0.0) {
                    let x = opaque_x(old - bitcast<f32>(pl[P.o_pairs + 4u * p + 2u]));
                    let w = bitcast<u32>(select(0.0, x, x > 0.0));
                    if (w != ob) {
                        ps[P.o_w + i] = w;
                    }
                }
            }
        }
    }
    if (ltp_max != 0u) {
        atomicMax(&ctl[STDP_MAXW], ltp_max);  // non-negative f32 bits order as the values
    }
    // n stays listed for b+1 while in the widest window then: after the synapses, so that their
    // loads need not wait for the workgroup's barriers and list atomic
    let keep = item < count && lane == 0u && in_window(sn, b + 1u, P.wmax);
    var slot = 0u;
    if (keep) {
        slot = atomicAdd(&wg_keep, 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let nk = atomicLoad(&wg_keep);
        if (nk > 0u) {
            wg_keep_base = atomicAdd(&ctl[STDP_LCNT + prv], nk);
        }
    }
    let keep_base = workgroupUniformLoad(&wg_keep_base);
    if (keep) {
        ps[P.o_list + prv * P.span + keep_base + slot] = id;
    }
}
