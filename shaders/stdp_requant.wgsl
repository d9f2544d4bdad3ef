// stdp_requant.wgsl: requantisation, part 1 (dispatched every burst with plastic pairs; its grid
// is 0 unless stdp_args lowered the scale by d = ctl[STDP_SHIFT] bits). Every contribution word
// of one synapse chunk goes from scale s to s - d: an i32 word is divided by 2^d rounding half to
// even, the f32 factor of an mp-driven source is multiplied by 2^-d (exact), as
// fixed_point.shift_words does. One invocation per entry of the synapse hash table (one source
// neuron: its range and whether it is mp-driven). Plastic synapses are shifted too and then
// recomputed from their weights by stdp_requant_plastic.
//
// Bindings: group 0 (common.wgsl: lookup), group 1 (stdp_common.wgsl: ctl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_SHIFT..) (one dispatch per synapse chunk).

//!include common.wgsl
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

fn shift_i32(q: i32, d: u32) -> i32 {
    let dd = min(d, 30u);
    var t = q >> dd;  // floor division (arithmetic shift)
    let r = q - (t << dd);
    let half = 1 << (dd - 1u);
    if (r > half || (r == half && (t & 1) == 1)) {
        t = t + 1;
    }
    return t;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let idx = linear_wg(wid, nwg) * WG + lid;
    let d = atomicLoad(&ctl[STDP_SHIFT]);
    if (idx >= P.hash_n || d == 0u) {
        return;
    }
    let e = lookup[idx];
    if (e.x == NONE) {
        return;
    }
    let lo = max(e.y, C.base);
    let hi = min(e.y + e.z, C.base + C.len);
    let f = pow2f(-i32(min(d, 126u)));
    for (var k = lo; k < hi; k = k + 1u) {
        let j = k - C.base;
        let word = syn[j].y;
        if (e.w != 0u) {  // mp-driven source (propagation's test): an f32 factor
            syn[j].y = bitcast<u32>(ftz(opaque_x(bitcast<f32>(word) * f)));
        } else {
            syn[j].y = bitcast<u32>(shift_i32(bitcast<i32>(word), d));
        }
    }
}
