"""Measure once per machine: the speedup model's constants for `--backend auto`, fitted and cached.

The first decision that needs them on a machine (`run --backend auto`, `select`, an Engine with
backend="auto", on a machine with a usable hardware GPU adapter) runs small synthetic brains on the
CPU and on the GPU for a few seconds, fits feagi_burst.selection's constants to what it measured,
and caches them in the user's cache directory, keyed by the machine: the CPU (model and cores),
the hardware adapters (label and driver) and the backends' code (a changed kernel is another
machine). Later decisions read the cache.

Where each constant comes from, first found wins: the config's [backend] (a constant given there,
e.g. by `feagi-burst bench --calibrate`), the cache, selection.DEFAULT_CONSTANTS.
FEAGI_BURST_NO_CALIBRATION=1 skips measuring (the cache is not read either: the defaults apply).
FEAGI_BURST_CACHE_DIR replaces the cache's folder (tests and scripts use a temporary one).

Without a hardware adapter the CPU is the only choice (a software adapter such as llvmpipe is never
chosen automatically), so a decision measures nothing; `select`, which shows the estimates, measures
the CPU alone once (a few seconds) and caches it, so that its CPU estimate describes this machine.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.config import CONSTANT_KEYS, BackendConfig
from feagi_burst.selection import (CPU_DENSE_EVENTS, CPU_PARALLEL_FROM, DEFAULT_CONSTANTS, GPU_FULL_FRACTION,
                                   Constants, Work, burst_work, constants_of, cpu_us, gpu_device_us, gpu_us)

FORMAT = 1
ENV_SKIP = "FEAGI_BURST_NO_CALIBRATION"
ENV_CACHE_DIR = "FEAGI_BURST_CACHE_DIR"
CACHE_NAME = "calibration.json"

# (label, neurons, synapses per neuron, firing rate): spikes, events and neurons vary independently
# across them (10 or 100 synapses per neuron, 1% or 10% firing), on one thread and on all cores
# (from 50K neurons), sparse bursts (a candidate list) and dense ones (every neuron visited), so
# each cost separates; "tiny" pins the fixed cost, "1M" (`bench`'s brain: a build of ~2 s) the
# slowdown of a large brain and the GPU's own time above its host's (with 10 synapses and 3% firing
# instead, the H200's estimate at bench's 1M brain was 36% low). "stimulated" (STIMULATED) is a
# genome-sized brain firing as real genomes do (0.15% of its neurons a burst), stimulated from
# outside every burst as a genome's sensory input is (STIMULUS_FIRE forced fires, and potentials
# every STIMULUS_POTENTIAL_EVERY bursts).
POINTS: tuple[tuple[str, int, int, float], ...] = (
    ("tiny", 1_000, 10, 0.01),
    ("10K", 10_000, 100, 0.01),
    ("10K busy", 10_000, 100, 0.10),
    ("100K sparse", 100_000, 10, 0.01),
    ("100K busy", 100_000, 10, 0.10),
    ("stimulated", 50_000, 10, 0.0015),
    ("100K", 100_000, 100, 0.01),
    ("1M", 1_000_000, 100, 0.01),
)
STIMULATED = "stimulated"
STIMULUS_FIRE = 9  # neurons forced to fire each burst (pong's ball: a 3x3 patch)
STIMULUS_POTENTIAL_EVERY = 10  # and a potential staged on as many every 10th burst
SECONDS_PER_POINT = 0.15  # timed bursts per point and backend, after a short warm-up
GROUPS = 5  # timed in groups; the median group is kept (robust to another process taking the cores)
WARM_BURSTS = 40  # warm-up bursts before timing: past the CPU backend's first thread probe (ThreadChoice)
WARM_CPU_S, WARM_GPU_S = 0.05, 0.25  # ... and at least this long (WARM_GPU_S: a software adapter)
GPU_WARM_WINDOW_S, GPU_WARM_MIN_S, GPU_WARM_MAX_S = 0.25, 0.5, 2.0  # gpu_warm_up's windows and bounds


def notice(message: str) -> None:
    """A line on stderr saying what feagi-burst is doing (not a warning)."""
    import sys

    from feagi_burst.files import printable

    print(f"feagi-burst: {printable(message)}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    from feagi_burst.files import warn as say

    say(message)


# -- where, and for which machine -------------------------------------------------------------
def cache_path() -> Path:
    """$FEAGI_BURST_CACHE_DIR/calibration.json, else $XDG_CACHE_HOME or ~/.cache, /feagi-burst/calibration.json."""
    folder = os.environ.get(ENV_CACHE_DIR)
    if folder:
        return Path(folder) / CACHE_NAME
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feagi-burst" / CACHE_NAME


def skipped() -> bool:
    """FEAGI_BURST_NO_CALIBRATION is set (to anything but empty or 0)."""
    return os.environ.get(ENV_SKIP, "") not in ("", "0")


def cpu_identity() -> dict[str, Any]:
    """The CPU's model name (/proc/cpuinfo, else the platform's) and the cores this process may use."""
    name = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                name = line.split(":", 1)[1].strip()
                break
    name = name or platform.processor() or platform.machine() or "unknown CPU"
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return {"cpu": name, "cores": cores, "arch": platform.machine()}


def code_identity() -> str:
    """A hash of the backends' code and shaders: a change there can change every constant."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    files = sorted((root / "backends").rglob("*.py")) + [root / "engine.py", root / "fixed_point.py"]
    with contextlib.suppress(ImportError):
        import feagi_burst.shaders as shaders  # noqa: PLC0415

        files += sorted(Path(next(iter(shaders.__path__))).rglob("*.wgsl"))
    for f in files:
        with contextlib.suppress(OSError):
            h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def machine_key(adapters: list[dict[str, Any]]) -> dict[str, Any]:
    """What the cache is keyed by: the CPU, each hardware adapter (label, driver), the code."""
    hardware = [{"label": a.get("label") or a.get("name", ""), "driver": a.get("driver", "")}
                for a in adapters if not a.get("is_software")]
    return {**cpu_identity(), "adapters": sorted(hardware, key=lambda a: (a["label"], a["driver"])),
            "code": code_identity()}


def key_id(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


# -- the cache file ---------------------------------------------------------------------------
def read_cache(path: Path) -> tuple[dict[str, Any], str | None]:
    """The cache's machines ({} when absent), and why it was unusable (None when fine or absent)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}, None
    except OSError as e:
        return {}, f"cannot be read ({e.strerror or e})"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return {}, f"is not valid JSON ({e})"
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
        return {}, f"is not a calibration cache of format {FORMAT}"
    machines = {k: v for k, v in data["machines"].items() if valid_entry(v)}
    if len(machines) != len(data["machines"]):
        return machines, "holds entries that are not calibrations"
    return machines, None


def valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("constants"), dict):
        return False
    c = entry["constants"]
    return all(isinstance(c.get(k), (int, float)) and not isinstance(c.get(k), bool) and np.isfinite(c[k])
               and c[k] >= 0 for k in CONSTANT_KEYS)


def write_cache(path: Path, machines: dict[str, Any]) -> None:
    """Write the cache atomically (a reader sees the old file or the new one, never half of one)."""
    from feagi_burst.files import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        json.dump({"format": FORMAT, "machines": machines}, f, indent=1, allow_nan=False)
        f.write("\n")


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Serialise measuring between processes (a second one waits, then finds the cache written)."""
    import fcntl

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.with_name(path.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o666)
    except OSError:
        yield  # an unwritable cache folder: measure anyway, keep the result in this process
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- resolving the constants ------------------------------------------------------------------
@dataclasses.dataclass
class Resolved:
    """The model's constants in use, where each came from, and a line saying so."""

    constants: Constants
    sources: dict[str, str]  # constant -> "config", "cache" or "defaults"
    source: str  # one line for `select` and logs
    gpu_error: str | None = None  # the GPU failed its calibration (it is then not chosen automatically)
    entry: dict[str, Any] | None = None  # the cache entry used, if any


_memo: dict[str, dict[str, Any]] = {}  # key id -> cache entry, per process
_warned: set[str] = set()
_lock = threading.Lock()


def resolve(cfg: BackendConfig, adapters: list[dict[str, Any]], decide: bool = True,
            say: Callable[[str], None] | None = None, estimate: bool = False) -> Resolved:
    """The constants for a decision: the config's, else this machine's cached ones, else the defaults.

    Measures (and caches) when the cache has no entry for this machine and either a hardware
    adapter exists and `decide` (a decision is to be made: no force flag), or `estimate` (the
    caller shows the estimates, as `select` does: without a hardware adapter the CPU alone is
    measured, a few seconds, so that its estimate describes this machine). `say` gets the one
    "measuring" line (default: stderr).
    """
    if cfg.legacy_keys and "legacy" not in _warned:
        _warned.add("legacy")
        warn(f"[backend] {', '.join(cfg.legacy_keys)}: keys of the older speedup model, ignored; the model's "
             "constants are now measured on each machine (`feagi-burst select` says which it uses)")
    explicit = [k for k in CONSTANT_KEYS if getattr(cfg, k) is not None]
    if len(explicit) == len(CONSTANT_KEYS):
        return Resolved(constants_of(cfg), dict.fromkeys(CONSTANT_KEYS, "config"), "config ([backend])")
    hardware = [a for a in adapters if not a.get("is_software")]
    entry, why = None, ""
    path = cache_path()
    if skipped():
        why = f"{ENV_SKIP} is set"
    else:
        key = machine_key(adapters)
        entry = lookup(path, key)
        if entry is None and ((decide and hardware) or estimate):
            entry = measure_and_cache(path, key, say or notice)
        if entry is None:
            why = ("nothing to measure: no usable hardware GPU adapter" if not hardware
                   else "not measured: no decision to make" if not decide else "measuring failed")
    base = entry["constants"] if entry else DEFAULT_CONSTANTS.as_dict()
    gpu_measured = bool(entry and entry.get("machine", {}).get("adapters"))  # else the CPU alone was measured
    if entry and not gpu_measured:
        base = {**DEFAULT_CONSTANTS.as_dict(), **{k: v for k, v in base.items() if k.startswith("cpu_")}}
    sources = {k: "config" if k in explicit else
               "cache" if entry and (gpu_measured or k.startswith("cpu_")) else "defaults" for k in CONSTANT_KEYS}
    if entry:
        where = f"cache ({path}, measured {entry.get('measured', '?')} in {entry.get('seconds', 0):.1f} s)"
        if not gpu_measured:
            where += "; the GPU terms: defaults (built-in: no hardware GPU adapter measured)"
    else:
        where = f"defaults (built-in, measured on a 2-core AMD EPYC and an H200; {why})"
    line = where if not explicit else f"config ([backend]) for {', '.join(explicit)}; {where} for the rest"
    return Resolved(constants_of(cfg, base), sources, line, entry.get("gpu_error") if entry else None, entry)


def lookup(path: Path, key: dict[str, Any]) -> dict[str, Any] | None:
    """This machine's entry: from this process's memory, else the cache file (a bad file: a warning)."""
    kid = key_id(key)
    with _lock:
        if kid in _memo:
            return _memo[kid]
    machines, problem = read_cache(path)
    if problem and str(path) not in _warned:
        _warned.add(str(path))
        warn(f"calibration cache {path} {problem}; ignoring it (it is rewritten when this machine is measured)")
    entry = machines.get(kid)
    if entry is not None and entry.get("machine") == key:
        with _lock:
            _memo[kid] = entry
        return entry
    return None


def measure_and_cache(path: Path, key: dict[str, Any], say: Callable[[str], None]) -> dict[str, Any] | None:
    """Measure this machine once (other processes wait on a lock, then read what it wrote)."""
    kid = key_id(key)
    with _lock, cache_lock(path):
        if kid in _memo:
            return _memo[kid]
        machines, problem = read_cache(path)
        entry = machines.get(kid)
        if entry is not None and entry.get("machine") == key:
            _memo[kid] = entry
            return entry
        say(f"measuring this machine once for backend selection (cached in {path})" if key["adapters"] else
            f"measuring this machine's CPU once for the estimate (cached in {path})")
        try:
            entry = calibrate_machine(gpu=bool(key["adapters"]))
        except Exception as e:  # noqa: BLE001 (measuring must never stop a run: decide on the defaults)
            warn(f"could not measure this machine for backend selection ({type(e).__name__}: {e}); "
                 "using the built-in constants")
            return None
        _memo[kid] = entry
        store(path, key, entry, "this process keeps the measurement")
        return entry


def store(path: Path, key: dict[str, Any], entry: dict[str, Any], otherwise: str) -> None:
    """Write `entry` into the cache as machine `key`'s, beside the other machines' (the caller holds
    cache_lock). A cache that cannot be written is a warning ending in `otherwise`: it must not stop
    a run."""
    machines, problem = read_cache(path)
    fresh = {} if problem and not machines else machines  # an unreadable cache is rewritten
    entry["machine"] = key
    fresh[key_id(key)] = entry
    try:
        write_cache(path, fresh)
    except Exception as e:  # noqa: BLE001
        warn(f"could not write the calibration cache {path} ({e}); {otherwise}")


# -- measuring --------------------------------------------------------------------------------
def calibrate_machine(gpu: bool, seconds_per_point: float = SECONDS_PER_POINT,
                      points: tuple[tuple[str, int, int, float], ...] | None = None) -> dict[str, Any]:
    """Run the calibration brains on the CPU (and the GPU when `gpu`), fit, and return the cache entry."""
    t0 = time.perf_counter()
    rows = measure_points(gpu, seconds_per_point, points)
    constants, gpu_error = fit_constants(rows)
    return {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds": round(time.perf_counter() - t0, 2), "constants": constants, "gpu_error": gpu_error,
            "points": rows}


def measure_points(gpu: bool, seconds_per_point: float = SECONDS_PER_POINT,
                   points: tuple[tuple[str, int, int, float], ...] | None = None) -> list[dict[str, Any]]:
    """Time each calibration brain on the CPU backend (and on one GPU backend, reused), pipelined."""
    from feagi_burst.backends import create_backend
    from feagi_burst.backends.base import BackendError
    from feagi_burst.backends.compiled import threads
    from feagi_burst.brain import Drive
    from feagi_burst.fixed_point import compile_tables
    from feagi_burst.synthetic import synthetic_brain

    wanted = points if points is not None else POINTS
    gpu_backend, gpu_error = None, None
    if gpu:
        try:
            gpu_backend = create_backend("gpu")
        except Exception as e:  # noqa: BLE001 (no device: the GPU is not chosen automatically)
            gpu_error = str(e)
    rows: list[dict[str, Any]] = []
    built: dict[tuple[int, int], Any] = {}
    try:
        for label, n, k, rate in wanted:
            if (n, k) not in built:
                built.clear()  # one brain held at a time
                brain = synthetic_brain(n, k, max(rate, 0.01), seed=0)
                built[(n, k)] = (brain, compile_tables(brain))
            brain, tables = built[(n, k)]
            stimulated = label == STIMULATED
            per_burst = int(round(rate * n))
            brain = dataclasses.replace(brain, drive=Drive(brain.drive.order, per_burst, brain.drive.potential))
            row: dict[str, Any] = {"label": label, "neurons": n, "synapses": n * k, "stimulated": stimulated}
            if n >= CPU_PARALLEL_FROM and threads() > 1:
                # each thread mode pinned, the faster kept: what a long run settles on. Left to
                # probe, a point of a few dozen bursts could time the probes themselves, or the
                # single thread before a first probe that lost to a slow first fork-join (a 1M
                # point read 8.7 ms where `bench` measured 2.5 on a 16-core host)
                timed = {"cpu": min((time_bursts(brain, tables, "cpu", seconds_per_point, stimulated=stimulated,
                                                 cpu_threads=mode) for mode in (False, True)),
                                    key=lambda r: r["wall_us"])}
            else:
                timed = {"cpu": time_bursts(brain, tables, "cpu", seconds_per_point, stimulated=stimulated)}
            if gpu_backend is not None and gpu_error is None:
                try:
                    timed["gpu"] = time_bursts(brain, tables, gpu_backend, seconds_per_point, min_bursts=256,
                                               stimulated=stimulated)
                except Exception as e:  # noqa: BLE001 (whatever stops the GPU here stops it choosing it)
                    gpu_error = f"{type(e).__name__}: {e}" if not isinstance(e, BackendError) else str(e)
            # the rate it ran at (a stimulated brain fires what it is made to, and what that causes)
            fired = timed["cpu"]["fired_per_burst"]
            row["firing_rate"] = fired / n
            w = burst_work(n, n * k, fired / n)
            row.update(events=w.events, candidates=w.candidates, spikes=w.spikes)
            row["cpu_us"] = timed["cpu"]["wall_us"]
            if "gpu" in timed:
                row["gpu_us"], row["gpu_device_us"] = timed["gpu"]["wall_us"], timed["gpu"]["device_us"]
            rows.append(row)
    finally:
        if gpu_backend is not None:
            with contextlib.suppress(Exception):
                gpu_backend.close()
    if gpu_error:
        rows.append({"gpu_error": gpu_error})
    return rows


def clocked_gpu(backend: Any) -> bool:
    """True for a hardware GPU backend (its clocks drop when idle); False for the CPU or a software adapter."""
    return getattr(backend, "is_software", None) is False


def gpu_warm_up(run: Callable[..., float]) -> float:
    """Run a hardware GPU until its clocks are up; its wall time per burst then.

    An idle GPU drops its clocks within about a second (an H200: 1980 -> 345-570 MHz while the CPU
    point before was timed) and raises them again in steps of ~250 ms over up to ~1 s of work, so
    a point timed at once read 1.3-2.5x its steady device time (the 1M point: 117-163 µs against
    65). Windows of GPU_WARM_WINDOW_S: warm once a window's device time (timestamps) is within 3%
    of the one before, after GPU_WARM_MIN_S, and at most GPU_WARM_MAX_S.
    """
    from feagi_burst.report import PhaseStats

    t0 = time.perf_counter()
    last = float("inf")
    while True:
        stats = PhaseStats()
        t_win, n = time.perf_counter(), 0
        while n < WARM_BURSTS or time.perf_counter() - t_win < GPU_WARM_WINDOW_S:
            run(8, stats.add)
            n += 8
        est = max((time.perf_counter() - t_win) / n, 1e-6)
        # the mean, not the p50: a clock step inside a window must show in it
        device = stats.phase("total")["mean_us"] if stats.timed else float("nan")
        waited = time.perf_counter() - t0
        if waited >= GPU_WARM_MAX_S or (waited >= GPU_WARM_MIN_S and not device < 0.97 * last):
            return est
        last = device


def time_bursts(brain: Any, tables: Any, backend: Any, seconds: float, min_bursts: int = 10,
                stimulated: bool = False, cpu_threads: bool | None = None) -> dict[str, float]:
    """µs per burst, pipelined as `run` and `bench` run: the median of GROUPS timed groups after a
    warm-up; for a GPU also its own time per burst (median of its timestamped bursts, if any).
    `stimulated`: forced fires every burst and potentials every 10th, on neurons spread over the
    brain, staged through the engine (as a genome's stimulus is). `cpu_threads`: the CPU backend's
    dense bursts pinned to every thread (True) or one (False) instead of probing both."""
    from feagi_burst.engine import Engine
    from feagi_burst.report import PhaseStats

    engine = Engine(brain, backend=backend, warn=None, tables=tables)
    if cpu_threads is not None:
        engine.backend.pin_threads(cpu_threads)
    try:
        rng = np.random.default_rng(0)

        def stage(count: int) -> None:
            if not stimulated:
                return
            first = engine.submitted + 1
            for b in range(first, first + count):
                # in id order, as a genome's voxel patch resolves
                engine.force_fire(np.sort(rng.choice(brain.neuron_count, STIMULUS_FIRE, replace=False)), burst=b)
                if b % STIMULUS_POTENTIAL_EVERY == 0:
                    engine.stage_potential(rng.choice(brain.neuron_count, STIMULUS_FIRE, replace=False), 0.5, burst=b)

        def run(count: int, on_result: Any = None) -> float:
            stage(count)
            t = time.perf_counter()
            engine.run(count, on_result=on_result)
            return time.perf_counter() - t

        run(8)  # the first bursts pay for lazily built state
        # then run as `bench` and a long run do: the CPU backend past its first probe of the threads
        # (ThreadChoice: it starts on one), a GPU at its working clocks (see gpu_warm_up)
        if not clocked_gpu(backend):
            warm_s = WARM_CPU_S if backend == "cpu" else WARM_GPU_S
            warmed, t_warm, est = 8, time.perf_counter(), 1e-6
            while warmed < WARM_BURSTS or time.perf_counter() - t_warm < warm_s:
                est = max(run(8) / 8, 1e-6)
                warmed += 8
                if time.perf_counter() - t_warm > 4 * warm_s and warmed >= 24:
                    break  # a slow backend (a large brain): past the probe is enough
        else:
            est = gpu_warm_up(run)
        # `seconds` of bursts, at least `min_bursts` (a GPU's timestamps sample one batch in 8)
        # unless those would take over a second (a slow device)
        wanted = max(seconds / est, min(min_bursts, 1.0 / est))
        per_group = int(max(1, min(5000, wanted / GROUPS)))
        stats = PhaseStats()
        fired = [0]
        delivered: list[float] = []

        def count(r: Any) -> None:
            stats.add(r)
            fired[0] += len(r.fired)
            delivered.append(time.perf_counter())
        # one run, timed by when its results arrive: the steady rate a long run (and bench) sees.
        # Separate short runs each paid for filling and draining a pipelined backend's batches:
        # an H200's 1M point read 200 µs a burst that way, where bench measures 70-100.
        total = per_group * GROUPS
        run(total, count)
        at = np.asarray(delivered)
        edges = np.linspace(0, len(at) - 1, GROUPS + 1).round().astype(np.int64)
        walls = [(at[b] - at[a]) / (b - a) * 1e6 for a, b in zip(edges, edges[1:]) if b > a]
        # the mean, not the p50: a clock step inside a window must show in it
        device = stats.phase("total")["mean_us"] if stats.timed else float("nan")
        return {"wall_us": float(np.median(walls)), "device_us": float(device), "bursts": total,
                "fired_per_burst": fired[0] / (per_group * GROUPS)}
    finally:
        if isinstance(backend, str):
            engine.close()


# -- fitting ----------------------------------------------------------------------------------
def fit_nonnegative(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Coefficients b >= 0 minimising the relative error sum(((x @ b) / y - 1)^2).

    Relative, because the points span 1,000x in time and the model must hold at each. Few
    columns, so every set of free coefficients is tried (the others held at 0) and the best
    feasible fit kept. One point more than 50% off (a stall while it was timed) is dropped and the
    rest refitted, when enough remain.
    """
    def solve(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        a = x / y[:, None]
        best, best_loss = np.zeros(x.shape[1]), float("inf")
        for mask in range(1, 1 << x.shape[1]):
            cols = [j for j in range(x.shape[1]) if mask >> j & 1]
            sol, *_ = np.linalg.lstsq(a[:, cols], np.ones(len(y)), rcond=None)
            if (sol < 0).any():
                continue
            b = np.zeros(x.shape[1])
            b[cols] = sol
            loss = float(((a @ b - 1) ** 2).sum())
            if loss < best_loss:
                best, best_loss = b, loss
        return best

    b = solve(x, y)
    off = np.abs(x @ b / y - 1)
    worst = int(np.argmax(off))
    if off[worst] > 0.5 and len(y) > x.shape[1] + 1:
        keep = np.arange(len(y)) != worst
        b = solve(x[keep], y[keep])
    return b


SLOWDOWNS = (0.0, *np.geomspace(0.03, 30.0, 19))  # cpu_slowdown_per_mneuron tried by the fit
PARALLEL = tuple(np.geomspace(0.1, 30.0, 19))  # cpu_parallel_speedup tried by the fit


def fit_constants(rows: list[dict[str, Any]]) -> tuple[dict[str, float], str | None]:
    """The model's constants fitted to measured rows; those the rows cannot give keep the defaults.

    CPU: the driven rows give cpu_fixed_us and the per-event, per-neuron and per-spike costs, with
    the slowdown and the cores' speedup that leave the least relative error (tried from SLOWDOWNS
    and PARALLEL); the stimulated row, what it took beyond that: cpu_input_us. GPU: the device's
    own time per burst (timestamps) gives gpu_fixed_us and its per-event, per-neuron and per-spike
    costs; gpu_host_us is the time per burst where the device is not the bound (under 80% of it);
    the stimulated row's excess over that is gpu_input_us. Without believable timestamps (a
    software adapter's), the whole burst is fitted as device time (gpu_host_us 0).
    """
    out = DEFAULT_CONSTANTS.as_dict()
    error = next((r["gpu_error"] for r in rows if "gpu_error" in r), None)
    rows = [r for r in rows if "events" in r]
    driven = [r for r in rows if not r.get("stimulated")]
    stim = [r for r in rows if r.get("stimulated")]
    cpu = [r for r in driven if r.get("cpu_us", 0) > 0]
    if len(cpu) >= 3:
        y = np.array([r["cpu_us"] for r in cpu])
        best: tuple[float, float, float, np.ndarray] | None = None
        parallel = any(r["neurons"] >= CPU_PARALLEL_FROM for r in cpu) and any(r["neurons"] < CPU_PARALLEL_FROM
                                                                             for r in cpu)
        for g in SLOWDOWNS:
            for p in PARALLEL if parallel else (1.0,):
                x = cpu_design(cpu, g, p)
                b = fit_nonnegative(x, y)
                # each point's relative error, capped at 50%: one stalled point must not pick g, p alone
                loss = float((np.minimum(np.abs(x @ b / y - 1), 0.5) ** 2).sum())
                if best is None or loss < best[0] - 1e-12:
                    best = (loss, g, p, b)
        assert best is not None
        _, g, p, b = best
        out.update(cpu_fixed_us=b[0], cpu_ns_per_event=b[1], cpu_ns_per_neuron=b[2], cpu_ns_per_spike=b[3],
                   cpu_slowdown_per_mneuron=g, cpu_parallel_speedup=p)
        c = Constants(**{**out, "cpu_input_us": 0.0})
        extra = [r["cpu_us"] - cpu_us(work(r), c) for r in stim if r.get("cpu_us")]
        if extra:
            out["cpu_input_us"] = max(0.0, float(np.median(extra)))
    gpu = [r for r in driven if r.get("gpu_us", 0) > 0]
    if len(gpu) >= 3:
        # the device cannot take longer per burst than the pipelined burst does: timestamps that
        # say so (a software adapter's; an H200's read up to 1.3x its pipelined bursts at 1K-100K
        # neurons) are not the device's time, and the wall time is fitted instead
        timed = [r for r in gpu if 0 < r.get("gpu_device_us", float("nan")) <= 1.1 * r["gpu_us"]]
        if len(timed) == len(gpu):
            b = fit_nonnegative(gpu_design(gpu), np.array([r["gpu_device_us"] for r in gpu]))
            host_bound = [r["gpu_us"] for r in gpu if r["gpu_device_us"] < 0.8 * r["gpu_us"]]
            host = float(np.median(host_bound)) if host_bound else 0.0
        else:
            b = fit_nonnegative(gpu_design(gpu), np.array([r["gpu_us"] for r in gpu]))
            host = 0.0
        out.update(gpu_host_us=host, gpu_fixed_us=b[0], gpu_ns_per_event=b[1], gpu_ns_per_neuron=b[2],
                   gpu_ns_per_spike=b[3])
        c = Constants(**out)
        extra = [r["gpu_us"] - host for r in stim if r.get("gpu_us")
                 and gpu_device_us(work(r), c) < r["gpu_us"]]
        out["gpu_input_us"] = max(0.0, float(np.median(extra))) if extra else 0.0
    return {k: round(float(v), 4) for k, v in out.items()}, error


def visited(r: dict[str, Any], dense: bool) -> float:
    return r["neurons"] if dense else r["candidates"]


def cpu_design(rows: list[dict[str, Any]], slowdown: float, parallel: float = 1.0) -> np.ndarray:
    """Columns: 1 (µs), events and visited neurons / 1e3 times the slowdown, over the cores' speedup
    where the backend uses them (so the coefficients are ns)."""
    out = []
    for r in rows:
        m = (1.0 + slowdown * r["neurons"] * 1e-6) * 1e-3 / (parallel if r["neurons"] >= CPU_PARALLEL_FROM else 1.0)
        dense = r["events"] * CPU_DENSE_EVENTS >= r["neurons"]
        out.append([1.0, r["events"] * m, visited(r, dense) * m, r["spikes"] * m])
    return np.array(out)


def gpu_design(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([[1.0, r["events"] * 1e-3, visited(r, r["events"] > GPU_FULL_FRACTION * r["neurons"]) * 1e-3,
                      r["spikes"] * 1e-3] for r in rows])


def work(r: dict[str, Any]) -> Work:
    """A measured row's burst, as the model sees it."""
    return Work(r["neurons"], r["events"], r["candidates"], r.get("spikes", r["neurons"] * r["firing_rate"]))


def predicted(rows: list[dict[str, Any]], c: Constants) -> list[dict[str, Any]]:
    """Each row with the model's cpu_us / gpu_us (and the GPU's device time) beside the measured ones."""
    out = []
    for r in rows:
        if "events" not in r:
            continue
        d, w, stim = dict(r), work(r), bool(r.get("stimulated"))
        d["model_cpu_us"] = cpu_us(w, c, stim)
        d["model_gpu_device_us"] = gpu_device_us(w, c)
        d["model_gpu_us"] = gpu_us(w, c, stim)
        out.append(d)
    return out
