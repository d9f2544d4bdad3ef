"""FEAGI LIF's compiled step on the CPU backend (SPEC.md section 2, steps 2-3): the rule written
out neuron by neuron (`_lif_run`), fused with reading each candidate's input from the accumulator
that cpu_kernels.py's propagation filled (its word encoding: UNTOUCHED, SENS_FLAG, FORCED_FLAG),
over a candidate list (`step_sparse`), every neuron (`step_dense`, `step_dense_serial`), the
threaded dense burst's parts (`step_parts`), or a model step's neurons (`lif_step_list`).

The parameters reach every kernel as tables read at [area[i]] and the rule flags as booleans
(FeagiLIF.kernel_args): one signature, so each kernel is compiled once per machine. Helpers that
run per neuron take scalars only: an array passed to an inlined helper costs two atomic reference
count updates per call, more than a neuron's whole step.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import cttz, helper, kernel, prefetch
from feagi_burst.backends.cpu_kernels import (ALL_BITS, F32_ONE, F32_ZERO, FORCED_FLAG, FORCED_TEST, M32, SENS_FLAG,
                                              SENS_TEST, UNTOUCHED, _apply, _mark_forced_range)

CHUNK_BLOCKS = 8  # blocks of 64 neurons the dense step screens ahead of its full rule (_lif_run)
EXCITABILITY_ALWAYS = np.float32(0.999)
TWO_POW_32 = np.float32(4294967296.0)


def draw_mix(burst: int, seed: int) -> np.uint64:
    """The burst and seed term of rand(id, b) (SPEC.md), as the kernels take it."""
    return np.uint64((burst * 1597334677 + seed * 3266489917) & 0xFFFFFFFF)


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


# -- the kernels the CPU backend calls for FEAGI LIF alone: the step fused with reading the input --
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
