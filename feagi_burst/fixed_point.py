"""Deterministic synaptic accumulation: every contribution becomes a fixed-point integer.

FEAGI sums f32 contributions in hash-map order, which no two runs (or backends) reproduce. We
quantise each contribution to an integer number of 2**-scale_exp units (the same rounding on every
backend), sum integers (order-free, exact), and convert the sum back to f32 once. `scale_exp` is
chosen per brain from the worst-case per-neuron input so that no sum can leave +-2**24: the i32
atomics on the GPU cannot overflow and the i32 -> f32 conversion is exact on every backend.
The resolution, 2**-scale_exp, is reported by `feagi-burst genome info` and in the run summary.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from feagi_burst.errors import InputError

from feagi_burst.brain import Brain

SUM_LIMIT = 2**24  # |sum| stays below this: exact as f32
MIN_SCALE_EXP, MAX_SCALE_EXP = -16, 24


CHUNK = 1 << 24  # synapses per partial sum of the input bound (the order its f64 sums are defined in)


@dataclass
class SynapseTables:
    """Synapses as a source-indexed CSR with quantised contributions, shared by all backends.

    `pairs` interleaves (target, contribution) as one int64 per synapse so that a burst gathers
    each synapse with one load; `target` and `contribution` are views of it.
    """

    scale_exp: int
    offsets: np.ndarray  # int64 [N+1]: synapses of neuron i are [offsets[i], offsets[i+1])
    pairs: np.ndarray  # int64 [S]: low 32 bits target (u32), high 32 bits contribution (i32)
    mp_driven_area: np.ndarray  # bool [areas]
    mp_cap: np.ndarray  # f32 [areas]: a firing mp is clamped to +-cap before it scales a contribution
    # the per-target input bound the scale was chosen from (f64 [N], in weight units x psp) and the
    # largest fan-in: STDP re-derives the scale from them as plastic weights grow (requantisation)
    bound: np.ndarray | None = None
    max_fan_in: int = 0
    fan_in: np.ndarray | None = None  # int64 [N]: synapses into each neuron (the GPU counts its events)

    @property
    def target(self) -> np.ndarray:
        """u32 [S] (a strided view)."""
        return self.pairs.view(np.uint32)[0::2]

    @property
    def contribution(self) -> np.ndarray:
        """i32 [S]: quantised contribution, or the f32 bits of the factor for mp-driven sources."""
        return self.pairs.view(np.int32)[1::2]

    @property
    def resolution(self) -> float:
        return 2.0 ** -self.scale_exp


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop: the positions of
    CSR rows given their starts and lengths."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    jump = starts.astype(np.int64) - (ends - counts)  # per range: index - position
    return np.repeat(jump, counts) + np.arange(total, dtype=np.int64)


def mp_caps(brain: Brain) -> np.ndarray:
    """Bound on the firing mp an mp-driven area passes on (larger values saturate; documented)."""
    caps = np.zeros(len(brain.areas), np.float32)
    pop_of = brain.population_of_area()
    tables = brain.param_tables()
    for a in brain.areas:
        if not a.mp_driven_psp or a.neuron_count == 0:
            continue
        k = int(pop_of[a.index])
        ids = np.arange(a.first_neuron, a.neuron_stop, dtype=np.int64)
        caps[a.index] = brain.populations[k].model.mp_cap(tables[k], ids)
    return caps


def compile_tables(brain: Brain) -> SynapseTables:
    """Quantise every synapse of `brain` into the shared fixed-point CSR (compiled passes over the
    synapses, on every core; the sums are those of the numpy expressions in the comments)."""
    from feagi_burst import build_kernels as K
    from feagi_burst.backends.compiled import threads

    syn, n_neurons = brain.synapses, brain.neuron_count
    nt = threads()
    source = np.ascontiguousarray(syn.source, np.uint32)
    target = np.ascontiguousarray(syn.target, np.uint32)
    weight = np.ascontiguousarray(syn.weight, np.float32)
    inhibitory = np.ascontiguousarray(syn.inhibitory, np.bool_)
    # count = np.bincount(source, minlength=n_neurons)
    count, in_order = K.synapse_counts(source, n_neurons, nt)
    if not in_order:
        raise ValueError("synapses must be sorted by source (brain.sort_synapses)")
    offsets = np.zeros(n_neurons + 1, np.int64)
    np.cumsum(count, out=offsets[1:])

    # Per source neuron: what one unit of weight contributes (psp, or the mp cap for mp-driven
    # areas), divided by the fan-out where FEAGI divides (psp_uniform false, fan-out > 1).
    area = brain.neurons.cortical_area
    psp = np.array([a.psp for a in brain.areas], np.float64)
    uniform = np.array([a.psp_uniform for a in brain.areas], bool)
    mp_driven = np.array([a.mp_driven_psp for a in brain.areas], bool)
    caps = mp_caps(brain)
    divisor = np.where(~uniform[area] & (count > 1), count, 1).astype(np.float64)
    driven = np.ascontiguousarray(mp_driven[area])
    unit = np.ascontiguousarray(np.where(driven, 1.0, psp[area]) / divisor)  # per weight unit (times mp when driven)
    bound_unit = np.ascontiguousarray(np.abs(np.where(driven, caps[area].astype(np.float64), psp[area])) / divisor)

    # bound = sum over chunks of np.bincount(target[chunk], weights=weight[chunk] * bound_unit[source[chunk]]),
    # fan_in = np.bincount(target)
    bound, fan_in = K.input_bounds(offsets, target, weight, bound_unit, n_neurons, CHUNK, nt)
    worst = float(bound.max()) if bound.size else 0.0
    worst_fan_in = float(fan_in.max()) if len(syn) and fan_in.size else 0.0
    scale_exp = MAX_SCALE_EXP
    # each quantised term can round up by half a unit, hence the fan-in term
    while scale_exp > MIN_SCALE_EXP and worst * 2.0**scale_exp + 0.5 * worst_fan_in + 1 >= SUM_LIMIT:
        scale_exp -= 1
    if worst * 2.0**scale_exp + 0.5 * worst_fan_in + 1 >= SUM_LIMIT:
        raise InputError(f"{brain.name}: synaptic input bound {worst:.3g} is too large for fixed-point "
                         "accumulation; lower the psp (nx-pstcr_-f) or psc multipliers of the mappings into it")

    # c = weight * where(inhibitory, -scale, scale) * unit[source]; the word is c's f32 bits where
    # the source is mp-driven, else rint(c) as i32
    scale = 2.0**scale_exp
    pairs = np.empty(len(syn), np.int64)  # huge pages where the kernel gives them: bursts read rows at random
    K.prefault(pairs.view(np.uint8), nt)
    K.quantise_synapses(offsets, target, weight, inhibitory, unit, driven, scale, pairs.view(np.int32),
                        pairs.view(np.float32), nt)
    return SynapseTables(scale_exp=scale_exp, offsets=offsets, pairs=pairs, mp_driven_area=mp_driven, mp_cap=caps,
                         bound=bound, max_fan_in=int(worst_fan_in), fan_in=fan_in)


def quantise_mp_driven(mp: np.ndarray, factor_bits: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Quantised contribution of mp-driven synapses: rint(clamp(mp) * factor) in f32, as i32.

    The GPU shader does exactly these f32 operations (one correctly rounded multiply, round half
    to even), so both backends agree bit for bit.
    """
    m = np.clip(np.nan_to_num(mp.astype(np.float32), nan=0.0), -cap, cap).astype(np.float32)
    prod = m * factor_bits.view(np.float32)
    return np.rint(prod).astype(np.int32)


# -- requantisation: plastic weights that grow without bound (feagi_burst.plasticity) ----------------
# STDP adds to weights with no ceiling, so the worst-case input a neuron can receive grows, and a
# scale chosen at load could let a sum leave 2^24. The plastic weights are kept under a cap 2^k;
# for every k the scale that keeps every sum exact is known in advance (`plastic_scale_table`), and
# when a weight passes the cap the contributions are requantised to that scale, identically on
# every backend, by integer and power-of-two operations only:
#
#   plastic synapse (recomputed from its weight w whenever w or the scale changes):
#       v = ftz(f32(w) * f32(+-unit))            one rounded f32 product
#       x = ftz(v * 2^s)                         exact (a power of two)
#       word = x's f32 bits (mp-driven source)  or  i32(rint(x))
#   any other synapse, when the scale drops from s to s - d (d >= 1):
#       word = round_half_even(word / 2^d)      integer arithmetic
#       word = ftz(f32(word) * 2^-d)            mp-driven source (exact)
#
# ftz(x) = +0 when x is 0 or subnormal (GPUs may flush subnormals; this makes both sides do it).
# Per term the error is then at most one unit (half a unit of rounding, half a unit from the
# earlier rounding halved) plus a relative 2^-22, so the cap's scale is the largest s with
#   worst(2^k) * 2^s * (1 + 2^-20) + max_fan_in + 2 < 2^24,
#   worst(C) = max over targets t of (input bound of t's non-plastic synapses + C * plastic_unit(t)),
# where plastic_unit(t) sums the bound unit (|psp| / fan-out divisor, the mp cap for mp-driven
# sources) of t's plastic synapses. The scale only ever goes down.

F32_MIN_NORMAL = np.float32(2.0**-126)
CAP_EXPONENTS = 129  # caps 2^0 .. 2^128: every finite f32 weight is below 2^128
PLASTIC_MIN_SCALE_EXP = -126  # 2^-s stays a normal f32 (the input conversion multiplies by it)
_MARGIN = 1.0 + 2.0**-20


def cap_exponent(w: float | np.floating) -> int:
    """The smallest k >= 0 with w <= 2^k, from w's f32 bits (w >= 0), as the GPU computes it."""
    bits = int(np.asarray(w, np.float32).view(np.uint32))
    e = (bits >> 23) & 0xFF
    if e == 0:
        return 0
    k = e - 127 + (1 if bits & 0x7FFFFF else 0)
    return min(CAP_EXPONENTS - 1, max(0, k))


def plastic_scale_table(tables: SynapseTables, bound_plastic: np.ndarray, plastic_unit: np.ndarray) -> np.ndarray:
    """i32 [CAP_EXPONENTS]: for each cap 2^k on plastic weights, the largest scale exponent (at most
    the brain's own) that keeps every fixed-point sum exact (module comment above).

    `bound_plastic`: per target, the part of `tables.bound` that its plastic synapses contribute
    now (to be replaced by the cap); `plastic_unit`: per target, the sum of the bound units of its
    plastic synapses. Only targets of plastic synapses are passed; every other target keeps its
    compile-time bound.
    """
    if tables.bound is None:
        raise ValueError("requantisation needs the input bounds of compile_tables")
    bound = tables.bound
    targets = np.flatnonzero(plastic_unit > 0) if plastic_unit.size == bound.size else None
    fixed = np.maximum(bound - bound_plastic, 0.0)
    others = bound.copy()
    if targets is not None:
        others[targets] = -np.inf
    base_worst = float(others.max()) if others.size else 0.0
    base_worst = max(base_worst, 0.0)
    fixed_t = fixed[targets] if targets is not None else fixed
    unit_t = plastic_unit[targets] if targets is not None else plastic_unit
    limit = SUM_LIMIT - tables.max_fan_in - 2
    out = np.empty(CAP_EXPONENTS, np.int32)
    s = tables.scale_exp
    for k in range(CAP_EXPONENTS):
        worst = max(base_worst, float((fixed_t + unit_t * 2.0**k).max()) if unit_t.size else 0.0) * _MARGIN
        while s > PLASTIC_MIN_SCALE_EXP and worst * 2.0**s >= limit:
            s -= 1
        out[k] = s
    return out


def ftz(x: np.ndarray) -> np.ndarray:
    """f32 with zeros and subnormals as +0 (the GPU may flush subnormals; both sides do)."""
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < F32_MIN_NORMAL, np.float32(0.0), x).astype(np.float32)


def plastic_words(weight: np.ndarray, unit: np.ndarray, driven: np.ndarray, scale_exp: int) -> np.ndarray:
    """The i32 contribution words of plastic synapses (module comment above): `unit` is the signed
    f32 unit of each synapse (sign, psp over the fan-out divisor, or 1 / divisor when mp-driven)."""
    v = ftz(np.asarray(weight, np.float32) * np.asarray(unit, np.float32))
    x = ftz(v * np.float32(2.0**scale_exp))
    return np.where(driven, x.view(np.int32), np.rint(x).astype(np.int32)).astype(np.int32)


def shift_words(words: np.ndarray, driven: np.ndarray, d: int) -> np.ndarray:
    """Contribution words requantised from scale s to s - d (d >= 1): i32 words rounded half to even
    after dividing by 2^d, f32 words (mp-driven sources) scaled by 2^-d."""
    q = np.asarray(words, np.int32).astype(np.int64)
    di = min(int(d), 30)
    t = q >> di
    r = q - (t << di)
    half = 1 << (di - 1)
    t = t + ((r > half) | ((r == half) & ((t & 1) == 1)))
    f = ftz(np.asarray(words, np.int32).view(np.float32) * np.float32(2.0 ** -min(int(d), 126)))
    return np.where(driven, f.view(np.int32), t.astype(np.int32)).astype(np.int32)
