"""STDP on the CPU backend: the compiled update (numba kernels) and `CPUPlasticity`, which owns the
backend's synapse-table words and scale. The rule, the lazy updates, the two weight arrays and
requantisation are described in feagi_burst/plasticity.py, whose layout and state this runs.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import helper, kernel, prefetch, threads
from feagi_burst.brain import Brain
from feagi_burst.fixed_point import SynapseTables, cap_exponent, plastic_words
from feagi_burst.plasticity import F32_MIN_NORMAL, F32_ZERO, PlasticLayout, PlasticState, canonical, plastic_layout, replay


# -- the synapse table of a state -------------------------------------------------------------------
def table_pairs(layout: PlasticLayout, tables: SynapseTables, st: PlasticState) -> np.ndarray:
    """The synapse table's (target, contribution) words for `st`: the compiled table, requantised
    along `st.scale_steps`, with every plastic word from its committed weight."""
    pairs = np.array(tables.pairs, np.int64, copy=True)
    for a, b in zip(st.scale_steps, st.scale_steps[1:]):
        _shift_all(tables.offsets, pairs.view(np.int32), pairs.view(np.float32), layout.driven_src, int(a - b))
    write_plastic(layout, pairs, np.arange(layout.size, dtype=np.int64), st.committed, st.scale_exp)
    return pairs


def write_plastic(layout: PlasticLayout, pairs: np.ndarray, which: np.ndarray, weights: np.ndarray,
                  scale_exp: int) -> None:
    """Contribution words of plastic synapses `which` from `weights[which]`, into `pairs`."""
    words = plastic_words(weights[which], layout.unit[which], layout.driven[which], scale_exp)
    pairs.view(np.int32)[2 * layout.index[which] + 1] = words


@kernel()
def _shift_all(offsets, words_i, words_f, driven_src, d):  # type: ignore[no-untyped-def]
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
    """Source bounds of the `nt` threads of `_requantise_words`, equal in work: a table word to
    shift, PLASTIC_WORD_COST a plastic word to recompute. Equal in sources, the thread holding
    the plastic areas did all the recomputation while the others waited (one plastic area at the
    end of the synthetic brains: the second of two threads)."""
    cost = offsets + PLASTIC_WORD_COST * np.searchsorted(index, offsets)
    bounds = np.searchsorted(cost, cost[-1] * np.arange(nt + 1) / nt)
    bounds[0], bounds[-1] = 0, offsets.size - 1
    return np.minimum(bounds, offsets.size - 1).astype(np.int64)


@kernel(parallel=True)
def _requantise_words(offsets, words_i, words_f, driven_src, d, index, committed, unit, driven, scale,
                      bounds):  # type: ignore[no-untyped-def]
    """A requantisation of the table's words from scale s to s - d (CPUPlasticity._requantise):
    every word shifted (`_shift_all`), then every plastic word recomputed from its committed weight
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
                _word(i, committed[i], index, unit, driven, scale, words_i, words_f)
                i += 1


@helper
def _word(i, x, index, unit, driven, scale, words_i, words_f):  # type: ignore[no-untyped-def]
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


PARALLEL_FIRED = 1024  # fired span neurons before the update is split over threads
ROWS_AHEAD = 4  # fired neurons whose rows are prefetched ahead (their offsets twice as far)


@helper
def _prefetch_lines(arr, a, e, per_line):  # type: ignore[no-untyped-def]
    """Prefetch arr[a:e] (per_line elements per 64-byte line)."""
    for k in range(a, e, per_line):
        prefetch(arr, k)
    if e > a:
        prefetch(arr, e - 1)


@helper
def _update(ja, jb, b, lst, last, prev, settled, out_off, in_off, tgt, pair, in_si, in_pair, window, dp, dm, w, wq,
            index, unit, driven, scale, words_i, words_f):  # type: ignore[no-untyped-def]
    """Burst b's update of the fired span neurons lst[ja:jb] (plasticity.py's docstring): each one's
    outgoing synapses whose target did not fire in b (the rows are in weight order: read and
    written in place), then its incoming ones. A synapse is replayed to b - 1 from the stamps
    before b, committed when its source fired in b (its word rewritten where the weight changed),
    then stepped to b. Returns the largest committed weight (the requantisation check)."""
    mx = F32_ZERO
    for j in range(ja, jb):
        if j + 2 * ROWS_AHEAD < jb:
            r = lst[j + 2 * ROWS_AHEAD]
            prefetch(out_off, r)
            prefetch(in_off, r)
        if j + ROWS_AHEAD < jb:
            r = lst[j + ROWS_AHEAD]
            _prefetch_lines(w, out_off[r], out_off[r + 1], 16)
            _prefetch_lines(tgt, out_off[r], out_off[r + 1], 16)
            _prefetch_lines(in_si, 2 * in_off[r], 2 * in_off[r + 1], 8)
        if j + 1 < jb:
            r = lst[j + 1]
            for k in range(in_off[r], in_off[r + 1]):
                prefetch(w, in_si[2 * k + 1])
                prefetch(last, in_si[2 * k])
        n = lst[j]
        pn = np.int64(prev[n])  # n fired in b: its fire before
        for i in range(out_off[n], out_off[n + 1]):
            c = np.int64(last[tgt[i]])
            if c == b:
                continue  # the target fired too: its side (below) updates the synapse
            p = pair[i]
            win = np.int64(window[p])
            old = w[i]
            x = replay(old, pn, c, max(pn, c, settled) + 1, b - 1, win, dp[p], dm[p])
            mx = x if x > mx else mx
            if wq[i] != x:
                wq[i] = x
                _word(i, x, index, unit, driven, scale, words_i, words_f)
            new = replay(x, b, c, b, b, win, dp[p], dm[p])
            if new != old:
                w[i] = new
        for k in range(in_off[n], in_off[n + 1]):
            s = in_si[2 * k]
            i = in_si[2 * k + 1]
            p = in_pair[k]
            win = np.int64(window[p])
            a = np.int64(last[s])
            now = a == b
            if now:
                a = np.int64(prev[s])
            old = w[i]
            x = replay(old, a, pn, max(a, pn, settled) + 1, b - 1, win, dp[p], dm[p])
            if now:
                mx = x if x > mx else mx
                if wq[i] != x:
                    wq[i] = x
                    _word(i, x, index, unit, driven, scale, words_i, words_f)
                a = b
            new = replay(x, a, b, b, b, win, dp[p], dm[p])
            if new != old:
                w[i] = new
    return mx


@kernel(parallel=True)
def _update_parallel(c, nt, b, lst, last, prev, settled, out_off, in_off, tgt, pair, in_si, in_pair, window, dp, dm, w,
                     wq, index, unit, driven, scale, words_i, words_f):  # type: ignore[no-untyped-def]
    """`_update` of lst[:c] split over `nt` threads. Each synapse is written by one side (its
    source's when only the source fired, its target's when the target fired) and each side's
    synapses by one thread, so the threads write disjoint synapses and read only the stamps."""
    mxs = np.zeros(nt, np.float32)
    for t in prange(nt):
        mxs[t] = _update(t * c // nt, (t + 1) * c // nt, b, lst, last, prev, settled, out_off, in_off, tgt, pair,
                         in_si, in_pair, window, dp, dm, w, wq, index, unit, driven, scale, words_i, words_f)
    return mxs.max()


@kernel()
def _burst(b, fired, i64, i32, f32, last, prev, words_i, words_f, sc, scale):  # type: ignore[no-untyped-def]
    """One burst's STDP on the CPU: stamp the fire set's span neurons that have plastic synapses,
    then `_update` them (on `sc[6]` threads when `sc[7]` says so and at least `sc[5]` fired).
    The arrays are packed by dtype (CPUPlasticity: offsets from `sc`): a call with a dozen
    arguments instead of thirty costs ~10 µs less, which small brains feel every burst. Returns
    the largest committed weight."""
    lo, span, p, npairs, settled = sc[0], sc[1], sc[2], sc[3], sc[4]
    s1 = span + 1
    out_off, in_off = i64[:s1], i64[s1:2 * s1]
    index = i64[2 * s1:2 * s1 + p]
    window = i64[2 * s1 + p:2 * s1 + p + npairs]
    lst = i64[2 * s1 + p + npairs:]
    in_si, in_pair, tgt, pair, rel = i32[:2 * p], i32[2 * p:3 * p], i32[3 * p:4 * p], i32[4 * p:5 * p], \
        i32[5 * p:5 * p + span]
    driven = i32[5 * p + span:]
    unit, dp, dm = f32[:p], f32[p:p + npairs], f32[p + npairs:p + 2 * npairs]
    w = f32[p + 2 * npairs:2 * p + 2 * npairs]
    wq = f32[2 * p + 2 * npairs:3 * p + 2 * npairs]
    c = np.int64(0)
    for j in range(fired.size):
        n = np.int64(fired[j]) - lo
        if n >= 0 and n < span and rel[n] != 0:
            lst[c] = n
            prev[n] = last[n]
            last[n] = b
            c += 1
    if sc[7] != 0 and sc[6] > 1 and c >= sc[5]:
        return _update_parallel(c, sc[6], b, lst, last, prev, settled, out_off, in_off, tgt, pair, in_si, in_pair,
                                window, dp, dm, w, wq, index, unit, driven, scale, words_i, words_f)
    return _update(0, c, b, lst, last, prev, settled, out_off, in_off, tgt, pair, in_si, in_pair, window, dp, dm, w,
                   wq, index, unit, driven, scale, words_i, words_f)


class CPUPlasticity:
    """STDP on the CPU backend: owns the backend's (private) synapse table words and its scale.

    `step(b, fired)` runs at the end of each burst (the `plasticity` phase): `_burst` (stamps,
    commits, update) in one compiled call, then a requantisation when a commit passed the cap.
    """

    def __init__(self, layout: PlasticLayout, tables: SynapseTables) -> None:
        self.layout, self.tables = layout, tables
        L = layout
        p, span = L.size, L.span
        # an incoming slot's (source, synapse) as one 8-byte record: the targets' side reads both
        in_si = np.stack([L.in_src - np.int32(L.lo), L.in_idx], axis=1).astype(np.int32).reshape(-1)
        self.i32 = np.concatenate([in_si, L.in_pair, L.tgt - np.int32(L.lo), L.pair, L.relevant, L.driven]) \
            .astype(np.int32)
        # ... and the fired span neurons of a burst
        self.i64 = np.concatenate([L.out_off, L.in_off, L.index, L.window.astype(np.int64), np.zeros(span, np.int64)])
        self.f32 = np.concatenate([L.unit, L.dp, L.dm, np.zeros(2 * p, np.float32)]).astype(np.float32)
        self.w, self.wq = self.f32[p + 2 * len(L.pairs):2 * p + 2 * len(L.pairs)], self.f32[2 * p + 2 * len(L.pairs):]
        self.prev = np.zeros(span, np.uint32)  # per span neuron, its fire before its last (read for the fired)
        # lo, span, plastic synapses, pairs, settled (the burst the state was loaded at), fired span
        # neurons from which the update may use threads, threads, whether it uses them this burst
        self.sc = np.array([L.lo, span, p, len(L.pairs), 0, PARALLEL_FIRED, threads(), 1], np.int64)
        # a fork-join waits for its slowest thread to be scheduled: on cores busy with other work
        # the threads cost several times the update. Which is faster is measured as the CPU
        # backend's dense bursts do (ThreadChoice), for PARALLEL_FIRED fired span neurons or more
        from feagi_burst.backends.cpu import ThreadChoice

        self.choice: ThreadChoice | None = ThreadChoice() if threads() > 1 else None
        self.rq_bounds = np.zeros(0, np.int64)  # the threads' sources in a requantisation

    def attach(self, backend: Any, st: PlasticState | None = None, burst: int = 0) -> None:
        """Give `backend` its own table words for `st` (default: the initial state; a reported
        state, every weight up to date after `burst`) and scale."""
        L = self.layout
        st = L.initial_state() if st is None else st.copy()
        L.check_state(st)
        self.backend = backend
        self.pairs = table_pairs(L, self.tables, st)
        backend.pairs = self.pairs
        backend.pairs_f = self.pairs.view(np.float32)
        self.words_i = self.pairs.view(np.int32)
        self.words_f = self.pairs.view(np.float32)
        self.st = st
        self._set_scale(st.scale_exp)
        # the weights live in the packed f32 array (the kernel's), the state's arrays are views of it
        self.w[:] = st.weights
        self.wq[:] = st.committed
        st.weights, st.committed = self.w, self.wq
        self.prev[:] = 0
        self.settled = burst
        self.sc[4] = burst
        self.cap_value = 2.0**st.cap_exp
        self.burst = burst if burst > 0 else None

    def _set_scale(self, s: int) -> None:
        self.scale = np.float32(2.0**s)
        self.backend.scale = np.float32(2.0**-s)

    def step(self, b: int, fired: np.ndarray) -> None:
        L, st = self.layout, self.st
        if fired.dtype != np.uint32 or not fired.flags.c_contiguous:
            fired = np.ascontiguousarray(fired, np.uint32)
        choice = self.choice if fired.size >= self.sc[5] and self.sc[6] > 1 else None
        parallel, t0 = True, 0.0
        if choice is not None:
            parallel = choice.next()
            t0 = time.perf_counter()
        self.sc[7] = int(parallel)
        mx = _burst(b, fired, self.i64, self.i32, self.f32, st.stamps, self.prev, self.words_i, self.words_f, self.sc,
                    self.scale)
        if choice is not None:
            choice.record(parallel, time.perf_counter() - t0)
        self.burst = b
        if mx > self.cap_value:  # a commit passed the cap 2^cap_exp: a new cap, maybe a new scale
            st.cap_exp = k = cap_exponent(float(mx))
            self.cap_value = 2.0**k
            s_new = int(L.scale_table[k])
            if s_new < st.scale_exp:
                self._requantise(s_new)

    def _requantise(self, s_new: int) -> None:
        st = self.st
        L = self.layout
        nt = threads()
        if self.rq_bounds.size != nt + 1:  # made at the first requantisation (a search per source)
            self.rq_bounds = requantise_split(self.tables.offsets, L.index, nt)
        _requantise_words(self.tables.offsets, self.words_i, self.words_f, L.driven_src, int(st.scale_exp - s_new),
                          L.index, st.committed, L.unit, L.driven, np.float32(2.0**s_new), self.rq_bounds)
        st.scale_exp = s_new
        st.scale_steps = tuple(st.scale_steps) + (s_new,)
        self._set_scale(s_new)

    def state(self) -> PlasticState:
        """The state after the last burst, every weight up to date (canonical)."""
        return canonical(self.layout, self.st, getattr(self, "burst", None), self.settled)


def attach_cpu(backend: Any, brain: Brain, tables: SynapseTables) -> CPUPlasticity | None:
    """The CPU backend's STDP runtime for `brain` (None without plastic synapses)."""
    layout = plastic_layout(brain, tables)
    if layout is None:
        return None
    rt = CPUPlasticity(layout, tables)
    rt.attach(backend)
    return rt
