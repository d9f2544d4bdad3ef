// model_dynamics_fcl.wgsl: neural dynamics of one candidates-only model (FEAGI LIF) on the FCL
// path: one invocation per candidate, dispatched indirectly from the GPU-side candidate count.
// Candidates of other models are left to their own kernels. Fires are recorded per neuron
// (record_fire); fire_compact.wgsl orders them into the slot.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  per-neuron word and parameter row
//   @group(0) @binding(2) storage, rw    state   the state words the model reads and changes
//                                                (common.wgsl state_word: one array per word)
//   @group(0) @binding(3) storage, rw    fcl     sum word and sens consumed and cleared (model.wgsl
//                                                take_input, is_forced)
//   @group(0) @binding(4) storage, rw    work    candidate list (read); fire bitmask, block
//                                                counts, firing mps
//   @group(0) @binding(5..6)                     (unused here)
//   @group(1) @binding(0) uniform        M       ModelInfo (model.wgsl)
// Dispatch: indirect, args[4..7) = ceil(candidates / 256) workgroups.

//!include common.wgsl
//!include model.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    begin_model_kernel(lid);
    let i = linear_wg(wid, nwg) * WG + lid;
    if (i < atomicLoad(&work[W_CAND_N])) {
        let id = atomicLoad(&work[CAND_BASE + i]);
        if (model_of(id) == M.index) {
            // every listed candidate was stamped when it was appended (stage_input's
            // mark_candidate, propagation's touch): its stamp needs no load
            let out = model_step(id, take_input(id, fcl_sum(id), H.seq), is_forced(id));
            if (out.fire) {
                record_fire(id, out.mp);
            }
        }
    }
}
