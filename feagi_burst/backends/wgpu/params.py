"""The GPU neuron parameters: a per-neuron threshold and a row index into a table of the rest.

The layout is what shaders/common.wgsl's `load_params` reads.
"""
from __future__ import annotations

import numpy as np

from feagi_burst.brain import Brain

PARAM_ROW_WORDS = 6  # threshold_limit, 1 - leak, excitability, refractory | snooze << 16, cfc_limit | acc << 16, 0


def neuron_params(brain: Brain) -> tuple[np.ndarray, int]:
    """The params buffer: u32 (threshold bits, row) per neuron, then the rows (PARAM_ROW_WORDS each).

    Everything but the threshold is usually constant per cortical area, so neurons share rows of
    a small table (it stays in cache) and neural dynamics reads 8 bytes per neuron instead of 32.
    Rows are the areas' when every area is uniform, else the distinct combinations. Returns the
    buffer (u32) and the number of rows.
    """
    nb = brain.neurons
    n = brain.neuron_count
    rows = np.zeros((n, PARAM_ROW_WORDS), np.uint32)
    rf = rows.view(np.float32)
    rf[:, 0] = nb.threshold_limit
    rf[:, 1] = np.float32(1) - nb.leak.astype(np.float32)  # the CPU's (1 - leak), in f32
    rf[:, 2] = nb.excitability
    rows[:, 3] = nb.refractory_period.astype(np.uint32) | (nb.snooze.astype(np.uint32) << 16)
    rows[:, 4] = nb.cfc_limit.astype(np.uint32) | (nb.mp_accumulate.astype(np.uint32) << 16)
    area = np.asarray(nb.cortical_area, np.int64)
    if n:
        areas, first, index = np.unique(area, return_index=True, return_inverse=True)
        table = rows[first]
        if not np.array_equal(rows, table[index]):  # some area is not uniform: distinct rows
            table, index = np.unique(rows, axis=0, return_inverse=True)
    else:
        table, index = np.zeros((0, PARAM_ROW_WORDS), np.uint32), np.zeros(0, np.int64)
    per_neuron = np.empty((n, 2), np.uint32)
    per_neuron[:, 0] = np.asarray(nb.threshold, np.float32).view(np.uint32)
    per_neuron[:, 1] = np.asarray(index, np.int64).reshape(-1)
    return np.concatenate([per_neuron.reshape(-1), table.reshape(-1)]), int(table.shape[0])

