"""A population spread over a Ray cluster: Ray tasks, each running a batch with the local runner.

What travels: each genome file's text (put in Ray's object store once, so a node fetches it once),
the stimulus entries and the jobs (genome key, variant, seed) of each task; never expanded arrays.
What comes back: one BrainResult per brain and, with --record-dir, the files the task wrote (spike
records, mutated genomes), which the driver writes into the record folder.

Workers: one task at a time per GPU (`num_gpus=1`) on nodes with GPUs, and one per CPU
(`num_cpus=1`) on nodes without (soft node affinity, so a retry can land elsewhere if the node is
gone). Ray's scheduler places the tasks; a task whose worker dies is retried by Ray
(`max_retries`), and results are taken only from the attempt that finished, so nothing is lost or
counted twice. No scheduler, sockets or process pools of our own.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from feagi_burst.errors import InputError
from feagi_burst.population.runner import (Batch, BrainJob, BrainResult, GenomeSource,
                                           StimulusSource, one_line, run_batch)

INSTALL = "--ray needs Ray, which is not installed here: pip install 'feagi-burst[cluster]'"
# Test hook: the first task to finish a brain while this marker file does not exist creates it and
# kills its own worker process, as a node or worker crash would (tests/test_population.py).
KILL_ONCE = "FEAGI_BURST_TEST_KILL_WORKER_ONCE"


def require_ray() -> Any:
    """The ray module, or the one-line InputError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL) from None
    return ray


def _kill_once() -> None:
    marker = os.environ.get(KILL_ONCE)
    if not marker:
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os._exit(1)


def run_task(jobs: list[BrainJob], stimuli: dict[str, StimulusSource], bursts: int, honour_snooze_i: bool,
             backend: str, record: bool, *sources: GenomeSource) -> tuple[list[BrainResult], dict[str, bytes]]:
    """The body of one Ray task (also callable directly): run a batch, return results and files."""
    batch = Batch(jobs, {s.key: s for s in sources}, stimuli, bursts, honour_snooze_i)
    with tempfile.TemporaryDirectory(prefix="feagi-burst-ray-") as tmp:
        folder = Path(tmp) if record else None
        results = run_batch(batch, backend, threads=1, record_dir=folder, on_brain=lambda _r: _kill_once())
        files = {p.name: p.read_bytes() for p in Path(tmp).iterdir()
                 if record and p.is_file() and not p.name.startswith(".")}
    return results, files


def _slots(ray: Any, backend: str) -> tuple[list[tuple[str, str | None]], bool]:
    """One (kind, node id or None) per worker slot, and whether some node has several GPUs."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    slots: list[tuple[str, str | None]] = []
    multi_gpu = False
    gpu_nodes = [n for n in nodes if n["Resources"].get("GPU", 0) >= 1]
    if backend == "cpu" or not gpu_nodes:
        if backend == "gpu":
            raise InputError("--backend gpu: the Ray cluster has no GPU; use --backend cpu or auto")
        total = sum(int(n["Resources"].get("CPU", 0)) for n in nodes)
        return [("cpu", None)] * max(1, total), False
    for n in gpu_nodes:
        g = int(n["Resources"]["GPU"])
        multi_gpu |= g > 1
        slots += [("gpu", None)] * g
    if backend == "auto" and len(gpu_nodes) < len(nodes):
        for n in nodes:
            if n["Resources"].get("GPU", 0) < 1:
                slots += [("cpu", n["NodeID"])] * int(n["Resources"].get("CPU", 0))
    return slots, multi_gpu


def _sub_batch(batch: Batch, jobs: list[BrainJob]) -> tuple[dict[str, StimulusSource], list[str]]:
    stim_keys = {j.stimulus for j in jobs if j.stimulus is not None}
    return ({k: batch.stimuli[k] for k in stim_keys},
            list(dict.fromkeys(j.genome for j in jobs)))


def run_on_ray(batch: Batch, opts: Any, backend: str, record_dir: Path | None,
               on_brain: Callable[[BrainResult], None] | None = None, stop: Callable[[], bool] | None = None,
               note: Callable[[str], None] | None = None) -> tuple[list[BrainResult], str]:
    """Run `batch` over Ray; returns the results (every job once) and a line saying where it ran."""
    ray = require_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    say = note or (lambda _t: None)
    started = False
    if not ray.is_initialized():
        # errors only: Ray's start-up chatter would scroll the live table away
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": "error",
                              "configure_logging": True}
        if opts.address:
            kw["address"] = opts.address
        else:
            # a local instance of our own, even when RAY_ADDRESS names a cluster: no --ray ADDRESS means here
            kw.update(address="local", num_cpus=opts.num_cpus, num_gpus=opts.num_gpus)
        t0 = time.perf_counter()
        try:
            ray.init(**kw)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise InputError(f"--ray {opts.address or ''}: cannot start or reach Ray: {one_line(e)}; "
                             "start a cluster with `ray start --head` and pass the address it prints") from None
        started = True
        say(f"Ray {'connected' if opts.address else 'started'} in {time.perf_counter() - t0:.1f} s "
            "(counted in the population's time)")
    try:
        slots, multi_gpu = _slots(ray, backend)
        n = len(batch.jobs)
        size = opts.batch_size or max(1, math.ceil(n / (2 * len(slots))))
        chunks = [batch.jobs[i:i + size] for i in range(0, n, size)]
        gpus = sum(1 for k, _ in slots if k == "gpu")
        cpus = len(slots) - gpus
        if gpus:
            say("each GPU task runs its brains as one GPU batch (one dispatch chain a burst)")
        if multi_gpu:
            say("a node has several GPUs: wgpu (Vulkan) does not follow Ray's CUDA_VISIBLE_DEVICES, so the GPU "
                "tasks on one node may share its default adapter")
        where = (f"Ray {'at ' + opts.address if opts.address else '(local instance)'}: "
                 + ", ".join(p for p in (f"{gpus} GPU workers" if gpus else "", f"{cpus} CPU workers" if cpus else "")
                             if p)
                 + f", {len(chunks)} tasks of up to {size} brains")
        say(where)
        task = ray.remote(run_task)
        refs: dict[Any, list[BrainJob]] = {}
        sources = {k: ray.put(s) for k, s in batch.genomes.items()}
        for i, chunk in enumerate(chunks):
            kind, node = slots[i % len(slots)]
            stimuli, keys = _sub_batch(batch, chunk)
            options: dict[str, Any] = {"max_retries": opts.max_retries, "retry_exceptions": False}
            if kind == "gpu":
                options["num_gpus"] = 1
            else:
                options["num_cpus"] = 1
                if node is not None:
                    options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
            run_backend = "cpu" if kind == "cpu" else backend
            ref = task.options(**options).remote(chunk, stimuli, batch.bursts, batch.honour_snooze_i, run_backend,
                                                 record_dir is not None, *(sources[k] for k in keys))
            refs[ref] = chunk
        results: list[BrainResult] = []
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.25)
            if stop is not None and stop() and pending:
                for ref in pending:
                    ray.cancel(ref)
                for ref in pending:
                    results += _failed(refs[ref], "not run: the population was stopped")
                pending = []
            for ref in done:
                try:
                    got, files = ray.get(ref)
                except Exception as e:  # noqa: BLE001 (a task that failed after its retries)
                    got, files = _failed(refs[ref], f"Ray task failed after {opts.max_retries} retries: "
                                                    f"{one_line(e)[:300]}"), {}
                if record_dir is not None:
                    _write_files(record_dir, files)
                for r in got:
                    results.append(r)
                    if on_brain is not None:
                        on_brain(r)
        return results, where
    finally:
        if started:
            ray.shutdown()


def _failed(jobs: list[BrainJob], why: str) -> list[BrainResult]:
    return [BrainResult(index=j.index, genome=j.genome, variant=j.variant, seed=j.seed, error=why) for j in jobs]


def _write_files(folder: Path, files: dict[str, bytes]) -> None:
    from feagi_burst.files import atomic_write

    for name, data in files.items():
        with atomic_write(folder / Path(name).name, "wb") as f:  # a name, never a path, from a worker
            f.write(data)


__all__ = ["INSTALL", "KILL_ONCE", "require_ray", "run_on_ray", "run_task"]
