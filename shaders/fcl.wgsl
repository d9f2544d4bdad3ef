// fcl.wgsl: the fire candidate list as the kernels that add into it see it (propagation,
// stage_input) and those that read its stamps (state_delta): several invocations may write one
// neuron's entry, so its sum and stamp are atomics. The model kernels, where one invocation owns
// each entry, declare the same binding as plain words instead (model.wgsl).
// Not an entry point (pasted by `//!include fcl.wgsl` after common.wgsl).
//   @group(0) @binding(3) storage, rw  fcl  array<Fcl>: one entry per neuron

struct Fcl {
    q: atomic<i32>,       // fixed-point synaptic sum << COUNT_BITS, plus a narrow target's event
                          // count (propagation.wgsl; integers: order-free, exact)
    stamp: atomic<u32>,   // seq of the last burst that made this neuron a candidate
    sens: f32,            // f32 sensory sum, in the CPU's order: external, power, Drive
    forced: u32,          // seq of the last burst that forces this neuron to fire
};

@group(0) @binding(3) var<storage, read_write> fcl: array<Fcl>;
