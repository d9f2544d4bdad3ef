"""Neuron state on the GPU: four 32-bit words per neuron, each model's variables in declaration order.

A model declares its state variables (feagi_burst.models); on the device every neuron's state is one
vec4<u32>, variable k of its model in word k (f32 as its bits, integers widened to u32). These two
functions convert between that layout and the host's NeuronState (one named array per variable).
"""
from __future__ import annotations

import numpy as np

from feagi_burst.brain import Brain, NeuronState
from feagi_burst.models.base import DTYPES

WORDS = 4


def _members(brain: Brain) -> list[np.ndarray | slice]:
    """Each population's neurons: everything when there is one population (no gather needed)."""
    if len(brain.populations) == 1:
        return [slice(None)]
    return [p.ids() for p in brain.populations]


def state_to_words(brain: Brain, state: NeuronState) -> np.ndarray:
    """u32 [N, 4]: `state` as the device holds it."""
    words = np.zeros((brain.neuron_count, WORDS), np.uint32)
    for pop, ids in zip(brain.populations, _members(brain)):
        for k, var in enumerate(pop.model.state):
            values = state.values[f"{pop.model.name}.{var.name}"][ids]
            words[ids, k] = values.view(np.uint32) if var.dtype == "f32" else values.astype(np.uint32)
    return words


def words_to_state(brain: Brain, words: np.ndarray, burst: int) -> NeuronState:
    """The NeuronState in device words u32 [N, 4]; neurons of other models keep each variable's initial value."""
    n = brain.neuron_count
    values: dict[str, np.ndarray] = {}
    for pop, ids in zip(brain.populations, _members(brain)):
        for k, var in enumerate(pop.model.state):
            col = words[ids, k]
            mine = col.view(np.float32) if var.dtype == "f32" else col.astype(DTYPES[var.dtype])
            if isinstance(ids, slice):
                arr = np.ascontiguousarray(mine)
            else:
                arr = np.full(n, var.initial, DTYPES[var.dtype])
                arr[ids] = mine
            values[f"{pop.model.name}.{var.name}"] = arr
    return NeuronState(values, burst)
