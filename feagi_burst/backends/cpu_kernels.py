"""The CPU backend's compiled kernels (numba, compiled as feagi_burst/backends/compiled.py says:
exact f32, cached): sensory input and synaptic propagation into the accumulator, which makes the
fire candidates (FEAGI LIF's step, which reads it, is cpu_lif.py). Synaptic sums are exact
integers, so splitting them across threads cannot change a bit.

The synaptic accumulator `acc` (i32, one per neuron) is kept at UNTOUCHED between bursts. A
neuron's first event of a burst turns it into 0 + contribution, so "is a candidate" and "summed
input" live in one word and one random write per event. Synaptic sums stay below 2**24 in
magnitude (fixed_point.py), which leaves room for two marks: SENS_FLAG (a sensory input, whose
f32 sum waits in `sens`) and FORCED_FLAG (a candidate forced to fire this burst). Whoever reads a
candidate resets both words.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import helper, kernel, prefetch


ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
ROWS_AHEAD = 2  # propagation prefetches the synapse rows this many fired neurons ahead (their offsets twice as far)
PREFETCH_ACC_FROM = 1 << 18  # neurons: a 1 MB i32 accumulator, this machine's L2 per core
SENS_AHEAD = 16  # sensory inputs (and fired rows' offsets) staged this many ahead of their prefetch
EVENTS_AHEAD = 48  # and the accumulator word of the event this many events ahead (a random line each)


@helper
def _prefetch_row(fired, j, offsets, pairs):  # type: ignore[no-untyped-def]
    """Prefetch the offsets of fired[j + 2*ROWS_AHEAD] and the synapse row of fired[j + ROWS_AHEAD]:
    rows lie at random places, and waiting for each one costs more than its events."""
    m = fired.size
    if j + 2 * ROWS_AHEAD < m:
        prefetch(offsets, np.int64(fired[j + 2 * ROWS_AHEAD]))
    if j + ROWS_AHEAD < m:
        s = np.int64(fired[j + ROWS_AHEAD])
        a, e = offsets[s], offsets[s + 1]
        for k in range(a, e, 8):  # one prefetch per 64-byte line
            prefetch(pairs, k)
        if e > a:
            prefetch(pairs, e - 1)


@helper
def _next_row(fired, j, j1, offsets):  # type: ignore[no-untyped-def]
    """The first fired[j'] (j <= j' < j1) with synapses, as (j', first, end synapse); (j1, 0, 0) if none."""
    while j < j1:
        s = np.int64(fired[j])
        a, e = offsets[s], offsets[s + 1]
        if e > a:
            return j, a, e
        j += 1
    return j1, np.int64(0), np.int64(0)


@helper
def _event_cursor(j0, j1, fired, offsets, pairs, acc):  # type: ignore[no-untyped-def]
    """A prefetch cursor (row fired[jp], synapse kp < ep) EVENTS_AHEAD events past the first event
    of fired[j0:j1], those prefetched.

    The propagation loops then prefetch the accumulator word of the cursor's event and move it on,
    once per event (written out in each loop: a helper taking arrays costs two atomic reference
    count updates per array and call, more than the event): the targets are random, a 4 MB
    accumulator (1M neurons) is not in L2, and out-of-order execution alone keeps too few of its
    misses in flight. An accumulator that fits in L2 gets no cursor (an empty one: the loops'
    test then always fails, predictably): prefetching it only costs."""
    if acc.size < PREFETCH_ACC_FROM:
        return j1, np.int64(0), np.int64(0)
    jp, kp, ep = _next_row(fired, j0, j1, offsets)
    for _ in range(EVENTS_AHEAD):
        if kp < ep:
            prefetch(acc, np.int64(pairs[kp] & 0xFFFFFFFF))
            kp += 1
            if kp == ep:
                jp, kp, ep = _next_row(fired, jp + 1, j1, offsets)
    return jp, kp, ep

UNTOUCHED = np.int32(-(1 << 30))
SENS_FLAG = np.int32(1 << 26)
SENS_TEST = np.int32(1 << 25)
FORCED_FLAG = np.int32(1 << 28)
FORCED_TEST = np.int32(1 << 27)
DUMMY_SLOTS = 32  # per thread, after the neurons: where input_bounds drops others' synapses
M32 = np.uint64(0xFFFFFFFF)
F32_ZERO = np.float32(0.0)
F32_ONE = np.float32(1.0)

# -- input: sensory potentials and synaptic events into the accumulator ------------------------------
@helper
def _stage_sensory(acc, sens, ext_ids, ext_val, power, drive_order, drive_start, drive_count,
                   drive_pot, cand):  # type: ignore[no-untyped-def]
    """Sensory input in SPEC order (external, power neuron, drive): per neuron an f32 sum from 0.
    Newly touched neurons are listed in `cand`; returns how many."""
    nc = 0
    ne = ext_ids.size
    np_ = 1 if power >= 0 else 0
    nd = drive_order.size
    total = ne + np_ + drive_count
    # the neurons are random lines of acc and sens, in memory for a large brain: each is
    # prefetched SENS_AHEAD inputs early, or the loop waits for every one in turn
    ahead = SENS_AHEAD if acc.size >= PREFETCH_ACC_FROM else 0
    for j in range(total + ahead):
        jj = j - ahead
        if ahead and j < total:
            if j < ne:
                ip = np.int64(ext_ids[j])
            elif j < ne + np_:
                ip = np.int64(power)
            else:
                d = drive_start + j - ne - np_  # drive_start < nd and drive_count <= nd
                ip = np.int64(drive_order[d - nd if d >= nd else d])
            prefetch(acc, ip)
            prefetch(sens, ip)
        if jj < 0:
            continue
        if jj < ne:
            i = np.int64(ext_ids[jj])
            val = ext_val[jj]
        elif jj < ne + np_:
            i = np.int64(power)
            val = F32_ONE
        else:
            d = drive_start + jj - ne - np_
            i = np.int64(drive_order[d - nd if d >= nd else d])
            val = drive_pot
        v = acc[i]
        if v == UNTOUCHED:
            cand[nc] = i
            nc += 1
            acc[i] = SENS_FLAG
        elif v < SENS_TEST:
            acc[i] = v + SENS_FLAG
        sens[i] += val
    return nc


@helper
def _driven_q(mp, factor, cap):  # type: ignore[no-untyped-def]
    """fixed_point.quantise_mp_driven for one synapse: rint(clamp(mp) * factor) in f32, as i32."""
    m = F32_ZERO if np.isnan(mp) else mp
    m = min(max(m, -cap), cap)
    return np.int32(np.rint(m * factor))


@kernel()
def propagate_sparse(fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven,
                     ext_ids, ext_val, power, drive_order, drive_start, drive_count, drive_pot,
                     acc, sens, cand, dense_from):  # type: ignore[no-untyped-def]
    """Step 1 of SPEC.md into `acc`/`sens`, listing candidates in `cand` in first-touch order.

    When the events reach `dense_from` (0: never) only the sensory input is staged and -1 - events
    is returned: the caller propagates (propagate_dense, or scatter_events and step_parts) and
    steps every neuron. Otherwise the number of candidates.
    """
    nc = _stage_sensory(acc, sens, ext_ids, ext_val, power, drive_order, drive_start, drive_count,
                        drive_pot, cand)
    if dense_from > 0:
        events = 0
        for j in range(fired.size):
            if j + SENS_AHEAD < fired.size:  # random offsets, as above
                prefetch(offsets, np.int64(fired[j + SENS_AHEAD]))
            s = np.int64(fired[j])
            events += offsets[s + 1] - offsets[s]
        if events >= dense_from:
            return -1 - events
    m = fired.size
    jp, kp, ep = _event_cursor(0, m, fired, offsets, pairs, acc)
    for j in range(m):
        _prefetch_row(fired, j, offsets, pairs)
        s = np.int64(fired[j])
        a, e = offsets[s], offsets[s + 1]
        if any_driven and driven_area[src_area[s]]:
            cap = caps[src_area[s]]
            mp = fired_mp[j]
            for k in range(a, e):
                if kp < ep:  # the accumulator EVENTS_AHEAD events on (_event_cursor)
                    prefetch(acc, np.int64(pairs[kp] & 0xFFFFFFFF))
                    kp += 1
                    if kp == ep:
                        jp, kp, ep = _next_row(fired, jp + 1, m, offsets)
                t = pairs[k] & 0xFFFFFFFF
                v = acc[t]
                if v == UNTOUCHED:
                    cand[nc] = t
                    nc += 1
                    v = 0
                acc[t] = v + _driven_q(mp, pairs_f[2 * k + 1], cap)
        else:
            for k in range(a, e):
                if kp < ep:  # the accumulator EVENTS_AHEAD events on (_event_cursor)
                    prefetch(acc, np.int64(pairs[kp] & 0xFFFFFFFF))
                    kp += 1
                    if kp == ep:
                        jp, kp, ep = _next_row(fired, jp + 1, m, offsets)
                p = pairs[k]
                t = p & 0xFFFFFFFF
                v = acc[t]
                if v == UNTOUCHED:
                    cand[nc] = t
                    nc += 1
                    v = 0
                acc[t] = v + np.int32(p >> 32)
    return nc


@helper
def _propagate_rows(j0, j1, fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven,
                    acc):  # type: ignore[no-untyped-def]
    """Every synapse of fired[j0:j1] into `acc`."""
    jp, kp, ep = _event_cursor(j0, j1, fired, offsets, pairs, acc)
    for j in range(j0, j1):
        _prefetch_row(fired, j, offsets, pairs)
        s = np.int64(fired[j])
        a, e = offsets[s], offsets[s + 1]
        if any_driven and driven_area[src_area[s]]:
            cap = caps[src_area[s]]
            mp = fired_mp[j]
            for k in range(a, e):
                if kp < ep:  # the accumulator EVENTS_AHEAD events on (_event_cursor)
                    prefetch(acc, np.int64(pairs[kp] & 0xFFFFFFFF))
                    kp += 1
                    if kp == ep:
                        jp, kp, ep = _next_row(fired, jp + 1, j1, offsets)
                t = pairs[k] & 0xFFFFFFFF
                v = acc[t]
                acc[t] = (np.int32(0) if v == UNTOUCHED else v) + _driven_q(mp, pairs_f[2 * k + 1], cap)
        else:
            for k in range(a, e):
                if kp < ep:  # the accumulator EVENTS_AHEAD events on (_event_cursor)
                    prefetch(acc, np.int64(pairs[kp] & 0xFFFFFFFF))
                    kp += 1
                    if kp == ep:
                        jp, kp, ep = _next_row(fired, jp + 1, j1, offsets)
                p = pairs[k]
                t = p & 0xFFFFFFFF
                v = acc[t]
                acc[t] = (np.int32(0) if v == UNTOUCHED else v) + np.int32(p >> 32)


@kernel(parallel=True)
def propagate_dense(fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven, accs,
                    nt):  # type: ignore[no-untyped-def]
    """All events of the fire set, thread k taking the k-th of `nt` runs of fired neurons with
    about equal numbers of synapses, into its own accumulator accs[k] (integer sums: the step
    adds them up, in any order, to the same)."""
    bounds = _source_bounds(fired, offsets, nt)
    for k in prange(nt):
        _propagate_rows(bounds[k], bounds[k + 1], fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area,
                        caps, any_driven, accs[k])


@kernel()
def propagate_dense_serial(fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven,
                           acc):  # type: ignore[no-untyped-def]
    """propagate_dense on one thread (small brains: no thread hand-off), into one accumulator."""
    _propagate_rows(0, fired.size, fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps,
                    any_driven, acc)


# -- dense bursts of large brains: events bucketed by target part, then applied and stepped ----------
@helper
def _event_word(p, mp, factor, cap, driven):  # type: ignore[no-untyped-def]
    """A synapse's (contribution << 32 | target) word: its table word, or for an mp-driven source
    its quantised contribution in place of the factor's bits."""
    if driven:
        return (np.int64(_driven_q(mp, factor, cap)) << 32) | (p & 0xFFFFFFFF)
    return p


@helper
def _scatter(j0, j1, fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven,
             mul, buf, cnt):  # type: ignore[no-untyped-def]
    """Every event of fired[j0:j1], as its word (_event_word), appended to the list buf[h] of its
    target's part h = (target * mul) >> 32 (one part when mul is 0), the lists' lengths in cnt.
    Reading rows in order and writing lists is streaming work; the random accumulator writes come
    later (_apply), each list's over a part of the accumulator."""
    parts = buf.shape[0]
    c0 = cnt[0]
    c1 = cnt[1] if parts > 1 else np.int64(0)
    u0 = np.uint64(c0)  # parts == 2: the cursors, unsigned
    u1 = np.uint64(c1)
    flat = buf.reshape(buf.size)
    stride = np.uint64(buf.shape[1])
    # the second part's first target: (t * mul) >> 32 is 1 exactly from here on (t < n)
    split = (np.uint64(1 << 32) + np.uint64(mul) - np.uint64(1)) // np.uint64(max(mul, 1))
    for j in range(j0, j1):
        if j + 2 * ROWS_AHEAD < j1:
            prefetch(offsets, np.int64(fired[j + 2 * ROWS_AHEAD]))
        if j + ROWS_AHEAD < j1:
            s2 = np.int64(fired[j + ROWS_AHEAD])
            a2, e2 = offsets[s2], offsets[s2 + 1]
            for k in range(a2, e2, 8):
                prefetch(pairs, k)
            if e2 > a2:
                prefetch(pairs, e2 - 1)
        s = np.int64(fired[j])
        a, e = offsets[s], offsets[s + 1]
        driven = any_driven and driven_area[src_area[s]]
        cap = caps[src_area[s]] if driven else F32_ZERO
        mp = fired_mp[j]
        if parts == 1:
            if driven:
                for k in range(a, e):
                    buf[0, c0] = _event_word(pairs[k], mp, pairs_f[2 * k + 1], cap, True)
                    c0 += 1
            else:
                for k in range(a, e):
                    buf[0, c0] = pairs[k]
                    c0 += 1
        elif parts == 2:
            # two lists, cursors in registers (no store-to-load chain through cnt); the part is
            # a compare and the slot a select (no multiplies); unsigned indices (no negative-
            # index fix-ups); one loop for each kind of source (no test per event)
            if driven:
                for k in range(np.uint64(a), np.uint64(e)):
                    w = _event_word(pairs[k], mp, pairs_f[np.uint64(2) * k + np.uint64(1)], cap, True)
                    second = (np.uint64(w) & M32) >= split
                    flat[(stride + u1) if second else u0] = w
                    u0 += np.uint64(not second)
                    u1 += np.uint64(second)
            else:
                for k in range(np.uint64(a), np.uint64(e)):
                    w = pairs[k]
                    second = (np.uint64(w) & M32) >= split
                    flat[(stride + u1) if second else u0] = w
                    u0 += np.uint64(not second)
                    u1 += np.uint64(second)
        else:
            for k in range(a, e):
                w = _event_word(pairs[k], mp, pairs_f[2 * k + 1], cap, driven)
                h = ((w & 0xFFFFFFFF) * mul) >> 32
                c = cnt[h]
                buf[h, c] = w
                cnt[h] = c + 1
    if parts == 1:
        cnt[0] = c0
    elif parts == 2:
        cnt[0] = np.int64(u0)
        cnt[1] = np.int64(u1)


@helper
def _apply(words, count, acc):  # type: ignore[no-untyped-def]
    """Add listed event words into the accumulator, each target's word prefetched EVENTS_AHEAD
    events early when the accumulator does not fit in L2."""
    ahead = EVENTS_AHEAD if acc.size >= PREFETCH_ACC_FROM else 0
    for c in range(min(ahead, count)):
        prefetch(acc, np.int64(words[c] & 0xFFFFFFFF))
    for c in range(count):
        if c + ahead < count:
            prefetch(acc, np.int64(words[c + ahead] & 0xFFFFFFFF))
        w = words[c]
        t = w & 0xFFFFFFFF
        v = acc[t]
        acc[t] = (np.int32(0) if v == UNTOUCHED else v) + np.int32(w >> 32)


@helper
def _mark_forced_range(acc, forced, lo, hi):  # type: ignore[no-untyped-def]
    """_mark_forced for one accumulator and the (sorted) forced ids in [lo, hi)."""
    j = np.searchsorted(forced, lo)
    while j < forced.size and forced[j] < hi:
        f = forced[j]
        v = acc[f]
        if v != UNTOUCHED:
            acc[f] = v + FORCED_FLAG
        j += 1


@helper
def _source_bounds(fired, offsets, nt):  # type: ignore[no-untyped-def]
    """Split fired into `nt` runs with about equal numbers of synapses: run k is [bounds[k], bounds[k+1])."""
    m = fired.size
    cum = np.empty(m + 1, np.int64)
    cum[0] = 0
    for j in range(m):
        s = np.int64(fired[j])
        cum[j + 1] = cum[j] + offsets[s + 1] - offsets[s]
    bounds = np.searchsorted(cum, np.arange(nt + 1) * (cum[m] / nt))
    bounds[0] = 0
    bounds[nt] = m
    return bounds


def part_mul(n: int, parts: int) -> int:
    """The multiplier of target t's part (t * mul) >> 32, parts of about n / parts neurons."""
    return 0 if parts <= 1 else (parts << 32) // n


def part_bounds(n: int, mul: int, parts: int) -> np.ndarray:
    """First neuron of each part under part_mul, and n."""
    t = np.arange(n, dtype=np.uint64)
    h = (t * np.uint64(mul)) >> np.uint64(32) if mul else np.zeros(n, np.uint64)
    return np.searchsorted(h, np.arange(parts + 1, dtype=np.uint64)).astype(np.int64)


@kernel(parallel=True)
def scatter_events(fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps, any_driven, mul, buf,
                   cnt):  # type: ignore[no-untyped-def]
    """The first half of a dense burst on nt = buf.shape[0] threads (step_parts is the second):
    thread k lists the events of the k-th of nt runs of fired neurons with about equal numbers of
    synapses, by target part (_scatter: buf[k, h], cnt[k, h] of them). Each thread reads only
    its share of the synapse rows and writes only its own lists."""
    nt = buf.shape[0]
    bounds = _source_bounds(fired, offsets, nt)
    for k in prange(nt):
        cnt[k, :] = 0
        _scatter(bounds[k], bounds[k + 1], fired, fired_mp, offsets, pairs, pairs_f, src_area, driven_area, caps,
                 any_driven, mul, buf[k], cnt[k])


@kernel()
def gather_inputs(cand, nc, acc, sens, scale, out):  # type: ignore[no-untyped-def]
    """Inputs of the listed candidates (any neuron model), resetting the accumulator."""
    for j in range(nc):
        i = cand[j]
        v = acc[i]
        acc[i] = UNTOUCHED
        if v >= SENS_TEST:
            out[j] = np.float32(v - SENS_FLAG) * scale + sens[i]
            sens[i] = F32_ZERO
        else:
            out[j] = np.float32(v) * scale


@kernel()
def merge_forced(fired, fired_mp, forced, forced_mp, extra, ids, mps, blocked_until, b):  # type: ignore[no-untyped-def]
    """The fire set (`fired` sorted) with the forced neurons (unique) that did not fire by
    themselves merged in, in id order, each with its stimulation's potential as firing mp, into
    ids[:c], mps[:c] (room for both sets); returns c. extra[k] says forced[k] was added. With
    `blocked_until` (FEAGI LIF fused into the burst, its blocks possible) an added neuron inside its
    refractory or snooze block gets the block one burst longer: FeagiLIF.forced, here rather than a
    second call. One compiled call into buffers the caller made: numpy's search, concatenations and
    sort took ~25 µs a burst on small arrays, more than a small genome's whole burst, and arrays made
    and returned by the kernel cost a few µs more than the merge itself."""
    order = np.argsort(forced)
    n, m = fired.size, forced.size
    i = 0
    c = 0
    for j in range(m):
        k = order[j]
        f = forced[k]
        while i < n and fired[i] < f:
            ids[c] = fired[i]
            mps[c] = fired_mp[i]
            c += 1
            i += 1
        extra[k] = not (i < n and fired[i] == f)
        if extra[k]:
            ids[c] = f
            mps[c] = forced_mp[k]
            c += 1
            if blocked_until.size and np.int64(blocked_until[f]) >= b:
                blocked_until[f] += np.uint32(1)
    while i < n:
        ids[c] = fired[i]
        mps[c] = fired_mp[i]
        c += 1
        i += 1
    return c
