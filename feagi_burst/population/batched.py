"""The GPU runner: the brains of a population in one set of GPU buffers, one dispatch chain a burst.

Brains are built exactly as `feagi-burst run` builds them (runner.BrainBuilder), merged into
batches (feagi_burst.batch: each keeps its ids, models, scale, seed and stimulation) as large as
`BatchLimits` allow, and each batch runs all its bursts on one GPUBackend; per burst the host only
merges the stimulation (once per group of brains sharing a genome and schedule) and counts spikes
per area with one bincount. Brains that cannot join a batch (plastic pairs, a Drive) run one after
another on the same device, and a batch whose device fails re-runs on the CPU; both are said once.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.population.runner import (Batch, BrainBuilder, BrainJob, BrainResult, Progress, one_line,
                                           peak_rss_mb, record_name, run_cpu, run_gpu)


@dataclass(frozen=True)
class BatchLimits:
    """How much one GPU batch may hold (the rest runs in successive batches)."""

    neurons: int = 1 << 25
    synapses: int = 1 << 30
    areas: int = 1 << 16


@dataclass
class Built:
    job: BrainJob
    result: BrainResult
    brain: Any = None
    tables: Any = None
    stims: Any = None  # list[Stimulation]: the schedule resolved to its brain's ids, or None without one


def _build(jobs: list[BrainJob], batch: Batch, builder: BrainBuilder) -> list[Built]:
    """Every brain of `jobs` with its stimulation resolved; a failure is that brain's error row.

    Replicas share one Brain object (BrainBuilder), and a schedule resolved against a brain
    depends on nothing else: it is resolved once per brain object and schedule, and shared (each
    batch stages it in a StimulusPlan of its own: a plan is consumed as it runs).
    """
    from feagi_burst.stimulus import resolve

    out = []
    resolved: dict[tuple[int, str], Any] = {}  # (id of the brain, schedule) -> stimulations, or the error text
    for job in jobs:
        res = BrainResult(index=job.index, genome=job.genome, variant=job.variant, seed=job.seed)
        b = Built(job, res)
        try:
            b.brain, b.tables, res.genome_file = builder.build(job)
            res.warnings = list(b.brain.warnings)
            res.neurons, res.synapses = b.brain.neuron_count, b.brain.synapse_count
            if job.stimulus is not None:
                key = (id(b.brain), job.stimulus)  # `out` keeps every brain alive: ids are not reused
                if key not in resolved:
                    stim = batch.stimuli[job.stimulus]
                    try:
                        resolved[key] = resolve(stim.entries, b.brain, stim.where)
                    except InputError as e:
                        resolved[key] = f"{stim.where}: {e}"
                if isinstance(resolved[key], str):
                    raise InputError(resolved[key])
                b.stims = resolved[key]
        except Exception as e:  # noqa: BLE001 (one brain's failure must not stop the population)
            res.error = one_line(e)
        out.append(b)
    return out


def _chunks(built: list[Built], limits: BatchLimits) -> list[list[Built]]:
    """Consecutive brains in batches within `limits` (a brain larger than a limit alone)."""
    out: list[list[Built]] = []
    n = s = a = 0
    for b in built:
        bn, bs, ba = b.brain.neuron_count, int(b.tables.pairs.size), len(b.brain.areas)
        if out and out[-1] and n + bn <= limits.neurons and s + bs <= limits.synapses and a + ba <= limits.areas:
            out[-1].append(b)
            n, s, a = n + bn, s + bs, a + ba
        else:
            out.append([b])
            n, s, a = bn, bs, ba
    return out


def _run_chunk(chunk: list[Built], gpu: Any, batch: Batch, record_dir: Path | None, progress: Progress | None,
               stop: Callable[[], bool] | None) -> int:
    """All bursts of one batch of brains on `gpu`; fills each brain's result (its share of the
    batch's set-up and burst time in setup_s and run_s); returns bursts run."""
    from feagi_burst.batch import StimulusGroup, batch_input, merge_brains
    from feagi_burst.stimulus import StimulusPlan

    t0 = time.perf_counter()
    merged = merge_brains([b.brain for b in chunk], [b.tables for b in chunk], [b.job.seed for b in chunk])
    gpu.load(merged.brain, merged.tables, 0, merged.brain_rows)
    groups: dict[tuple[int, str | None], list[int]] = {}
    for i, b in enumerate(chunk):  # replicas share one Brain object, so one resolved schedule
        if b.stims is not None:
            groups.setdefault((id(b.brain), b.job.stimulus), []).append(i)
    plans = [StimulusGroup(StimulusPlan(chunk[ix[0]].stims), merged.first[np.array(ix)]) for ix in groups.values()]
    area_of = merged.brain.neurons.cortical_area
    counts = np.zeros(int(merged.first_area[-1]), np.int64)
    recorders = []
    if record_dir is not None:
        from feagi_burst.spike_record import open_recorder

        for b in chunk:
            b.result.record = record_name(b.job, batch.genomes[b.job.genome])
            recorders.append(open_recorder(record_dir / b.result.record, b.brain, force=True))
    shown = [0, time.perf_counter()]

    def take(results: list[Any]) -> None:
        for r in results:
            if r.fired.size:
                counts[:] += np.bincount(area_of[r.fired], minlength=counts.size)
            for rec, part in zip(recorders, merged.split(r) if recorders else ()):
                rec.add(part)
        shown[0] += len(results)
        now = time.perf_counter()
        if progress is not None and shown[0] and now - shown[1] > 0.1:
            progress(shown[0] * len(chunk))
            shown[:] = [0, now]

    ran = 0
    t1 = time.perf_counter()
    try:
        for burst in range(1, batch.bursts + 1):
            if stop is not None and stop():
                break
            gpu.submit(batch_input(burst, plans, merged.power))
            ran = burst
            take(gpu.collect(wait=False))
        take(gpu.collect(wait=True))
        t2 = time.perf_counter()
        if progress is not None and shown[0]:
            progress(shown[0] * len(chunk))
        for rec in recorders:
            rec.close()
    except BaseException:
        for rec in recorders:
            rec.abort()
        raise
    name = f"{gpu.backend_name()}, a batch of {len(chunk)} brains"
    share = int(gpu.gpu_memory()) // len(chunk) if hasattr(gpu, "gpu_memory") else 0
    for i, b in enumerate(chunk):
        b.result.backend, b.result.gpu_bytes = name, share
        b.result.setup_s, b.result.run_s = (t1 - t0) / len(chunk), (t2 - t1) / len(chunk)
        b.result.tally(b.brain, counts[merged.first_area[i]: merged.first_area[i + 1]], ran, batch.bursts)
    return ran


def run_gpu_batched(batch: Batch, record_dir: Path | None = None, progress: Progress | None = None,
                    on_brain: Callable[[BrainResult], None] | None = None, stop: Callable[[], bool] | None = None,
                    note: Callable[[str], None] | None = None, limits: BatchLimits | None = None,
                    **_: Any) -> list[BrainResult]:
    """The brains batched on one GPU (see the module docstring); one BrainResult per job, in job order."""
    from feagi_burst.backends import create_backend
    from feagi_burst.backends.base import BackendError
    from feagi_burst.batch import not_batchable

    limits = limits or BatchLimits()
    say = note or (lambda _text: None)
    with tempfile.TemporaryDirectory(prefix="feagi-burst-pop-") as tmp:
        builder = BrainBuilder(batch, Path(tmp), record_dir, keep=len(batch.jobs) + 1)
        t0 = time.perf_counter()
        built = _build(batch.jobs, batch, builder)
        build_share = (time.perf_counter() - t0) / max(1, len(built))  # each brain's part of building
        alone = [b for b in built if b.result.error is None and not_batchable(b.brain)]
        ready = [b for b in built if b.result.error is None and not not_batchable(b.brain)]
        out = {b.job.index: b.result for b in built if b.result.error is not None}
        for b in out.values():
            if on_brain is not None:
                on_brain(b)
        chunks = _chunks(ready, limits)
        if len(chunks) > 1:
            say(f"{len(ready):,} brains do not fit one GPU batch: they run in {len(chunks)} successive batches")
        try:
            gpu = create_backend("gpu") if chunks else None
        except BackendError as e:
            raise InputError(f"GPU backend unavailable: {e}; use --backend cpu") from None
        try:
            for chunk in chunks:
                t0 = time.perf_counter()
                try:
                    _run_chunk(chunk, gpu, batch, record_dir, progress, stop)
                except BackendError as e:
                    say(f"the GPU failed ({one_line(e)}): a batch of {len(chunk)} brains re-ran on the CPU")
                    sub = Batch([b.job for b in chunk], batch.genomes, batch.stimuli, batch.bursts,
                                batch.honour_snooze_i)
                    for r in run_cpu(sub, record_dir=record_dir, progress=progress, stop=stop):
                        chunk[[b.job.index for b in chunk].index(r.index)].result = r
                    gpu.close()
                    gpu = create_backend("gpu")
                wall = time.perf_counter() - t0
                for b in chunk:
                    b.result.wall_s = b.result.wall_s or wall
                    b.result.setup_s += build_share
                    b.result.peak_rss_mb = peak_rss_mb()
                    out[b.job.index] = b.result
                    if on_brain is not None:
                        on_brain(b.result)
        finally:
            if gpu is not None:
                gpu.close()
    if alone:
        reasons = sorted({str(not_batchable(b.brain)) for b in alone})
        say(f"{len(alone):,} brains run one after another on the GPU, not batched: {'; '.join(reasons)}")
        sub = Batch([b.job for b in alone], batch.genomes, batch.stimuli, batch.bursts, batch.honour_snooze_i)
        for r in run_gpu(sub, record_dir=record_dir, progress=progress, on_brain=on_brain, stop=stop):
            out[r.index] = r
    return [out[j.index] for j in batch.jobs]
