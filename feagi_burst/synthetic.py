"""A synthetic brain of any size, for benchmarks: N neurons, K random outgoing synapses each.

The firing rate is held by a documented drive, not by tuning: each burst a fixed slice of a random
permutation gets a potential of 1.0, which crosses the threshold of 1.0 (refractory 0, no
accumulation), so `firing_rate * N` neurons fire per burst. Recurrent synapses carry real input
(weight 1, psp 1 divided by the fan-out K, 20% inhibitory), so every burst propagates
N * rate * K synaptic events and touches about N * (1 - (1 - rate)**K) candidates, but they add at
most a few hundredths to a membrane potential, so they rarely tip a neuron over on their own.
"""
from __future__ import annotations

import hashlib
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from feagi_burst.brain import Brain, CorticalArea, Drive, SynapseArray, neuron_array
from feagi_burst.errors import InputError
from feagi_burst.genome.plasticity import PlasticPair
from feagi_burst.memory import SYNTHETIC, check_fits

INHIBITORY_FRACTION = 0.2
DRIVE_POTENTIAL = 1.5  # above the threshold of 1.0 even after the strongest inhibition
PLASTIC_AREA = "synthp"  # the plastic part of a brain built with plastic_fraction > 0
PLASTIC_WINDOW = 5  # its STDP window (bursts) and steps (dp = dm)
PLASTIC_STEP = 1
OVERLAP_FROM = 1 << 24  # synapses: below this a second thread costs more than it saves


def estimate_bytes(neurons: int, synapses_per_neuron: int) -> int:
    """Peak host memory to build a synthetic brain of this size and run it (feagi_burst.memory)."""
    return SYNTHETIC.bytes(neurons, neurons * synapses_per_neuron)


def random_synapses(rng: np.random.Generator, n: int, k: int) -> tuple[np.ndarray, ...]:
    """Source (k per neuron, in order), random target, weight 1 and an inhibitory flag for each of
    n*k synapses: np.repeat(arange(n), k), rng.integers(0, n, n*k), ones, rng.random(n*k) < 0.2,
    the same numbers, but drawn in chunks into memory touched on every core (fresh memory is slow
    to come by on a VM: a page fault at a time per thread), while a second thread fills the
    sources and weights (compiled, without the GIL; numpy's generator releases it too), so the
    one stream of draws, which cannot be split, is not waited for alone."""
    from feagi_burst import build_kernels as K
    from feagi_burst.backends.compiled import threads

    s, nt = n * k, threads()
    source = K.small_page_empty(s, np.uint32)
    weight = K.small_page_empty(s, np.float32)
    target = K.small_page_empty(s, np.uint32)
    inhibitory = K.small_page_empty(s, np.bool_)

    overlap = nt > 1 and s >= OVERLAP_FROM
    if not overlap:
        K.fill_sources(source, k, nt)
        K.fill_f32(weight, np.float32(1.0), nt)
        K.prefault(target.view(np.uint8), nt)
        K.prefault(inhibitory.view(np.uint8), nt)
    with ThreadPoolExecutor(1) as pool:
        # the other thread: no parallel kernel here meanwhile (its OpenMP team would spin against both)
        filled = pool.submit(K.fill_sources_weights, source, k, weight, np.float32(1.0)) if overlap else None
        step = max(1, min(s, 1 << 22))
        for lo in range(0, s, step):  # drawn in chunks, the numbers continue one stream
            target[lo:lo + step] = rng.integers(0, n, size=min(step, s - lo), dtype=np.uint32)
        draws = np.empty(step, np.float32)
        for lo in range(0, s, step):
            m = min(step, s - lo)
            rng.random(out=draws[:m], dtype=np.float32)
            np.less(draws[:m], INHIBITORY_FRACTION, out=inhibitory[lo:lo + m])
        if filled is not None:
            filled.result()
    return source, target, weight, inhibitory


def synthetic_brain(neurons: int, synapses_per_neuron: int = 100, firing_rate: float = 0.01,
                    seed: int = 0, model: str = "feagi_lif", plastic_fraction: float = 0.0,
                    **model_params: Any) -> Brain:
    """Build the synthetic benchmark brain described in this module's docstring, every neuron on
    `model` (with `model_params`; FEAGI LIF by default).

    `plastic_fraction` F > 0 makes about that fraction of the synapses plastic (STDP, window
    PLASTIC_WINDOW, steps of 1): the last round(sqrt(F) * N) neurons form a second area, `synthp`,
    and the pair synthp -> synthp is plastic (random targets put about F of the synapses there).
    The neurons, synapses and drive are the same as without it.
    """
    if neurons < 1 or neurons > 2**31:
        raise InputError(f"synthetic brain: neurons = {neurons} is out of range; use 1 .. 2147483648")
    if synapses_per_neuron < 0 or neurons * synapses_per_neuron >= 2**32:
        raise InputError(f"synthetic brain: synapses_per_neuron = {synapses_per_neuron} is out of range; "
                         "use 0 or more, with neurons * synapses_per_neuron below 2**32")
    if not 0.0 <= firing_rate <= 1.0:
        raise InputError(f"synthetic brain: firing_rate = {firing_rate} must be between 0 and 1")
    # before allocating: a brain too big for this machine is one line, not a process the kernel kills
    check_fits(estimate_bytes(neurons, synapses_per_neuron),
               f"a synthetic brain of {neurons:,} neurons x {synapses_per_neuron} synapses",
               "use fewer neurons or synapses per neuron")
    rng = np.random.default_rng(seed)
    n, k = neurons, synapses_per_neuron
    if not 0.0 <= plastic_fraction <= 1.0:
        raise InputError(f"synthetic brain: plastic_fraction = {plastic_fraction} must be between 0 and 1")
    m = int(round(math.sqrt(plastic_fraction) * n)) if plastic_fraction > 0 else 0
    na = neuron_array(n)
    areas = [CorticalArea(index=0, cortical_id="synth", name="synthetic", dimensions=(n - m, 1, 1),
                          neurons_per_voxel=1, first_neuron=0, psp=1.0)] if n > m else []
    if m:
        areas.append(CorticalArea(index=len(areas), cortical_id=PLASTIC_AREA, name="synthetic (plastic)",
                                  dimensions=(m, 1, 1), neurons_per_voxel=1, first_neuron=n - m, psp=1.0))
        na.cortical_area[n - m:] = len(areas) - 1
    # coordinates are u16: the x axis wraps, each area stays one row
    na.x[: n - m] = np.arange(n - m) % 65536
    na.x[n - m:] = np.arange(m) % 65536
    source, target, weight, inhibitory = random_synapses(rng, n, k)  # weight: |psc multiplier| as f32
    per_burst = int(round(firing_rate * n))
    drive = Drive(order=rng.permutation(n).astype(np.uint32), per_burst=per_burst, potential=DRIVE_POTENTIAL)
    tag = f"synthetic:{n}:{k}:{firing_rate}:{seed}" + (f":plastic{plastic_fraction}" if m else "")
    plasticity = [PlasticPair(PLASTIC_AREA, PLASTIC_AREA, PLASTIC_WINDOW, PLASTIC_STEP, PLASTIC_STEP)] if m else []
    brain = Brain(name=f"synthetic {n:,} neurons x {k} synapses" + (f", {plastic_fraction:g} plastic" if m else ""),
                  areas=areas, neurons=na, synapses=SynapseArray(source, target, weight, inhibitory),
                  power_neuron=None, drive=drive, fingerprint=hashlib.sha256(tag.encode()).hexdigest(),
                  plasticity=plasticity)
    if model != "feagi_lif" or model_params:
        from feagi_burst.models.assign import assign_model

        brain = assign_model(brain, [a.cortical_id for a in areas], model, where="synthetic brain", **model_params)
    return brain
