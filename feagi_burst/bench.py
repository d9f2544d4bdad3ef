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
from feagi_burst.config import BackendConfig, load_config, parse_config
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write, read_text
from feagi_burst.fixed_point import SynapseTables, compile_tables
from feagi_burst.report import PhaseStats
from feagi_burst.selection import estimate_us, work_flops

CALIBRATION_SIZES = (50_000, 100_000, 250_000, 500_000, 1_000_000)
CALIBRATED_KEYS = ("cpu_gflops", "cpu_overhead_us", "gpu_tflops", "gpu_overhead_us")


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
        t0 = time.perf_counter()
        # Engine.run(0) means "until stopped": no warm-up must not run forever
        if warmup and not blocking:
            engine.run(warmup)
        elif warmup:
            for _ in range(warmup):
                engine.process_burst()
        warm_s = time.perf_counter() - t0
        stats = PhaseStats()
        fire_sets = [engine.backend.last_fire_set()[0]]

        def count(r: BurstResult) -> None:
            stats.add(r)
            fire_sets.append(r.fired)  # events are counted after the clock stops
            if on_burst:
                on_burst(r)
        start = time.perf_counter()
        if blocking:
            for _ in range(bursts):
                count(engine.process_burst())
        else:
            engine.run(bursts, on_result=count)
        wall = time.perf_counter() - start
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
    from feagi_burst.backends.cpu import expand_ranges

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
        total = sum(v["mean_us"] for v in r["phases"].values())
        r["plasticity_share"] = r["phases"]["plasticity"]["mean_us"] / total if total > 0 else 0.0
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
    shares = ", ".join(f"{name} {b['phases']['plasticity']['mean_us']:,.1f} µs ({b['plasticity_share']:.1%} of "
                       "the burst's phases)" for name, b in r["backends"].items())
    return f"STDP: {r['plastic_synapses']:,} plastic synapses ({r['plastic_fraction']:.1%}); plasticity phase: {shares}"


def numpy_loop_line(r: dict[str, Any]) -> str | None:
    """The bench table's line comparing the CPU backend with the numpy loop of the same run."""
    loop = r.get("numpy_loop")
    if not loop:
        return None
    return (f"{loop['backend']}: {loop['us_per_burst']:,.1f} µs per burst in this run; the CPU backend "
            f"takes {r['cpu_vs_numpy_loop']:.2f}x its time")


MAX_RATE = 1e4  # GFLOP/s or TFLOP/s: a flat measurement means "fast", not infinitely so


def fit_line(x: np.ndarray, y: np.ndarray, min_slope: float = 0.0) -> tuple[float, float]:
    """Slope and intercept (both >= 0) minimising the relative error of a + b*x against y.

    Relative rather than absolute error, because the sizes span 20x and the model must hold at
    each; one point more than 50% off the first fit (a stall during that measurement) is dropped
    and the rest refitted, when at least two remain.
    """
    def solve(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        (a, b), *_ = np.linalg.lstsq(np.stack([1 / y, x / y], axis=1), np.ones_like(y), rcond=None)
        if a < 0:  # an overhead cannot be negative: through the origin
            a, b = 0.0, float((x / y).sum() / ((x / y) ** 2).sum())
        if b < min_slope:  # no growth with size: all overhead
            b = min_slope
            a = float(((1 - b * x / y) / y).sum() / (1 / y**2).sum())
        return float(b), max(0.0, float(a))

    slope, intercept = solve(x, y)
    off = np.abs((intercept + slope * x) / y - 1)
    worst = int(np.argmax(off))
    if off[worst] > 0.5 and x.size > 2:
        keep = np.arange(x.size) != worst
        slope, intercept = solve(x[keep], y[keep])
    return slope, intercept


def calibrate(measurements: list[dict[str, Any]], cfg: BackendConfig) -> dict[str, float]:
    """Fit the model's constants to measured µs per burst at several sizes (see selection.py)."""
    fitted: dict[str, float] = {}
    work = np.array([work_flops(m["neurons"], m["synapses"], m["firing_rate"]) for m in measurements])
    cpu = np.array([m["backends"]["cpu"]["us_per_burst"] for m in measurements if "cpu" in m["backends"]])
    if cpu.size >= 2:
        slope, intercept = fit_line(work[: cpu.size], cpu, min_slope=1e-3 / MAX_RATE)
        fitted["cpu_gflops"] = 1e-3 / slope
        fitted["cpu_overhead_us"] = intercept
    gpu_rows = [(w, m) for w, m in zip(work, measurements) if "gpu" in m["backends"]]
    if len(gpu_rows) >= 2:
        w = np.array([r[0] for r in gpu_rows])
        bus = np.array([m["neurons"] * m["firing_rate"] * 8 / (cfg.bus_bandwidth_gbps * 1e3) for _, m in gpu_rows])
        g = np.array([m["backends"]["gpu"]["us_per_burst"] for _, m in gpu_rows]) - bus
        slope, intercept = fit_line(w, g, min_slope=1e-6 / MAX_RATE)
        fitted["gpu_tflops"] = 1e-6 / slope
        fitted["gpu_overhead_us"] = intercept
    return fitted


def update_backend_section(path: Path, values: dict[str, float]) -> None:
    """Write `values` into the [backend] table of a TOML file, keeping every other line as written.

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
    expected["backend"] = {**before.get("backend", {}), **{k: float(v) for k, v in values.items()}}
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
