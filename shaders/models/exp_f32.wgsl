// exp_f32.wgsl: e^x from +, -, *, floor and integer bit operations only, bit for bit the same as
// feagi_burst/models/expf32.py (read its docstring for the method). WGSL's exp() is not
// correctly rounded on GPUs, so a model that needs exp uses this one. Not an entry point: a model
// file pulls it in with `//!include models/exp_f32.wgsl`. The constants are the f32 values of
// expf32.py written out exactly in decimal, so no compiler has to round a literal
// (tests/test_models.py compares them).
//
// Exactness: every f32 +, - and * result goes through opaque() (common.wgsl: a bitcast XOR with a
// zero the compiler cannot see) before another arithmetic operation uses it. A compiler then sees
// no `x*y + z` to fuse into one fma (NVIDIA does, and Mesa), and no `(a + b) + c` to regroup
// (Mesa's compilers treat float operations as inexact unless told otherwise; on llvmpipe the
// regrouped `(p*z + r) + 1` gave results 1-2 ulp off numpy's). Each operation is then rounded on
// its own, correctly, as numpy does.

const EXP_LO: f32 = -87.0;
const EXP_HI: f32 = 88.0;
const EXP_LOG2E: f32 = 1.44269502162933349609375;
const EXP_LN2_HI: f32 = 0.693359375;
const EXP_LN2_LO: f32 = -0.000212194441701285541057586669921875;
const EXP_P0: f32 = 0.000198756912141107022762298583984375;
const EXP_P1: f32 = 0.00139819993637502193450927734375;
const EXP_P2: f32 = 0.008333452045917510986328125;
const EXP_P3: f32 = 0.0416657961905002593994140625;
const EXP_P4: f32 = 0.1666666567325592041015625;
const EXP_P5: f32 = 0.5;

fn exp_f32(x_in: f32) -> f32 {
    let x = min(max(x_in, EXP_LO), EXP_HI);
    let k = floor(opaque(opaque(x * EXP_LOG2E) + 0.5));  // |k| <= 127
    var r = opaque(x - opaque(k * EXP_LN2_HI));  // exact
    r = opaque(r - opaque(k * EXP_LN2_LO));
    var p = opaque(opaque(EXP_P0 * r) + EXP_P1);
    p = opaque(opaque(p * r) + EXP_P2);
    p = opaque(opaque(p * r) + EXP_P3);
    p = opaque(opaque(p * r) + EXP_P4);
    p = opaque(opaque(p * r) + EXP_P5);
    let z = opaque(r * r);
    var y = opaque(opaque(p * z) + r);
    y = opaque(y + 1.0);
    let scale = bitcast<f32>(u32(i32(k) + 127) << 23u);  // 2^k, exact
    return opaque(y * scale);
}
