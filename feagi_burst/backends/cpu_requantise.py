"""The CPU backend's synapse-table words of a brain with plastic pairs: the words of a state (the
compiled table requantised along its scale steps, every plastic word from its committed weight) and
the requantisation of the table in place when the scale drops (plasticity.py's docstring: overflow).
feagi_burst/backends/cpu_plasticity.py decides when; its update writes single words with `write_word`."""
from __future__ import annotations

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import helper, kernel
from feagi_burst.fixed_point import SynapseTables, plastic_words
from feagi_burst.plasticity import F32_MIN_NORMAL, F32_ZERO, PlasticLayout, PlasticState


# -- the synapse table of a state -------------------------------------------------------------------
def table_pairs(layout: PlasticLayout, tables: SynapseTables, st: PlasticState) -> np.ndarray:
    """The synapse table's (target, contribution) words for `st`: the compiled table, requantised
    along `st.scale_steps`, with every plastic word from its committed weight."""
    pairs = np.array(tables.pairs, np.int64, copy=True)
    for a, b in zip(st.scale_steps, st.scale_steps[1:]):
        shift_all(tables.offsets, pairs.view(np.int32), pairs.view(np.float32), layout.driven_src, int(a - b))
    write_plastic(layout, pairs, np.arange(layout.size, dtype=np.int64), st.committed, st.scale_exp)
    return pairs


def write_plastic(layout: PlasticLayout, pairs: np.ndarray, which: np.ndarray, weights: np.ndarray,
                  scale_exp: int) -> None:
    """Contribution words of plastic synapses `which` from `weights[which]`, into `pairs`."""
    words = plastic_words(weights[which], layout.unit[which], layout.driven[which], scale_exp)
    pairs.view(np.int32)[2 * layout.index[which] + 1] = words


@kernel()
def shift_all(offsets, words_i, words_f, driven_src, d):  # type: ignore[no-untyped-def]
    """fixed_point.shift_words over the whole table, source by source (no temporaries)."""
    _shift_rows(offsets, words_i, words_f, driven_src, d, 0, offsets.size - 1)


@helper
def _shift_rows(offsets, words_i, words_f, driven_src, d, sa, sb):  # type: ignore[no-untyped-def]
    """fixed_point.shift_words on the rows of sources [sa, sb). q / 2^d rounded half to even is
    (q + 2^(d-1) - 1 + (q >> d & 1)) >> d (in i64: no overflow): one expression without compares,
    which vectorises, so a requantisation runs at the memory's speed (the compares and selects of
    shift_words took twice that: ~105 ms a pass over a 100M-synapse table, now ~55)."""
    di = min(d, 30)
    hm = (np.int64(1) << (di - 1)) - 1
    f = np.float32(2.0 ** -min(d, 126))
    for s in range(sa, sb):
        if driven_src[s]:
            for k in range(offsets[s], offsets[s + 1]):
                x = words_f[2 * k + 1] * f
                words_f[2 * k + 1] = F32_ZERO if abs(x) < F32_MIN_NORMAL else x
        else:
            for k in range(offsets[s], offsets[s + 1]):
                q = np.int64(words_i[2 * k + 1])
                words_i[2 * k + 1] = np.int32((q + hm + ((q >> di) & 1)) >> di)


REQUANTISE_BLOCK = 512  # sources a block: their rows (~400 KB at 100 synapses) stay in L2 between the two passes


PLASTIC_WORD_COST = 4  # a plastic word's recomputation against a word's shift, in `requantise_split`


def requantise_split(offsets: np.ndarray, index: np.ndarray, nt: int) -> np.ndarray:
    """Source bounds of the `nt` threads of `requantise_words`, equal in work: a table word to
    shift, PLASTIC_WORD_COST a plastic word to recompute. Equal in sources, the thread holding
    the plastic areas did all the recomputation while the others waited (one plastic area at the
    end of the synthetic brains: the second of two threads)."""
    cost = offsets + PLASTIC_WORD_COST * np.searchsorted(index, offsets)
    bounds = np.searchsorted(cost, cost[-1] * np.arange(nt + 1) / nt)
    bounds[0], bounds[-1] = 0, offsets.size - 1
    return np.minimum(bounds, offsets.size - 1).astype(np.int64)


@kernel(parallel=True)
def requantise_words(offsets, words_i, words_f, driven_src, d, index, committed, unit, driven, scale,
                      bounds):  # type: ignore[no-untyped-def]
    """A requantisation of the table's words from scale s to s - d (CPUPlasticity._requantise):
    every word shifted (`shift_all`), then every plastic word recomputed from its committed weight
    at the new `scale` (= write_plastic), one block of sources at a time (the block's rows still
    in the cache for the second pass), thread t the sources [bounds[t], bounds[t + 1])."""
    for t in prange(bounds.size - 1):
        sa, sb = bounds[t], bounds[t + 1]
        i = np.searchsorted(index, offsets[sa])  # the plastic synapses, in table order
        for s0 in range(sa, sb, REQUANTISE_BLOCK):
            s1 = min(s0 + REQUANTISE_BLOCK, sb)
            _shift_rows(offsets, words_i, words_f, driven_src, d, s0, s1)
            end = offsets[s1]
            while i < index.size and index[i] < end:
                write_word(i, committed[i], index, unit, driven, scale, words_i, words_f)
                i += 1


@helper
def write_word(i, x, index, unit, driven, scale, words_i, words_f):  # type: ignore[no-untyped-def]
    """Write plastic synapse i's contribution word for weight x (fixed_point.plastic_words)."""
    v = x * unit[i]
    if abs(v) < F32_MIN_NORMAL:
        v = F32_ZERO
    y = v * scale
    if abs(y) < F32_MIN_NORMAL:
        y = F32_ZERO
    k = index[i]
    if driven[i]:
        words_f[2 * k + 1] = y
    else:
        words_i[2 * k + 1] = np.int32(np.rint(y))
