// dynamics.wgsl: SPEC.md section 2 steps 2-3 for one candidate neuron, and the forced-fire rule.
// Not an entry point: pasted by `//!include dynamics.wgsl` into neural_dynamics_fcl.wgsl,
// neural_dynamics.wgsl and fire_forced.wgsl (they all use common.wgsl's group 0 only).
// Fires are recorded with record_fire (common.wgsl); fire_compact.wgsl orders them by id.
// Every operation mirrors backends/cpu.py (_dynamics, _block_end, _forced, excitability_draw)
// in the same f32 order; divisions are avoided (Vulkan only guarantees 2.5 ulp for them).

const EXCITABILITY_ALWAYS: f32 = 0.999;

struct Outcome {
    fire: bool,
    mp: f32,
};

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

// rand(id, b) of SPEC.md with the seed term folded into H.salt; wrapping u32 arithmetic.
fn excitability_draw(id: u32) -> f32 {
    let i = id * 2654435761u + H.salt;
    let s = i * 747796405u + 2891336453u;
    let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
    let h = (w >> 22u) ^ w;
    return u32_to_f32(h) * bitcast<f32>(0x2f800000u);  // * 2^-32, exact
}

// blocked_until for a neuron firing at b: refractory, plus snooze at the consecutive-fire limit.
fn block_end(p: Params, cfc_after: u32, b: u32) -> u32 {
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

// Consume neuron id's FCL entry and run its dynamics for burst H.burst (cpu.CPUBackend._dynamics).
fn neuron_dynamics(id: u32) -> Outcome {
    let p = load_params(id);
    var s = state[id];
    let q = atomicLoad(&fcl[id].q);
    let sens = fcl[id].sens;
    let forced = fcl[id].forced == H.seq;
    atomicStore(&fcl[id].q, 0);  // leave the entry clean for the next burst
    fcl[id].sens = 0.0;
    let input = f32(q) * H.scale_inv + sens;  // f32(q) exact (|q| < 2^24), product exact
    let b = H.burst;
    let lim = p.limit_acc & 0xffffu;
    let awake = s.blocked_until < b;  // refractory/snooze: input discarded, no leak, no fire
    var cfc = s.cfc;
    if (awake && s.blocked_until != 0u) {  // a block ended since the neuron was last touched
        if (lim > 0u && cfc >= lim) {
            cfc = 0u;
        }
        s.blocked_until = 0u;
    }
    var gain = 0.0;
    if (awake) {
        gain = max(input, 0.0);  // inhibition cancels excitation, never pushes mp down
    }
    var m = s.mp + gain;
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
        out = Outcome(true, m);
        cfc = min(cfc, 65534u) + 1u;  // saturate, never wrap (u16 on the host)
        m = 0.0;
        s.blocked_until = block_end(p, cfc, b);
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
    s.mp = m;
    s.cfc = cfc;
    state[id] = s;
    return out;
}

// ---- forced firing: keep in step with cpu.CPUBackend._forced --------------------------------
// Runs after neural dynamics (the forced mark that keeps mp is set by stage_input). A forced
// neuron that fired by itself this burst (its fire bit is set) keeps its own entry (false: nothing
// to add). Otherwise it joins the fire set with the stimulation's mp (true) and its state is left
// alone, except that a forced burst inside a refractory or snooze block does not count toward the
// block: the block gets one burst longer (docs/feagi-findings.md).
fn forced_fire(id: u32) -> bool {
    if (has_fired(id)) {
        return false;
    }
    let s = state[id];
    if (s.blocked_until >= H.burst) {
        state[id].blocked_until = s.blocked_until + 1u;
    }
    return true;
}
// ---- end of forced firing ---------------------------------------------------------------------
