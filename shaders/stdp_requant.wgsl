// stdp_requant.wgsl: requantisation of one synapse chunk's contribution words (dispatched every
// burst with plastic pairs; its grid is 0 unless fire_compact's STDP hooks lowered the scale by d =
// ctl[STDP_SHIFT] bits; the host also runs it after load and set_state). A group of lanes per entry
// of the synapse hash table (one source neuron: its row and whether it is mp-driven; the lanes
// stride over the row, so neighbouring lanes touch neighbouring words), which
// 1. shifts every word of the row from scale s to s - d (d > 0): an i32 word divided by 2^d
//    rounding half to even, the f32 factor of an mp-driven source multiplied by 2^-d (exact), as
//    fixed_point.shift_words does;
// 2. then recomputes the row's plastic words from their committed weights at the current scale
//    ctl[STDP_SCUR] (plastic_word), as fixed_point.plastic_words does.
// The same group does both, in this order, so a plastic word ends as its weight's word
// whatever the shift made of it (one dispatch: a separate pass over the plastic synapses cost a
// dispatch every burst, ~6 µs on an H200, though it almost never had work).
//
// Bindings: group 0 (common.wgsl: lookup), group 1 (stdp_common.wgsl: pl, ps, ctl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_SHIFT..): ceil(hash_n / STDP_REQUANT_ROWS) workgroups (one
// dispatch per synapse chunk).

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
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
    let lanes = WG / STDP_REQUANT_ROWS;
    let lane = lid % lanes;
    let idx = linear_wg(wid, nwg) * STDP_REQUANT_ROWS + lid / lanes;
    var e = vec4<u32>(NONE, 0u, 0u, 0u);
    if (idx < P.hash_n) {
        e = lookup[idx];
    }
    let d = atomicLoad(&ctl[STDP_SHIFT]);
    if (e.x != NONE && d > 0u) {
        let lo = max(e.y, C.base);
        let hi = min(e.y + e.z, C.base + C.len);
        let f = pow2f(-i32(min(d, 126u)));
        for (var k = lo + lane; k < hi; k = k + lanes) {
            let j = k - C.base;
            let word = syn[j].y;
            if (e.w != 0u) {  // mp-driven source (propagation's test): an f32 factor
                syn[j].y = bitcast<u32>(ftz(opaque_x(bitcast<f32>(word) * f)));
            } else {
                syn[j].y = bitcast<u32>(shift_i32(bitcast<i32>(word), d));
            }
        }
    }
    storageBarrier();  // the row's lanes have shifted every word before any plastic word is rewritten
    if (e.x == NONE || e.x < P.lo || e.x - P.lo >= P.span) {
        return;  // no plastic synapse leaves this source
    }
    let n = e.x - P.lo;
    let s = bitcast<i32>(atomicLoad(&ctl[STDP_SCUR]));
    for (var i = pl[P.o_out + n] + lane; i < pl[P.o_out + n + 1u]; i = i + lanes) {
        let at = pl[P.o_pidx + i];
        if (at >= C.base && at - C.base < C.len) {
            syn[at - C.base].y = plastic_word(i, bitcast<f32>(ps[P.o_wq + i]), s);
        }
    }
}
