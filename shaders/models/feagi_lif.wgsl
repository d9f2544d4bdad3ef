// models/feagi_lif.wgsl: FEAGI's LIF neuron (SPEC.md section 2, steps 2-3, and the forced-fire rule).
// The WGSL twin of feagi_burst/models/feagi_lif.py: every operation mirrors FeagiLIF.step,
// _block_end and forced in the same f32 order; divisions are avoided (Vulkan only guarantees
// 2.5 ulp for them). Not an entry point: the model kernels paste it after common.wgsl
// (`//!include MODEL`), so it uses common.wgsl's group 0 bindings and helpers only.
//
// Parameter row (FeagiLIF.gpu_row): word 0 threshold_limit, 1 keep = f32(1) - leak,
// 2 excitability, 3 refractory | snooze << 16, 4 cfc_limit | mp_accumulate << 16;
// neuron word: the threshold (it varies inside an area). State words (common.wgsl state_word):
// LIF_MP, LIF_CFC, LIF_BLOCKED. Most candidates only integrate, so model_step loads cfc_count only
// where a rule can read it (under a cfc limit, or at a fire) and stores a word only when its bits
// change: a candidate that does not fire loads 8 bytes (12 under a limit) and mostly stores mp
// alone, where the whole 16-byte row went both ways.

const EXCITABILITY_ALWAYS: f32 = 0.999;
const LIF_MP: u32 = 0u;       // f32 bits
const LIF_CFC: u32 = 1u;      // cfc_count: consecutive fires
const LIF_BLOCKED: u32 = 2u;  // blocked_until: last burst of a refractory/snooze block (0: none)

struct LifParams {
    threshold: f32,
    threshold_limit: f32,
    keep: f32,
    excitability: f32,
    refr_snooze: u32,
    limit_acc: u32,
};

fn lif_params(id: u32) -> LifParams {
    let base = row_base(id);
    let a = params[base];        // model index, threshold_limit
    let b = params[base + 1u];   // keep, excitability
    let c = params[base + 2u];   // refractory | snooze << 16, cfc_limit | mp_accumulate << 16
    return LifParams(bitcast<f32>(neuron_word(id)), bitcast<f32>(a.y), bitcast<f32>(b.x), bitcast<f32>(b.y),
                     c.x, c.y);
}

// blocked_until for a neuron firing at b: refractory, plus snooze at the consecutive-fire limit.
fn block_end(p: LifParams, cfc_after: u32, b: u32) -> u32 {
    let lim = p.limit_acc & 0xffffu;
    var countdown = p.refr_snooze & 0xffffu;
    if (lim > 0u && cfc_after >= lim) {
        countdown = countdown + (p.refr_snooze >> 16u);
    }
    if (countdown == 0u) {
        return 0u;
    }
    return b + countdown;
}

fn model_step(id: u32, input: f32, forced: bool) -> Outcome {
    let p = lif_params(id);
    let mp_bits = state_word(id, LIF_MP);
    let bu_old = state_word(id, LIF_BLOCKED);
    var bu = bu_old;
    let b = H.burst;
    let lim = p.limit_acc & 0xffffu;
    // Without a consecutive-fire limit (lim == 0) nothing reads cfc_count before a fire, and only a
    // fire changes it: it is loaded there. cfc_old stays 0 while unloaded, equal to cfc.
    var cfc_old = 0u;
    if (lim > 0u) {
        cfc_old = state_word(id, LIF_CFC);
    }
    let awake = bu < b;  // refractory/snooze: input discarded, no leak, no fire
    var cfc = cfc_old;
    if (awake && bu != 0u) {  // a block ended since the neuron was last touched
        if (lim > 0u && cfc >= lim) {
            cfc = 0u;
        }
        bu = 0u;
    }
    var gain = 0.0;
    if (awake) {
        gain = max(input, 0.0);  // inhibition cancels excitation, never pushes mp down
    }
    var m = bitcast<f32>(mp_bits) + gain;
    let above = awake && p.threshold <= m && (p.threshold_limit == 0.0 || m <= p.threshold_limit);
    let capped = above && lim > 0u && cfc >= lim;
    var fire = false;
    if (above && !capped) {
        if (p.excitability >= EXCITABILITY_ALWAYS) {
            fire = true;
        } else if (p.excitability > 0.0) {
            fire = excitability_draw(id) < p.excitability;
        }
    }
    var out = Outcome(false, 0.0);
    if (fire) {
        if (lim == 0u) {
            cfc_old = state_word(id, LIF_CFC);  // untouched so far without a limit
            cfc = cfc_old;
        }
        out = Outcome(true, m);
        cfc = min(cfc, 65534u) + 1u;  // saturate, never wrap (u16 on the host)
        m = 0.0;
        bu = block_end(p, cfc, b);
    } else {
        if (capped) {
            cfc = 0u;  // at the consecutive-fire limit: keep mp, no leak, no fire
        } else if (awake) {
            m = m * p.keep;  // leak (a blocked neuron keeps its mp)
            if (lim > 0u) {
                cfc = 0u;
            }
        }
        // mp_accumulate = false applies at the end of the burst; a forced neuron keeps its mp
        if ((p.limit_acc >> 16u) == 0u && !forced) {
            m = 0.0;
        }
    }
    // an unchanged word keeps its bits: leaving it unwritten saves the store
    if (bitcast<u32>(m) != mp_bits) {
        set_state_word(id, LIF_MP, bitcast<u32>(m));
    }
    if (cfc != cfc_old) {
        set_state_word(id, LIF_CFC, cfc);
    }
    if (bu != bu_old) {
        set_state_word(id, LIF_BLOCKED, bu);
    }
    return out;
}

// A forced burst inside a refractory or snooze block does not count toward the block: the block
// gets one burst longer (docs/feagi-findings.md). Nothing else of the neuron's state changes.
fn model_forced(id: u32) {
    let bu = state_word(id, LIF_BLOCKED);
    if (bu >= H.burst) {
        set_state_word(id, LIF_BLOCKED, bu + 1u);
    }
}
