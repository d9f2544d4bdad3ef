// stdp_pre.wgsl: second STDP step of a burst b with plastic pairs. Workgroups
// [0, ctl[STDP_COMMIT_WGS]) commit the weight changes of burst b-1: those weights become the ones
// the deliveries of burst b+1 use (SPEC.md step 4: deliveries of a burst use the weights before
// its own update), so each changed synapse's committed weight and contribution word are written
// now, after burst b's propagation has read the old ones. The workgroups after them (first chunk
// only) stamp this burst's fire set: each fired neuron of the plastic span gets stamp = b, and is
// appended to the current window list unless it is in it already (fired within the last wmax
// bursts). Forced fires are in the fire set, so they count.
//
// Bindings: group 0 (common.wgsl: H, work), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_PRE..) (one dispatch per synapse chunk).

//!include common.wgsl
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = linear_wg(wid, nwg);
    let gd = atomicLoad(&ctl[STDP_COMMIT_WGS]);
    let cur = H.seq & 1u;
    let prv = cur ^ 1u;
    if (wg < gd) {
        let k = wg * WG + lid;
        if (k >= atomicLoad(&ctl[STDP_DCNT + prv])) {
            return;
        }
        let i = ps[P.o_dirty + prv * P.n_plastic + k];
        let at = pl[P.o_pidx + i];
        if (at < C.base || at - C.base >= C.len) {
            return;
        }
        let w = ps[P.o_w + i];
        ps[P.o_wq + i] = w;
        syn[at - C.base].y = plastic_word(i, bitcast<f32>(w), bitcast<i32>(atomicLoad(&ctl[STDP_SCUR])));
        return;
    }
    if (C.first == 0u) {
        return;
    }
    let k = (wg - gd) * WG + lid;
    if (k >= atomicLoad(&work[H.slot])) {
        return;
    }
    let id = atomicLoad(&work[H.slot + SLOT_HEADER + k]);
    if (id < P.lo || id - P.lo >= P.span) {
        return;
    }
    let n = id - P.lo;
    if (pl[P.o_out + n + 1u] == pl[P.o_out + n] && pl[P.o_in + n + 1u] == pl[P.o_in + n]) {
        return;  // no plastic synapse: no window to keep
    }
    let b = H.burst;
    let old = ps[P.o_stamp + n];
    ps[P.o_stamp + n] = b;
    if (!in_window(old, b, P.wmax)) {
        let at = atomicAdd(&ctl[STDP_LCNT + cur], 1u);
        ps[P.o_list + cur * P.span + at] = id;
    }
}
