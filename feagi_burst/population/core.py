"""A population of brains: genomes x variants x replicas, run by a batch runner, locally or on Ray."""
from __future__ import annotations

import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feagi_burst.errors import InputError
from feagi_burst.population.runner import (Batch, BrainJob, BrainResult, GenomeSource, StimulusSource, one_line,
                                           run_batch)
from feagi_burst.population.spec import PopulationConfig, load_fitness, load_population_config

FitnessFn = Callable[[dict[str, Any]], Any]


@dataclass
class RayOptions:
    """Where and how to spread a population over Ray (see feagi_burst.population.ray_runner).

    address: a running cluster ("ray://host:10001", "host:6379", "auto"); None starts a local
    instance on this machine (num_cpus / num_gpus limit it). batch_size: brains per task (default:
    about two tasks per worker). max_retries: Ray's own retries of a task whose worker died.
    """

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    batch_size: int | None = None
    max_retries: int = 3


@dataclass
class PopulationResult:
    """Every brain's result (in population order) and how the run went.

    wall_s: the whole run (reading, building, loading, bursts); run_s: the bursts alone, so that
    `run_brain_bursts_per_s` is the steady rate a longer run approaches; setup_s = wall_s - run_s.
    Where brains run in parallel (threads, Ray) set-up and bursts overlap: run_s is then wall_s's
    share of the brains' summed burst time (`split_wall`).
    """

    results: list[BrainResult]
    bursts: int
    backend: str
    wall_s: float
    where: str = "this process"
    notes: list[str] = field(default_factory=list)
    config: str | None = None
    setup_s: float = 0.0
    run_s: float = 0.0

    @property
    def brain_bursts(self) -> int:
        return sum(r.bursts for r in self.results)

    @property
    def brain_bursts_per_s(self) -> float:
        return self.brain_bursts / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def run_brain_bursts_per_s(self) -> float:
        """Brain-bursts per second of burst time (set-up left out)."""
        return self.brain_bursts / self.run_s if self.run_s > 0 else 0.0

    @property
    def failed(self) -> list[BrainResult]:
        return [r for r in self.results if r.error]

    def to_json(self) -> dict[str, Any]:
        """What --json writes: the run, then one row per brain."""
        return {"config": self.config, "brains": len(self.results), "failed": len(self.failed),
                "bursts": self.bursts, "backend": self.backend, "where": self.where, "wall_s": self.wall_s,
                "setup_s": self.setup_s, "run_s": self.run_s, "brain_bursts": self.brain_bursts,
                "brain_bursts_per_s": self.brain_bursts_per_s, "run_brain_bursts_per_s": self.run_brain_bursts_per_s,
                "notes": self.notes, "rows": [r.row() for r in self.results]}

    def area_columns(self) -> list[str]:
        """Every area id of every brain, in first-seen order (the CSV's spikes:<area> columns)."""
        seen: dict[str, None] = {}
        for r in self.results:
            for a in r.spikes_per_area:
                seen.setdefault(a, None)
        return list(seen)

    def write_json(self, path: str | Path) -> None:
        from feagi_burst.files import write_json

        write_json(path, self.to_json())

    def write_csv(self, path: str | Path) -> None:
        """One row per brain: genome, variant, seed, counts, firing rate, fitness, error, spikes per area."""
        from feagi_burst.files import atomic_write

        areas = self.area_columns()
        head = ["index", "genome", "variant", "seed", "bursts", "neurons", "synapses", "spikes", "firing_rate",
                "fitness", "error", "backend", "wall_s", "record"]
        with atomic_write(path) as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(head + [f"spikes:{a}" for a in areas])
            for r in self.results:
                w.writerow([r.index, r.genome, r.variant, r.seed, r.bursts, r.neurons, r.synapses, r.spikes,
                            repr(r.firing_rate), "" if r.fitness is None else repr(r.fitness), r.error or "",
                            r.backend, f"{r.wall_s:.3f}", r.record or ""]
                           + [r.spikes_per_area.get(a, "") for a in areas])


def split_wall(results: list[BrainResult], wall: float, parallel: bool) -> tuple[float, float]:
    """(setup_s, run_s) of a run of `wall` seconds. One brain or batch after another: run_s is the
    brains' burst time, set-up the rest of the wall (reading, building, merging, loading, starting
    the device). In parallel the phases overlap: the wall is split as the brains' summed set-up
    and burst times are."""
    run = sum(r.run_s for r in results)
    if parallel:
        busy = run + sum(r.setup_s for r in results)
        run = wall * run / busy if busy > 0 else 0.0
    run = min(max(run, 0.0), wall)
    return wall - run, run


class Population:
    """Brains to run: every genome x every variant x `replicas` seeds (see feagi_burst.population.spec).

    >>> pop = Population.from_config("examples/population.toml")
    >>> result = pop.run()                  # CPU, this process
    >>> result.write_csv("out/population.csv")
    """

    def __init__(self, config: PopulationConfig, fitness: FitnessFn | None = None) -> None:
        self.config = config
        self.fitness = fitness
        self.jobs = self._jobs()

    @classmethod
    def from_config(cls, path: str | Path) -> Population:
        """A population as pop.toml describes it; its fitness module is imported now."""
        cfg = load_population_config(path)
        fitness = None
        if cfg.fitness:
            base = cfg.path.parent if cfg.path else Path.cwd()
            fitness = load_fitness(cfg.fitness, base, str(cfg.path))
        return cls(cfg, fitness)

    def _jobs(self) -> list[BrainJob]:
        cfg = self.config
        jobs = []
        for g in cfg.genomes:
            stim = cfg.stimulus_for(g)
            for variant in cfg.variants():
                for r in range(cfg.replicas):
                    jobs.append(BrainJob(len(jobs), str(g), variant, cfg.seed + r, None if stim is None else str(stim)))
        return jobs

    def batch(self, bursts: int | None = None) -> Batch:
        """Every job with the genome texts and schedules it needs (read now)."""
        from feagi_burst.files import read_text
        from feagi_burst.stimulus import read_schedule

        cfg = self.config
        genomes: dict[str, GenomeSource] = {}
        stimuli: dict[str, StimulusSource] = {}
        for i, g in enumerate(cfg.genomes):
            src = GenomeSource(key=str(g), name=g.name, position=i)
            try:
                src.text = read_text(g, "genome file")
            except InputError as e:
                src.error = one_line(e)
            except OSError as e:
                src.error = f"{g}: cannot read the genome file: {e.strerror or e}"
            genomes[str(g)] = src
            stim = cfg.stimulus_for(g)
            if stim is not None and str(stim) not in stimuli:
                stimuli[str(stim)] = StimulusSource(str(stim), read_schedule(stim))
        return Batch(self.jobs, genomes, stimuli, cfg.bursts if bursts is None else bursts, cfg.honour_snooze_i)

    def run(self, bursts: int | None = None, backend: str = "cpu", threads: int = 1, record_dir: Path | None = None,
            ray: RayOptions | None = None, progress: Callable[[int], None] | None = None,
            on_brain: Callable[[BrainResult], None] | None = None, stop: Callable[[], bool] | None = None,
            on_note: Callable[[str], None] | None = None) -> PopulationResult:
        """Run every brain for `bursts` (default: the config's) and return their results in order.

        backend: cpu | gpu | auto. threads: CPU brains at a time in this process. record_dir: a
        spike record (.npz) per brain, and each variant's genome, there. ray: spread it over Ray.
        progress(bursts) and on_brain(result) report as it goes (from worker threads); on_note gets
        one-line remarks (how the work is split, brains the GPU could not batch) as they apply.
        """
        batch = self.batch(bursts)
        notes: list[str] = []
        lock = threading.Lock()

        def note(text: str) -> None:
            with lock:
                if text not in notes:
                    notes.append(text)
                    if on_note is not None:
                        on_note(text)

        t0 = time.perf_counter()
        if ray is not None:
            from feagi_burst.population.ray_runner import run_on_ray

            results, where = run_on_ray(batch, ray, backend, record_dir, on_brain=on_brain, stop=stop, note=note)
        else:
            results = run_batch(batch, backend, threads=threads, record_dir=record_dir, progress=progress,
                                on_brain=on_brain, stop=stop, note=note)
            where = "this process" + (f", {threads} threads" if threads > 1 else "")
        wall = time.perf_counter() - t0
        results.sort(key=lambda r: r.index)
        on_gpu = sum(1 for r in results if r.backend and not r.backend.startswith("CPU"))
        if backend == "auto" and on_gpu and ray is None:
            note(f"{on_gpu:,} brains ran on the GPU (auto), one after another (--backend gpu batches them)")
        if self.fitness is not None:
            for r in results:
                if r.error is None:
                    self._score(r)
        setup_s, run_s = split_wall(results, wall, parallel=ray is not None or (backend == "cpu" and threads > 1))
        return PopulationResult(results, batch.bursts, backend, wall, where, notes,
                                str(self.config.path) if self.config.path else None, setup_s, run_s)

    def _score(self, r: BrainResult) -> None:
        """The fitness of one brain; a failing or non-numeric fitness is that brain's error."""
        assert self.fitness is not None
        try:
            value = self.fitness(r.summary())
            r.fitness = float(value)
        except Exception as e:  # noqa: BLE001 (the user's function: report it, score the others)
            r.error = f"fitness {self.config.fitness}: {one_line(e)}"
            r.fitness = None
