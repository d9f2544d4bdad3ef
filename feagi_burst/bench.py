"""Benchmarks on synthetic brains, and calibration of the backend-selection model."""
from __future__ import annotations

import re
import resource
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from feagi_burst.backends.base import BurstResult
from feagi_burst.brain import Brain
from feagi_burst.calibration import calibrate_machine, clocked_gpu, gpu_warm_up, predicted
from feagi_burst.config import BackendConfig, load_config, parse_config
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write, read_text
from feagi_burst.fixed_point import SynapseTables, compile_tables, expand_ranges
from feagi_burst.report import PhaseStats
from feagi_burst.selection import estimate_us

CALIBRATION_SECONDS_PER_POINT = 1.0  # bench --calibrate: per point, against 0.15 s when first used


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_backend(brain: Brain, backend: str, bursts: int, warmup: int, seed: int = 0, blocking: bool = False,
                  tables: SynapseTables | None = None,
                  on_burst: Callable[[BurstResult], None] | None = None) -> dict[str, Any]:
    """Time `bursts` bursts of one backend after `warmup`; per-phase statistics and throughput."""
    if bursts < 1 or warmup < 0:
        raise InputError(f"bench: {bursts} timed bursts after {warmup} of warm-up; time at least 1 burst, "
                         "warm up 0 or more")
    engine = Engine(brain, backend=backend, seed=seed, warn=None, tables=tables)
    fanout = np.diff(engine.tables.offsets)
    try:
        def run(count: int, on_result: Callable[[BurstResult], None] | None = None) -> float:
            t = time.perf_counter()
            if blocking:
                for _ in range(count):
                    r = engine.process_burst()
                    if on_result:
                        on_result(r)
            elif count:  # Engine.run(0) means "until stopped"
                engine.run(count, on_result=on_result)
            return time.perf_counter() - t

        t0 = time.perf_counter()
        run(warmup)
        if clocked_gpu(engine.backend):
            gpu_warm_up(run)  # a hardware GPU idle before (building, the CPU's turn) is at low clocks
        warm_s = time.perf_counter() - t0
        stats = PhaseStats()
        fire_sets = [engine.backend.last_fire_set()[0]]

        def count(r: BurstResult) -> None:
            stats.add(r)
            fire_sets.append(r.fired)  # events are counted after the clock stops
            if on_burst:
                on_burst(r)
        wall = run(bursts, count)
        # each burst propagates the previous burst's fire set through its synapses
        events = sum(int(fanout[f.astype(np.int64)].sum()) for f in fire_sets[:-1])
        name = engine.backend_name()
    finally:
        engine.close()
    per_burst = stats.phase("total")
    return {
        "backend": name,
        "mode": "blocking" if blocking else "pipelined",
        "us_per_burst": wall / bursts * 1e6,
        "p50_us": per_burst["p50_us"],
        "p99_us": per_burst["p99_us"],
        "bursts_per_s": bursts / wall,
        "events_per_s": events / wall,
        "firing_rate": stats.spikes / bursts / brain.neuron_count,
        "phases": {p: v for p, v in stats.summary()["phases"].items()},
        "timed_bursts": stats.timed,  # bursts whose phases were timed (a GPU samples its timestamps)
        "warmup_s": warm_s,
    }


def numpy_loop(brain: Brain, tables: SynapseTables, bursts: int, warmup: int) -> dict[str, Any]:
    """The same brain as the plainest hand-written numpy loop, for scale in the same session.

    Per burst: gather the last fire set's synapses (the same CSR), bincount their contributions,
    add the drive, fire where the threshold is reached. None of FEAGI's rules (no refractory
    period, leak, limits, excitability or forced fires) and no exactness: the floor a numpy user
    starts from. Timed like a backend (the same keys).
    """
    n = brain.neuron_count
    offsets, target, contribution = tables.offsets, tables.target, tables.contribution
    scale = tables.resolution
    thr = brain.neurons.params.get("threshold", np.float32(1.0))
    drive = brain.drive if brain.drive is not None and brain.drive.per_burst else None
    fired = np.zeros(0, np.int64)
    stats = PhaseStats()
    events = 0

    def burst(b: int) -> BurstResult:
        nonlocal fired, events
        t0 = time.perf_counter()
        starts = offsets[fired]
        counts = offsets[fired + 1] - starts
        idx = expand_ranges(starts, counts)
        v = np.bincount(target[idx], weights=contribution[idx], minlength=n) * scale
        t1 = time.perf_counter()
        if drive is not None:
            v[drive.neurons(b)] += drive.potential
        fired = np.flatnonzero(v >= thr)
        t2 = time.perf_counter()
        events += idx.size
        return BurstResult(b, fired, v[fired], {"input": 0.0, "synaptic_propagation": t1 - t0,
                                                 "neural_dynamics": t2 - t1, "output": 0.0})

    t0 = time.perf_counter()
    for b in range(1, warmup + 1):
        burst(b)
    warm_s = time.perf_counter() - t0
    events = 0
    start = time.perf_counter()
    for b in range(warmup + 1, warmup + bursts + 1):
        stats.add(burst(b))
    wall = time.perf_counter() - start
    per_burst = stats.phase("total")
    return {
        "backend": "hand-written numpy loop (gather, bincount, threshold; no FEAGI rules)",
        "mode": "blocking",
        "us_per_burst": wall / bursts * 1e6,
        "p50_us": per_burst["p50_us"],
        "p99_us": per_burst["p99_us"],
        "bursts_per_s": bursts / wall,
        "events_per_s": events / wall,
        "firing_rate": stats.spikes / bursts / n,
        "phases": {p: v for p, v in stats.summary()["phases"].items()},
        "timed_bursts": stats.timed,
        "warmup_s": warm_s,
    }


def bench(brain: Brain, build_s: float, backends: list[str], bursts: int, warmup: int, seed: int,
          cfg: BackendConfig, blocking: bool = False, tables: SynapseTables | None = None) -> dict[str, Any]:
    """The `feagi-burst bench` result: every backend asked for, and the speedup against the model's.

    With the CPU backend, the same brain also runs as a hand-written numpy loop: `numpy_loop`,
    and the CPU backend's time as a fraction of its time in `cpu_vs_numpy_loop`.
    """
    rate = brain.drive.per_burst / brain.neuron_count if brain.drive else 0.0
    out: dict[str, Any] = {"neurons": brain.neuron_count, "synapses": brain.synapse_count, "firing_rate": rate,
                           "build_s": build_s, "bursts": bursts, "warmup": warmup, "backends": {}}
    out.update(plastic_info(brain, tables))
    for b in backends:
        r = out["backends"][b] = bench_backend(brain, b, bursts, warmup, seed, blocking, tables)
        for stat, key in (("mean_us", "plasticity_share"), ("p50_us", "plasticity_share_p50")):
            total = sum(v[stat] for v in r["phases"].values())
            r[key] = r["phases"]["plasticity"][stat] / total if total > 0 else 0.0
    out["numpy_loop"] = out["cpu_vs_numpy_loop"] = None
    if "cpu" in backends:
        loop = numpy_loop(brain, tables if tables is not None else compile_tables(brain), bursts, min(warmup, 5))
        out["numpy_loop"] = loop
        out["cpu_vs_numpy_loop"] = out["backends"]["cpu"]["us_per_burst"] / loop["us_per_burst"]
    cpu_us, gpu_us = estimate_us(brain.neuron_count, brain.synapse_count, rate, cfg)
    out["predicted_speedup"] = cpu_us / gpu_us
    out["predicted_us"] = {"cpu": cpu_us, "gpu": gpu_us}
    if "cpu" in out["backends"] and "gpu" in out["backends"]:
        out["speedup"] = out["backends"]["cpu"]["us_per_burst"] / out["backends"]["gpu"]["us_per_burst"]
    else:
        out["speedup"] = None
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def plastic_info(brain: Brain, tables: SynapseTables | None) -> dict[str, Any]:
    """The STDP part of a bench result: plastic synapses, their share, the pairs and windows."""
    if not brain.plasticity:
        return {"plastic_synapses": 0, "plastic_fraction": 0.0}
    from feagi_burst.plasticity import plastic_layout

    layout = plastic_layout(brain, tables if tables is not None else compile_tables(brain))
    n = layout.size if layout is not None else 0
    return {"plastic_synapses": n, "plastic_fraction": n / max(1, brain.synapse_count),
            "plastic_pairs": [{"pair": name, "window": int(layout.window[i]), "dp": float(layout.dp[i]),
                               "dm": float(layout.dm[i])} for i, name in enumerate(layout.pair_names)]
            if layout is not None else []}


def plasticity_line(r: dict[str, Any]) -> str | None:
    """The bench table's line on STDP: plastic synapses and the plasticity phase's share of the burst."""
    if not r.get("plastic_synapses"):
        return None
    # the mean counts the rare requantisations (a pass over the synapse table each), the p50 a usual burst
    shares = ", ".join(f"{name} {b['phases']['plasticity']['mean_us']:,.1f} µs mean ({b['plasticity_share']:.1%} "
                       f"of the burst's phases), {b['phases']['plasticity']['p50_us']:,.1f} µs p50 "
                       f"({b['plasticity_share_p50']:.1%})" for name, b in r["backends"].items())
    return f"STDP: {r['plastic_synapses']:,} plastic synapses ({r['plastic_fraction']:.1%}); plasticity phase: {shares}"


def numpy_loop_line(r: dict[str, Any]) -> str | None:
    """The bench table's line comparing the CPU backend with the numpy loop of the same run."""
    loop = r.get("numpy_loop")
    if not loop:
        return None
    return (f"{loop['backend']}: {loop['us_per_burst']:,.1f} µs per burst in this run; the CPU backend "
            f"takes {r['cpu_vs_numpy_loop']:.2f}x its time")


def calibrate(gpu: bool, seconds_per_point: float | None = None) -> dict[str, Any]:
    """`bench --calibrate`: measure this machine as its first use does (feagi_burst.calibration), for
    longer per point, and return the fitted constants with each point's measurement beside the
    model's. Without a GPU only the CPU's constants are fitted (`constants` holds those alone)."""
    from feagi_burst.config import CONSTANT_KEYS
    from feagi_burst.selection import Constants

    entry = calibrate_machine(gpu=gpu, seconds_per_point=seconds_per_point or CALIBRATION_SECONDS_PER_POINT)
    fitted = {k: v for k, v in entry["constants"].items()
              if k.startswith("cpu_") or (gpu and entry["gpu_error"] is None)}
    entry["fitted"] = {k: fitted[k] for k in CONSTANT_KEYS if k in fitted}
    entry["points"] = predicted(entry["points"], Constants(**entry["constants"]))
    return entry


def update_backend_section(path: Path, values: dict[str, float], remove: tuple[str, ...] = ()) -> None:
    """Write `values` into the [backend] table of a TOML file, keeping every other line as written
    (but the lines of the keys in `remove`, e.g. the older model's constants, which go).

    Values are formatted by tomli-w; the edit is checked by re-reading the file before the
    atomic rename, so a config never ends up broken or changed elsewhere.
    """
    text = read_text(path, "config file")
    before = load_config(path).raw
    lines = text.splitlines()
    header = next((i for i, ln in enumerate(lines) if re.match(r"^\s*\[backend\]\s*(#.*)?$", ln)), None)
    if header is None:
        lines += ["", "[backend]"]
        header = len(lines) - 1
    end = next((i for i in range(header + 1, len(lines)) if re.match(r"^\s*\[", lines[i])), len(lines))
    gone = [i for i in range(header + 1, end) if any(re.match(rf"^\s*{k}\s*=", lines[i]) for k in remove)]
    for i in reversed(gone):
        del lines[i]
    end -= len(gone)
    for key, value in values.items():
        rendered = tomli_w.dumps({key: float(value)}).strip()
        at = next((i for i in range(header + 1, end) if re.match(rf"^\s*{key}\s*=", lines[i])), None)
        if at is None:
            lines.insert(end, rendered)
            end += 1
        else:
            lines[at] = rendered
    new = "\n".join(lines) + "\n"
    expected = dict(before)
    kept = {k: v for k, v in before.get("backend", {}).items() if k not in remove}
    expected["backend"] = {**kept, **{k: float(v) for k, v in values.items()}}
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError:
        after = None
    if after != expected:
        raise InputError(f"{path}: could not write the calibration into [backend] without changing other values; "
                         "add the keys to [backend] by hand: " + ", ".join(f"{k} = {v:.6g}" for k, v in values.items()))
    parse_config(after, path)
    with atomic_write(path) as f:
        f.write(new)
