// model.wgsl: what a neuron model's WGSL file may use, and the model's own group-1 uniform.
// Not an entry point: the model kernels (model_dynamics_*.wgsl, model_forced.wgsl) include it
// after common.wgsl, and it pastes the model's file where it says `//!include MODEL`.
//
// A model file (shaders/models/<name>.wgsl) defines
//   fn model_step(id: u32, input: f32, forced: bool) -> Outcome
//       one burst for neuron `id` with its summed input (SPEC.md step 1); reads and writes its
//       state with state_word(id, k) / set_state_word(id, k, bits) (common.wgsl: variable k in
//       declaration order, f32 as bits), only the words it needs
//   fn model_forced(id: u32)
//       what a forced fire does to the neuron's own state when it did not fire by itself
// and may use neuron_word(id), model_word(id, k) / row_base(id) + params[], opaque(x),
// excitability_draw(id), H (the burst Header).
//
// Bindings (besides common.wgsl's group 0):
//   @group(0) @binding(3) storage, rw  fcl  the fire candidate list, as plain words (below)
//   @group(1) @binding(0) uniform      M    ModelInfo: this model's index and the id range it covers

struct Outcome {
    fire: bool,
    mp: f32,    // the firing mp recorded for a fire
};

struct ModelInfo {
    index: u32,  // the model's registry index (word 0 of its neurons' parameter rows)
    lo: u32,     // its neurons lie in [lo, hi) (other models' neurons may be in between)
    hi: u32,
    pad: u32,
};

@group(1) @binding(0) var<uniform> M: ModelInfo;

// The vec2 index in `params` of neuron id's parameter row (rows follow the N per-neuron entries).
fn row_base(id: u32) -> u32 {
    return H.n_neurons + params[id].y * H.row_stride;
}

// The per-neuron word (the model's gpu_neuron_word, e.g. FEAGI LIF's threshold).
fn neuron_word(id: u32) -> u32 {
    return params[id].x;
}

// Word w of the row at vec2 index `base`; word 0 is the model index, the model's words follow.
fn row_word(base: u32, w: u32) -> u32 {
    let e = params[base + (w >> 1u)];
    if ((w & 1u) == 0u) {
        return e.x;
    }
    return e.y;
}

fn model_of(id: u32) -> u32 {
    return row_word(row_base(id), 0u);
}

// Word k of the model's parameters for neuron id (the k-th column of its gpu_row).
fn model_word(id: u32, k: u32) -> u32 {
    return row_word(row_base(id), k + 1u);
}

// x itself, through an integer XOR with a zero the compiler cannot see: a product passed through
// it is rounded on its own, so the compiler cannot fuse it with the add that follows into one
// fma (NVIDIA's does), which would round differently from the CPU.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ H.zero);
}

// u32 -> f32 rounded to nearest even, in integer arithmetic (exactly numpy's astype(float32)).
fn u32_to_f32(h: u32) -> f32 {
    if (h < 0x1000000u) {
        return f32(h);  // exact
    }
    let shift = 8u - countLeadingZeros(h);  // bits beyond the 24 a f32 keeps
    var m = h >> shift;
    let rem = h & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (m & 1u) == 1u)) {
        m = m + 1u;  // may reach 2^24: still exact below
    }
    return f32(m) * f32(1u << shift);
}

// The words of the brain neuron id belongs to, at the end of its row (params.py BRAIN_WORDS):
// x its first id, y its seed term, z its resolution as f32 bits (0: the device word), w 0.
// Brains batched into one set of buffers each keep their own ids, seed and scale this way.
fn brain_of(id: u32) -> vec4<u32> {
    let b = row_base(id) + H.row_stride - 2u;
    return vec4<u32>(params[b], params[b + 1u]);
}

// rand(id, b) of SPEC.md: H.salt is b's term, the row the seed's; id is the brain's own id;
// wrapping u32 arithmetic.
fn excitability_draw(id: u32) -> f32 {
    let br = params[row_base(id) + H.row_stride - 2u];
    let i = (id - br.x) * 2654435761u + H.salt + br.y;
    let s = i * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    let h = (w >> 22u) ^ w;
    return u32_to_f32(h) * bitcast<f32>(0x2f800000u);  // * 2^-32, exact
}

// The fire candidate list (common.wgsl's word arrays) as plain words: a model kernel reads and
// clears a neuron's words from the one invocation that steps it, after propagation's dispatch has
// ended, so it needs no atomics (each of which went to L2), and it reads only the words it needs.
@group(0) @binding(3) var<storage, read_write> fcl: array<u32>;

// Neuron id's sum word (i32 bits).
fn fcl_sum(id: u32) -> u32 {
    return fcl[fcl_word(FCL_Q, id)];
}

fn fcl_stamp(id: u32) -> u32 {
    return fcl[fcl_word(FCL_STAMP, id)];
}

// True when neuron id is forced to fire this burst. Only stage_input marks forced neurons, in a
// burst with forced_n > 0 (burst-uniform): any other burst skips the load (most force none).
fn is_forced(id: u32) -> bool {
    return H.forced_n > 0u && fcl[fcl_word(FCL_FORCED, id)] == H.seq;
}

var<workgroup> wg_scale_inv: u32;
var<private> dev_scale_inv: u32;

// Read the device's fixed-point scale word once per workgroup (STDP's requantisation may lower it
// between bursts): read by every neuron, that one word queued a million loads on one L2 slice.
// Workgroup-uniform call at the start of a model kernel; it is also a workgroup barrier.
fn begin_model_kernel(lid: u32) {
    if (lid == 0u) {
        wg_scale_inv = atomicLoad(&work[W_SCALE_INV]);
    }
    dev_scale_inv = workgroupUniformLoad(&wg_scale_inv);
}

// True when a neuron with sum word q and stamp `stamp` is a candidate this burst: stamped (by
// stage_input, the Drive, a wide target's synapses, the FCL path) or counted (a narrow target's
// synapses).
fn is_candidate(q: u32, stamp: u32) -> bool {
    return stamp == H.seq || (q & ((1u << COUNT_BITS) - 1u)) != 0u;
}

// Consume candidate id's FCL words (q, stamp: its sum word and stamp, loaded by the caller): its
// summed input this burst, leaving the words clean. Only a stamped neuron can hold sens: stage_input
// and the Drive stamp every neuron they add into, and every stamped neuron is consumed in its
// burst. A counted candidate gets its stamp now: state_delta finds the neurons a burst changed by
// it. The forced word is left alone (it holds a seq too).
fn take_input(id: u32, q: u32, stamp: u32) -> f32 {
    if (q != 0u) {
        fcl[fcl_word(FCL_Q, id)] = 0u;
    }
    var sens = 0u;
    if (stamp == H.seq) {
        sens = fcl[fcl_word(FCL_SENS, id)];
        if (sens != 0u) {
            fcl[fcl_word(FCL_SENS, id)] = 0u;
        }
    } else {
        fcl[fcl_word(FCL_STAMP, id)] = H.seq;
    }
    // f32(q) exact (|q| < 2^24), product exact (a power of 2). A brain alone: the scale is a device
    // word, which STDP's requantisation lowers when plastic weights grow (plasticity.py); a brain
    // of a batch: its own, in its row.
    var inv = params[row_base(id) + H.row_stride - 1u].x;
    if (inv == 0u) {
        inv = dev_scale_inv;
    }
    return f32(bitcast<i32>(q) >> COUNT_BITS) * bitcast<f32>(inv) + bitcast<f32>(sens);
}

//!include MODEL
