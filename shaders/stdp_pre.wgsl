// stdp_pre.wgsl: second STDP step of a burst b with plastic pairs, over this burst's fire set
// (never over the plastic synapses of an area). On the first chunk's dispatch, one invocation per
// fired neuron stamps it: each fired neuron of the plastic span gets stamp = b, and is appended
// to the current window list unless it is in it already (fired within the last wmax bursts).
// Forced fires are in the fire set, so they count.
//
// With several synapse chunks, the other chunks' dispatches also commit the fired neurons' rows
// (one group of LANES lanes per fired neuron): the next burst delivers their spikes with their
// synapses' weights as they are now, before this burst's update (SPEC.md step 4), so a synapse
// of a fired source whose committed weight differs from its weight gets the weight as committed
// weight and contribution word. stdp.wgsl does the same for the words in chunk 0, in the update
// itself (the thread that updates a synapse reads its weight before the update anyway); a
// source's words are read only by the propagation of its own spikes, so a row of a neuron that
// did not fire may stay behind. Rows of several chunks are split at the chunk bounds here.
//
// Bindings: group 0 (common.wgsl: H, work), group 1 (stdp_common.wgsl),
//   @group(2) @binding(0) storage, rw  syn  (target, contribution) words of one chunk
//   @group(2) @binding(1) uniform      C    the chunk's synapse range
// Dispatch: indirect, grid[STDP_GRID_PRE..) (one dispatch per synapse chunk): one invocation per
// fired neuron with one chunk, one group of LANES per fired neuron with several.

//!include common.wgsl
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
    let wg = linear_wg(wid, nwg);
    let nf = atomicLoad(&work[H.slot]);
    if (C.first == 0u) {
        // commit the fired neurons' synapses whose words lie in this chunk (not the first)
        let n = fired_in_span(wg * GROUPS + lid / LANES, nf);
        if (n == NONE) {
            return;
        }
        let s = bitcast<i32>(atomicLoad(&ctl[STDP_SCUR]));
        for (var i = pl[P.o_out + n] + lid % LANES; i < pl[P.o_out + n + 1u]; i = i + LANES) {
            let at = pl[P.o_pidx + i];
            if (at >= C.base && at - C.base < C.len) {
                let w = ps[P.o_w + i];
                if (ps[P.o_wq + i] != w) {
                    ps[P.o_wq + i] = w;
                    syn[at - C.base].y = plastic_word(i, bitcast<f32>(w), s);
                }
            }
        }
        return;
    }
    let n = fired_in_span(wg * WG + lid, nf);
    if (n == NONE) {
        return;
    }
    if (pl[P.o_out + n + 1u] == pl[P.o_out + n] && pl[P.o_in + n + 1u] == pl[P.o_in + n]) {
        return;  // no plastic synapse: no window to keep
    }
    let b = H.burst;
    let old = ps[P.o_stamp + n];
    ps[P.o_stamp + n] = b;
    if (!in_window(old, b, P.wmax)) {
        let cur = H.seq & 1u;
        let at = atomicAdd(&ctl[STDP_LCNT + cur], 1u);
        ps[P.o_list + cur * P.span + at] = n + P.lo;
    }
}
