"""The batch runner: a list of brain jobs in, one result per brain out.

A batch carries genome files as text and stimulus schedules as their entries (what a Ray worker is
sent), never expanded arrays; each brain is built here from them, exactly as `feagi-burst run`
builds it (`engine.load_brain`), so its spikes are bit-identical to running it alone.

`run_batch` picks a runner from RUNNERS by backend:
- "cpu": the brains one after another, or in a small thread pool (`threads`);
- "gpu": the brains batched into one set of GPU buffers, one dispatch chain per burst of all of
  them (feagi_burst/population/batched.py); brains a batch cannot hold run one after another on
  the same device (`run_gpu`: one shared GPUBackend, reloaded per brain), as does "auto".
"""
from __future__ import annotations

import re
import resource
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.population.spec import Mutation

@dataclass
class GenomeSource:
    """A genome file as sent to a runner: its text, or why it could not be read."""

    key: str  # how it is shown: the path as the config resolved it
    name: str  # the file name (a genome without a title is named after it, as when run alone)
    position: int  # its place in the config's genome list
    text: str | None = None
    error: str | None = None


@dataclass
class StimulusSource:
    """A stimulus schedule as sent to a runner: where it came from and its entries."""

    where: str
    entries: list[dict[str, Any]]


@dataclass
class BrainJob:
    """One brain: a genome (by GenomeSource key), its variant, its seed and its schedule."""

    index: int
    genome: str
    mutations: tuple[Mutation, ...] = ()
    seed: int = 0
    stimulus: str | None = None  # StimulusSource key

    @property
    def variant(self) -> str:
        return variant_label(self.mutations)


def variant_label(mutations: tuple[Mutation, ...]) -> str:
    """`nx-fire_t-f@m__for=12, nx-excite-f@m__for+m__bac=0.6`: one part per gene and value, its areas joined."""
    parts: dict[tuple[str, str], list[str]] = {}
    for m in mutations:
        value = Mutation(m.gene, "", m.value).label().split("=", 1)[1]
        parts.setdefault((m.gene, value), []).append(m.area)
    return ", ".join(f"{gene}@{'+'.join(areas)}={value}" for (gene, value), areas in parts.items())


@dataclass
class Batch:
    """Brain jobs and everything they need, in plain data (picklable, small)."""

    jobs: list[BrainJob]
    genomes: dict[str, GenomeSource]
    stimuli: dict[str, StimulusSource] = field(default_factory=dict)
    bursts: int = 100
    honour_snooze_i: bool = False


@dataclass
class BrainResult:
    """One brain's summary row (and what the live table and --record-dir need)."""

    index: int
    genome: str
    variant: str
    seed: int
    bursts: int = 0
    neurons: int = 0
    synapses: int = 0
    spikes: int = 0
    spikes_per_area: dict[str, int] = field(default_factory=dict)
    neurons_per_area: dict[str, int] = field(default_factory=dict)
    firing_rate: float = 0.0
    fitness: float | None = None
    error: str | None = None
    backend: str = ""
    wall_s: float = 0.0
    record: str | None = None  # file name of its spike record in the record folder
    genome_file: str | None = None  # file name of the mutated genome in the record folder
    warnings: list[str] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    gpu_bytes: int = 0
    # wall_s split: building and loading it (its share of a batch's), and running its bursts (ditto);
    # not in row(): the population's setup_s / run_s are what --json reports
    setup_s: float = 0.0
    run_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The record summary a fitness function receives (and the JSON row, with fitness)."""
        rate_per_area = {a: (self.spikes_per_area.get(a, 0) / (n * self.bursts) if n and self.bursts else 0.0)
                         for a, n in self.neurons_per_area.items()}
        return {"index": self.index, "genome": self.genome, "variant": self.variant, "seed": self.seed,
                "bursts": self.bursts, "neurons": self.neurons, "synapses": self.synapses,
                "spikes": self.spikes, "firing_rate": self.firing_rate, "spikes_per_area": dict(self.spikes_per_area),
                "firing_rate_per_area": rate_per_area, "neurons_per_area": dict(self.neurons_per_area)}

    def tally(self, brain: Any, counts: np.ndarray, ran: int, wanted: int) -> None:
        """The summary from the spikes counted per area of `brain` in `ran` of `wanted` bursts."""
        self.bursts = ran
        self.spikes = int(counts.sum())
        self.spikes_per_area = {a.cortical_id: int(c) for a, c in zip(brain.areas, counts)}
        self.neurons_per_area = {a.cortical_id: int(a.neuron_count) for a in brain.areas}
        self.firing_rate = self.spikes / (self.neurons * ran) if self.neurons and ran else 0.0
        if ran < wanted:
            self.error = f"stopped after {ran:,} of {wanted:,} bursts"

    def row(self) -> dict[str, Any]:
        """The --json row."""
        return {**self.summary(), "fitness": self.fitness, "error": self.error, "backend": self.backend,
                "wall_s": self.wall_s, "record": self.record, "genome_file": self.genome_file}


def _safe(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9._@=+-]+", "-", text).strip("-")[:limit]


def record_name(job: BrainJob, src: GenomeSource) -> str:
    """`<index>-<genome stem>[-<variant>]-seed<seed>.npz`: sorted like the rows, readable, unique."""
    variant = "-" + _safe(job.variant.replace(", ", "+")) if job.mutations else ""
    return f"{job.index:04d}-{_safe(Path(src.name).stem, 40)}{variant}-seed{job.seed}.npz"


def genome_file_name(job: BrainJob, src: GenomeSource) -> str:
    """The mutated genome of a variant, one file per genome and variant (shared by its replicas)."""
    return (f"g{src.position:03d}-{_safe(Path(src.name).stem, 40)}-"
            f"{_safe(job.variant.replace(', ', '+'), 120)}.genome.json")


def one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if isinstance(e, InputError) else f"{type(e).__name__}: {text}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BrainBuilder:
    """Builds the brains of a batch from genome text in a private folder, each (genome, variant)
    once (replicas share the expanded arrays and synapse tables: backends only read them)."""

    def __init__(self, batch: Batch, folder: Path, record_dir: Path | None, keep: int = 2) -> None:
        self.batch, self.folder, self.record_dir, self.keep = batch, folder, record_dir, keep
        self.lock = threading.Lock()
        self.cache: dict[tuple[str, tuple[Mutation, ...]], tuple[Any, Any, str | None]] = {}
        self.documents: dict[str, tuple[Any, Any, Path]] = {}

    def _file(self, src: GenomeSource, text: str, tag: str) -> Path:
        # the same file name as the original: a genome without a title is named after its file
        d = self.folder / f"g{src.position}{tag}"
        d.mkdir(exist_ok=True)
        p = d / src.name
        p.write_text(text, encoding="utf-8")
        return p

    def _plain(self, src: GenomeSource, path: Path, e: BaseException) -> InputError:
        return InputError(one_line(e).replace(str(path), src.key))

    def build(self, job: BrainJob) -> tuple[Any, Any, str | None]:
        """(brain, synapse tables, mutated genome file name or None); InputError names the genome."""
        key = (job.genome, job.mutations)
        with self.lock:
            if key in self.cache:
                return self.cache[key]
            brain_tables = self._build(job)
            while len(self.cache) >= self.keep:
                self.cache.pop(next(iter(self.cache)))
            self.cache[key] = brain_tables
            return brain_tables

    def _build(self, job: BrainJob) -> tuple[Any, Any, str | None]:
        from feagi_burst.engine import load_brain
        from feagi_burst.fixed_point import compile_tables

        src = self.batch.genomes[job.genome]
        if src.error is not None or src.text is None:
            raise InputError(src.error or f"{src.key}: not read")
        honour = self.batch.honour_snooze_i
        if not job.mutations:
            path = self._file(src, src.text, "")
            try:
                brain = load_brain(path, honour, warn=None)  # what `feagi-burst run` calls
            except Exception as e:  # noqa: BLE001 (a genome that cannot load fails its own brains only)
                raise self._plain(src, path, e) from None
            return brain, compile_tables(brain), None
        import json

        from feagi_burst.genome import load_genome
        from feagi_burst.population.mutate import mutant_text, mutate_document

        if job.genome not in self.documents:
            path = self._file(src, src.text, "")
            try:
                genome = load_genome(path)
            except Exception as e:  # noqa: BLE001
                raise self._plain(src, path, e) from None
            self.documents = {job.genome: (json.loads(src.text), genome, path)}
        document, genome, path = self.documents[job.genome]
        text = mutant_text(mutate_document(document, genome, job.mutations, src.key))
        mutant = self._file(src, text, f"-v{abs(hash(job.mutations))}")
        try:
            brain = load_brain(mutant, honour, warn=None)
        except Exception as e:  # noqa: BLE001
            raise InputError(f"variant {job.variant}: " + one_line(e).replace(str(mutant), src.key)) from None
        name = None
        if self.record_dir is not None:
            from feagi_burst.files import atomic_write

            name = genome_file_name(job, src)
            with atomic_write(self.record_dir / name) as f:
                f.write(text)
        return brain, compile_tables(brain), name


Progress = Callable[[int], None]


def _run_one(job: BrainJob, batch: Batch, builder: BrainBuilder, backend_for: Callable[[Any], Any],
             release: Callable[[Any, Any], None], record_dir: Path | None, progress: Progress | None,
             stop: Callable[[], bool] | None) -> BrainResult:
    """Build, run and summarise one brain; any failure is that brain's one-line error."""
    from feagi_burst.engine import Engine

    src = batch.genomes[job.genome]
    res = BrainResult(index=job.index, genome=job.genome, variant=job.variant, seed=job.seed)
    t0 = time.perf_counter()
    recorder = None
    engine = None
    try:
        if stop is not None and stop():
            raise InputError("not run: the population was stopped")
        brain, tables, res.genome_file = builder.build(job)
        res.warnings = list(brain.warnings)
        res.neurons, res.synapses = brain.neuron_count, brain.synapse_count
        backend = backend_for(brain)
        engine = Engine(brain, backend=backend, seed=job.seed, tables=tables, warn=res.warnings.append)
        res.backend = engine.backend_name()
        res.gpu_bytes = int(getattr(engine.backend, "gpu_memory", lambda: 0)())
        if job.stimulus is not None:
            stim = batch.stimuli[job.stimulus]
            try:
                engine.add_schedule(stim.entries)
            except InputError as e:
                raise InputError(f"{stim.where}: {e}") from None
        if record_dir is not None:
            from feagi_burst.spike_record import open_recorder

            res.record = record_name(job, src)
            recorder = open_recorder(record_dir / res.record, brain, force=True)
        area_of = brain.neurons.cortical_area
        counts = np.zeros(len(brain.areas), np.int64)
        pending = [0, time.perf_counter()]

        def on_result(r: Any) -> None:
            if r.fired.size:
                counts[:] += np.bincount(area_of[r.fired], minlength=counts.size)
            if recorder is not None:
                recorder.add(r)
            pending[0] += 1
            if progress is not None and r.burst % 64 == 0:
                now = time.perf_counter()
                if now - pending[1] > 0.1:  # a callback per burst would cost more than a small burst
                    progress(pending[0])
                    pending[:] = [0, now]

        t_run = time.perf_counter()
        ran = engine.run(batch.bursts, on_result=on_result, stop=stop)
        res.run_s = time.perf_counter() - t_run
        if progress is not None and pending[0]:
            progress(pending[0])
        if recorder is not None:
            recorder.close()
            recorder = None
        res.tally(brain, counts, ran, batch.bursts)
    except Exception as e:  # noqa: BLE001 (one brain's failure must not stop the population)
        res.error = one_line(e)
        if recorder is not None:
            recorder.abort()
            res.record = None
    finally:
        if engine is not None:
            release(engine, backend)
    res.wall_s = time.perf_counter() - t0
    res.setup_s = res.wall_s - res.run_s
    res.peak_rss_mb = peak_rss_mb()
    return res


def run_cpu(batch: Batch, threads: int = 1, record_dir: Path | None = None, progress: Progress | None = None,
            on_brain: Callable[[BrainResult], None] | None = None, stop: Callable[[], bool] | None = None,
            **_: Any) -> list[BrainResult]:
    """The brains on the CPU backend, one after another (threads=1) or in a thread pool."""
    from feagi_burst.backends import create_backend

    with tempfile.TemporaryDirectory(prefix="feagi-burst-pop-") as tmp:
        builder = BrainBuilder(batch, Path(tmp), record_dir, keep=max(2, 2 * threads))

        def one(job: BrainJob) -> BrainResult:
            r = _run_one(job, batch, builder, lambda _b: create_backend("cpu"), lambda e, _b: e.close(),
                         record_dir, progress, stop)
            if on_brain is not None:
                on_brain(r)
            return r

        if threads <= 1:
            return [one(j) for j in batch.jobs]
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="feagi-brain") as pool:
            return list(pool.map(one, batch.jobs))


def run_gpu(batch: Batch, record_dir: Path | None = None, progress: Progress | None = None,
            on_brain: Callable[[BrainResult], None] | None = None, stop: Callable[[], bool] | None = None,
            auto: bool = False, **_: Any) -> list[BrainResult]:
    """The brains one after another on one shared GPUBackend (reloaded per brain).

    auto: each brain goes where `--backend auto` would put it alone (feagi_burst.selection), the
    GPU ones on the shared device. A device that fails mid-brain hands that brain to the CPU (the
    engine's fallback, identical results); the next GPU brain gets a new device.
    """
    from feagi_burst.backends import create_backend, expected_firing_rate, probe_adapters
    from feagi_burst.backends.base import BackendError
    from feagi_burst.config import BackendConfig
    from feagi_burst.selection import choose

    shared: list[Any] = [None]
    adapters = probe_adapters() if auto else []
    cfg = BackendConfig()

    def backend_for(brain: Any) -> Any:
        if auto and choose(brain.neuron_count, brain.synapse_count, expected_firing_rate(brain), cfg,
                           adapters).backend != "gpu":
            return create_backend("cpu")
        if shared[0] is None:
            try:
                shared[0] = create_backend("gpu")
            except BackendError as e:
                raise InputError(f"GPU backend unavailable: {e}; use --backend cpu") from None
        return shared[0]

    def release(engine: Any, backend: Any) -> None:
        if backend is not shared[0]:
            backend.close()
        elif engine.backend is not backend:  # the engine fell back to the CPU: this device is gone
            engine.backend.close()
            shared[0] = None

    with tempfile.TemporaryDirectory(prefix="feagi-burst-pop-") as tmp:
        builder = BrainBuilder(batch, Path(tmp), record_dir)
        out = []
        try:
            for job in batch.jobs:
                r = _run_one(job, batch, builder, backend_for, release, record_dir, progress, stop)
                out.append(r)
                if on_brain is not None:
                    on_brain(r)
        finally:
            if shared[0] is not None:
                shared[0].close()
        return out


def run_gpu_batched(batch: Batch, **kw: Any) -> list[BrainResult]:
    """The brains batched on one GPU (feagi_burst.population.batched; imported when used)."""
    from feagi_burst.population.batched import run_gpu_batched as run

    return run(batch, **kw)


# backend -> runner
RUNNERS: dict[str, Callable[..., list[BrainResult]]] = {"cpu": run_cpu, "gpu": run_gpu_batched}


def run_batch(batch: Batch, backend: str = "cpu", **kw: Any) -> list[BrainResult]:
    """Run every job of `batch`; one BrainResult per job, in job order.

    backend: "cpu", "gpu" or "auto" (each brain where `feagi-burst run --backend auto` would put it).
    Keywords: threads (cpu), record_dir, progress(bursts), on_brain(result), stop(), note(text).
    """
    if backend == "auto":
        return run_gpu(batch, auto=True, **kw)
    if backend not in RUNNERS:
        raise InputError(f"unknown backend {backend!r}; use cpu, gpu or auto")
    return RUNNERS[backend](batch, **kw)


__all__ = ["Batch", "BrainJob", "BrainResult", "GenomeSource", "StimulusSource", "RUNNERS",
           "run_batch", "record_name", "genome_file_name"]
