"""Compiled (numba) kernels that build brains: a genome's vector morphologies and its synapses in
source order (genome/morphology.py, genome/expand.py), fixed_point.compile_tables' synapse counts,
input bounds and quantisation, and synthetic.synthetic_brain's fills; plus page-size control for the
large arrays they fill. Exact as the burst kernels are (feagi_burst/backends/compiled.py)."""
from __future__ import annotations

import mmap

import numpy as np
from numba import prange

from feagi_burst.backends.compiled import helper, kernel, prefetch


@kernel(parallel=True)
def synapse_counts(source, n, nt):  # type: ignore[no-untyped-def]
    """Outgoing synapses per neuron (np.bincount(source, minlength=n)) on `nt` threads, and
    whether `source` is sorted (the CSR's order, which the other build kernels walk)."""
    parts = np.zeros((nt, n), np.int64)
    unsorted = np.zeros(nt, np.int64)
    s = source.size
    for t in prange(nt):
        lo, hi = t * s // nt, (t + 1) * s // nt
        for k in range(lo, hi):
            parts[t, source[k]] += 1
            if k > 0 and source[k] < source[k - 1]:
                unsorted[t] += 1
    out = np.zeros(n, np.int64)
    for i in prange(n):
        c = 0
        for t in range(nt):
            c += parts[t, i]
        out[i] = c
    return out, unsorted.sum() == 0


@helper
def _vector_row(s, sdim, ddim, vec, out, at):  # type: ignore[no-untyped-def]
    """Source voxel s's pairs (s, s + v) for the vectors v in order, destinations outside ddim
    dropped: written at out[at:] when out has rows (else only counted); returns how many."""
    yz = sdim[1] * sdim[2]
    x = s // yz
    y = (s - x * yz) // sdim[2]
    z = s - x * yz - y * sdim[2]
    c = 0
    for j in range(vec.shape[0]):
        dx, dy, dz = x + vec[j, 0], y + vec[j, 1], z + vec[j, 2]
        if 0 <= dx < ddim[0] and 0 <= dy < ddim[1] and 0 <= dz < ddim[2]:
            if out.shape[0]:
                out[at + c, 0] = s
                out[at + c, 1] = (dx * ddim[1] + dy) * ddim[2] + dz
            c += 1
    return c


@kernel(parallel=True)
def vector_pairs(sdim, ddim, vec, nt):  # type: ignore[no-untyped-def]
    """Voxel pairs (source, destination index) of a vectors morphology, source-major (each source
    voxel's pairs in vector order), on `nt` threads: each counts its slice of the sources, then
    fills its part of the one output."""
    n = sdim[0] * sdim[1] * sdim[2]
    none = np.zeros((0, 2), np.int64)
    counts = np.zeros(nt + 1, np.int64)
    for t in prange(nt):
        c = 0
        for s in range(t * n // nt, (t + 1) * n // nt):
            c += _vector_row(s, sdim, ddim, vec, none, 0)
        counts[t + 1] = c
    starts = np.cumsum(counts)
    out = np.empty((starts[nt], 2), np.int64)
    for t in prange(nt):
        at = starts[t]
        for s in range(t * n // nt, (t + 1) * n // nt):
            at += _vector_row(s, sdim, ddim, vec, out, at)
    return out


@kernel()
def count_rows(pairs, first_src, k_src, offsets):  # type: ignore[no-untyped-def]
    """Add one rule's synapses to the row sizes offsets[s + 1] of their source neurons s: its voxel
    pair (a, b) makes one synapse from each of the k_src neurons of source voxel a."""
    for i in range(pairs.shape[0]):
        s0 = first_src + pairs[i, 0] * k_src
        for k in range(k_src):
            offsets[s0 + k + 1] += 1


@kernel()
def place_rows(pairs, first_src, k_src, first_dst, k_dst, w, inh, cursor, source, target, weight,
               inhibitory):  # type: ignore[no-untyped-def]
    """Write one rule's synapses at their source neurons' cursors (moving them on), in pair order:
    rules placed in order after count_rows fill each row as a stable sort by source would. A pair
    (a, b) reaches destination voxel b's last neuron."""
    for i in range(pairs.shape[0]):
        s0 = first_src + pairs[i, 0] * k_src
        receiver = first_dst + pairs[i, 1] * k_dst + k_dst - 1
        for k in range(k_src):
            at = cursor[s0 + k]
            cursor[s0 + k] = at + 1
            source[at] = s0 + k
            target[at] = receiver
            weight[at] = w
            inhibitory[at] = inh


@helper
def _row_of(offsets, k):  # type: ignore[no-untyped-def]
    """The source neuron whose row holds synapse k (the last row starting at or before it)."""
    return np.searchsorted(offsets, k, side="right") - 1


BOUNDS_AHEAD = 16  # input_bounds prefetches the partial sum of the synapse this many synapses ahead


@kernel(parallel=True)
def input_bounds(offsets, target, weight, bound_unit, n, chunk, nt):  # type: ignore[no-untyped-def]
    """Per target: the f64 sum of weight * bound_unit[source], summed exactly as
    `sum over chunks of np.bincount(target[chunk], weights=...)` does (each chunk in synapse order
    from 0, then the chunks in order), and the fan-in. `nt` chunks at a time, one per thread, each
    into its own partial sums (rows walked through `offsets`: no source array to read).

    A thread's partial sum and fan-in count of a target sit side by side (part[t, 2i], part[t,
    2i + 1], the count an exact f64 below 2**53), so each synapse touches one random cache line,
    not two, and that line is prefetched BOUNDS_AHEAD synapses early: the targets are random and
    the sums of 1M neurons are not in L2."""
    s = target.size
    nchunks = (s + chunk - 1) // chunk
    part = np.zeros((nt, 2 * n), np.float64)
    bound = np.zeros(n, np.float64)
    fan_in = np.zeros(n, np.int64)
    for first in range(0, nchunks, nt):
        for t in prange(nt):
            c = first + t
            if c < nchunks:
                acc = part[t]
                lo, hi = c * chunk, min(s, (c + 1) * chunk)
                ahead = min(hi, lo + BOUNDS_AHEAD)
                for kk in range(lo, ahead):
                    prefetch(acc, 2 * np.int64(target[kk]))
                src = _row_of(offsets, lo)
                k = lo
                while k < hi:
                    end = min(hi, offsets[src + 1])
                    bu = bound_unit[src]
                    for kk in range(k, end):
                        if kk + BOUNDS_AHEAD < hi:
                            prefetch(acc, 2 * np.int64(target[kk + BOUNDS_AHEAD]))
                        tg = 2 * np.int64(target[kk])
                        acc[tg] += np.float64(weight[kk]) * bu
                        acc[tg + 1] += 1.0
                    k = end
                    src += 1
        for i in prange(n):  # the chunks' sums, in chunk order
            v = bound[i]
            f = fan_in[i]
            for t in range(nt):
                if first + t < nchunks:
                    v += part[t, 2 * i]
                    f += np.int64(part[t, 2 * i + 1])
                    part[t, 2 * i] = 0.0
                    part[t, 2 * i + 1] = 0.0
            bound[i] = v
            fan_in[i] = f
    return bound, fan_in


SMALL_PAGES_FROM = 64 << 20  # bytes


def small_page_empty(n: int, dtype: type) -> np.ndarray:
    """np.empty(n, dtype) in memory the kernel backs with 4 KiB pages, for the large arrays a burst
    never reads (the synapse list the tables are built from). numpy asks for transparent huge
    pages, and on this project's VMs a fresh huge page costs several times its 4 KiB pages (a
    1M-neuron brain built 2-3 s slower per GB). The synapse table itself keeps huge pages: bursts
    read its rows at random, and 4 KiB pages cost them 10-20% in TLB misses."""
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes < SMALL_PAGES_FROM or not hasattr(mmap, "MADV_NOHUGEPAGE") or not hasattr(mmap, "MAP_PRIVATE"):
        return np.empty(n, dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    buf.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(buf, dtype, n)


@kernel(parallel=True)
def prefault(buf, nt):  # type: ignore[no-untyped-def]
    """Touch every page of a fresh allocation from `nt` threads (a VM backs fresh memory slowly,
    one page fault at a time per thread)."""
    s = buf.size
    for t in prange(nt):
        for k in range(t * s // nt, (t + 1) * s // nt, 4096):
            buf[k] = 0


@kernel(parallel=True)
def quantise_synapses(offsets, target, weight, inhibitory, unit, driven, scale, words_i, words_f, nt):  # type: ignore[no-untyped-def]
    """compile_tables' (target, contribution) words: c = weight * (+-scale) * unit[source] in f64,
    then its f32 bits for mp-driven sources, else rint(c) as i32. Thread t takes the t-th of `nt`
    equal runs of synapses, walking their rows."""
    s = target.size
    for t in prange(nt):
        lo, hi = t * s // nt, (t + 1) * s // nt
        if lo < hi:
            src = _row_of(offsets, lo)
            k = lo
            while k < hi:
                end = min(hi, offsets[src + 1])
                u = unit[src]
                d = driven[src]
                for kk in range(k, end):
                    c = (np.float64(weight[kk]) * (-scale if inhibitory[kk] else scale)) * u
                    words_i[2 * kk] = np.int32(target[kk])  # the same 32 bits
                    if d:
                        words_f[2 * kk + 1] = np.float32(c)
                    else:
                        words_i[2 * kk + 1] = np.int32(np.rint(c))
                k = end
                src += 1


@kernel(parallel=True)
def fill_sources(source, k, nt):  # type: ignore[no-untyped-def]
    """source[i*k : (i+1)*k] = i for every neuron i (np.repeat(arange(n), k)), on `nt` threads."""
    n = source.size // k if k else 0
    for t in prange(nt):
        for i in range(t * n // nt, (t + 1) * n // nt):
            for j in range(i * k, (i + 1) * k):
                source[j] = i


@kernel(parallel=True)
def fill_f32(out, value, nt):  # type: ignore[no-untyped-def]
    """out[:] = value on `nt` threads (the first touch of fresh memory is most of the cost)."""
    s = out.size
    for t in prange(nt):
        for k in range(t * s // nt, (t + 1) * s // nt):
            out[k] = value


@kernel()
def fill_sources_weights(source, k, weight, value):  # type: ignore[no-untyped-def]
    """fill_sources(source, k) and fill_f32(weight, value) on this one thread (synthetic.py runs it
    beside the random draws: no OpenMP team, whose idle threads would spin against the draws)."""
    n = source.size // k if k else 0
    for i in range(n):
        for j in range(i * k, (i + 1) * k):
            source[j] = i
    for j in range(weight.size):
        weight[j] = value
