// stdp_requant.wgsl: requantisation of one synapse chunk's contribution words (plasticity.py's
// docstring: overflow). Two entry points:
//   main       every burst with plastic pairs, after the commits (stdp.wgsl, stdp_pre.wgsl): the
//              decision, then the words when it lowers the scale. When the largest weight committed
//              this burst (ctl[STDP_MAXW]) passed the cap 2^k the scale holds, k becomes its
//              exponent; where the table made at load gives a lower scale for the new cap, the scale
//              drops by d bits. Every workgroup decides alike from the copies fire_compact's hooks
//              made as the burst began (STDP_KSNAP, _SSNAP, _NSNAP), and the first one stores the
//              result (the cap, the scale, the scale steps, 2^-scale in work[W_SCALE_INV]; each
//              chunk's dispatch stores the same words). A burst without a drop (almost every burst)
//              ends here: one dispatch, whose grid needs no decision before it (a decision of its
//              own and an indirect grid cost ~7 µs a burst on an H200).
//   host_pass  after load and set_state: a shift by d = ctl[STDP_SHIFT] to scale ctl[STDP_SCUR]
//              (d = 0: the plastic words only).
// A group of lanes per entry of the synapse hash table (one source neuron: its row and whether it
// is mp-driven; the lanes stride over the row, so neighbouring lanes touch neighbouring words),
// which
// 1. shifts every word of the row from scale s to s - d (d > 0): an i32 word divided by 2^d
//    rounding half to even, the f32 factor of an mp-driven source multiplied by 2^-d (exact), as
//    fixed_point.shift_words does;
// 2. then recomputes the row's plastic words from their committed weights at the new scale
//    (plastic_word), as fixed_point.plastic_words does.
// The same group does both, in this order, so a plastic word ends as its weight's word whatever
// the shift made of it.
//
// Bindings: group 0 (common.wgsl: lookup, work), group 1 (stdp_common.wgsl: P, pl, ps, ctl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: direct, min(ceil(hash_n / STDP_REQUANT_ROWS), STDP_DIRECT_GRID) workgroups, which loop
// over the table (one dispatch per synapse chunk).

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
//!include stdp_common.wgsl

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

var<workgroup> wg_shift: u32;
var<workgroup> wg_scale: u32;

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

// Shift by d and rewrite the plastic words at scale s, row by row over the whole table. d and s
// are workgroup-uniform. Workgroup-uniform call (it holds a barrier).
fn requantise(wg: u32, groups: u32, lid: u32, d: u32, s: i32) {
    let lanes = WG / STDP_REQUANT_ROWS;
    let lane = lid % lanes;
    let f = pow2f(-i32(min(d, 126u)));
    for (var first = wg * STDP_REQUANT_ROWS; first < P.hash_n; first = first + groups * STDP_REQUANT_ROWS) {
        let idx = first + lid / lanes;
        var e = vec4<u32>(NONE, 0u, 0u, 0u);
        if (idx < P.hash_n) {
            e = lookup[idx];
        }
        if (e.x != NONE && d > 0u) {
            let lo = max(e.y, C.base);
            let hi = min(e.y + e.z, C.base + C.len);
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
        if (e.x != NONE && e.x >= P.lo && e.x - P.lo < P.span) {  // plastic synapses leave this source
            let n = e.x - P.lo;
            for (var i = pl[P.o_out + n] + lane; i < pl[P.o_out + n + 1u]; i = i + lanes) {
                let at = pl[P.o_pidx + i];
                if (at >= C.base && at - C.base < C.len) {
                    syn[at - C.base].y = plastic_word(i, bitcast<f32>(ps[P.o_wq + i]), s, pl[P.o_meta + i]);
                }
            }
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let wg = linear_wg(wid, nwg);
    if (lid == 0u) {
        var d = 0u;
        var s = bitcast<i32>(atomicLoad(&ctl[STDP_SSNAP]));
        let k = cap_exp(atomicLoad(&ctl[STDP_MAXW]));
        if (k > atomicLoad(&ctl[STDP_KSNAP])) {
            let s_new = bitcast<i32>(pl[P.o_table + k]);
            if (s_new < s) {
                d = u32(s - s_new);
                s = s_new;
            }
            if (wg == 0u) {
                atomicStore(&ctl[STDP_KCUR], k);
                if (d > 0u) {
                    atomicStore(&ctl[STDP_SCUR], bitcast<u32>(s));
                    let n = atomicLoad(&ctl[STDP_NSNAP]);
                    if (n < STDP_MAX_STEPS) {
                        atomicStore(&ctl[STDP_STEPS + n], bitcast<u32>(s));
                        atomicStore(&ctl[STDP_NSTEPS], n + 1u);
                    }
                    atomicStore(&work[W_SCALE_INV], bitcast<u32>(pow2f(-s)));
                }
            }
        }
        wg_shift = d;
        wg_scale = bitcast<u32>(s);
    }
    let d = workgroupUniformLoad(&wg_shift);
    if (d == 0u) {
        return;  // uniform: the scale holds
    }
    requantise(wg, nwg.x * nwg.y, lid, d, bitcast<i32>(workgroupUniformLoad(&wg_scale)));
}

@compute @workgroup_size(WG)
fn host_pass(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        wg_shift = atomicLoad(&ctl[STDP_SHIFT]);
        wg_scale = atomicLoad(&ctl[STDP_SCUR]);
    }
    let d = workgroupUniformLoad(&wg_shift);
    requantise(linear_wg(wid, nwg), nwg.x * nwg.y, lid, d, bitcast<i32>(workgroupUniformLoad(&wg_scale)));
}
