// model_dynamics_full.wgsl: neural dynamics of one candidates-only model (FEAGI LIF) on the
// full-array path: FULL_NEURONS neurons of [M.lo, M.hi) per invocation, WG apart (a workgroup's
// fixed costs, its scale load and candidate count, are shared by more neurons); a neuron is a
// candidate when its FCL stamp or sum word says so (is_candidate). Used with
// synaptic_propagation.wgsl when most neurons are candidates. Records fires and counts the
// candidates into work[W_CAND_FULL] (one atomic per workgroup; fire_compact moves it into the slot).
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  per-neuron word and parameter row
//   @group(0) @binding(2) storage, rw    state   the state words the model reads and changes
//                                                (common.wgsl state_word: one array per word)
//   @group(0) @binding(3) storage, rw    fcl     sum word and stamp tested (8 bytes a neuron); a
//                                                candidate's consumed and cleared (model.wgsl
//                                                take_input, is_forced)
//   @group(0) @binding(4) storage, rw    work    fire bitmask, block counts, firing mps;
//                                                candidate counter
//   @group(0) @binding(5..6)                     (unused here)
//   @group(1) @binding(0) uniform        M       ModelInfo (model.wgsl)
// Dispatch: ceil((M.hi - M.lo) / (WG * FULL_NEURONS)) workgroups (2-D past 65535).

//!include common.wgsl
//!include model.wgsl

var<workgroup> wg_cand_n: atomic<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_cand_n, 0u);  // some drivers do not zero workgroup memory
    }
    begin_model_kernel(lid);
    let first = M.lo + linear_wg(wid, nwg) * (WG * FULL_NEURONS) + lid;
    for (var k = 0u; k < FULL_NEURONS; k = k + 1u) {
        let i = first + k * WG;
        if (i < M.hi) {
            let q = fcl_sum(i);
            let stamp = fcl_stamp(i);
            if (is_candidate(q, stamp) && model_of(i) == M.index) {
                atomicAdd(&wg_cand_n, 1u);
                let out = model_step(i, take_input(i, q, stamp), is_forced(i));
                if (out.fire) {
                    record_fire(i, out.mp);
                }
            }
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = atomicLoad(&wg_cand_n);
        if (n > 0u) {
            atomicAdd(&work[W_CAND_FULL], n);
        }
    }
}
