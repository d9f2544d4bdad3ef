"""Neuron state on the GPU: four 32-bit words per neuron, each model's variables in declaration order.

A model declares its state variables (feagi_burst.models); variable k of a neuron's model is its
word k (f32 as its bits, integers widened to u32). The host works with the words as u32 [N, 4]
(a row per neuron): `state_to_words` and `words_to_state` convert between that and the host's
NeuronState (one named array per variable). The device buffer holds them transposed, word k of
every neuron in one array (common.wgsl state_word), so a kernel loads only the words it needs:
`to_device` and `from_device` convert.
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


def to_device(words: np.ndarray) -> np.ndarray:
    """u32 [4, N] contiguous: the [N, 4] words as the state buffer holds them."""
    return np.ascontiguousarray(words.T)


def from_device(raw: np.ndarray, n: int) -> np.ndarray:
    """u32 [N, 4] (a writable copy): the state buffer's words (`n` neurons) back in rows."""
    return np.ascontiguousarray(raw.view(np.uint32).reshape(WORDS, n).T)


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
