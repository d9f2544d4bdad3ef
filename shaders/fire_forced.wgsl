// fire_forced.wgsl: adds this burst's forced fires (stimulation in "fire" mode) to the recorded
// fires, after neural dynamics; the rule itself is forced_fire() in dynamics.wgsl.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  (unused here)
//   @group(0) @binding(2) storage, rw    state   a block made one burst longer
//   @group(0) @binding(3) storage, rw    fcl     (unused here)
//   @group(0) @binding(4) storage, rw    work    fire bitmask tested; fires recorded
//   @group(0) @binding(5) storage, read  lookup  (unused here)
//   @group(0) @binding(6) storage, read  inputs  forced ids and their firing mps
// Dispatch: ceil(forced_n / 256) workgroups; skipped when there are none.

//!include common.wgsl
//!include dynamics.wgsl

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let k = linear_wg(wid, nwg) * WG + lid;
    if (k < H.forced_n) {
        let id = inputs[H.forced_off + k];  // forced ids are unique: no two threads share a neuron
        if (forced_fire(id)) {
            record_fire(id, bitcast<f32>(inputs[H.forced_off + H.forced_n + k]));
        }
    }
}
