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
    Rows are the areas' when every area is uniform, else the distinct combinations (in np.unique's
    order).

    A model's words are a function of each neuron's parameters, and a parameter its ParamTable
    keeps per area or as a scalar is the same for every neuron of an area: a model without
    per-neuron arrays is computed on one neuron per area, so a batch of many brains costs its
    areas, not its neurons (only the two words per neuron are written per neuron). A model with
    per-neuron arrays pays a row per neuron of its own, and keeps them only when an area's rows
    differ (then the table is every neuron's distinct rows, as before).
    """
    n = brain.neuron_count
    n_areas = len(brain.areas)
    if per_area is None:
        per_area = brain_words(n_areas, seed)
    words = 1 + max(p.model.gpu_row_words for p in brain.populations)
    stride = (words + 1) // 2 + BRAIN_WORDS // 2
    if not n:
        return np.zeros(0, np.uint32), 0, stride
    area = np.asarray(brain.neurons.cortical_area)
    layout = _area_layout(brain, area)
    if layout is None:  # an area split between models, or a neuron no model owns: row by row
        return _params_by_neuron(brain, per_area, stride)
    rep, present, area_pop = layout
    width = 2 * stride
    area_rows = np.zeros((n_areas, width), np.uint32)
    area_rows[:, width - BRAIN_WORDS:] = per_area
    area_word = np.zeros(n_areas, np.uint32)  # the neuron word, for models without per-neuron arrays
    by_neuron: list[int] = []  # populations whose neuron words are computed neuron by neuron
    odd: list[tuple[np.ndarray, np.ndarray]] = []  # (ids, full rows) of models whose areas' rows differ
    pops, tables = brain.populations, brain.param_tables()
    for k, (pop, table) in enumerate(zip(pops, tables)):
        m = pop.model
        mine = np.flatnonzero(present & (area_pop == k))
        if not mine.size:
            continue
        area_rows[mine, 0] = model_index(m)
        if not any(np.ndim(v) for v in table.values.values()):
            area_rows[mine, 1:1 + m.gpu_row_words] = m.gpu_row(table, rep[mine])
            area_word[mine] = m.gpu_neuron_word(table, rep[mine])
            continue
        by_neuron.append(k)
        idx = _ids(brain, k)
        rows = m.gpu_row(table, idx)  # some parameter varies inside an area: every neuron's row
        area_rows[mine, 1:1 + m.gpu_row_words] = rows[np.searchsorted(idx, rep[mine])]
        if not np.array_equal(rows, area_rows[area[idx], 1:1 + m.gpu_row_words]):
            full = np.zeros((idx.size, width), np.uint32)
            full[:, 0] = model_index(m)
            full[:, 1:1 + m.gpu_row_words] = rows
            full[:, width - BRAIN_WORDS:] = per_area[area[idx]]
            odd.append((idx, full))
    rank = (np.cumsum(present) - 1).astype(np.uint32)  # an area's row among the areas that have neurons
    table = area_rows[present]
    # one allocation for the buffer: the per-neuron words are written into it, not concatenated
    index_of: np.ndarray | None = None
    if odd:
        # the distinct rows of every neuron: each present area's row is its first neuron's, and
        # the odd models' rows are their neurons' own, so the union is exactly the set of rows
        at = int(table.shape[0])  # in `cand`, the present areas' rows come first, then the odd ones'
        cand = np.concatenate([table] + [rows for _, rows in odd])
        table, inv = np.unique(cand, axis=0, return_inverse=True)
        inv = np.asarray(inv, np.int64).reshape(-1)
        index_of = inv[rank[area]]
        for idx, _rows in odd:
            index_of[idx] = inv[at:at + idx.size]
            at += idx.size
    out = np.empty(2 * n + table.size, np.uint32)
    per_neuron = out[:2 * n].reshape(n, 2)
    # (gathers by the u16 area ids: np.take would first copy them to intp)
    per_neuron[:, 1] = rank[area] if index_of is None else index_of
    if len(by_neuron) < len(pops):
        per_neuron[:, 0] = area_word[area]
    for k in by_neuron:
        idx = _ids(brain, k)
        per_neuron[idx, 0] = pops[k].model.gpu_neuron_word(tables[k], idx)
    out[2 * n:] = table.reshape(-1)
    return out, int(table.shape[0]), stride


def _ids(brain: Brain, k: int) -> np.ndarray:
    """The ids of population k (every id when it is the only one)."""
    return np.arange(brain.neuron_count, dtype=np.int64) if len(brain.populations) == 1 \
        else brain.populations[k].ids()


def _area_layout(brain: Brain, area: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(a neuron of each area, which areas have neurons, the population of each area), or None
    when the populations do not partition the neurons area by area (then rows go neuron by neuron)."""
    n, n_areas = int(area.shape[0]), len(brain.areas)
    if int(area.max()) >= n_areas:
        return None  # an area index past the areas: the neuron-by-neuron path says so
    present = np.zeros(n_areas, bool)
    present[area] = True  # (not np.bincount: it would copy the ids to intp first)
    # an area's first neuron, when the ids say so (areas are contiguous id ranges); else np.unique's
    rep = np.array([a.first_neuron for a in brain.areas], np.int64)
    ok = (rep >= 0) & (rep < n)
    ok[ok] = area[rep[ok]] == np.flatnonzero(ok)
    if not ok[present].all():
        rep[present] = np.unique(area, return_index=True)[1]
    rep[~present] = 0
    pops = brain.populations
    if len(pops) == 1:
        return rep, present, np.zeros(n_areas, np.int64)
    if sum(p.size for p in pops) != n:
        return None
    pop_of = np.full(n, -1, np.int16)
    for k, pop in enumerate(pops):
        for lo, hi in pop.ranges:
            pop_of[lo:hi] = k
    area_pop = pop_of[rep].astype(np.int64)
    if (pop_of < 0).any() or not np.array_equal(pop_of, area_pop[area]):
        return None
    return rep, present, area_pop


def _params_by_neuron(brain: Brain, per_area: np.ndarray, stride: int) -> tuple[np.ndarray, int, int]:
    """neuron_params for any brain, one row per neuron then the distinct ones (the general case:
    O(neurons) rows of memory and a sort, so only for brains `_area_layout` cannot split)."""
    n = brain.neuron_count
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
    _areas, first, index = np.unique(area, return_index=True, return_inverse=True)
    table = rows[first]
    if not np.array_equal(rows, table[index]):  # some area is not uniform: distinct rows
        table, index = np.unique(rows, axis=0, return_inverse=True)
    per_neuron[:, 1] = np.asarray(index, np.int64).reshape(-1)
    return np.concatenate([per_neuron.reshape(-1), table.reshape(-1)]), int(table.shape[0]), stride
