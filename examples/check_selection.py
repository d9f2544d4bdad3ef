"""Is `--backend auto` right on this machine? Chosen backend against the measured-faster one.

For synthetic brains of 10K, 100K and 1M neurons (100 synapses each, 1% firing: `bench`'s brain)
and the pong genome with its stimulus, this script runs, as a user would:

- `feagi-burst select --dry-run --json` (the choice, and the model's CPU and GPU estimates),
- `feagi-burst run --backend auto` (a few bursts: the choice `run` prints),
- `feagi-burst bench --backend both` (µs per burst on the CPU and, where a hardware GPU adapter
  exists, the GPU; pipelined, as `run` runs; the median of 3 runs at 10K neurons); the pong
  genome, which `bench` does not take, is timed the same way in this process (Engine.run with its
  stimulus schedule staged and repeated, after a warm-up as `bench`'s; the median of 3).

It prints one JSON line per brain (chosen by select and by run, the measured-faster backend,
estimate against measurement per backend) and a summary line, and exits 1 if a choice is wrong or
an estimate is off by more than 30%. A choice is right when it is the backend measured faster, or
either backend when the two are tied: medians within TIE (5%) of each other, where a short
measurement cannot tell which is faster (the pong genome on an H200 machine, 2026-12-03: CPU
53.1 µs, GPU 51.8).

Like a fresh machine, it starts from an empty calibration cache (a temporary folder, through
FEAGI_BURST_CACHE_DIR), so the first `select` measures the machine; the user's own cache is
neither read nor written. `--cache DIR` uses (and keeps) DIR instead.

    python examples/check_selection.py [--sizes 10000,100000,1000000] [--no-genome] [--cache DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PONG = HERE / "pong_genome.json"
PONG_STIMULUS = HERE / "pong_stimulus.toml"
TOLERANCE = 0.30
TIE = 0.05  # measured times this close are a tie: either choice is right
WARM_S, TIMED_S = 0.5, 0.3  # the pong genome's warm-up and each timed run, in seconds


def cli(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`feagi-burst ARGS` in a child process (this interpreter, so the same installation)."""
    cmd = [sys.executable, "-c", "from feagi_burst.cli import main; main()", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"feagi-burst {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()[-2000:]}")
    return p


def write_config(folder: Path, name: str, neurons: int | None) -> Path:
    """A brain.toml with the default [backend]: a synthetic brain of `neurons`, or the pong genome."""
    path = folder / f"{name}.toml"
    if neurons is None:
        body = f'[genome]\npath = "{PONG}"\n\n[run]\nstimulus = "{PONG_STIMULUS}"\n'
    else:
        body = f"[genome.synthetic]\nneurons = {neurons}\nsynapses_per_neuron = 100\nfiring_rate = 0.01\n"
    path.write_text(body)
    return path


def chosen_by_run(config: Path, env: dict[str, str]) -> tuple[str, str]:
    """The backend `run --backend auto` picked, and the line it said it in."""
    p = cli(["run", "--config", str(config), "--backend", "auto", "--bursts", "3"], env)
    line = next((ln for ln in p.stderr.splitlines() if ln.startswith("backend:")), "")
    name = line.split("(", 1)[0].lower()
    backend = "cpu" if "cpu" in name else "gpu" if line else "?"
    return backend, line


def bench_synthetic(neurons: int, env: dict[str, str], folder: Path) -> tuple[dict[str, float], dict[str, list[float]]]:
    """µs per burst on each backend `bench --backend both` runs (the GPU only where one is usable):
    the median of 3 runs up to 20K neurons (one above: they take longer, and vary less), and every
    run's figure."""
    bursts = 500 if neurons <= 20_000 else 200 if neurons <= 200_000 else 60
    runs: dict[str, list[float]] = {}
    for i in range(3 if neurons <= 20_000 else 1):
        out = folder / f"bench-{neurons}-{i}.json"
        cli(["bench", "--neurons", str(neurons), "--backend", "both", "--bursts", str(bursts), "--warmup", "20",
             "--json", str(out)], env)
        for b, v in json.loads(out.read_text())["backends"].items():
            runs.setdefault(b, []).append(v["us_per_burst"])
    return {b: sorted(v)[len(v) // 2] for b, v in runs.items()}, runs


def bench_genome(backends: list[str], repeats: int = 3) -> tuple[dict[str, float], dict[str, list[float]]]:
    """µs per burst of the pong genome with its stimulus, per backend, in the steady state a long run
    reaches: the stimulus schedule (200 bursts) repeated as the run goes on, warm-up for WARM_S (and
    on a hardware GPU until its clocks are up, as `bench` does), then `repeats` timed runs of about
    TIMED_S each; the median, and every run's figure."""
    from feagi_burst.calibration import clocked_gpu, gpu_warm_up
    from feagi_burst.config import Config
    from feagi_burst.engine import Engine
    from feagi_burst.stimulus import read_schedule

    entries = read_schedule(PONG_STIMULUS)
    period = max(max(e["bursts"]) for e in entries)
    runs: dict[str, list[float]] = {}
    for b in backends:
        engine = Engine.from_config(Config(genome=PONG), backend=b, warn=None)
        staged = [0]

        def run(count: int, on_result: Any = None) -> float:
            while staged[0] * period < engine.submitted + count:  # the next repeat of the schedule
                shift = staged[0] * period
                engine.add_schedule([{**e, "bursts": [x + shift for x in e["bursts"]]} for e in entries])
                staged[0] += 1
            t = time.perf_counter()
            engine.run(count, on_result=on_result)
            return time.perf_counter() - t
        try:
            t0, est = time.perf_counter(), run(20) / 20
            while time.perf_counter() - t0 < WARM_S:
                est = run(100) / 100
            if clocked_gpu(engine.backend):
                est = gpu_warm_up(run)
            n = max(150, int(TIMED_S / est))
            runs[b] = [run(n) / n * 1e6 for _ in range(repeats)]
        finally:
            engine.close()
    return {b: sorted(v)[len(v) // 2] for b, v in runs.items()}, runs


def tied(measured: dict[str, float]) -> bool:
    """Two backends whose µs per burst are within TIE of each other."""
    return len(measured) == 2 and max(measured.values()) <= (1 + TIE) * min(measured.values())


def hardware_gpu() -> bool:
    from feagi_burst.backends import probe_adapters

    return any(not a.get("is_software") for a in probe_adapters())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="synthetic brains' neuron counts")
    ap.add_argument("--no-genome", action="store_true", help="skip the pong genome")
    ap.add_argument("--no-run", action="store_true", help="skip `run --backend auto` (select only)")
    ap.add_argument("--cache", type=Path, help="calibration cache folder to use (default: a fresh temporary one)")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="feagi-burst-check-") as tmp:
        folder = Path(tmp)
        cache = args.cache or folder / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FEAGI_BURST_CACHE_DIR": str(cache), "PYTHONUNBUFFERED": "1"}
        env.pop("FEAGI_BURST_NO_CALIBRATION", None)
        os.environ["FEAGI_BURST_CACHE_DIR"] = str(cache)  # this process's engines, too
        gpu = hardware_gpu()
        cases: list[tuple[str, int | None]] = [(f"{n // 1000}K" if n < 10**6 else f"{n / 1e6:g}M", n) for n in sizes]
        if not args.no_genome:
            cases.append(("pong", None))
        rows: list[dict[str, Any]] = []
        for name, neurons in cases:
            config = write_config(folder, name, neurons)
            t0 = time.perf_counter()
            p = cli(["select", "--config", str(config), "--dry-run", "--json"], env)
            sel = json.loads(p.stdout)
            select_s = time.perf_counter() - t0
            run_choice, run_line = ("-", "") if args.no_run else chosen_by_run(config, env)
            measured, runs = (bench_synthetic(neurons, env, folder) if neurons is not None
                              else bench_genome(["cpu", "gpu"] if gpu else ["cpu"]))
            faster = min(measured, key=measured.get)
            tie = tied(measured)
            right = set(measured) if tie else {faster}
            estimate = {"cpu": sel["estimated_cpu_us"], "gpu": sel["estimated_gpu_us"]}
            error = {b: estimate[b] / measured[b] - 1 for b in measured}
            choice_ok = sel["backend"] in right and (args.no_run or run_choice in right)
            estimate_ok = all(abs(e) <= TOLERANCE for e in error.values())
            row = {"brain": name, "neurons": sel["neurons"], "synapses": sel["synapses"],
                   "selected": sel["backend"], "run_chose": run_choice, "measured_faster": faster, "tie": tie,
                   "measured_us": {b: round(v, 1) for b, v in measured.items()},
                   "measured_runs_us": {b: [round(x, 1) for x in v] for b, v in runs.items()},
                   "estimated_us": {b: round(estimate[b], 1) for b in measured},
                   "estimate_error": {b: round(e, 3) for b, e in error.items()},
                   "choice_ok": choice_ok, "estimate_ok": estimate_ok, "reason": sel["reason"],
                   "constants_source": sel["constants_source"], "select_s": round(select_s, 2)}
            if run_line:
                row["run_line"] = run_line
            rows.append(row)
            print(json.dumps(row), flush=True)
        calibration = None
        cache_file = cache / "calibration.json"
        if cache_file.exists():
            machines = json.loads(cache_file.read_text()).get("machines", {})
            calibration = [{"measured": m.get("measured"), "seconds": m.get("seconds"),
                            "constants": m.get("constants"), "gpu_error": m.get("gpu_error"),
                            "points": m.get("points")}
                           for m in machines.values()]
        ok = all(r["choice_ok"] and r["estimate_ok"] for r in rows)
        print(json.dumps({"summary": "ok" if ok else "FAILED", "hardware_gpu": gpu,
                          "wrong_choices": [r["brain"] for r in rows if not r["choice_ok"]],
                          "estimates_off": [r["brain"] for r in rows if not r["estimate_ok"]],
                          "calibration": calibration, "seconds": round(time.perf_counter() - t_start, 1)}),
              flush=True)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
