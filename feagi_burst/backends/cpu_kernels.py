"""The CPU backend's compiled kernels (numba, compiled as feagi_burst/backends/compiled.py says:
exact f32, cached): propagation, fire candidates and FEAGI LIF's step. Synaptic sums are exact
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

from feagi_burst.backends.compiled import cttz, helper, kernel, prefetch


ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
ROWS_AHEAD = 2  # propagation prefetches the synapse rows this many fired neurons ahead (their offsets twice as far)
PREFETCH_ACC_FROM = 1 << 18  # neurons: a 1 MB i32 accumulator, this machine's L2 per core
CHUNK_BLOCKS = 8  # blocks of 64 neurons the dense step screens ahead of its full rule (_lif_run)
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
EXCITABILITY_ALWAYS = np.float32(0.999)
TWO_POW_32 = np.float32(4294967296.0)

def draw_mix(burst: int, seed: int) -> np.uint64:
    """The burst and seed term of rand(id, b) (SPEC.md), as the kernels take it."""
    return np.uint64((burst * 1597334677 + seed * 3266489917) & 0xFFFFFFFF)


# -- FEAGI LIF: SPEC.md section 2 step 3 ------------------------------------------------------------
# Helpers take scalars only: an array passed to an inlined helper costs two atomic reference
# count updates per call, more than a neuron's whole step.
@helper
def _draw(i, mix):  # type: ignore[no-untyped-def]
    """rand(id, b): the wrapping u32 hash of SPEC.md, done in u64 and masked."""
    x = (np.uint64(i) & M32) * np.uint64(2654435761) + mix
    s = ((x & M32) * np.uint64(747796405) + np.uint64(2891336453)) & M32
    w = (((s >> ((s >> np.uint64(28)) + np.uint64(4))) ^ s) * np.uint64(277803737)) & M32
    h = (w >> np.uint64(22)) ^ w
    return np.float32(h) / TWO_POW_32


NO_ACC = np.zeros((1, 1), np.int32)

# where _lif_run finds its neurons and their input
LIST_INPUT = 0  # ids[lo:hi] with inputs inp[lo:hi] and forced flags fflag (empty: none forced)
LIST_ACC = 1  # ids[lo:hi], input and forced mark from the accumulator
DENSE = 2  # every neuron in [lo, hi) that the accumulator marks as a candidate


@helper
def _screen(fast, base, width, acc, scale, thr, leak, accum, cfcl, area, mp_s, cfc_s,
            bu_s):  # type: ignore[no-untyped-def]
    """The screen of one block of DENSE mode (_lif_run): (mask of the neurons left for the full
    rule, candidates).

    The common candidate (no mark, no block on record, below threshold) cannot fire: it only
    takes the leak and mp_accumulate rules, which this loop applies to the block with selects, no
    branch (vectorised: a third of the neurons are not candidates, at random, and a branch per
    neuron would cost more than its step). The others (~1% in a synthetic brain: the driven ones)
    stay in acc and in the mask. `fast` (a constant where it is called: each call is compiled on
    its own) says the parameters are one value for every neuron and no rule can block or reset
    a neuron; else they are read through `area`, and a block on record or a consecutive-fire
    limit is handled by selects that change nothing where no rule sets them.
    """
    thr0 = thr[0]
    leak0 = leak[0]
    accum0 = accum[0]
    mask = np.uint64(0)
    nc = 0
    for hb in range(0, width, 32):  # 32-bit sums and masks: eight neurons a vector
        m32 = np.uint32(0)
        n32 = np.int32(0)
        for k in range(min(32, width - hb)):
            # (unsigned indices: a signed one gets numba's negative-index fix-up, which keeps
            # LLVM from vectorising the loop)
            i = np.uint64(base + hb + k)
            a = np.uint32(0) if fast else area[i]
            v = acc[i]
            cand = v != UNTOUCHED
            x = np.float32(v) * scale
            mp_old = mp_s[i]
            m = mp_old + (x if x > F32_ZERO else F32_ZERO)
            # (& and |, not `and` and `or`: no short cuts, so every load is plain)
            full = cand & ((v >= SENS_TEST) | ((thr0 if fast else thr[a]) <= m))
            if not fast:
                full = full | (cand & (bu_s[i] != 0))
            quiet = cand & (not full)
            lk = leak0 if fast else leak[a]
            ml = m * (F32_ONE - lk)
            mq = ml if lk != F32_ZERO else m
            mq = mq if (accum0 if fast else accum[a]) else F32_ZERO
            mp_s[i] = mq if quiet else mp_old
            if not fast:
                c = cfc_s[i]
                cfc_s[i] = 0 if quiet & (cfcl[a] > 0) else c
            acc[i] = v if full else UNTOUCHED
            n32 = np.int32(n32 + np.int32(cand))
            m32 = np.uint32(m32 | (np.uint32(full) << np.uint32(k)))
        mask |= np.uint64(m32) << np.uint64(hb)
        nc += n32
    return mask, nc


@helper
def _lif_run(mode, lo, hi, ids, inp, fflag, accs, sens, scale, b, mix, thr, tlim, leak, exc, refr, cfcl,
             snz, accum, area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, out_a, out_mp,
             masks):  # type: ignore[no-untyped-def]
    """FEAGI LIF (SPEC.md section 2, steps 2-3) for the neurons `mode` names, in their order.

    Operation for operation the rule of models/feagi_lif.py's docstring and of
    shaders/models/feagi_lif.wgsl. Input comes from accs[0], plus, in DENSE mode, the other
    threads' accumulators accs[1:]. Fired neurons go to out_a[lo + k] (their id, or their
    position in `ids` for LIST_INPUT) with their firing mp in out_mp; returns (fired, candidates).
    `masks` (u64, 2 * CHUNK_BLOCKS) is DENSE mode's scratch, any array in the others (unused):
    the caller's, so that a call allocates nothing.

    The parameters are tables read through `area` (FeagiLIF.kernel_args) and the three flags
    plain booleans: every brain calls the kernels with the same types, so each kernel is
    compiled once per machine. Only DENSE mode's screen has a copy for uniform parameters
    without blocks (`fast`), where vectorised table reads would cost more than the screen.
    """
    acc = accs[0]
    fast = thr.size == 1 and not may_block and not any_cfc
    n_acc = accs.shape[0]
    any_fflag = fflag.size > 0
    nf = 0
    nc = 0
    # DENSE: a chunk of CHUNK_BLOCKS blocks of 64 neurons is screened (below) one chunk ahead
    # of its full-rule pass, which then finds the lines its neurons need beyond what the screen
    # read (sens, cfc_s) prefetched: they are a few random lines a chunk, from memory
    step = 64 * CHUNK_BLOCKS if mode == DENSE else 64
    for cb in range(lo, hi + (step if mode == DENSE else 0), step):
        half = np.int64(((cb - lo) // step) & 1) * CHUNK_BLOCKS
        if mode == DENSE:
            for q in range(CHUNK_BLOCKS):
                base = cb + 64 * q
                if base >= hi:
                    masks[half + q] = 0
                    continue
                width = min(64, hi - base)
                # (unsigned indices, as in _screen)
                for t in range(1, n_acc):  # the other threads' sums into acc, as selects (vectorised)
                    for k in range(width):
                        u = np.uint64(base + k)
                        w = accs[t, u]
                        v = acc[u]
                        acc[u] = v if w == UNTOUCHED else (np.int32(0) if v == UNTOUCHED else v) + w
                        accs[t, u] = UNTOUCHED
                if fast:
                    mask, n32 = _screen(True, base, width, acc, scale, thr, leak, accum, cfcl, area, mp_s, cfc_s, bu_s)
                else:
                    mask, n32 = _screen(False, base, width, acc, scale, thr, leak, accum, cfcl, area, mp_s, cfc_s,
                                        bu_s)
                nc += n32
                masks[half + q] = mask
                while mask:  # what the full rule will read beyond the screen's lines
                    i = np.uint64(base) + cttz(mask)
                    mask &= mask - np.uint64(1)
                    prefetch(sens, i)
                    prefetch(cfc_s, i)
            if cb == lo:
                continue
            first = cb - step  # the full rule for the chunk before
            half = CHUNK_BLOCKS - half
            blocks = CHUNK_BLOCKS
        else:
            first = cb
            half = 0
            blocks = 1
        for q in range(blocks):
            base = first + 64 * q
            if mode == DENSE:
                mask = masks[half + q]
            else:
                mask = ALL_BITS >> np.uint64(64 - min(64, hi - base))
            while mask:
                j = base + np.int64(cttz(mask))
                mask &= mask - np.uint64(1)
                v = 0
                if mode == DENSE:
                    i = j
                    v = acc[i]
                else:
                    i = np.int64(ids[j])
                if mode == LIST_INPUT:
                    x = inp[j]
                    forced = any_fflag and fflag[j] != 0
                else:
                    if mode == LIST_ACC:
                        v = acc[i]
                    acc[i] = UNTOUCHED
                    forced = v >= FORCED_TEST
                    if forced:
                        v -= FORCED_FLAG
                    if v >= SENS_TEST:
                        x = np.float32(v - SENS_FLAG) * scale + sens[i]
                        sens[i] = F32_ZERO
                    else:
                        x = np.float32(v) * scale
                if mode != DENSE:
                    nc += 1

                # input: a summed input that is not positive adds nothing; a blocked neuron discards it
                gain = x if x > F32_ZERO else F32_ZERO
                active = True
                if may_block:
                    bu = np.int64(bu_s[i])
                    active = bu < b
                    if bu != 0 and active:
                        # a block ended since this neuron was last touched: its consecutive-fire reset
                        lim_e = cfcl[area[i]]
                        if lim_e > 0 and cfc_s[i] >= lim_e:
                            cfc_s[i] = 0
                        bu_s[i] = 0
                    if not active:
                        gain = F32_ZERO
                mp_old = mp_s[i]
                m = mp_old + gain
                above = active and thr[area[i]] <= m
                if above and any_limit:
                    tl = tlim[area[i]]
                    above = tl == F32_ZERO or m <= tl
                capped = False
                lim = 0
                cfc = 0
                if any_cfc:
                    lim = np.int64(cfcl[area[i]])
                    cfc = np.int64(cfc_s[i])
                    capped = above and lim > 0 and cfc >= lim
                fire = False
                if above and not capped:
                    ex = exc[area[i]]
                    if ex >= EXCITABILITY_ALWAYS:
                        fire = True
                    elif ex > F32_ZERO:
                        fire = _draw(i, mix) < ex
                fired_mp = m
                # did not fire (and not held by the consecutive-fire limit): leak; a blocked neuron keeps mp
                if not (fire or capped or not active):
                    lk = leak[area[i]]
                    if lk != F32_ZERO:
                        m = m * (F32_ONE - lk)
                # mp_accumulate = false: mp 0 at the end of the burst, unless forced (FEAGI's order)
                if fire or not (accum[area[i]] or forced):
                    m = F32_ZERO
                if m != mp_old or np.signbit(m) != np.signbit(mp_old):  # mostly unchanged: no write
                    mp_s[i] = m
                if any_cfc:
                    if active and (capped or (not fire and lim > 0)):
                        cfc = 0
                    if fire:
                        cfc = min(cfc, 65534) + 1  # saturate, never wrap
                    cfc_s[i] = cfc
                elif fire:
                    cfc = min(np.int64(cfc_s[i]), 65534) + 1
                    cfc_s[i] = cfc
                if may_block and fire:
                    # refractory, plus snooze at the consecutive-fire limit
                    lim = np.int64(cfcl[area[i]])
                    countdown = np.int64(refr[area[i]])
                    if lim > 0 and cfc >= lim:
                        countdown += np.int64(snz[area[i]])
                    bu_s[i] = (b + countdown) & 0xFFFFFFFF if countdown > 0 else 0
                if fire:
                    out_a[lo + nf] = j if mode == LIST_INPUT else i
                    out_mp[lo + nf] = fired_mp
                    nf += 1
    return nf, nc


@kernel()
def lif_step_list(ids, inp, fflag, b, mix, thr, tlim, leak, exc, refr, cfcl, snz, accum, area,
                  mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, out_pos, out_mp):  # type: ignore[no-untyped-def]
    """FEAGI LIF for the neurons `ids` (any order) with inputs `inp`, `fflag` marking the forced
    ones (or empty): the positions in `ids` that fired (ascending) and their firing mp go to
    out_pos / out_mp; returns how many."""
    nf, _ = _lif_run(LIST_INPUT, 0, ids.size, ids, inp, fflag, NO_ACC, inp, F32_ONE, b, mix, thr, tlim,
                     leak, exc, refr, cfcl, snz, accum, area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit,
                     out_pos, out_mp, out_pos)
    return nf


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


@kernel(parallel=True)
def step_parts(buf, cnt, pb, accs, sens, scale, b, mix, thr, tlim, leak, exc, refr, cfcl, snz, accum, area, mp_s,
               cfc_s, bu_s, may_block, any_cfc, any_limit, forced, out_ids, out_mp):  # type: ignore[no-untyped-def]
    """The second half of a dense burst (after scatter_events): thread k takes the k-th of nt
    runs of the target parts; for each part h it adds every thread's list of h into the
    accumulator accs[0] (only this thread writes the part's neurons, pb[h] to pb[h+1]: no atomics)
    and steps FEAGI LIF on the part. Integer sums: the same bits in any order. The fire set comes
    out in id order in out_ids/out_mp; returns (its size, candidates)."""
    nt = buf.shape[0]
    parts = buf.shape[1]
    res = np.zeros((parts, 2), np.int64)
    for k in prange(nt):
        acc = accs[0]
        masks = np.zeros(2 * CHUNK_BLOCKS, np.uint64)
        for h in range(k * parts // nt, (k + 1) * parts // nt):
            for q in range(nt):
                _apply(buf[q, h], cnt[q, h], acc)
            _mark_forced_range(acc, forced, pb[h], pb[h + 1])
            nf, nc = _lif_run(DENSE, pb[h], pb[h + 1], out_ids, sens, out_ids, accs, sens, scale, b, mix, thr, tlim,
                              leak, exc, refr, cfcl, snz, accum, area, mp_s, cfc_s, bu_s, may_block, any_cfc,
                              any_limit, out_ids, out_mp, masks)
            res[h, 0] = nf
            res[h, 1] = nc
    total = res[0, 0]
    for h in range(1, parts):
        lo = pb[h]
        for j in range(res[h, 0]):
            out_ids[total + j] = out_ids[lo + j]
            out_mp[total + j] = out_mp[lo + j]
        total += res[h, 0]
    return total, res[:, 1].sum()

@helper
def _mark_forced(accs, forced):  # type: ignore[no-untyped-def]
    """Mark the forced candidates (touched in any accumulator) in accs[0]: the mp_accumulate rule
    reads it."""
    for j in range(forced.size):
        f = forced[j]
        touched = False
        for t in range(accs.shape[0]):
            touched = touched or accs[t, f] != UNTOUCHED
        if touched:
            v = accs[0, f]
            accs[0, f] = (np.int32(0) if v == UNTOUCHED else v) + FORCED_FLAG


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


# -- FEAGI LIF over the candidates, fused with reading their input -----------------------------------
@kernel()
def step_sparse(cand, nc, accs, sens, scale, b, mix, thr, tlim, leak, exc, refr, cfcl, snz, accum,
                area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, forced,
                out_ids, out_mp):  # type: ignore[no-untyped-def]
    """FEAGI LIF for the `nc` listed candidates (their input in accs[0]); the fire set, sorted, in
    out_ids/out_mp; its size."""
    _mark_forced(accs[:1], forced)
    nf, _ = _lif_run(LIST_ACC, 0, nc, cand, sens, cand, accs[:1], sens, scale, b, mix, thr, tlim, leak, exc,
                     refr, cfcl, snz, accum, area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, out_ids,
                     out_mp, out_ids)
    if nf > 1:
        order = np.argsort(out_ids[:nf])
        ids = out_ids[:nf][order]
        mps = out_mp[:nf][order]
        out_ids[:nf] = ids
        out_mp[:nf] = mps
    return nf


@kernel(parallel=True)
def step_dense(n, nt, accs, sens, scale, b, mix, thr, tlim, leak, exc, refr, cfcl, snz, accum,
               area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, forced, out_ids, out_mp):  # type: ignore[no-untyped-def]
    """FEAGI LIF for every candidate (input summed over the accumulators `accs`), thread k on the
    k-th of `nt` ranges of neurons. The fire set comes out in id order in out_ids/out_mp; returns
    (its size, candidates)."""
    _mark_forced(accs, forced)
    fired = np.zeros(nt, np.int64)
    cands = np.zeros(nt, np.int64)
    for k in prange(nt):
        masks = np.zeros(2 * CHUNK_BLOCKS, np.uint64)
        nf, nc = _lif_run(DENSE, k * n // nt, (k + 1) * n // nt, out_ids, sens, out_ids, accs, sens, scale, b, mix,
                          thr, tlim, leak, exc, refr, cfcl, snz, accum, area, mp_s, cfc_s, bu_s, may_block,
                          any_cfc, any_limit, out_ids, out_mp, masks)
        fired[k] = nf
        cands[k] = nc
    total = fired[0]
    for k in range(1, nt):
        lo = k * n // nt
        for j in range(fired[k]):
            out_ids[total + j] = out_ids[lo + j]
            out_mp[total + j] = out_mp[lo + j]
        total += fired[k]
    return total, cands.sum()


@kernel()
def step_dense_serial(n, accs, sens, scale, b, mix, thr, tlim, leak, exc, refr, cfcl, snz, accum,
                      area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, forced, out_ids, out_mp):  # type: ignore[no-untyped-def]
    """step_dense on one thread."""
    _mark_forced(accs, forced)
    return _lif_run(DENSE, 0, n, out_ids, sens, out_ids, accs, sens, scale, b, mix, thr, tlim, leak, exc,
                    refr, cfcl, snz, accum, area, mp_s, cfc_s, bu_s, may_block, any_cfc, any_limit, out_ids, out_mp,
                    np.zeros(2 * CHUNK_BLOCKS, np.uint64))
