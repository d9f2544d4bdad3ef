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
const APPEND: bool = false;

// This kernel's view of the fire candidate list (fcl.wgsl's Fcl, with a plain stamp): every
// writer of a burst stores the same seq into a target's stamp, and nothing reads it before the
// dispatch has ended, so the store needs no atomic.
struct Fcl {
    q: atomic<i32>,
    stamp: u32,
    sens: f32,
    forced: u32,
};

@group(0) @binding(3) var<storage, read_write> fcl: array<Fcl>;

fn touch(id: u32) -> bool {
    fcl[id].stamp = H.seq;
    return false;
}

//!include propagation.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    propagate(linear_wg(wid, nwg), lid);
}
