// compact_stdp.wgsl: fire_compact.wgsl's hooks for a brain with plastic pairs (the start of a
// burst's STDP, SPEC.md section 2 step 5; plasticity.py, backends/wgpu/plasticity.py). Not an entry
// point (pasted at fire_compact's `//!include HOOKS`). Done here, by the kernel that lists the fire
// set anyway, rather than by two dispatches of their own after it (one invocation deciding the
// requantisation and the grids, one over the fire set stamping it): each dependent dispatch cost
// several µs a burst on an H200.
//
// compacted: each fired neuron of the plastic span with plastic synapses gets stamp = b, and is
// appended to the current window list unless it is in it already (fired within the last wmax
// bursts): one list atomic per workgroup. Forced fires are in the bitmask, so they count.
// burst_compacted (once a burst): the requantisation decision (when LTP took a weight past the cap
// 2^k the current scale holds, the scale of the new cap, a table made at load, replaces it if
// lower, and work[W_SCALE_INV] with it: the grid of stdp_requant is then non-zero), the grids of
// stdp_pre (with several synapse chunks: commit the fired neurons' rows in the chunks after the
// first) and stdp (the neurons in a window: at most the list as read here plus the fires), and the
// clearing of the list this burst's update fills.
//
// Bindings: group 2 (stdp_common.wgsl: P, pl, ps, ctl),
//   @group(3) @binding(0) storage, rw  grid  array<u32>: the indirect grids (STDP_GRID_*)

const STDP_GROUP: u32 = 2u;
//!include stdp_common.wgsl
//!include grid.wgsl

@group(3) @binding(0) var<storage, read_write> grid: array<u32>;

var<workgroup> wg_list_base: u32;

fn compacted(word: u32, bits: u32, lid: u32) {
    let b = H.burst;
    let cur = H.seq & 1u;
    var append = 0u;  // the bits of neurons to append to the window list
    var m = bits;
    while (m != 0u) {
        let bit = firstTrailingBit(m);
        m = m & (m - 1u);
        let id = (word << 5u) + bit;
        if (id >= P.lo && id - P.lo < P.span) {
            let n = id - P.lo;
            // a neuron without plastic synapses has no window to keep
            if (pl[P.o_out + n + 1u] != pl[P.o_out + n] || pl[P.o_in + n + 1u] != pl[P.o_in + n]) {
                let old = ps[P.o_stamp + n];
                ps[P.o_stamp + n] = b;
                if (!in_window(old, b, P.wmax)) {
                    append = append | (1u << bit);
                }
            }
        }
    }
    let scan = wg_scan(countOneBits(append), lid);
    if (lid == 0u && scan.y > 0u) {
        wg_list_base = atomicAdd(&ctl[STDP_LCNT + cur], scan.y);
    }
    var at = workgroupUniformLoad(&wg_list_base) + scan.x;
    while (append != 0u) {
        ps[P.o_list + cur * P.span + at] = (word << 5u) + firstTrailingBit(append);
        append = append & (append - 1u);
        at = at + 1u;
    }
}

// Write the grid of n workgroups (grid_of) at grid[at..at+3).
fn ctl_grid(at: u32, n: u32) {
    let g = grid_of(n);
    grid[at] = g.x;
    grid[at + 1u] = g.y;
    grid[at + 2u] = g.z;
}

fn burst_compacted(fired: u32) {
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
    ctl_grid(STDP_GRID_PRE, (fired + STDP_COMMIT_NEURONS - 1u) / STDP_COMMIT_NEURONS);  // lanes per fired neuron
    atomicStore(&ctl[STDP_LCNT + prv], 0u);  // the list of the previous burst (read then)
    // other workgroups may still append to the current list: its count as read here, plus every
    // fire, bounds it (the update's workgroups past its end return)
    let nl = atomicLoad(&ctl[STDP_LCNT + cur]);
    ctl_grid(STDP_GRID_MAIN, (nl + fired + STDP_UPDATE_NEURONS - 1u) / STDP_UPDATE_NEURONS);
}
