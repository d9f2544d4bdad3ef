// synaptic_propagation.wgsl: full-array variant of synaptic_propagation_fcl.wgsl for bursts in
// which most neurons become candidates: the same atomic fixed-point sums and Drive, but targets
// are only counted or stamped (no candidate list, whose single counter would be the bottleneck);
// model_dynamics_full.wgsl then scans every neuron for this burst's count or stamp.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  (unused here)
//   @group(0) @binding(2) storage, rw    state   (unused here)
//   @group(0) @binding(3) storage, rw    fcl     sum word += contribution (atomic), stamp, Drive sens
//   @group(0) @binding(4) storage, rw    work    previous fire slot (read)
//   @group(0) @binding(5) storage, read  lookup  synapse hash table; Drive order; wide targets
//   @group(0) @binding(6) storage, read  inputs  (unused here)
//   @group(1) @binding(0) storage, read  syn     (target, contribution) pairs of one chunk
//   @group(1) @binding(1) uniform        C       the chunk's synapse range
// Dispatch: indirect, args[0..3) (one dispatch per synapse chunk).

//!include common.wgsl
//!include fcl.wgsl
const APPEND: bool = false;

// Every writer of a burst stores the same seq into a target's stamp, and nothing reads it before
// the dispatch has ended, so a store does (no exchange).
fn touch(id: u32) -> bool {
    fcl_set_stamp(id);
    return false;
}

//!include propagation.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    propagate(linear_wg(wid, nwg), lid);
}
