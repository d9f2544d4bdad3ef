// compact_stdp.wgsl: fire_compact.wgsl's hooks for a brain with plastic pairs (the start of a
// burst's STDP, SPEC.md section 2 step 5; plasticity.py, backends/wgpu/plasticity.py). Not an entry
// point (pasted at fire_compact's `//!include HOOKS`). Done here, by the kernel that lists the fire
// set anyway, rather than by a dispatch of its own after it (each dependent dispatch cost several
// µs a burst on an H200).
//
// compacted: each fired neuron of the plastic span with plastic synapses gets its stamps moved on
// (the fire before = the last, the last = b) and is appended to this burst's fired list, which
// stdp.wgsl updates: one list atomic per workgroup. Forced fires are in the bitmask, so they count.
// burst_compacted (once a burst): the grid of stdp_pre (with several synapse chunks: the words of
// the fired neurons' rows in the chunks after the first), the clearing of the next burst's list
// count, and what stdp_requant decides from: the burst's largest commit cleared, and the cap, the
// scale and the step count as they are now (stdp_requant's workgroups read these copies while it
// rewrites the originals).
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
    var append = 0u;  // the bits of neurons to append to the fired list
    var m = bits;
    while (m != 0u) {
        let bit = firstTrailingBit(m);
        m = m & (m - 1u);
        let id = (word << 5u) + bit;
        if (id >= P.lo && id - P.lo < P.span) {
            let n = id - P.lo;
            // a neuron without plastic synapses has nothing to update
            if (pl[P.o_out + n + 1u] != pl[P.o_out + n] || pl[P.o_in + n + 1u] != pl[P.o_in + n]) {
                let at = P.o_stamp + 2u * n;
                ps[at + 1u] = ps[at];
                ps[at] = b;
                append = append | (1u << bit);
            }
        }
    }
    let scan = wg_scan(countOneBits(append), lid);
    if (lid == 0u && scan.y > 0u) {
        wg_list_base = atomicAdd(&ctl[STDP_LCNT + cur], scan.y);
    }
    var at = workgroupUniformLoad(&wg_list_base) + scan.x;
    while (append != 0u) {
        ps[P.o_list + cur * P.span + at] = (word << 5u) + firstTrailingBit(append) - P.lo;
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
    ctl_grid(STDP_GRID_PRE, (fired + STDP_COMMIT_NEURONS - 1u) / STDP_COMMIT_NEURONS);  // lanes per fired neuron
    atomicStore(&ctl[STDP_LCNT + ((H.seq + 1u) & 1u)], 0u);  // the next burst's list (the previous one's)
    atomicStore(&ctl[STDP_MAXW], 0u);
    atomicStore(&ctl[STDP_KSNAP], atomicLoad(&ctl[STDP_KCUR]));
    atomicStore(&ctl[STDP_SSNAP], atomicLoad(&ctl[STDP_SCUR]));
    atomicStore(&ctl[STDP_NSNAP], atomicLoad(&ctl[STDP_NSTEPS]));
}
