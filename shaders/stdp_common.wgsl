// stdp_common.wgsl: bindings and helpers of the STDP kernels (SPEC.md section 2 step 5;
// feagi_burst/plasticity.py says what they compute, feagi_burst/backends/wgpu/plasticity.py how
// they are laid out and dispatched). Not an entry point: pasted after common.wgsl.
//
// Group STDP_GROUP (one bind group for every STDP kernel; the includer defines the constant: 1 in
// the stdp*.wgsl kernels, 2 in fire_compact's STDP hooks, whose group 1 is `args`):
//   @group(STDP_GROUP) @binding(0) uniform        P    StdpInfo: sizes and the word offset of each section
//   @group(STDP_GROUP) @binding(1) storage, read  pl   array<u32>: the plastic synapses' fixed layout
//   @group(STDP_GROUP) @binding(2) storage, rw    ps   array<u32>: weights, committed weights, stamps
//                                                      (two per span neuron), the two fired lists
//   @group(STDP_GROUP) @binding(3) storage, rw    ctl  array<atomic<u32>>: counters, the cap, the
//                                                      scale (STDP_* constants of layout.py)
// The indirect grids of the STDP kernels are in a buffer of their own (`grid`), which only
// fire_compact's hooks and stdp_decide bind: a dispatch cannot read its indirect arguments from a
// buffer it binds writable.
//
// Plastic synapses are numbered in CSR order (by source). Per plastic synapse i: tgt, meta (pair
// index, STDP_DRIVEN bit), pidx (its index in the synapse table), unit (signed f32: what one unit of
// weight contributes before the scale). Per neuron n of the plastic span [lo, lo+span):
// out[n - lo] .. out[n - lo + 1] its outgoing plastic synapses, in[n - lo] .. in[n - lo + 1] its
// incoming slots k (synapse in_idx[k], whose source is insrc[k] and pair inpair[k]). Per pair:
// window W, dp and dm (f32 bits).

struct StdpInfo {
    n_plastic: u32,
    lo: u32,        // first neuron id of the plastic span
    span: u32,      // neurons in the span
    o_out: u32,     // pl offsets
    o_in: u32,
    o_inidx: u32,
    o_insrc: u32,   // per incoming slot k: the source neuron and the pair of synapse in_idx[k]
    o_inpair: u32,
    o_tgt: u32,
    o_meta: u32,
    o_pidx: u32,
    o_unit: u32,
    o_pairs: u32,   // 4 words per pair: W, dp bits, dm bits, 0
    o_table: u32,   // i32 scale exponent per cap exponent k (0..128)
    o_w: u32,       // ps offsets
    o_wq: u32,
    o_stamp: u32,   // per span neuron n: ps[o_stamp + 2n] its last fire, + 1 the one before (0: never)
    o_list: u32,    // the fired list of a burst (span indices) at o_list + (seq parity) * span
    chunks: u32,    // synapse chunks (bindings of the synapse table)
    hash_n: u32,    // entries of the synapse hash table (stdp_requant's grid)
    settled: u32,   // the burst the state was loaded at: every weight up to date after it
    pad0: u32,
    pad1: u32,
    pad2: u32,
};

@group(STDP_GROUP) @binding(0) var<uniform> P: StdpInfo;
@group(STDP_GROUP) @binding(1) var<storage, read> pl: array<u32>;
@group(STDP_GROUP) @binding(2) var<storage, read_write> ps: array<u32>;
@group(STDP_GROUP) @binding(3) var<storage, read_write> ctl: array<atomic<u32>>;

// The (target, contribution) words of one synapse chunk, writable (commit and requantisation).
struct StdpChunk {
    base: u32,
    len: u32,
    drive: u32,   // propagation's Chunk word (its Drive): unused here
    pad: u32,
};

// x with zeros and subnormals as +0 (a GPU may flush subnormals; the CPU does this too).
fn ftz(x: f32) -> f32 {
    if ((bitcast<u32>(x) & 0x7f800000u) == 0u) {
        return 0.0;
    }
    return x;
}

// 2^e as an f32, e in [-126, 127] (built from its bits: exact).
fn pow2f(e: i32) -> f32 {
    return bitcast<f32>(u32(127 + e) << 23u);
}

// x itself, through an XOR with a zero the compiler cannot see: no product is fused or reordered.
fn opaque_x(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ H.zero);
}

// The contribution word of plastic synapse i (meta word `mw`) with weight w at scale exponent s
// (fixed_point.plastic_words: one rounded product, an exact power-of-two scaling, ftz, rint).
fn plastic_word(i: u32, w: f32, s: i32, mw: u32) -> u32 {
    let u = bitcast<f32>(pl[P.o_unit + i]);
    let v = ftz(opaque_x(w * u));
    let x = ftz(opaque_x(v * pow2f(s)));
    if ((mw & STDP_DRIVEN) != 0u) {
        return bitcast<u32>(x);
    }
    return bitcast<u32>(i32(round(x)));
}

// The smallest k in [0, 128] with w <= 2^k, from w's f32 bits (w >= 0): fixed_point.cap_exponent.
fn cap_exp(bits: u32) -> u32 {
    let e = (bits >> 23u) & 0xffu;
    if (e == 0u) {
        return 0u;
    }
    var k = i32(e) - 127;
    if ((bits & 0x7fffffu) != 0u) {
        k = k + 1;
    }
    return u32(clamp(k, 0, 128));
}

// Span neuron n's stamps: x its last fire, y the fire before it (0: never).
fn stamps_of(n: u32) -> vec2<u32> {
    return vec2<u32>(ps[P.o_stamp + 2u * n], ps[P.o_stamp + 2u * n + 1u]);
}

// A synapse's weight w after the bursts t0..t1 of the rule with its source's last fire `a` and its
// target's `c` (0: never) fixed over them: LTP while both are in the window, then LTD while one is,
// burst by burst (plasticity.py's replay, the same f32 operations in the same order). The
// burst's own step is replay(w, a, c, b, b, ...) with the stamp of a neuron that fired in b = b.
fn replay(w0: f32, a: u32, c: u32, t0: u32, t1: u32, win: u32, dp: f32, dm: f32) -> f32 {
    var w = w0;
    for (var t = max(t0, win); t <= t1; t = t + 1u) {
        let pre = a != 0u && t - a < win;
        let post = c != 0u && t - c < win;
        if (pre && post) {
            w = opaque_x(w + dp);
        } else if (pre || post) {
            let x = opaque_x(w - dm);
            w = select(0.0, x, x > 0.0);
        } else {
            break;  // the windows only expire: nothing changes after this burst
        }
    }
    return w;
}
