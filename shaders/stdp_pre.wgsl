// stdp_pre.wgsl: with several synapse chunks, the words of this burst's fired neurons' rows in the
// chunks after the first (one dispatch per such chunk, over the fire set: never over the plastic
// synapses of an area), after stdp.wgsl. The next burst delivers their spikes with their synapses'
// committed weights, which stdp.wgsl wrote (in every chunk's synapses) but whose words it wrote in
// chunk 0 only. A source's words are read only by the propagation of its own spikes, so only the
// fired rows need them. Rows of several chunks are split at the chunk bounds here.
//
// Bindings: group 0 (common.wgsl: H, work), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_PRE..) for each chunk but the first: one group of LANES per
// fired neuron.

//!include common.wgsl
const STDP_GROUP: u32 = 1u;
//!include stdp_common.wgsl

const GROUPS: u32 = STDP_COMMIT_NEURONS;
const LANES: u32 = WG / GROUPS;

@group(2) @binding(0) var<storage, read_write> syn: array<vec2<u32>>;
@group(2) @binding(1) var<uniform> C: StdpChunk;

// The k-th neuron of this burst's fire set as an index into the plastic span, or NONE when k is
// past the nf fired or that neuron lies outside the span.
fn fired_in_span(k: u32, nf: u32) -> u32 {
    if (k >= nf) {
        return NONE;
    }
    let id = atomicLoad(&work[H.slot + SLOT_HEADER + k]);
    if (id < P.lo || id - P.lo >= P.span) {
        return NONE;
    }
    return id - P.lo;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let n = fired_in_span(linear_wg(wid, nwg) * GROUPS + lid / LANES, atomicLoad(&work[H.slot]));
    if (n == NONE) {
        return;
    }
    let s = bitcast<i32>(atomicLoad(&ctl[STDP_SCUR]));
    for (var i = pl[P.o_out + n] + lid % LANES; i < pl[P.o_out + n + 1u]; i = i + LANES) {
        let at = pl[P.o_pidx + i];
        if (at >= C.base && at - C.base < C.len) {
            syn[at - C.base].y = plastic_word(i, bitcast<f32>(ps[P.o_wq + i]), s, pl[P.o_meta + i]);
        }
    }
}
