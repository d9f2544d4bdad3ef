"""STDP on the CPU backend: the compiled update (numba kernels) and `CPUPlasticity`, which owns the
backend's synapse-table words and scale (their requantisation: cpu_requantise.py). The rule, the two weight arrays and requantisation are
described in feagi_burst/plasticity.py, whose layout and state this runs.

The CPU updates eagerly, not lazily as the GPU does (plasticity.py): every burst, the synapses of
the neurons in a window. Its window bookkeeping: a stamp per span neuron (its last fire) and a
window list of the neurons that fired in the last wmax bursts (a fired neuron joins it when it was
not in a window already, a listed one stays while its stamp is within wmax bursts). The update
visits each listed neuron's outgoing plastic synapses (updated when the neuron, the source, is in
the synapse's window: both or LTD) and its incoming ones (LTD when the neuron, the target, is in
the window and the source is not): a synapse with a spike in its window is updated once. It
visits more synapses than the lazy update (~1.2M against ~240K a burst at 1M neurons / 10%
plastic), but most visits are a bit in an L1-resident window bitmap and a weight of 0 or a zero
byte skipped, where the lazy update reads a stamp and replays every visited synapse: on this
project's 2-core development machine the lazy update measured 1.5-2x slower (plasticity p50
7.4-7.8 ms against 3.9, two threads; 15.2-15.3 against 9.6-10.0, one thread: interleaved runs,
docs/bench/dev-session9-cpu-1m-stdp-*.json). Both give the same bits, and the same requantisation
decisions: the largest weight a burst commits (step 1 of `_burst`), checked after the burst.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import cttz, helper, kernel, prefetch, threads
from feagi_burst.backends.cpu_requantise import requantise_split, requantise_words, table_pairs, write_word
from feagi_burst.brain import Brain
from feagi_burst.fixed_point import SynapseTables, cap_exponent
from feagi_burst.plasticity import F32_ZERO, PlasticLayout, PlasticState, canonical, plastic_layout


@helper
def _bit(inwin, x):  # type: ignore[no-untyped-def]
    """Bit x of the window bitmap (i64 words): a bit, not a byte, per span neuron, so the random
    reads of the update find the whole map in the core's L2 (40 KB at 316K neurons)."""
    return (inwin[x >> 6] >> (x & 63)) & 1


@helper
def _ubit(inwin, x):  # type: ignore[no-untyped-def]
    """`_bit` of an id x >= 0 as u64: numba indexes an array with an unsigned index without the
    fix-up of negative indices, which the row loops pay per synapse (their scans ran ~20% faster)."""
    u = np.uint64(np.uint32(x))
    return (inwin[u >> np.uint64(6)] >> np.int64(u & np.uint64(63))) & 1


@helper
def _in_win(x, b, win, wmax, inwin, stamps):  # type: ignore[no-untyped-def]
    """Neuron x (span index) fired in [b-win+1, b]: inwin says so for the widest window."""
    return _bit(inwin, x) != 0 and (win >= wmax or b - np.int64(stamps[x]) < win)


ALL_BYTES = np.uint64(0xFFFFFFFFFFFFFFFF)
PARALLEL_LIST = 4096  # listed neurons before the update is split over threads
# The update is bound by memory latency: the rows of recently active neurons lie anywhere in
# arrays of 4 bytes per plastic synapse (40 MB each at 10M synapses), and the synapses each side
# changes elsewhere (a weight by its target, a byte by its source) are single words at random
# places. So rows are prefetched a few list entries ahead, and the scattered writes are queued in a
# per-thread scratch and done afterwards, each prefetched a few entries ahead. The row loops skip
# the common no-op synapse with a branch (rarely mispredicted: ~5% of synapses have work), which
# measured faster than doing every synapse's work with selects.
ROWS_AHEAD = 8  # list entries whose rows are prefetched ahead (their offsets twice as far)
SCATTER_AHEAD = 32  # queued scattered accesses prefetched ahead
SCRATCH = 4096  # queue entries per thread (two i64 queues each)


@helper
def _prefetch_lines(arr, a, e, per_line):  # type: ignore[no-untyped-def]
    """Prefetch arr[a:e] (per_line elements per 64-byte line)."""
    for k in range(a, e, per_line):
        prefetch(arr, k)
    if e > a:
        prefetch(arr, e - 1)


@helper
def _set_bytes(q, m, in_pos, nz):  # type: ignore[no-untyped-def]
    """nz[in_pos[x >> 1]] = x & 1 for the queued x in q[:m] (the sources' side: a weight became or
    stopped being 0; x >> 1 is the plastic synapse, in_pos its incoming slot, read only here)."""
    for j in range(m):
        if j + 2 * SCATTER_AHEAD < m:
            prefetch(in_pos, q[j + 2 * SCATTER_AHEAD] >> 1)
        if j + SCATTER_AHEAD < m:
            prefetch(nz, in_pos[q[j + SCATTER_AHEAD] >> 1])
        x = q[j]
        nz[in_pos[x >> 1]] = np.uint8(x & 1)


@helper
def _ltd_slot(k, i, d, nz, w):  # type: ignore[no-untyped-def]
    """Post-only LTD of synapse i (incoming slot k) by d: weight floor 0, its nz byte cleared at 0."""
    x = w[i] - d
    new = x if x > F32_ZERO else F32_ZERO
    w[i] = new
    if new == F32_ZERO:
        nz[k] = 0


@helper
def _ltd_queued(qk, m, in_si, nz, in_pair, single, dm, w):  # type: ignore[no-untyped-def]
    """Post-only LTD of the synapses of the queued incoming slots qk[:m], weights above 0 (each
    slot's synapse looked up here: the rows stream the bytes alone)."""
    for j in range(m):
        if j + 2 * SCATTER_AHEAD < m:
            prefetch(in_si, 2 * qk[j + 2 * SCATTER_AHEAD] + 1)
        if j + SCATTER_AHEAD < m:
            prefetch(w, in_si[2 * qk[j + SCATTER_AHEAD] + 1])
        k = qk[j]
        _ltd_slot(k, in_si[2 * k + 1], dm[0] if single else dm[in_pair[k]], nz, w)


@helper
def _ltd_sources_out(qk, m, inwin, in_si, nz, dm, w):  # type: ignore[no-untyped-def]
    """One window: post-only LTD of the queued slots qk[:m] (weights above 0, target in the
    window) whose source is out of the window (else both fired: the sources' side did it). A
    slot's source and synapse are one 8-byte record (in_si): one random line for both."""
    dm0 = dm[0]
    for j in range(m):
        if j + 2 * SCATTER_AHEAD < m:
            prefetch(in_si, 2 * qk[j + 2 * SCATTER_AHEAD])
        if j + SCATTER_AHEAD < m:
            ka = 2 * qk[j + SCATTER_AHEAD]
            if _bit(inwin, in_si[ka]) == 0:
                prefetch(w, in_si[ka + 1])
        k = qk[j]
        if _bit(inwin, in_si[2 * k]) == 0:
            _ltd_slot(k, in_si[2 * k + 1], dm0, nz, w)


@helper
def _update_sources(ja, jb, b, lst, stamps, inwin, out_off, in_pos, nz, tgt, pair, single, window, dp, dm, wmax,
                    w, q):  # type: ignore[no-untyped-def]
    """List entries [ja, jb) as sources: both fired (LTP) or pre only (LTD of a weight above 0);
    the weights are in this order, so a row is read and written in place. The bytes of the
    synapses whose weight became or stopped being 0 are queued in `q` (synapse << 1 | byte) and
    set afterwards (their incoming slots looked up there: the rows stream two arrays, not three)."""
    cap = q.size
    m = 0
    win0, dp0, dm0 = np.int64(window[0]), dp[0], dm[0]
    for j in range(ja, jb):
        if j + 2 * ROWS_AHEAD < jb:
            prefetch(out_off, lst[j + 2 * ROWS_AHEAD])
        if j + ROWS_AHEAD < jb:
            r = lst[j + ROWS_AHEAD]
            ra, re = out_off[r], out_off[r + 1]
            _prefetch_lines(w, ra, re, 16)
            _prefetch_lines(tgt, ra, re, 16)
        n = lst[j]
        if _bit(inwin, n) == 0:
            continue
        if single:  # one window (the widest): inwin alone says whether n or a target is in it
            if b < win0:
                continue
            iu, ie = np.uint64(out_off[n]), np.uint64(out_off[n + 1])
            while iu < ie:  # u64 indices (`_ubit`)
                i = iu
                iu += np.uint64(1)
                old = w[i]
                both = _ubit(inwin, tgt[i]) != 0
                # most synapses are this no-op (weight 0, target out of the window): a branch
                # predicted taken skips their work, and their lines stay clean (not written back)
                if old == F32_ZERO and not both:
                    continue
                x = old - dm0
                ltd = x if x > F32_ZERO else F32_ZERO
                new = old + dp0 if both else ltd
                w[i] = new  # exact: a weight LTD leaves as it was is written with its own bits
                q[m] = (np.int64(i) << 1) | np.int64(new != F32_ZERO)
                m += (old == F32_ZERO) != (new == F32_ZERO)
                if m == cap:
                    _set_bytes(q, m, in_pos, nz)
                    m = 0
        else:
            sn = np.int64(stamps[n])
            for i in range(out_off[n], out_off[n + 1]):
                p = pair[i]
                win = np.int64(window[p])
                if b < win or b - sn >= win:
                    continue
                old = w[i]
                if _in_win(tgt[i], b, win, wmax, inwin, stamps):
                    new = old + dp[p]
                elif old != F32_ZERO:
                    x = old - dm[p]
                    new = x if x > F32_ZERO else F32_ZERO
                else:
                    continue
                w[i] = new
                q[m] = (np.int64(i) << 1) | np.int64(new != F32_ZERO)
                m += (old == F32_ZERO) != (new == F32_ZERO)
                if m == cap:
                    _set_bytes(q, m, in_pos, nz)
                    m = 0
    _set_bytes(q, m, in_pos, nz)


@helper
def _update_targets(ja, jb, b, lst, stamps, inwin, in_off, in_si, in_pair, nz, nz64, single, window, dm, wmax,
                    w, qk):  # type: ignore[no-untyped-def]
    """List entries [ja, jb) as targets: post only (LTD of a weight above 0). A weight of 0 stays
    0, so a slot is taken when its byte says the weight is above 0 and its source is out of the
    window; the taken slots are queued, their synapses' weights (random accesses) changed afterwards."""
    cap = qk.size
    m = 0
    if single and b < np.int64(window[0]):
        return
    for j in range(ja, jb):
        if j + 2 * ROWS_AHEAD < jb:
            prefetch(in_off, lst[j + 2 * ROWS_AHEAD])
        if j + ROWS_AHEAD < jb:
            r = lst[j + ROWS_AHEAD]
            ra, re = in_off[r], in_off[r + 1]
            _prefetch_lines(nz, ra, re, 64)
            if not single:
                _prefetch_lines(in_si, 2 * ra, 2 * re, 16)
        n = lst[j]
        if _bit(inwin, n) == 0:
            continue
        if single:  # one window, the widest: the bit says n is in it (its stamp is not read)
            # the slots above 0 (few: LTD drives most to 0), found 8 bytes a word: ~2/3 of the
            # words are 0, and a set byte is found by its bit, not by a test per slot
            a, e = in_off[n], in_off[n + 1]
            if a == e:
                continue
            ka, ke = a >> 3, (e - 1) >> 3
            for kw in range(ka, ke + 1):
                x = nz64[kw]
                if kw == ka:
                    x &= ALL_BYTES << np.uint64(8 * (a & 7))
                if kw == ke:
                    x &= ALL_BYTES >> np.uint64(8 * (7 - ((e - 1) & 7)))
                while x != 0:
                    t = cttz(x)
                    x &= ~(np.uint64(0xFF) << (t & np.uint64(56)))
                    qk[m] = 8 * kw + np.int64(t >> np.uint64(3))
                    m += 1
                    if m == cap:
                        _ltd_sources_out(qk, m, inwin, in_si, nz, dm, w)
                        m = 0
        else:
            sn = np.int64(stamps[n])
            for k in range(in_off[n], in_off[n + 1]):
                if nz[k] == 0:
                    continue
                win = np.int64(window[in_pair[k]])
                if b < win or b - sn >= win or _in_win(in_si[2 * k], b, win, wmax, inwin, stamps):
                    continue  # out of its window, or both fired (the source's side did it)
                qk[m] = k
                m += 1
                if m == cap:
                    _ltd_queued(qk, m, in_si, nz, in_pair, single, dm, w)
                    m = 0
    if single:
        _ltd_sources_out(qk, m, inwin, in_si, nz, dm, w)
    else:
        _ltd_queued(qk, m, in_si, nz, in_pair, single, dm, w)


@kernel(parallel=True)
def _update_parallel(b, lst, nl, nt, stamps, inwin, out_off, in_off, in_si, in_pair, in_pos, nz, nz64, tgt, pair,
                     single, window, dp, dm, wmax, w, scratch):  # type: ignore[no-untyped-def]
    """The update split over `nt` threads by list entries, each thread the sources' side then the
    targets' side of its entries (its own part of the scratch). One fork-join, no barrier between
    the sides: they write disjoint synapses (the sources' side those whose source is in the
    window, the targets' side those whose source is not), and what the targets' side reads of a
    synapse the sources' side may be writing (its byte) only decides what it then skips."""
    cap = scratch.size // (2 * nt)
    for t in prange(nt):
        ja, jb = t * nl // nt, (t + 1) * nl // nt
        _update_sources(ja, jb, b, lst, stamps, inwin, out_off, in_pos, nz, tgt, pair, single, window, dp, dm,
                        wmax, w, scratch[2 * t * cap:(2 * t + 1) * cap])
        _update_targets(ja, jb, b, lst, stamps, inwin, in_off, in_si, in_pair, nz, nz64, single, window, dm, wmax, w,
                        scratch[2 * t * cap:(2 * t + 2) * cap])  # the sources' queue is done with


@helper
def _words_queued(q, m, w, index, unit, driven, scale, words_i, words_f):  # type: ignore[no-untyped-def]
    """The contribution words of the queued plastic synapses q[:m] from their weights."""
    for j in range(m):
        if j + 2 * SCATTER_AHEAD < m:
            prefetch(index, q[j + 2 * SCATTER_AHEAD])
        if j + SCATTER_AHEAD < m:
            prefetch(words_i, 2 * index[q[j + SCATTER_AHEAD]] + 1)
        i = q[j]
        write_word(i, w[i], index, unit, driven, scale, words_i, words_f)


@helper
def _refresh(qf, ja, jb, b, relevant, stamps, out_off, w, wq, index, unit, driven, scale, words_i, words_f, wmax,
             q):  # type: ignore[no-untyped-def]
    """Steps 1 and 2 of `_burst` for the fire set's span neurons qf[ja:jb]: commit their rows (the
    changed synapses queued in `q`, their words written after, each prefetched) and stamp them.
    The joiners (not in a window before) are compacted in place to qf[ja:ja + count], in order;
    returns the count and the largest committed weight (the requantisation check). Rows and
    stamps are the neurons' own: chunks of qf are independent."""
    cap = q.size
    m = 0
    nj = ja
    mx = F32_ZERO
    for j in range(ja, jb):
        if j + 2 * ROWS_AHEAD < jb:
            r = qf[j + 2 * ROWS_AHEAD]
            prefetch(out_off, r)
            prefetch(relevant, r)
            prefetch(stamps, r)
        if j + ROWS_AHEAD < jb:
            r = qf[j + ROWS_AHEAD]
            ra, re = out_off[r], out_off[r + 1]
            _prefetch_lines(w, ra, re, 16)
            _prefetch_lines(wq, ra, re, 16)
        n = qf[j]
        if not relevant[n]:
            continue
        for i in range(out_off[n], out_off[n + 1]):
            x = w[i]
            mx = x if x > mx else mx
            if x != wq[i]:
                wq[i] = x
                q[m] = i
                m += 1
                if m == cap:
                    _words_queued(q, m, w, index, unit, driven, scale, words_i, words_f)
                    m = 0
        old = np.int64(stamps[n])
        stamps[n] = b
        if not (old != 0 and b - old < wmax):
            qf[nj] = n  # nj <= j: an entry already read
            nj += 1
    _words_queued(q, m, w, index, unit, driven, scale, words_i, words_f)
    return nj - ja, mx


@kernel(parallel=True)
def _refresh_parallel(qf, c, nt, b, relevant, stamps, out_off, w, wq, index, unit, driven, scale, words_i, words_f,
                      wmax, scratch, joined, peaks):  # type: ignore[no-untyped-def]
    """`_refresh` of qf[:c] split over `nt` threads (each its own neurons' rows, words and stamps);
    thread t's joiners are qf[t*c//nt : t*c//nt + joined[t]], its largest commit peaks[t]."""
    cap = scratch.size // (2 * nt)
    for t in prange(nt):
        ja, jb = t * c // nt, (t + 1) * c // nt
        joined[t], peaks[t] = _refresh(qf, ja, jb, b, relevant, stamps, out_off, w, wq, index, unit, driven, scale,
                                       words_i, words_f, wmax, scratch[2 * t * cap:(2 * t + 1) * cap])


@helper
def _order_list(lst, a, nl, tmp):  # type: ignore[no-untyped-def]
    """Sort lst[:nl], whose lst[:a] (the neurons carried over) is sorted already: the joiners come
    in fire-set order, sorted too as the backends give it, so a merge does (else a sort)."""
    for j in range(a + 1, nl):
        if lst[j] < lst[j - 1]:
            lst[:nl] = np.sort(lst[:nl])
            return
    i, j = 0, a
    for k in range(nl):
        if j >= nl or (i < a and lst[i] < lst[j]):
            tmp[k] = lst[i]
            i += 1
        else:
            tmp[k] = lst[j]
            j += 1
    lst[:nl] = tmp[:nl]


@kernel()
def _burst(b, fired, lo, span, relevant, stamps, inwin, lst, nl, nxt, out_off, in_off, in_si, in_pair, in_pos,
           nz, nz64, tgt, pair, single, window, dp, dm, wmax, w, wq, index, unit, driven, scale, words_i,
           words_f, nt, parallel_from, scratch):  # type: ignore[no-untyped-def]
    """One burst's STDP on the CPU (module docstring). Returns (list size for the next burst,
    largest weight committed: the requantisation check).

    1. refresh: the fire set's sources are delivered next burst, with the weights as they are now
       (before this burst's update): their plastic words are brought up to date (committed = weights,
       word recomputed) where the weight changed since. Only then: a word is written only when its
       source is about to be delivered, walking the source's own row of the table;
    2. stamp the fire set: a neuron not in a window already joins the list;
    3. `inwin` (a bit per span neuron, 1 = fired within the widest window) for the list (all 0
       again when the update is done);
    4. update the listed neurons' plastic synapses (weights only).

    Each synapse with a spike in its window is updated once: by its source when the source fired
    in the window (LTP or LTD; the weights are in source order, so these are sequential), else by
    its target (post-only LTD). LTD leaves a weight of 0 at 0, so the target's side reads a weight
    (a random access) only where `nz[k]`, a byte per incoming slot kept equal to weight > 0, says it
    is above 0.
    """
    # 1. refresh the rows the next burst delivers, 2. stamps
    half = scratch.size // 2
    carried = nl
    par = nt > 1 and nl >= parallel_from  # the thread choice of this burst (CPUPlasticity.step)
    # the fire set's span neurons (into nxt, free until step 4), so prefetched rows are read;
    # an int64, not a literal 0, so that _refresh_parallel is compiled for one signature
    c = np.int64(0)
    for j in range(fired.size):
        n = np.int64(fired[j]) - lo
        nxt[c] = n
        c += (n >= 0) & (n < span)
    if par and c >= 2 * nt * ROWS_AHEAD:
        joined = np.zeros(nt, np.int64)
        peaks = np.zeros(nt, np.float32)
        _refresh_parallel(nxt, c, nt, b, relevant, stamps, out_off, w, wq, index, unit, driven, scale, words_i, words_f,
                          wmax, scratch, joined, peaks)
        committed_max = peaks.max()
        for t in range(nt):
            ja = t * c // nt
            for j in range(ja, ja + joined[t]):
                lst[nl] = nxt[j]
                nl += 1
    else:
        k, committed_max = _refresh(nxt, 0, c, b, relevant, stamps, out_off, w, wq, index, unit, driven, scale,
                                    words_i, words_f, wmax, scratch[:half])
        lst[nl:nl + k] = nxt[:k]
        nl += k
    # 3. the window bytes of this burst (the list in id order: the rows below are then visited in
    # address order, which the caches and the page tables prefer)
    _order_list(lst, carried, nl, nxt)  # nxt is free until step 4 fills it
    for j in range(nl):
        n = lst[j]
        if b - np.int64(stamps[n]) < wmax:
            inwin[n >> 6] |= np.int64(1) << (n & 63)
    # 4. the update: who stays listed, then the sources' side for every listed neuron, then the
    # targets' side (one pass each: fewer arrays streamed at a time); split over `nt` threads when
    # the list is long (each synapse is written by one side, and each side's synapses by one thread)
    nn = 0
    for j in range(nl):
        n = lst[j]
        if b + 1 - np.int64(stamps[n]) < wmax:
            nxt[nn] = n
            nn += 1
    if par:
        _update_parallel(b, lst, nl, nt, stamps, inwin, out_off, in_off, in_si, in_pair, in_pos, nz, nz64, tgt,
                              pair, single, window, dp, dm, wmax, w, scratch)
    else:
        _update_sources(0, nl, b, lst, stamps, inwin, out_off, in_pos, nz, tgt, pair, single, window, dp, dm, wmax,
                             w, scratch[:half])
        _update_targets(0, nl, b, lst, stamps, inwin, in_off, in_si, in_pair, nz, nz64, single, window, dm, wmax, w,
                        scratch)
    for j in range(nl):  # the bitmap is 0 between bursts (only listed neurons set bits)
        inwin[lst[j] >> 6] = 0
    return nn, committed_max


@kernel()
def _burst_packed(b, fired, i64, i32, u8, nz64, f32, stamps, words_i, words_f, sc, scale):  # type: ignore[no-untyped-def]
    """`_burst` with its arrays packed by dtype (CPUPlasticity.pack: offsets in `sc`): a call with
    a dozen arguments instead of thirty costs ~10 µs less, which small brains feel every burst."""
    lo, span, nl, single, wmax, p, npairs, cur = sc[0], sc[1], sc[2], sc[3] != 0, sc[4], sc[5], sc[6], sc[7]
    s1 = span + 1
    out_off = i64[:s1]
    in_off = i64[s1:2 * s1]
    index = i64[2 * s1:2 * s1 + p]
    window = i64[2 * s1 + p:2 * s1 + p + npairs]
    lists = i64[2 * s1 + p + npairs:2 * s1 + p + npairs + 2 * span]
    at = 2 * s1 + p + npairs + 2 * span
    inwin = i64[at:at + (span + 63) // 64]
    scratch = i64[at + (span + 63) // 64:]
    lst = lists[cur * span:(cur + 1) * span]
    nxt = lists[(1 - cur) * span:(2 - cur) * span]
    in_si, in_pair, in_pos, tgt, pair = i32[:2 * p], i32[2 * p:3 * p], i32[3 * p:4 * p], i32[4 * p:5 * p], \
        i32[5 * p:6 * p]
    p8 = 8 * nz64.size  # nz first, padded to 8-byte words (nz64: the same bytes as u64 words)
    nz, relevant, driven = u8[:p], u8[p8:p8 + span], u8[p8 + span:]
    unit, dp, dm = f32[:p], f32[p:p + npairs], f32[p + npairs:p + 2 * npairs]
    w = f32[p + 2 * npairs:2 * p + 2 * npairs]
    wq = f32[2 * p + 2 * npairs:3 * p + 2 * npairs]
    nt = sc[8] if sc[10] != 0 else 1  # sc[10]: CPUPlasticity's thread choice for this burst
    return _burst(b, fired, lo, span, relevant, stamps, inwin, lst, nl, nxt, out_off, in_off, in_si, in_pair,
                  in_pos, nz, nz64, tgt, pair, single, window, dp, dm, wmax, w, wq, index, unit, driven, scale, words_i,
                  words_f, nt, sc[9], scratch)


class CPUPlasticity:
    """STDP on the CPU backend: owns the backend's (private) synapse table words and its scale.

    `step(b, fired)` runs at the end of each burst (the `plasticity` phase): requantise if the
    last update passed the cap, then `_burst` (commit, stamps, update) in one compiled call.
    """

    def __init__(self, layout: PlasticLayout, tables: SynapseTables) -> None:
        self.layout, self.tables = layout, tables
        L = layout
        self.lo, self.span = L.lo, L.span
        self.rel = np.ascontiguousarray(L.relevant)
        self.wmax = L.wmax
        self.single = len(L.pairs) == 1
        p, span = L.size, L.span
        # an incoming slot's (source, synapse) as one 8-byte record: the targets' side reads both at
        # random, one line instead of two
        in_si = np.stack([L.in_src - np.int32(L.lo), L.in_idx], axis=1).astype(np.int32).reshape(-1)
        self.i32 = np.concatenate([in_si, L.in_pair, L.in_pos, L.tgt - np.int32(L.lo), L.pair]).astype(np.int32)

        # ... then the two window lists and the update's scratch queues (two per thread)
        base = 2 * (span + 1) + p + len(L.pairs)
        self.i64 = np.concatenate([L.out_off, L.in_off, L.index, L.window.astype(np.int64),
                                   np.zeros(2 * span + (span + 63) // 64 + 2 * SCRATCH * threads(), np.int64)])
        self.lists = self.i64[base:base + 2 * span].reshape(2, span)
        self.inwin = self.i64[base + 2 * span:base + 2 * span + (span + 63) // 64]
        # the "weight above 0" bytes first, padded to whole 8-byte words: the targets' side reads
        # them a word at a time (nz64)
        p8 = 8 * ((p + 7) // 8)
        self.u8 = np.concatenate([np.zeros(p8, bool), L.relevant, L.driven]).astype(np.uint8)
        self.nz = self.u8[:p]
        self.nz64 = self.u8[:p8].view(np.uint64)
        self.f32 = np.concatenate([L.unit, L.dp, L.dm, np.zeros(2 * p, np.float32)]).astype(np.float32)
        self.w, self.wq = self.f32[p + 2 * len(L.pairs):2 * p + 2 * len(L.pairs)], self.f32[2 * p + 2 * len(L.pairs):]
        # lo, span, list size, one pair, widest window, plastic synapses, pairs, which list is current,
        # threads of the update, list size from which it uses them, whether it uses them this burst
        self.sc = np.array([L.lo, span, 0, int(self.single), L.wmax, p, len(L.pairs), 0, threads(), PARALLEL_LIST, 1],
                           np.int64)
        # a fork-join waits for its slowest thread to be scheduled: on cores busy with other work
        # the threads cost several times the update. Which is faster is measured as the CPU
        # backend's dense bursts do (ThreadChoice), for lists of PARALLEL_LIST or more
        from feagi_burst.backends.cpu import ThreadChoice

        self.choice: ThreadChoice | None = ThreadChoice() if threads() > 1 else None
        self.rq_bounds = np.zeros(0, np.int64)  # the threads' sources in a requantisation

    def attach(self, backend: Any, st: PlasticState | None = None, burst: int = 0) -> None:
        """Give `backend` its own table words for `st` (default: the initial state) and scale."""
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
        # the window list (the table's words are the committed weights: table_pairs)
        s = st.stamps.astype(np.int64)
        listed = np.flatnonzero((s != 0) & (burst + 1 - s < self.wmax) & self.rel).astype(np.int64)
        self.sc[7] = 0
        self.lists[0, : listed.size] = listed
        self.sc[2] = listed.size
        self.inwin[:] = 0
        self.nz[:] = st.weights[L.in_idx] > 0
        self.cap_value = 2.0**st.cap_exp
        self.burst = burst if burst > 0 else None

    def listed(self) -> np.ndarray:
        """Neuron ids in the window list the next burst starts from."""
        return self.lists[int(self.sc[7]), : int(self.sc[2])] + self.lo

    def _set_scale(self, s: int) -> None:
        self.scale = np.float32(2.0**s)
        self.backend.scale = np.float32(2.0**-s)

    def step(self, b: int, fired: np.ndarray) -> None:
        L, st = self.layout, self.st
        if fired.dtype != np.uint32 or not fired.flags.c_contiguous:
            fired = np.ascontiguousarray(fired, np.uint32)
        choice = self.choice if self.sc[2] >= PARALLEL_LIST and self.sc[8] > 1 else None
        parallel, t0 = True, 0.0
        if choice is not None:
            parallel = choice.next()
            self.sc[10] = int(parallel)
            t0 = time.perf_counter()
        nn, mx = _burst_packed(b, fired, self.i64, self.i32, self.u8, self.nz64,
                               self.f32, st.stamps, self.words_i, self.words_f, self.sc, self.scale)
        if choice is not None:
            choice.record(parallel, time.perf_counter() - t0)
        self.sc[2] = nn
        self.sc[7] = 1 - self.sc[7]
        self.burst = b
        if mx > self.cap_value:  # a commit passed the cap 2^cap_exp: a new cap, maybe a new scale
            st.cap_exp = k = cap_exponent(float(mx))
            self.cap_value = 2.0**k
            s_new = int(L.scale_table[k])
            if s_new < st.scale_exp:  # every word again, the plastic ones from the committed weights
                self._requantise(s_new)

    def _requantise(self, s_new: int) -> None:
        st = self.st
        L = self.layout
        nt = threads()
        if self.rq_bounds.size != nt + 1:  # made at the first requantisation (a search per source)
            self.rq_bounds = requantise_split(self.tables.offsets, L.index, nt)
        requantise_words(self.tables.offsets, self.words_i, self.words_f, L.driven_src, int(st.scale_exp - s_new),
                          L.index, st.committed, L.unit, L.driven, np.float32(2.0**s_new), self.rq_bounds)
        st.scale_exp = s_new
        st.scale_steps = tuple(st.scale_steps) + (s_new,)
        self._set_scale(s_new)

    def state(self) -> PlasticState:
        """The state after the last burst, its `committed` as every backend reports it (canonical;
        the CPU's weights are up to date after every burst: nothing to replay)."""
        b = getattr(self, "burst", None)
        return canonical(self.layout, self.st, b, settled=b or 0)


def attach_cpu(backend: Any, brain: Brain, tables: SynapseTables) -> CPUPlasticity | None:
    """The CPU backend's STDP runtime for `brain` (None without plastic synapses)."""
    layout = plastic_layout(brain, tables)
    if layout is None:
        return None
    rt = CPUPlasticity(layout, tables)
    rt.attach(backend)
    return rt
