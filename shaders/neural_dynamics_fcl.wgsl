// neural_dynamics_fcl.wgsl: neural dynamics for the candidate neurons only (FCL path), one
// invocation per candidate, dispatched indirectly from the GPU-side candidate count.
// Fires are appended to this burst's fire slot.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  per-neuron parameters
//   @group(0) @binding(2) storage, rw    state   mp, cfc, blocked_until, fired_seq
//   @group(0) @binding(3) storage, rw    fcl     consumed and cleared
//   @group(0) @binding(4) storage, rw    work    candidate list (read); fire slot (append)
//   @group(0) @binding(5) storage, read  lookup  (unused here)
//   @group(0) @binding(6) storage, read  inputs  (unused here)
// Dispatch: indirect, args[4..7) = ceil(candidates / 256) workgroups.

//!include common.wgsl
//!include dynamics.wgsl

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    clear_workgroup_counters(lid);
    let i = linear_wg(wid, nwg) * WG + lid;
    var out = Outcome(false, 0.0);
    var id = 0u;
    if (i < atomicLoad(&work[W_CAND_N])) {
        id = atomicLoad(&work[CAND_BASE + i]);
        out = neuron_dynamics(id);
    }
    append_fires(out.fire, id, out.mp, lid);
}
