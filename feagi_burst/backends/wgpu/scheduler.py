"""Burst scheduling for the GPU backend: batches of bursts encoded, submitted and read back.

Bursts are encoded many per command buffer, in one compute pass per batch (the stages are in
backend.py's docstring). After the pass, each burst's fire slot (header, the first `cap` ids and
their mps) is copied into a staging buffer (a reused pool) whose mapping starts right after the
submit; `collect` checks with a non-blocking poll which batches are done, slices out their fire
sets and hands them out in order, and waits (for that batch's submission only) just when the
fire-slot ring is full or the caller blocks. Bursts whose fire count exceeds `cap` (it tracks the
recent maximum) get the rest by one direct read. The path (FCL or full-array) is chosen by the
host per burst from the last fire count it knows (its estimate of candidates vs N); both give
identical results.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from feagi_burst.backends.base import BackendError, BurstInput, BurstResult
from feagi_burst.backends.wgpu.layout import (
    H_APPEND, H_BURST, H_DRIVE_START, H_EXT_N, H_EXT_OFF, H_FORCED_N, H_FORCED_OFF, H_POWER_EXT, H_PREV_SLOT,
    H_SALT, H_SEQ, H_SLOT, HEADER_STRIDE, SLOT_HEADER, WG)
from feagi_burst.backends.wgpu.runtime import Recorder, grid, pow2

IDLE_FLUSH_S = 0.002  # an idle GPU gets a partial batch once its oldest burst has waited this long
HEADER_RING = 256  # burst header rows on the device, by seq (64 KiB), and one more for one-off dispatches
HEADER_AHEAD = 32  # header rows written ahead of a batch (see _headers)
TS = 6  # timestamps per burst: before input, propagation, dynamics, output, plasticity, and after it


@dataclass
class Pending:
    """A burst submitted by the caller, not yet encoded."""

    inp: BurstInput
    seq: int
    full: bool
    stage: bool  # run stage_input (stimulation, the power neuron, or a grid the GPU did not write)
    t_host: float  # host time spent preparing it


@dataclass
class Batch:
    """Bursts encoded into one command buffer and submitted; its readback is being mapped."""

    bursts: list[Pending]
    staging: Any
    size: int
    cap: int
    stride: int
    ts_bytes: int
    ticket: Any  # the staging buffer's mapping (Device.map_read)
    submission: int
    t_submit: float
    host_s: float


@dataclass
class ModelRun:
    """One neuron model present in the loaded brain: its kernels, its ModelInfo bind group, and the
    grid over its id range."""

    model: Any  # feagi_burst.models.NeuronModel
    group: Any
    kernels: dict[str, Any]
    grid: tuple[int, int, int]
    grid_full: tuple[int, int, int]  # model_dynamics_full's: FULL_NEURONS neurons an invocation


@dataclass
class Readback:
    """A batch read back: its results, and what the host learns for the next batches."""

    results: list[BurstResult]
    max_fired: int
    last_fired: int
    gpu_span: float | None


class BurstScheduler:
    """The burst pipeline of GPUBackend: submit, collect, and the batches between them.

    A mixin: GPUBackend.load() sets up what it uses (the device `dev`, the pipelines `p_*`, bind
    groups `g0`, `g_syn`, `g_args`, the buffers, the fire-slot ring `R`/`slots_base`/`slot_words`,
    the header template `h_template` and ring state `h_end`/`h_full`/`h_delta`, the host-side
    bookkeeping: `seq`, `pending`, `in_flight`, `ready`,
    `staging_pool`, `cap`, `recent_max`...).
    """

    def _check(self) -> None:
        if not self.loaded:
            raise BackendError("no brain loaded: call load() first")

    def submit(self, inp: BurstInput) -> None:
        """Queue burst `inp.burst`; bursts are encoded and submitted in batches."""
        self._check()
        t0 = time.perf_counter()
        self.seq += 1
        if self.path == "auto":
            drive_n = min(self.brain.drive.per_burst, self.brain.drive.order.size) if self.brain.drive else 0
            est = self.known_fired * self.mean_fanout + drive_n + inp.potential_ids.size
            full = est > self.full_fraction * self.n
        else:
            full = self.path == "full"
        # stage_input only does work for stimulation and the power neuron; otherwise the previous
        # burst's fire_compact already wrote this burst's propagation grid (saves a dispatch)
        stage = self.need_stage or self.power is not None or not inp.empty or not self.nblk
        self.need_stage = False
        if not self.pending:
            self.pending_since = t0
        self.pending.append(Pending(inp, self.seq, full, stage, time.perf_counter() - t0))
        self.last_burst = inp.burst
        if len(self.pending) >= self.batch:
            self._flush()

    def collect(self, wait: bool = True) -> list[BurstResult]:
        """Finished bursts, oldest first; with wait, every submitted burst (blocking)."""
        self._check()
        if wait:
            self._drain()
        else:
            if self.pending and not self.in_flight and (
                    len(self.pending) * 2 >= self.batch or time.perf_counter() - self.pending_since > IDLE_FLUSH_S):
                # The GPU is idle: hand it what is pending. Not at every call, though: flushing
                # one or two bursts each time the GPU drains locks a pipelined run into tiny
                # batches, each paying the whole submit and readback overhead.
                self._flush()
            while self.in_flight and self.dev.is_mapped(self.in_flight[0].ticket):
                self._finish(self.in_flight.popleft())
        out, self.ready = self.ready, []
        return out

    def _flush(self) -> None:
        """Encode and submit the pending bursts as one batch, and start mapping its readback."""
        if not self.pending:
            return
        bursts, self.pending = self.pending, []
        # a fire slot must not be reused before its burst has been read back (overflow re-reads)
        while self.in_flight and bursts[-1].seq - self.in_flight[0].bursts[0].seq >= self.R:
            self._finish(self.in_flight.popleft())
        t0 = time.perf_counter()
        k = len(bursts)
        self._headers(bursts)

        cap = self.cap
        stride = (SLOT_HEADER + 2 * cap) * 4
        self.batches += 1
        ts = self.ts_every > 0 and (self.batches - 1) % self.ts_every == 0
        ts_bytes = TS * k * 8 if ts else 0
        size = ts_bytes + k * stride
        staging = self._staging(size)
        rec = Recorder(self.dev)
        compact_grid = grid(self.nblk)
        for i, p in enumerate(bursts):
            inp = p.inp
            rec.bind(0, self.g0, p.seq % HEADER_RING * HEADER_STRIDE)
            if ts:
                rec.timestamp(self.query, TS * i)
            if p.stage:
                rec.pipeline(self.p_stage)
                rec.bind(1, self.g_args)
                rec.dispatch(*grid(-(-max(inp.potential_ids.size + 1, inp.forced_ids.size) // WG)))
            if ts:
                rec.timestamp(self.query, TS * i + 1)
            rec.pipeline(self.p_prop_full if p.full else self.p_prop_fcl)
            for g in self.g_syn:
                rec.bind(1, g)
                rec.dispatch_indirect(self.b_args, 0)
            if ts:
                rec.timestamp(self.query, TS * i + 2)
            if not p.full:
                rec.pipeline(self.p_args)
                rec.bind(1, self.g_args)
                rec.dispatch(1)
            for m in self.models:
                rec.bind(1, m.group)
                if m.model.integrates_all:
                    rec.pipeline(m.kernels["model_dynamics_all"])
                    rec.dispatch(*m.grid)
                elif p.full:
                    rec.pipeline(m.kernels["model_dynamics_full"])
                    rec.dispatch(*m.grid_full)
                else:
                    rec.pipeline(m.kernels["model_dynamics_fcl"])
                    rec.dispatch_indirect(self.b_args, 16)
            if ts:
                rec.timestamp(self.query, TS * i + 3)
            if inp.forced_ids.size:
                forced_grid = grid(-(-inp.forced_ids.size // WG))
                for m in self.models:
                    rec.bind(1, m.group)
                    rec.pipeline(m.kernels["model_forced"])
                    rec.dispatch(*forced_grid)
            if self.plastic is None:
                rec.pipeline(self.p_compact)
                rec.bind(1, self.g_args)
                rec.dispatch(*compact_grid)
            else:  # with STDP's first steps (backends/wgpu/plasticity.py)
                self.plastic.encode_compact(rec, compact_grid)
            if ts:
                rec.timestamp(self.query, TS * i + 4)
            if self.plastic is not None:
                self.plastic.encode(rec)
            if ts:
                rec.timestamp(self.query, TS * i + 5)
        rec.end_pass()
        if ts:
            rec.resolve(self.query, TS * k, self.b_resolve)
            rec.copy(self.b_resolve, 0, staging, 0, ts_bytes)
        head = (SLOT_HEADER + cap) * 4
        for i, p in enumerate(bursts):
            slot = self._slot(p.seq) * 4
            at = ts_bytes + i * stride
            rec.copy(self.b_work, slot, staging, at, head)  # header + the first cap ids
            rec.copy(self.b_work, slot + (SLOT_HEADER + self.n) * 4, staging, at + head, cap * 4)  # their mps
        submission = rec.submit()
        ticket = self.dev.map_read(staging, size)
        host = time.perf_counter() - t0 + sum(p.t_host for p in bursts)
        self.in_flight.append(Batch(bursts, staging, size, cap, stride, ts_bytes, ticket, submission,
                                     time.perf_counter(), host))

    def _headers(self, bursts: list[Pending]) -> None:
        """Make the device's header rows of the batch's bursts right, writing only when they are not.

        Header rows live in a ring by seq (HEADER_RING). Whenever rows are written, those of the
        HEADER_AHEAD bursts after the batch are written too, as they will be if those bursts stage
        nothing and take the same path, so that a run of such bursts (most of a long run, and every
        burst of a closed loop without input) needs no write at all: one write a burst cost ~10 µs of
        a blocking burst on an H200, and a second command buffer at its submit.
        """
        first, last = bursts[0], bursts[-1]
        if last.seq < self.h_end and all(p.inp.empty and p.full == self.h_full and p.inp.burst - p.seq == self.h_delta
                                         for p in bursts):
            return  # every row is on the device already
        k = len(bursts)
        seq = np.arange(first.seq, last.seq + 1 + HEADER_AHEAD, dtype=np.int64)
        b = seq + (last.inp.burst - last.seq)
        b[:k] = [p.inp.burst for p in bursts]
        hdr = np.repeat(self.h_template[None, :], seq.size, axis=0)
        hdr[:, H_BURST] = b & 0xFFFFFFFF
        hdr[:, H_SEQ] = seq & 0xFFFFFFFF
        hdr[:, H_SALT] = (b * 1597334677) & 0xFFFFFFFF
        hdr[:, H_APPEND] = 0 if last.full else 1
        hdr[:k, H_APPEND] = [0 if p.full else 1 for p in bursts]
        hdr[:, H_SLOT] = self.slots_base + (seq % self.R) * self.slot_words
        hdr[:, H_PREV_SLOT] = self.slots_base + ((seq - 1) % self.R) * self.slot_words
        drive = self.brain.drive
        if drive is not None and drive.per_burst > 0 and drive.order.size:
            hdr[:, H_DRIVE_START] = ((b - 1) * drive.per_burst) % drive.order.size
        parts: list[np.ndarray] = []
        at = 0
        for i, p in enumerate(bursts):
            inp = p.inp
            if inp.empty:
                continue
            h = hdr[i]
            ext_ids = np.asarray(inp.potential_ids, np.uint32)
            ext_n = ext_ids.size
            h[H_EXT_OFF], h[H_EXT_N] = at, ext_n
            if ext_n:
                parts += [ext_ids, np.asarray(inp.potential, np.float32).view(np.uint32)]
                at += 2 * ext_n
            f_ids = np.asarray(inp.forced_ids, np.uint32)
            h[H_FORCED_OFF], h[H_FORCED_N] = at, f_ids.size
            if f_ids.size:
                parts += [f_ids, np.asarray(inp.forced_mp, np.float32).view(np.uint32)]
                at += 2 * f_ids.size
            if self.power is not None and ext_n:
                hit = np.flatnonzero(ext_ids == self.power)
                if hit.size:
                    h[H_POWER_EXT] = hit[0]
        if at:
            self._ensure_inputs(at)
            self.dev.write(self.b_inputs, np.concatenate(parts))
        row = first.seq % HEADER_RING
        fit = min(seq.size, HEADER_RING - row)  # the ring wraps: at most two writes
        self.dev.write(self.b_headers, hdr[:fit], row * HEADER_STRIDE)
        if fit < seq.size:
            self.dev.write(self.b_headers, hdr[fit:])
        self.h_end, self.h_full, self.h_delta = int(seq[-1]) + 1, last.full, last.inp.burst - last.seq

    def _slot(self, seq: int) -> int:
        return self.slots_base + (seq % self.R) * self.slot_words

    def _staging(self, size: int) -> Any:
        for i, s in enumerate(self.staging_pool):
            if s.size >= size:
                return self.staging_pool.pop(i)
        U = self.dev.wgpu.BufferUsage
        return self.dev.buffer("readback staging", pow2(size), U.MAP_READ | U.COPY_DST)

    def _finish(self, b: Batch) -> None:
        """Collect a batch's results (waiting for them) and learn from its fire counts."""
        rb = self._read_back(b)
        self.staging_pool.append(b.staging)
        self.ready.extend(rb.results)
        if rb.results:
            last = rb.results[-1]
            self.last_fired, self.last_mp = last.fired, last.mp
        self.known_fired = rb.last_fired
        if rb.gpu_span is not None:
            self.gpu_span = rb.gpu_span
        # Staging copies hold the recent maximum plus a margin: mapping costs grow with the bytes
        # read back, while a burst that overflows is completed by one extra (rare) direct read.
        self.recent_max = max(rb.max_fired, int(self.recent_max * 0.95))
        self.cap = int(min(max(self.n, 1), (self.recent_max * 5 // 4 + 511) // 256 * 256))

    def _read_back(self, b: Batch) -> Readback:
        """Wait for a batch's staging buffer and turn it into BurstResults.

        Fire sets arrive sorted by id (fire_compact), so this only slices and copies.
        """
        d = self.dev
        raw = d.read_mapped(b.staging, b.size, b.ticket, b.submission)
        t_done = time.perf_counter()
        k = len(b.bursts)
        ts = raw[: b.ts_bytes // 4].view(np.uint64).reshape(k, TS).astype(np.float64) * 1e-9 if b.ts_bytes else None
        gpu_share = (t_done - b.t_submit) / k
        results: list[BurstResult] = []
        max_fired = last_fired = 0
        cap = b.cap
        try:
            for i, p in enumerate(b.bursts):
                base = (b.ts_bytes + i * b.stride) // 4
                fired_n, cand_n, seq = int(raw[base]), int(raw[base + 1]), int(raw[base + 2])
                if seq != (p.seq & 0xFFFFFFFF):
                    raise BackendError(f"burst {p.inp.burst}: fire slot holds seq {seq}, "
                                       f"expected {p.seq} (GPU results out of step)")
                got = min(fired_n, cap)
                ids_at = base + SLOT_HEADER
                fired = raw[ids_at: ids_at + got].copy()
                mp = raw[ids_at + cap: ids_at + cap + got].view(np.float32).copy()
                if fired_n > cap:  # more fires than the staging copy held: read the rest directly
                    slot = self._slot(p.seq) + SLOT_HEADER
                    rest = (fired_n - got) * 4
                    fired = np.concatenate([fired, d.download(self.b_work, (slot + got) * 4, rest).view(np.uint32)])
                    mp = np.concatenate([mp, d.download(self.b_work, (slot + self.n + got) * 4, rest).view(np.float32)])
                max_fired, last_fired = max(max_fired, fired_n), fired_n
                if ts is not None:
                    t = ts[i]
                    timings = {"input": float(t[1] - t[0]), "synaptic_propagation": float(t[2] - t[1]),
                               "neural_dynamics": float(t[3] - t[2]), "output": float(t[4] - t[3]),
                               "plasticity": float(t[5] - t[4])}
                elif self.ts_every == 0:
                    timings = {"input": b.host_s / k, "synaptic_propagation": 0.0, "neural_dynamics": gpu_share,
                               "output": (time.perf_counter() - t_done) / (i + 1), "plasticity": 0.0}
                else:
                    timings = {}  # a batch between the timestamped samples
                results.append(BurstResult(p.inp.burst, fired, mp, timings, candidates=cand_n))
        finally:
            del raw
            d.unmap(b.staging)
        # GPU time per burst over the whole batch, gaps between dispatches included
        span = float(ts[-1, TS - 1] - ts[0, 0]) / k if ts is not None else None
        return Readback(results, max_fired, last_fired, span)


    def _drain(self) -> None:
        self._flush()
        while self.in_flight:
            self._finish(self.in_flight.popleft())
