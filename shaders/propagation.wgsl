// propagation.wgsl: the body shared by synaptic_propagation_fcl.wgsl and synaptic_propagation.wgsl
// (pasted by `//!include propagation.wgsl`; the including file pastes fcl.wgsl and defines
// `const APPEND: bool` and `fn touch(id: u32) -> bool`, which stamps `id` as a candidate of this
// burst and says whether it was not one yet).
//   @group(0) @binding(5) storage, read  lookup  hash table, Drive order, wide-target bitmask
//
//   @group(1) @binding(0) storage, read  syn  array<vec2<u32>>: (target, contribution) of the
//                                             synapses [C.base, C.base + C.len) (one chunk)
//   @group(1) @binding(1) uniform        C    Chunk: which synapses this binding holds
//
// Grid (indirect, written by stage_input or the previous fire_compact): workgroups
// [0, ceil(fired / FIRED_PER_WG)) propagate: FIRED_PER_WG groups of LANES invocations, one fired
// neuron per group, lanes striding over its synapses; the workgroups
// after them apply the Drive (one neuron per invocation, chunk 0 only).
// A contribution is an i32 fixed-point number, or for a source in an mp-driven area the f32 bits
// of a factor: q = round_half_even(clamp(firing mp, -cap, cap) * factor), exactly as
// fixed_point.quantise_mp_driven does on the CPU.

struct Chunk {
    base: u32,
    len: u32,
    drive: u32,    // 1 on the chunk whose dispatch also applies the Drive
    pad: u32,
};

@group(1) @binding(0) var<storage, read> syn: array<vec2<u32>>;
@group(1) @binding(1) var<uniform> C: Chunk;

const GROUPS: u32 = FIRED_PER_WG;
const LANES: u32 = WG / FIRED_PER_WG;

var<workgroup> wg_fired_n: u32;
var<workgroup> wg_iters: u32;
var<workgroup> wg_cnt: array<u32, FIRED_PER_WG>;
var<workgroup> wg_app_n: atomic<u32>;
var<workgroup> wg_app_base: u32;

// Append the invocations' new candidates with one global atomic per workgroup (a single
// contended counter would serialise hundreds of thousands of appends). Workgroup-uniform call.
fn append_candidates(want: bool, id: u32, lid: u32) {
    if (lid == 0u) {
        atomicStore(&wg_app_n, 0u);
    }
    workgroupBarrier();
    var pos = 0u;
    if (want) {
        pos = atomicAdd(&wg_app_n, 1u);
    }
    workgroupBarrier();
    if (lid == 0u) {
        let n = atomicLoad(&wg_app_n);
        wg_app_base = 0u;
        if (n > 0u) {
            wg_app_base = atomicAdd(&work[W_CAND_CTR], n);
        }
    }
    let base = workgroupUniformLoad(&wg_app_base);
    if (want) {
        atomicStore(&work[CAND_BASE + base + pos], id);
    }
}

// (found, start, count, mp cap bits) of a source neuron. Linear probing never goes further than
// the longest probe measured at build time, so no lookup can miss.
fn lookup_source(id: u32) -> vec4<u32> {
    let h = (id * HASH_MULT) >> H.hash_shift;
    for (var d = 0u; d <= H.max_probe; d = d + 1u) {
        let e = lookup[(h + d) & H.hash_mask];
        if (e.x == id) {
            return vec4<u32>(1u, e.y, e.z, e.w);
        }
        if (e.x == NONE) {
            break;
        }
    }
    return vec4<u32>(0u);
}

fn quantise_mp_driven(mp: f32, factor_bits: u32, cap: f32) -> i32 {
    var m = mp;
    if ((bitcast<u32>(m) & 0x7fffffffu) > 0x7f800000u) {  // NaN -> 0 (bit test: no fast-math)
        m = 0.0;
    }
    m = min(max(m, -cap), cap);
    return i32(round(m * bitcast<f32>(factor_bits)));
}

fn apply_drive(dwg: u32, lid: u32) {
    if (C.drive == 0u) {
        return;
    }
    let k = dwg * WG + lid;
    var want = false;
    var id = 0u;
    if (k < H.drive_n) {
        // the window holds distinct neurons, and external/power inputs were added by the previous
        // dispatch: the f32 order matches the CPU's
        id = drive_id((H.drive_start + k) % H.drive_len);
        fcl_set_sens(id, fcl_sens(id) + H.drive_pot);
        want = touch(id);
    }
    if (APPEND) {
        append_candidates(want, id, lid);
    }
}

// True when neuron id has 2^COUNT_BITS synapses in or more, more than its sum word can count.
fn is_wide(id: u32) -> bool {
    return (lookup_word(H.wide_off + (id >> 5u)) & (1u << (id & 31u))) != 0u;
}

// Add synapse s's contribution (its word, or for an mp-driven source the quantised product) to its
// target, which this makes a candidate even when the contribution is 0 (as on the CPU); true when
// the FCL path must append the target. A narrow target counts the event in the low COUNT_BITS of
// its sum word (one atomic: the count is its candidate mark, and the event that finds the word 0 is
// its first this burst); a wide one is stamped as well.
fn add_contribution(s: vec2<u32>, mp: f32, cap_bits: u32, cap: f32) -> bool {
    var q = bitcast<i32>(s.y);
    if (cap_bits != 0u) {
        q = quantise_mp_driven(mp, s.y, cap);
    }
    let t = s.x;
    let unit = i32(1u << COUNT_BITS);
    if (is_wide(t)) {
        if (q != 0) {
            _ = fcl_q_add(t, q * unit);
        }
        return touch(t);
    }
    let old = fcl_q_add(t, q * unit + 1);
    return APPEND && old == 0 && touch(t);
}

fn propagate(wg: u32, lid: u32) {
    if (lid == 0u) {
        wg_fired_n = atomicLoad(&work[H.prev_slot]);
    }
    let fired_n = workgroupUniformLoad(&wg_fired_n);
    let fire_wgs = (fired_n + GROUPS - 1u) / GROUPS;
    if (wg >= fire_wgs) {
        apply_drive(wg - fire_wgs, lid);
        return;
    }
    let g = lid / LANES;
    let lane = lid % LANES;
    let item = wg * GROUPS + g;
    var start = 0u;
    var count = 0u;
    var cap_bits = 0u;
    var mp = 0.0;
    if (item < fired_n) {
        let at = H.prev_slot + SLOT_HEADER + item;
        let id = atomicLoad(&work[at]);
        mp = bitcast<f32>(atomicLoad(&work[at + H.n_neurons]));
        let e = lookup_source(id);
        let lo = max(e.y, C.base);
        let hi = min(e.y + e.z, C.base + C.len);
        if (e.x == 1u && hi > lo) {
            start = lo - C.base;
            count = hi - lo;
        }
        cap_bits = e.w;
    }
    let cap = bitcast<f32>(cap_bits);
    if (!APPEND) {
        // nothing to append: each group walks its own row, without the workgroup's lockstep, two
        // synapses a lane per step, both loaded before either is added (their latencies overlap)
        for (var j = lane; j < count; j = j + 2u * LANES) {
            let s0 = syn[start + j];
            let j1 = j + LANES;
            let s1 = syn[start + min(j1, count - 1u)];
            _ = add_contribution(s0, mp, cap_bits, cap);
            if (j1 < count) {
                _ = add_contribution(s1, mp, cap_bits, cap);
            }
        }
        return;
    }
    if (lane == 0u) {
        wg_cnt[g] = (count + LANES - 1u) / LANES;
    }
    workgroupBarrier();
    if (lid == 0u) {
        var m = 0u;
        for (var i = 0u; i < GROUPS; i = i + 1u) {
            m = max(m, wg_cnt[i]);
        }
        wg_iters = m;
    }
    let iters = workgroupUniformLoad(&wg_iters);
    for (var it = 0u; it < iters; it = it + 1u) {
        let j = it * LANES + lane;
        var want = false;
        var t = 0u;
        if (j < count) {
            let s = syn[start + j];
            t = s.x;
            want = add_contribution(s, mp, cap_bits, cap);
        }
        append_candidates(want, t, lid);
    }
}
