// adex.wgsl: one burst of the AdEx model (Brette & Gerstner 2005) for one neuron: n forward Euler
// sub-steps. Not an entry point: the host pastes it after common.wgsl into the AdEx kernels. Twin
// of feagi_burst/models/adex.py (read its docstring): the same f32 operations in the same order,
// so both backends give the same bits. No division and no built-in exp(): the host precomputes
// the reciprocals (AdEx.gpu_row) and exp is exp_f32 (models/exp_f32.wgsl), built from correctly
// rounded operations.
//
// Uses: state_word / set_state_word (word 0 = V, 1 = w as f32 bits), model_word(id, k)
// (the words of AdEx.gpu_row: 0 g_L, 1 E_L, 2 V_T, 3 1/Delta_T, 4 g_L*Delta_T, 5 a, 6 b, 7 V_r,
// 8 V_cut, 9 h/C, 10 h/tau_w, 11 input_gain, 12 n_substeps as u32), opaque().
//
// Exactness: every f32 +, - and * result goes through opaque() (common.wgsl: a bitcast XOR with a
// zero the compiler cannot see) before another arithmetic operation uses it. A compiler then sees
// no `x*y + z` to fuse into one fma (NVIDIA does, and Mesa) and no `(a + b) + c` to regroup
// (Mesa treats float operations as inexact unless told otherwise), so each operation is rounded
// on its own, correctly, as numpy does. min, max and comparisons are exact anyway.

//!include models/exp_f32.wgsl

const ADEX_LIMIT: f32 = 1e9;  // |V|, |w|, |I| clamp: an f32 overflow guard (adex.py)
const ADEX_X_MAX: f32 = 60.0;  // cap of the exponent (V - V_T) / Delta_T

fn adex_clamp(x: f32) -> f32 {
    return min(max(x, -ADEX_LIMIT), ADEX_LIMIT);
}

fn model_step(id: u32, input: f32, forced: bool) -> Outcome {
    var v = bitcast<f32>(state_word(id, 0u));
    var w = bitcast<f32>(state_word(id, 1u));
    let gl = bitcast<f32>(model_word(id, 0u));
    let el = bitcast<f32>(model_word(id, 1u));
    let vt = bitcast<f32>(model_word(id, 2u));
    let inv_dt = bitcast<f32>(model_word(id, 3u));
    let gl_dt = bitcast<f32>(model_word(id, 4u));
    let a = bitcast<f32>(model_word(id, 5u));
    let b = bitcast<f32>(model_word(id, 6u));
    let vr = bitcast<f32>(model_word(id, 7u));
    let vcut = bitcast<f32>(model_word(id, 8u));
    let hc = bitcast<f32>(model_word(id, 9u));
    let hw = bitcast<f32>(model_word(id, 10u));
    let gain = bitcast<f32>(model_word(id, 11u));
    let n = model_word(id, 12u);
    let i_in = adex_clamp(opaque(input * gain));
    var out = Outcome(false, 0.0);
    for (var j = 0u; j < n; j = j + 1u) {
        let x = opaque(opaque(v - vt) * inv_dt);
        let e = exp_f32(min(x, ADEX_X_MAX));
        var dv = opaque(gl * opaque(el - v));
        dv = opaque(dv + opaque(gl_dt * e));
        dv = opaque(dv - w);
        dv = opaque(dv + i_in);
        var dw = opaque(a * opaque(v - el));
        dw = opaque(dw - w);
        v = adex_clamp(opaque(v + opaque(hc * dv)));
        w = adex_clamp(opaque(w + opaque(hw * dw)));
        if (v >= vcut) {
            if (!out.fire) {
                out = Outcome(true, v);  // the first crossing of the burst is its firing mp
            }
            v = vr;
            w = opaque(w + b);
        }
    }
    set_state_word(id, 0u, bitcast<u32>(v));
    set_state_word(id, 1u, bitcast<u32>(w));
    return out;
}

// A forced fire does not touch the neuron's own state (its dynamics go on as they were).
fn model_forced(id: u32) {
}
