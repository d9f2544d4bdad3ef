// common.wgsl: structs, the group-0 bindings and helpers shared by every burst shader.
// Not an entry point: the host loader pastes it where a shader says `//!include common.wgsl`.
//
// Group 0 (one bind group for every pipeline, set once per burst with a dynamic offset):
//   @group(0) @binding(0) uniform            H       Header: this burst's numbers (256-byte stride)
//   @group(0) @binding(1) storage, read      params  array<vec2<u32>>: per neuron (its model's
//                                                    per-neuron word, parameter row); the rows from index N
//   @group(0) @binding(2) storage, rw        state   array<u32>: each neuron model's variables, one
//                                                    array of N words per variable (below)
//   @group(0) @binding(3) storage, rw        fcl     fire candidate list: 4 arrays of N words (below),
//                                                    declared by fcl.wgsl (atomic, for the kernels that
//                                                    add into it) or model.wgsl (plain, for the ones
//                                                    that step it)
//   @group(0) @binding(4) storage, rw        work    array<atomic<u32>>: counters, candidate list,
//                                                    fire bitmask, block fire counts, firing mps,
//                                                    the ring of fire-set slots
//   @group(0) @binding(5) storage, read      lookup  array<vec4<u32>>: synapse hash table, then the
//                                                    Drive order and the wide-target bitmask (u32s
//                                                    packed 4 per vec4)
//   @group(0) @binding(6) storage, read      inputs  array<u32>: staged potentials and forced fires

// The constants (NONE, WG, W_CAND_*, CAND_BASE, SLOT_HEADER, BLOCK_SHIFT, FIRED_PER_WG, HASH_MULT...)
// and `struct Header` (this burst's numbers) are generated from one table in
// feagi_burst/backends/wgpu/layout.py, which the host uses too: the loader pastes them here.
//!generated layout

// A fire slot at word s of `work`: [s] fired count, [s+1] candidate count, [s+2] seq, [s+3] 0,
// then the fired ids (ascending) from s+SLOT_HEADER and their mp bits from s+SLOT_HEADER+N.
// Fires of the burst being computed are first recorded per neuron (record_fire): a bit in the
// bitmask at work[bits_off..), the firing mp at work[fmp_off + id], and +1 in the count of its
// block at work[bcnt_off + (seq & 1) * nblk + block]; fire_compact turns them into the slot.

// Parameters: per neuron a vec2 (the model's per-neuron word, its row index), then the rows of a
// small table from index N (model.wgsl).

@group(0) @binding(0) var<uniform> H: Header;
@group(0) @binding(1) var<storage, read> params: array<vec2<u32>>;
@group(0) @binding(2) var<storage, read_write> state: array<u32>;
@group(0) @binding(4) var<storage, read_write> work: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read> lookup: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read> inputs: array<u32>;

// The fire candidate list: one array of N = H.n_neurons words per field, [field * N,
// (field + 1) * N) of the 16 N-byte buffer, rather than one 16-byte entry per neuron. The dense
// dynamics pass tests a neuron with 8 bytes (sum word and stamp) and reads sens and forced only
// when they can matter, and propagation's atomics land on a dense word array: 1M random atomics
// took 18.0 us at a 16-byte stride, 12.3 us dense (H200).
const FCL_Q: u32 = 0u;       // fixed-point synaptic sum << COUNT_BITS (i32 bits), plus a narrow
                             // target's event count (propagation.wgsl; integers: order-free, exact)
const FCL_STAMP: u32 = 1u;   // seq of the last burst that made the neuron a candidate
const FCL_SENS: u32 = 2u;    // f32 bits: the sensory sum, in the CPU's order: external, power, Drive
const FCL_FORCED: u32 = 3u;  // seq of the last burst that forced the neuron to fire

// Index in `fcl` of neuron id's word `field` (FCL_*).
fn fcl_word(field: u32, id: u32) -> u32 {
    return field * H.n_neurons + id;
}

// Neuron state: a model's k-th state variable (declaration order; f32 as bits, integers widened;
// feagi_burst/backends/wgpu/state.py) is word k of its neurons, and word k of all N neurons is one
// array, [k * N, (k + 1) * N) of the 16 N-byte buffer (4 words: models have at most 3 variables),
// like the FCL's fields, rather than a 16-byte row per neuron: a model loads and stores only the
// variables a burst needs (FEAGI LIF mostly changes mp alone), and a warp's loads of one word are
// contiguous.
fn state_word(id: u32, k: u32) -> u32 {
    return state[k * H.n_neurons + id];
}

fn set_state_word(id: u32, k: u32, v: u32) {
    state[k * H.n_neurons + id] = v;
}

// Dispatches larger than 65535 workgroups are 2-D; this is the flat workgroup index.
fn linear_wg(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Word w of `lookup` as u32s (the Drive order and the wide-target bitmask follow the hash table,
// packed four to a vec4).
fn lookup_word(w: u32) -> u32 {
    return lookup[w / 4u][w % 4u];
}

// One entry of the Drive order.
fn drive_id(k: u32) -> u32 {
    return lookup_word(H.drive_off + k);
}

// Record that `id` fires this burst with firing mp `mp` (fire_compact writes the ordered slot).
fn record_fire(id: u32, mp: f32) {
    atomicOr(&work[H.bits_off + (id >> 5u)], 1u << (id & 31u));
    atomicStore(&work[H.fmp_off + id], bitcast<u32>(mp));
    atomicAdd(&work[H.bcnt_off + (H.seq & 1u) * H.nblk + (id >> BLOCK_SHIFT)], 1u);
}

// True when `id` is already recorded as firing this burst.
fn has_fired(id: u32) -> bool {
    return (atomicLoad(&work[H.bits_off + (id >> 5u)]) & (1u << (id & 31u))) != 0u;
}
