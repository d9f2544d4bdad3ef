// dynamics_args.wgsl: FCL path only, one invocation between propagation and neural_dynamics_fcl.
// Freezes the candidate count, resets the append counter for the next burst, records the count
// in this burst's fire slot and writes the indirect grid of neural_dynamics_fcl.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1..3)                     (unused here)
//   @group(0) @binding(4) storage, rw    work    candidate counter -> frozen count; slot header
//   @group(0) @binding(5..6)                     (unused here)
//   @group(1) @binding(0) storage, rw    args    args[4..7): dynamics grid
// Dispatch: 1 workgroup of 1 invocation.

//!include common.wgsl
//!include args.wgsl

@compute @workgroup_size(1)
fn main() {
    let n = atomicLoad(&work[W_CAND_CTR]);
    atomicStore(&work[W_CAND_CTR], 0u);
    atomicStore(&work[W_CAND_N], n);
    atomicStore(&work[H.slot + 1u], n);
    write_grid((n + WG - 1u) / WG, 4u);
}
