// synaptic_propagation_fcl.wgsl: the fired neurons of the previous burst add their quantised
// contributions into the GPU-side fire candidate list with i32 atomics, and every neuron touched
// for the first time this burst is appended to the candidate list (FCL path). Also applies the
// Drive. Dispatched indirectly from the previous burst's GPU-side fire count.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  (unused here)
//   @group(0) @binding(2) storage, rw    state   (unused here)
//   @group(0) @binding(3) storage, rw    fcl     sum word += contribution (atomic), stamp, Drive sens
//   @group(0) @binding(4) storage, rw    work    previous fire slot (read), candidate list
//   @group(0) @binding(5) storage, read  lookup  synapse hash table; Drive order; wide targets
//   @group(0) @binding(6) storage, read  inputs  (unused here)
//   @group(1) @binding(0) storage, read  syn     (target, contribution) pairs of one chunk
//   @group(1) @binding(1) uniform        C       the chunk's synapse range
// Dispatch: indirect, args[0..3) (one dispatch per synapse chunk).

//!include common.wgsl
//!include fcl.wgsl
const APPEND: bool = true;

fn touch(id: u32) -> bool {
    return fcl_swap_stamp(id);
}

//!include propagation.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    propagate(linear_wg(wid, nwg), lid);
}
