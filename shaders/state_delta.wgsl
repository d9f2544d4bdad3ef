// state_delta.wgsl: the neurons whose state may have changed since the last sync, with that
// state, so `state()` downloads only them when they are few. A neuron of a candidates-only
// model (FEAGI LIF; the host reads everything when another model is present) changes only in a
// burst that makes it a candidate (fcl stamp) or forces it (fcl forced): both hold that burst's
// seq, so "changed since" is a stamp in (H.since, H.seq], compared in wrapping u32 arithmetic.
// Rows past the capacity are counted but not written (the host then downloads every neuron).
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header: n_neurons, seq (now), since
//   @group(0) @binding(2) storage, rw    state   words 0..2 of a changed neuron read
//   @group(0) @binding(3) storage, rw    fcl     stamp and forced read
//   @group(0) @binding(1, 4..6)                  (unused here)
//   @group(1) @binding(0) storage, rw    delta   [0] count (zeroed by the host), [1] capacity in
//                                                rows, [2..4) 0; then rows (id, state words 0..2)
//                                                from word 4 (models have at most 3 variables)
// Dispatch: ceil(N / 256) workgroups (2-D past 65535).

//!include common.wgsl
//!include fcl.wgsl

@group(1) @binding(0) var<storage, read_write> delta: array<atomic<u32>>;

var<workgroup> wg_n: atomic<u32>;
var<workgroup> wg_base: u32;

fn changed(stamp: u32) -> bool {
    return stamp - H.since - 1u < H.seq - H.since;  // since < stamp <= seq, wrapping
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_n, 0u);
    }
    workgroupBarrier();
    let i = linear_wg(wid, nwg) * WG + lid;
    var want = false;
    var pos = 0u;
    if (i < H.n_neurons) {
        want = changed(fcl_stamp(i)) || changed(fcl_forced(i));
        if (want) {
            pos = atomicAdd(&wg_n, 1u);
        }
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = atomicLoad(&wg_n);
        wg_base = 0u;
        if (n > 0u) {
            wg_base = atomicAdd(&delta[0], n);
        }
    }
    let row = workgroupUniformLoad(&wg_base) + pos;
    if (want && row < atomicLoad(&delta[1])) {
        let at = 4u + 4u * row;
        atomicStore(&delta[at], i);
        atomicStore(&delta[at + 1u], state_word(i, 0u));
        atomicStore(&delta[at + 2u], state_word(i, 1u));
        atomicStore(&delta[at + 3u], state_word(i, 2u));
    }
}
