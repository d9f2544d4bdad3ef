// izhikevich.wgsl: one burst of the Izhikevich (2003) model for one neuron, net.m's scheme.
// Not an entry point: the host pastes it after common.wgsl into the Izhikevich kernels. Twin of
// feagi_burst/models/izhikevich.py (read its docstring): the same f32 operations in the same
// order, so both backends give the same bits.
//
// Uses: state_word / set_state_word (word 0 = v, 1 = u as f32 bits), model_word(id, k)
// (the words of Izhikevich.gpu_row: 0 h = 0.5*dt_ms, 1 adt = dt_ms*a, 2 b, 3 c, 4 d,
// 5 input_gain), opaque().
//
// Exactness: every f32 +, - and * result goes through opaque() (common.wgsl: a bitcast XOR with a
// zero the compiler cannot see) before another arithmetic operation uses it. A compiler then sees
// no `x*y + z` to fuse into one fma (NVIDIA does, and Mesa) and no `(a + b) + c` to regroup
// (Mesa treats float operations as inexact unless told otherwise), so each operation is rounded
// on its own, correctly, as numpy does. min, max and comparisons are exact anyway.

const IZH_LIMIT: f32 = 1e9;  // |I|, |v|, |u| clamp: an f32 overflow guard (izhikevich.py)
const IZH_PEAK: f32 = 30.0;
const IZH_K: f32 = 0.039999999105930328369140625;  // f32(0.04) written exactly: no literal rounding

fn izh_clamp(x: f32) -> f32 {
    return min(max(x, -IZH_LIMIT), IZH_LIMIT);
}

// One half-step of v: v + h * ((0.04 v + 5) v + 140 - u + I), one rounding per operation.
fn izh_half(v: f32, u: f32, i_in: f32, h: f32) -> f32 {
    var t = opaque(IZH_K * v);
    t = opaque(t + 5.0);
    t = opaque(t * v);
    t = opaque(t + 140.0);
    t = opaque(t - u);
    t = opaque(t + i_in);
    t = opaque(h * t);
    return izh_clamp(opaque(v + t));
}

fn model_step(id: u32, input: f32, forced: bool) -> Outcome {
    var v = bitcast<f32>(state_word(id, 0u));
    var u = bitcast<f32>(state_word(id, 1u));
    let h = bitcast<f32>(model_word(id, 0u));
    let adt = bitcast<f32>(model_word(id, 1u));
    let b = bitcast<f32>(model_word(id, 2u));
    let gain = bitcast<f32>(model_word(id, 5u));
    let i_in = izh_clamp(opaque(input * gain));
    v = izh_half(v, u, i_in, h);
    v = izh_half(v, u, i_in, h);
    var t = opaque(b * v);
    t = opaque(t - u);
    t = opaque(adt * t);
    u = izh_clamp(opaque(u + t));
    var out = Outcome(false, 0.0);
    if (v >= IZH_PEAK) {
        out = Outcome(true, v);
        v = bitcast<f32>(model_word(id, 3u));  // c
        u = opaque(u + bitcast<f32>(model_word(id, 4u)));  // + d
    }
    set_state_word(id, 0u, bitcast<u32>(v));
    set_state_word(id, 1u, bitcast<u32>(u));
    return out;
}

// A forced fire does not touch the neuron's own state (its dynamics go on as they were).
fn model_forced(id: u32) {
}
