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
    from feagi_burst.backends import cpu_kernels as K

    syn, n_neurons = brain.synapses, brain.neuron_count
    nt = K.threads()
    source = np.ascontiguousarray(syn.source, np.uint32)
    target = np.ascontiguousarray(syn.target, np.uint32)
    weight = np.ascontiguousarray(syn.weight, np.float32)
    inhibitory = np.ascontiguousarray(syn.inhibitory, np.bool_)
    # count = np.bincount(source, minlength=n_neurons)
    count = K.synapse_counts(source, n_neurons, nt)
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
    bound, fan_in = K.input_bounds(source, target, weight, bound_unit, n_neurons, CHUNK, nt)
    worst = float(bound.max()) if bound.size else 0.0
    worst_fan_in = float(fan_in.max()) if len(syn) and fan_in.size else 0.0
    scale_exp = MAX_SCALE_EXP
    # each quantised term can round up by half a unit, hence the fan-in term
    while scale_exp > MIN_SCALE_EXP and worst * 2.0**scale_exp + 0.5 * worst_fan_in + 1 >= SUM_LIMIT:
        scale_exp -= 1
    if worst * 2.0**scale_exp + 0.5 * worst_fan_in + 1 >= SUM_LIMIT:
        raise ValueError(f"synaptic input bound {worst:.3g} is too large for fixed-point accumulation")

    # c = weight * where(inhibitory, -scale, scale) * unit[source]; the word is c's f32 bits where
    # the source is mp-driven, else rint(c) as i32
    scale = 2.0**scale_exp
    pairs = np.empty(len(syn), np.int64)
    K.quantise_synapses(source, target, weight, inhibitory, unit, driven, scale, pairs.view(np.int32),
                        pairs.view(np.float32), nt)
    return SynapseTables(scale_exp=scale_exp, offsets=offsets, pairs=pairs, mp_driven_area=mp_driven, mp_cap=caps)


def quantise_mp_driven(mp: np.ndarray, factor_bits: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Quantised contribution of mp-driven synapses: rint(clamp(mp) * factor) in f32, as i32.

    The GPU shader does exactly these f32 operations (one correctly rounded multiply, round half
    to even), so both backends agree bit for bit.
    """
    m = np.clip(np.nan_to_num(mp.astype(np.float32), nan=0.0), -cap, cap).astype(np.float32)
    prod = m * factor_bits.view(np.float32)
    return np.rint(prod).astype(np.int32)
