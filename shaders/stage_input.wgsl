// stage_input.wgsl: first dispatch of a burst. Adds staged external potentials and the power
// neuron's +1.0 to the FCL, marks the forced neurons (their mp survives the burst even without
// mp_accumulate), resets this burst's fire slot, and writes the propagation grid
// (previous burst's fire count / 8 workgroups, then the Drive's workgroups) for the indirect
// dispatch that follows: no CPU round trip.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1) storage, read  params  (unused here)
//   @group(0) @binding(2) storage, rw    state   (unused here)
//   @group(0) @binding(3) storage, rw    fcl     sens += potential; candidate stamp; forced mark
//   @group(0) @binding(4) storage, rw    work    candidate counter/list; fire slots
//   @group(0) @binding(5) storage, read  lookup  (unused here)
//   @group(0) @binding(6) storage, read  inputs  external ids and potentials; forced ids
//   @group(1) @binding(0) storage, rw    args    indirect grids
// Dispatch: ceil(max(ext_n + 1, forced_n) / 256) workgroups (thread ext_n handles the power neuron).

//!include common.wgsl
//!include fcl.wgsl
//!include args.wgsl

// Make `id` a candidate of this burst (once): stamp it, and on the FCL path append it to the list.
fn mark_candidate(id: u32) {
    if (H.append != 0u) {
        if (fcl_swap_stamp(id)) {
            let k = atomicAdd(&work[W_CAND_CTR], 1u);
            atomicStore(&work[CAND_BASE + k], id);
        }
    } else {
        fcl_set_stamp(id);
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let k = linear_wg(wid, nwg) * WG + lid;
    if (k == 0u) {
        let fired_prev = atomicLoad(&work[H.prev_slot]);
        write_grid((fired_prev + FIRED_PER_WG - 1u) / FIRED_PER_WG + (H.drive_n + WG - 1u) / WG, 0u);
        atomicStore(&work[H.slot], 0u);
        atomicStore(&work[H.slot + 1u], 0u);
        atomicStore(&work[H.slot + 2u], H.seq);
    }
    if (k < H.forced_n) {
        fcl_set_forced(inputs[H.forced_off + k]);  // forced ids are unique
    }
    // ids are unique within the external list, so no two threads touch one neuron here; the
    // power neuron's +1.0 comes after its external potential, as on the CPU.
    if (k < H.ext_n) {
        let id = inputs[H.ext_off + k];
        var s = fcl_sens(id) + bitcast<f32>(inputs[H.ext_off + H.ext_n + k]);
        if (k == H.power_ext) {
            s = s + 1.0;
        }
        fcl_set_sens(id, s);
        mark_candidate(id);
    } else if (k == H.ext_n && H.power != NONE && H.power_ext == NONE) {
        fcl_set_sens(H.power, fcl_sens(H.power) + 1.0);
        mark_candidate(H.power);
    }
}
