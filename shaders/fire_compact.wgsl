// fire_compact.wgsl: last dispatch of a burst. Turns the fires recorded per neuron (bitmask,
// firing mps, block counts: see record_fire in common.wgsl) into this burst's fire slot, in
// ascending id order, as the CPU backend's fire set: no sort on the host. One workgroup per
// block of 8192 neurons (256 bitmask words, one per invocation): the block's place in the slot is
// the sum of the counts of the blocks before it, each word's place within the block a
// workgroup prefix sum of popcounts. Clears the bitmask words it read and the block counts of the
// other seq parity (the next burst's). Its last workgroup writes the slot header (fire count,
// candidate count on the full path, seq) and the next burst's propagation grid, so a burst
// without stimulation needs no stage_input. A brain with plastic pairs compiles it with the STDP
// hooks (compact_stdp.wgsl: the fired neurons' stamps and list, and the STDP grids), others with
// compact_plain.wgsl.
//
// Bindings:
//   @group(0) @binding(0) uniform        H       Header (dynamic offset: one per burst)
//   @group(0) @binding(1..3)                     (unused here)
//   @group(0) @binding(4) storage, rw    work    bitmask, block counts, firing mps (read, cleared);
//                                                fire slot (ids, mps, count)
//   @group(0) @binding(5..6)                     (unused here)
//   @group(1) @binding(0) storage, rw    args    args[0..3): the next burst's propagation grid
//   @group(2..3)                                 the hooks' (compact_stdp.wgsl)
// Dispatch: nblk workgroups (2-D past 65535).

//!include common.wgsl
//!include args.wgsl
//!include HOOKS

var<workgroup> wg_total_n: atomic<u32>;
var<workgroup> wg_sum: array<u32, 2 * WG>;  // two halves: a scan step reads one, writes the other

// The sum of v over the workgroup's invocations. Workgroup-uniform call, once a dispatch (its
// counter is not reset for a second call).
fn wg_total(v: u32, lid: u32) -> u32 {
    if (lid == 0u) {
        atomicStore(&wg_total_n, 0u);
    }
    workgroupBarrier();
    if (v != 0u) {
        atomicAdd(&wg_total_n, v);
    }
    workgroupBarrier();
    return atomicLoad(&wg_total_n);
}

// (exclusive prefix of v over the workgroup's invocations, total). Workgroup-uniform call. Each
// step reads one half and writes the other, so it needs one barrier, not two.
fn wg_scan(v: u32, lid: u32) -> vec2<u32> {
    var half = 0u;
    wg_sum[lid] = v;
    workgroupBarrier();
    for (var d = 1u; d < WG; d = d * 2u) {
        var x = wg_sum[half + lid];
        if (lid >= d) {
            x = x + wg_sum[half + lid - d];
        }
        half = WG - half;
        wg_sum[half + lid] = x;
        workgroupBarrier();
    }
    let inclusive = wg_sum[half + lid];
    let total = wg_sum[half + WG - 1u];
    workgroupBarrier();  // wg_sum is reused by the next call
    return vec2<u32>(inclusive - v, total);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let w = linear_wg(wid, nwg);
    if (w >= H.nblk) {
        return;  // the 2-D grid's tail: uniform for the whole workgroup
    }
    let counts = H.bcnt_off + (H.seq & 1u) * H.nblk;
    var part = 0u;
    for (var j = lid; j < w; j = j + WG) {
        part = part + atomicLoad(&work[counts + j]);
    }
    let base = wg_total(part, lid);  // fires in the blocks before this one
    let word = (w << (BLOCK_SHIFT - 5u)) + lid;  // 256 bitmask words per block, one per invocation
    let bits_at = H.bits_off + word;
    var bits = atomicLoad(&work[bits_at]);
    if (bits != 0u) {
        atomicStore(&work[bits_at], 0u);  // clean for the next burst
    }
    let fired_bits = bits;
    let scan = wg_scan(countOneBits(bits), lid);
    var pos = base + scan.x;
    let ids_at = H.slot + SLOT_HEADER;
    let mps_at = ids_at + H.n_neurons;
    while (bits != 0u) {
        let id = (word << 5u) + firstTrailingBit(bits);
        bits = bits & (bits - 1u);
        atomicStore(&work[ids_at + pos], id);
        atomicStore(&work[mps_at + pos], atomicLoad(&work[H.fmp_off + id]));
        pos = pos + 1u;
    }
    compacted(word, fired_bits, lid);
    if (lid == 0u) {
        // the next burst counts into the other parity: this block's entry there was last read by
        // the previous burst's fire_compact, an earlier dispatch
        atomicStore(&work[H.bcnt_off + ((H.seq + 1u) & 1u) * H.nblk + w], 0u);
        if (w == H.nblk - 1u) {
            let fired = base + scan.y;
            atomicStore(&work[H.slot], fired);
            atomicStore(&work[H.slot + 2u], H.seq);
            if (H.append == 0u) {  // the full path counted its candidates in work[W_CAND_FULL]
                atomicStore(&work[H.slot + 1u], atomicLoad(&work[W_CAND_FULL]));
                atomicStore(&work[W_CAND_FULL], 0u);
            }
            // as stage_input would write it for the next burst (the Drive's size is fixed)
            write_grid((fired + FIRED_PER_WG - 1u) / FIRED_PER_WG + (H.drive_n + WG - 1u) / WG, 0u);
            burst_compacted(fired);
        }
    }
}
