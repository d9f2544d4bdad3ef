// stdp_requant_plastic.wgsl: requantisation, part 2 (grid 0 unless stdp_args lowered the scale;
// also run by the host after load and set_state). Every plastic synapse's contribution word in
// one chunk is recomputed from its committed weight at the current scale (plastic_word).
//
// Bindings: group 0 (common.wgsl), group 1 (stdp_common.wgsl: pl, ps, ctl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_PLASTIC..) (one dispatch per synapse chunk).

//!include common.wgsl
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = linear_wg(wid, nwg) * WG + lid;
    if (i >= P.n_plastic) {
        return;
    }
    let k = pl[P.o_pidx + i];
    if (k < C.base || k - C.base >= C.len) {
        return;
    }
    let s = bitcast<i32>(atomicLoad(&ctl[STDP_SCUR]));
    syn[k - C.base].y = plastic_word(i, bitcast<f32>(ps[P.o_wq + i]), s);
}
