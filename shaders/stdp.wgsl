// stdp.wgsl: the STDP update of burst b (SPEC.md section 2 step 5), the one kernel over plastic
// synapses of a burst: over those of the neurons that fired in b (fire_compact's fired list), never
// a pass over a window, an area or the brain. Updates are lazy (plasticity.py's docstring): a
// synapse is brought up to date when its source or its target fires, by replaying the bursts since
// its last event from the stamps (stdp_common.wgsl's replay). Per fired neuron n (one group of
// LANES lanes), with pn its fire before b:
//
//   outgoing synapse n -> t whose target did not fire in b: replay to b - 1 (source pn, target its
//       last fire), commit (n fired), then burst b's step (source b);
//   incoming synapse s -> n: replay to b - 1 (source its fire before b, target pn), commit when s
//       fired in b, then burst b's step (target b);
//
// so every synapse with an endpoint firing in b is updated exactly once (by its target when the
// target fired, else by its source). The commit: a synapse whose source fired in b gets its weight
// before b's step as committed weight and contribution word where they differ; the next burst
// delivers that weight (SPEC.md step 4). Words in chunk 0 only (bound here); stdp_pre writes those
// of the other chunks from the committed weights after this kernel. The largest committed weight
// raises ctl[STDP_MAXW] (stdp_decide's requantisation check). Nothing is written for an unchanged
// weight.
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

// Commit synapse i (its source fired this burst) with weight bits `w`.
fn commit(i: u32, w: u32, s: i32) {
    if (ps[P.o_wq + i] == w) {
        return;
    }
    ps[P.o_wq + i] = w;
    let at = pl[P.o_pidx + i];
    if (at >= C.base && at - C.base < C.len) {
        syn[at - C.base].y = plastic_word(i, bitcast<f32>(w), s);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = linear_wg(wid, nwg);
    let b = H.burst;
    if (lid == 0u) {
        wg_count = atomicLoad(&ctl[STDP_LCNT + (H.seq & 1u)]);
        wg_scale = atomicLoad(&ctl[STDP_SCUR]);
    }
    let count = workgroupUniformLoad(&wg_count);
    if (wg * GROUPS >= count) {
        return;  // uniform for the workgroup
    }
    let s = bitcast<i32>(wg_scale);  // written before the barrier of the uniform load
    let item = wg * GROUPS + lid / LANES;
    var pn = 0u;
    var oa = 0u;
    var n_out = 0u;
    var ia = 0u;
    var n_in = 0u;
    if (item < count) {
        let n = ps[P.o_list + (H.seq & 1u) * P.span + item];
        pn = ps[P.o_stamp + 2u * n + 1u];
        oa = pl[P.o_out + n];
        n_out = pl[P.o_out + n + 1u] - oa;
        ia = pl[P.o_in + n];
        n_in = pl[P.o_in + n + 1u] - ia;
    }
    var cmax = 0u;  // committed weights are >= 0: their f32 bits order as their values
    // the two sides in loops of their own: in one loop over both, the lanes of a warp past the
    // outgoing synapses took the other branch, and the warp waited for both (no barrier inside:
    // each lane on its own)
    for (var j = lid % LANES; j < n_out; j = j + LANES) {
        let i = oa + j;
        let c = ps[P.o_stamp + 2u * (pl[P.o_tgt + i] - P.lo)];
        if (c != b) {  // else the target's side updates it
            let q = P.o_pairs + 4u * (pl[P.o_meta + i] & 0xffffu);
            let win = pl[q];
            let dp = bitcast<f32>(pl[q + 1u]);
            let dm = bitcast<f32>(pl[q + 2u]);
            let ob = ps[P.o_w + i];
            let x = replay(bitcast<f32>(ob), pn, c, max(max(pn, c), P.settled) + 1u, b - 1u, win, dp, dm);
            cmax = max(cmax, bitcast<u32>(x));
            commit(i, bitcast<u32>(x), s);
            let w = bitcast<u32>(replay(x, b, c, b, b, win, dp, dm));
            if (w != ob) {
                ps[P.o_w + i] = w;
            }
        }
    }
    for (var k = ia + lid % LANES; k < ia + n_in; k = k + LANES) {
        let q = P.o_pairs + 4u * pl[P.o_inpair + k];
        let win = pl[q];
        let dp = bitcast<f32>(pl[q + 1u]);
        let dm = bitcast<f32>(pl[q + 2u]);
        let i = pl[P.o_inidx + k];
        let st = stamps_of(pl[P.o_insrc + k] - P.lo);
        let now = st.x == b;  // the source fired in b too
        let a = select(st.x, st.y, now);
        let ob = ps[P.o_w + i];
        let x = replay(bitcast<f32>(ob), a, pn, max(max(a, pn), P.settled) + 1u, b - 1u, win, dp, dm);
        if (now) {
            cmax = max(cmax, bitcast<u32>(x));
            commit(i, bitcast<u32>(x), s);
        }
        let w = bitcast<u32>(replay(x, st.x, b, b, b, win, dp, dm));
        if (w != ob) {
            ps[P.o_w + i] = w;
        }
    }
    if (cmax != 0u) {
        atomicMax(&ctl[STDP_MAXW], cmax);
    }
}
