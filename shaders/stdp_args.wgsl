// stdp_args.wgsl: first STDP dispatch of a burst with plastic pairs (after fire_compact), one
// invocation. Decides the requantisation: when LTP took a weight past the cap 2^k the current
// scale holds, the scale of the new cap (a table made at load) replaces it if lower, and
// work[W_SCALE_INV] with it; the grid of stdp_requant is then non-zero.
// Writes the grids of stdp_pre (stamp this burst's fires; with several synapse chunks, commit the
// fired neurons' rows in the chunks after the first) and stdp (the neurons in a window), and
// clears the list this burst fills.
//
// Bindings: group 0 (common.wgsl: H, work), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  grid  array<u32>: the indirect grids (STDP_GRID_*)
// Dispatch: 1 workgroup of 1 invocation.

//!include common.wgsl
//!include stdp_common.wgsl
//!include grid.wgsl

@group(2) @binding(0) var<storage, read_write> grid: array<u32>;

// Write the grid of n workgroups (grid_of) at grid[at..at+3).
fn ctl_grid(at: u32, n: u32) {
    let g = grid_of(n);
    grid[at] = g.x;
    grid[at + 1u] = g.y;
    grid[at + 2u] = g.z;
}

@compute @workgroup_size(1)
fn main() {
    let cur = H.seq & 1u;
    let prv = cur ^ 1u;
    var d = 0u;
    let k = cap_exp(atomicLoad(&ctl[STDP_MAXW]));
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
    var g_shift = 0u;
    if (d > 0u) {
        g_shift = (P.hash_n + STDP_REQUANT_ROWS - 1u) / STDP_REQUANT_ROWS;
    }
    ctl_grid(STDP_GRID_SHIFT, g_shift);
    let nf = atomicLoad(&work[H.slot]);  // this burst's fire count
    if (P.chunks > 1u) {
        ctl_grid(STDP_GRID_PRE, (nf + STDP_COMMIT_NEURONS - 1u) / STDP_COMMIT_NEURONS);  // lanes per fired neuron
    } else {
        ctl_grid(STDP_GRID_PRE, (nf + WG - 1u) / WG);  // an invocation per fired neuron
    }
    atomicStore(&ctl[STDP_LCNT + prv], 0u);  // the list of the previous burst (read then)
    let nl = atomicLoad(&ctl[STDP_LCNT + cur]);
    // stamping may append up to nf neurons to the current list: workgroups past its end return
    ctl_grid(STDP_GRID_MAIN, (nl + nf + STDP_UPDATE_NEURONS - 1u) / STDP_UPDATE_NEURONS);
}
