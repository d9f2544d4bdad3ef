// my_model.wgsl: the QIF model of my_model.py for one neuron and one burst, the same f32
// operations in the same order. The host pastes it after common.wgsl into this model's kernels; it
// defines model_step and model_forced, and may use state_word(id, k) / set_state_word(id, k, bits)
// (state variable k in declaration order: word 0 is v, as f32 bits), model_word(id, k) (word k of
// QIF.gpu_row) and opaque().
// Every +, -, * result goes through opaque() before another operation uses it: no fma, no
// regrouping, the same rounding as numpy.

fn model_step(id: u32, input: f32, forced: bool) -> Outcome {
    var v = bitcast<f32>(state_word(id, 0u));
    let h = bitcast<f32>(model_word(id, 0u));
    let k = bitcast<f32>(model_word(id, 1u));
    let v_rest = bitcast<f32>(model_word(id, 2u));
    let v_crit = bitcast<f32>(model_word(id, 3u));
    let v_peak = bitcast<f32>(model_word(id, 4u));
    let v_reset = bitcast<f32>(model_word(id, 5u));
    let gain = bitcast<f32>(model_word(id, 6u));
    let i_in = opaque(input * gain);
    var t = opaque(k * opaque(v - v_rest));
    t = opaque(t * opaque(v - v_crit));
    t = opaque(t + i_in);
    v = opaque(v + opaque(h * t));
    var out = Outcome(false, 0.0);
    if (v >= v_peak) {
        out = Outcome(true, v);
        v = v_reset;
    }
    set_state_word(id, 0u, bitcast<u32>(v));
    return out;
}

// What a forced fire does to the neuron's own state when it did not fire by itself: nothing here.
fn model_forced(id: u32) {
}
