// stdp_decide.wgsl: the requantisation decision of a burst (plasticity.py's docstring: overflow),
// after its commits (stdp.wgsl, stdp_pre.wgsl): when the largest weight committed this burst
// (ctl[STDP_MAXW], cleared here for the next) passed the cap 2^k the current scale holds, k becomes
// its exponent; where the table made at load gives a lower scale for the new cap, the scale drops
// by d bits (ctl[STDP_SHIFT], the new scale in ctl[STDP_SCUR] and in the scale steps, 2^-scale in
// work[W_SCALE_INV]) and the grid of stdp_requant, 0 otherwise, covers the synapse table. Its own
// dispatch: the next one's grid depends on every commit of the burst.
//
// Bindings: group 0 (common.wgsl: work), group 1 (stdp_common.wgsl: P, pl, ctl),
//   @group(2) @binding(0) storage, rw  grid  array<u32>: the indirect grids (STDP_GRID_*)
// Dispatch: one workgroup of one invocation.

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
//!include stdp_common.wgsl
//!include grid.wgsl

@group(2) @binding(0) var<storage, read_write> grid: array<u32>;

@compute @workgroup_size(1)
fn main() {
    var d = 0u;
    let k = cap_exp(atomicExchange(&ctl[STDP_MAXW], 0u));
    if (k > atomicLoad(&ctl[STDP_KCUR])) {
        atomicStore(&ctl[STDP_KCUR], k);
        let s_new = bitcast<i32>(pl[P.o_table + k]);
        let s_cur = bitcast<i32>(atomicLoad(&ctl[STDP_SCUR]));
        if (s_new < s_cur) {
            d = u32(s_cur - s_new);
            atomicStore(&ctl[STDP_SCUR], bitcast<u32>(s_new));
            let n = atomicLoad(&ctl[STDP_NSTEPS]);
            if (n < STDP_MAX_STEPS) {
                atomicStore(&ctl[STDP_STEPS + n], bitcast<u32>(s_new));
                atomicStore(&ctl[STDP_NSTEPS], n + 1u);
            }
            atomicStore(&work[W_SCALE_INV], bitcast<u32>(pow2f(-s_new)));
        }
    }
    atomicStore(&ctl[STDP_SHIFT], d);
    var n = 0u;
    if (d > 0u) {
        n = (P.hash_n + STDP_REQUANT_ROWS - 1u) / STDP_REQUANT_ROWS;
    }
    let g = grid_of(n);
    grid[STDP_GRID_SHIFT] = g.x;
    grid[STDP_GRID_SHIFT + 1u] = g.y;
    grid[STDP_GRID_SHIFT + 2u] = g.z;
}
