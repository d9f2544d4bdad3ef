"""The GPU neuron parameters: per neuron one model word and a row index into a table of the rest.

Each population's model packs its parameters (`NeuronModel.gpu_row`, host-computed in f32) behind
word 0 of a row, which holds the model's registry index; every row has the width of the widest
model present, in vec2 units (`row_stride`). Everything but one per-neuron word (FEAGI LIF's
threshold) is usually constant per cortical area, so neurons share rows of a small table (it
stays in cache) and dynamics reads 8 bytes per neuron plus a cached row. The layout is what
shaders/model.wgsl reads.

Every row ends with the words of the brain its neurons belong to (`BRAIN_WORDS`: its first neuron
id, its excitability seed term, the f32 bits of its fixed-point resolution or 0, padding), so that
brains batched into one set of buffers (feagi_burst/batch.py) each keep their own id space, seed
and scale; a single brain has one brain, at id 0, whose scale is the device word STDP may lower.
"""
from __future__ import annotations

import numpy as np

from feagi_burst.brain import Brain
from feagi_burst.models import model_index


BRAIN_WORDS = 4  # at the end of every row: first id, seed term, resolution bits (0: the device word), 0
SEED_MULT = 3266489917  # rand(id, b)'s seed term is seed * SEED_MULT (mod 2^32): SPEC.md, the salt


def brain_words(n_areas: int, seed: int) -> np.ndarray:
    """u32 [areas, BRAIN_WORDS] of a brain on its own: at id 0, its seed, the device's scale word."""
    out = np.zeros((n_areas, BRAIN_WORDS), np.uint32)
    out[:, 1] = (int(seed) * SEED_MULT) & 0xFFFFFFFF
    return out


def neuron_params(brain: Brain, per_area: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, int, int]:
    """The params buffer: u32 (neuron word, row) per neuron, then the rows; the number of rows and
    the row stride in vec2s.

    per_area: each area's brain words (u32 [areas, BRAIN_WORDS]); default `brain_words(seed)`.
    Rows are the areas' when every area is uniform, else the distinct combinations.
    """
    n = brain.neuron_count
    if per_area is None:
        per_area = brain_words(len(brain.areas), seed)
    words = 1 + max(p.model.gpu_row_words for p in brain.populations)
    stride = (words + 1) // 2 + BRAIN_WORDS // 2
    rows = np.zeros((n, 2 * stride), np.uint32)
    per_neuron = np.empty((n, 2), np.uint32)
    for pop, table in zip(brain.populations, brain.param_tables()):
        ids = pop.ids() if len(brain.populations) > 1 else slice(None)
        idx = np.arange(n, dtype=np.int64)[ids]
        m = pop.model
        rows[ids, 0] = model_index(m)
        rows[ids, 1:1 + m.gpu_row_words] = m.gpu_row(table, idx)
        per_neuron[ids, 0] = m.gpu_neuron_word(table, idx)
    area = np.asarray(brain.neurons.cortical_area, np.int64)
    rows[:, 2 * stride - BRAIN_WORDS:] = per_area[area]
    if n:
        _areas, first, index = np.unique(area, return_index=True, return_inverse=True)
        table = rows[first]
        if not np.array_equal(rows, table[index]):  # some area is not uniform: distinct rows
            table, index = np.unique(rows, axis=0, return_inverse=True)
    else:
        table, index = np.zeros((0, 2 * stride), np.uint32), np.zeros(0, np.int64)
    per_neuron[:, 1] = np.asarray(index, np.int64).reshape(-1)
    return np.concatenate([per_neuron.reshape(-1), table.reshape(-1)]), int(table.shape[0]), stride
