// neural_dynamics.wgsl: full-array neural dynamics, one invocation per neuron; a neuron is a
// candidate when its FCL stamp is this burst's. Used with synaptic_propagation.wgsl when most
// neurons are candidates. Records fires (record_fire) and counts the candidates into
// work[W_CAND_FULL] (one atomic per workgroup; fire_compact moves it into the slot).
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  per-neuron threshold and parameter row
//   @group(0) @binding(2) storage, rw    state   mp, cfc, blocked_until
//   @group(0) @binding(3) storage, rw    fcl     stamp tested; consumed and cleared
//   @group(0) @binding(4) storage, rw    work    fire bitmask, block counts, firing mps;
//                                                candidate counter
//   @group(0) @binding(5) storage, read  lookup  (unused here)
//   @group(0) @binding(6) storage, read  inputs  (unused here)
// Dispatch: ceil(N / 256) workgroups (2-D past 65535).

//!include common.wgsl
//!include dynamics.wgsl

var<workgroup> wg_cand_n: atomic<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_cand_n, 0u);  // some drivers do not zero workgroup memory
    }
    workgroupBarrier();
    let i = linear_wg(wid, nwg) * WG + lid;
    if (i < H.n_neurons) {
        if (atomicLoad(&fcl[i].stamp) == H.seq) {
            atomicAdd(&wg_cand_n, 1u);
            let out = neuron_dynamics(i);
            if (out.fire) {
                record_fire(i, out.mp);
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
