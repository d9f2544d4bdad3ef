// model_forced.wgsl: adds this burst's forced fires (stimulation in "fire" mode) of one model's
// neurons to the recorded fires, after every model's dynamics. A forced neuron that fired by
// itself this burst keeps its own entry; otherwise it joins the fire set with the stimulation's
// mp, and its own state changes only as its model's model_forced says (docs/feagi-findings.md).
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  model index of each neuron
//   @group(0) @binding(2) storage, rw    state   the words model_forced reads and changes
//   @group(0) @binding(3) storage, rw    fcl     (unused here)
//   @group(0) @binding(4) storage, rw    work    fire bitmask tested; fires recorded
//   @group(0) @binding(5) storage, read  lookup  (unused here)
//   @group(0) @binding(6) storage, read  inputs  forced ids and their firing mps
//   @group(1) @binding(0) uniform        M       ModelInfo (model.wgsl)
// Dispatch: ceil(forced_n / 256) workgroups; skipped when there are none.

//!include common.wgsl
//!include model.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let k = linear_wg(wid, nwg) * WG + lid;
    if (k < H.forced_n) {
        let id = inputs[H.forced_off + k];  // forced ids are unique: no two threads share a neuron
        if (model_of(id) == M.index && !has_fired(id)) {
            model_forced(id);
            record_fire(id, bitcast<f32>(inputs[H.forced_off + H.forced_n + k]));
        }
    }
}
