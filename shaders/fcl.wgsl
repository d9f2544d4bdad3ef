// fcl.wgsl: the fire candidate list (common.wgsl's word arrays) as the kernels that add into it see
// it (propagation, stage_input) and those that read its stamps (state_delta): several invocations
// may write one neuron's sum word and stamp, so the binding is atomic words, and WGSL allows no
// plain words beside them in one array: sens and forced, which one invocation owns at a time, go
// through atomicLoad/atomicStore (relaxed: plain accesses). The model kernels, where one
// invocation owns each neuron, declare the same binding as plain words instead (model.wgsl).
// Not an entry point (pasted by `//!include fcl.wgsl` after common.wgsl).
//   @group(0) @binding(3) storage, rw  fcl  array<atomic<u32>>: the FCL_* word arrays

@group(0) @binding(3) var<storage, read_write> fcl: array<atomic<u32>>;

// Add v to neuron id's sum word; returns the word before. A u32 add wraps to the bits an i32 add
// would give.
fn fcl_q_add(id: u32, v: i32) -> i32 {
    return bitcast<i32>(atomicAdd(&fcl[fcl_word(FCL_Q, id)], bitcast<u32>(v)));
}

fn fcl_stamp(id: u32) -> u32 {
    return atomicLoad(&fcl[fcl_word(FCL_STAMP, id)]);
}

// Stamp id as a candidate of this burst.
fn fcl_set_stamp(id: u32) {
    atomicStore(&fcl[fcl_word(FCL_STAMP, id)], H.seq);
}

// Stamp id as a candidate of this burst; true when it was not one yet.
fn fcl_swap_stamp(id: u32) -> bool {
    return atomicExchange(&fcl[fcl_word(FCL_STAMP, id)], H.seq) != H.seq;
}

fn fcl_sens(id: u32) -> f32 {
    return bitcast<f32>(atomicLoad(&fcl[fcl_word(FCL_SENS, id)]));
}

fn fcl_set_sens(id: u32, s: f32) {
    atomicStore(&fcl[fcl_word(FCL_SENS, id)], bitcast<u32>(s));
}

fn fcl_forced(id: u32) -> u32 {
    return atomicLoad(&fcl[fcl_word(FCL_FORCED, id)]);
}

// Mark id as forced to fire this burst.
fn fcl_set_forced(id: u32) {
    atomicStore(&fcl[fcl_word(FCL_FORCED, id)], H.seq);
}
