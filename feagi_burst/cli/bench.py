"""`feagi-burst bench`: a synthetic brain timed on the CPU and/or GPU (its table), or with --calibrate
the selection model fitted to this machine."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from feagi_burst.cli.options import check_json_path
from feagi_burst.cli.program import app, err, out
from feagi_burst.config import load_config
from feagi_burst.errors import InputError
from feagi_burst.files import warn, write_json


@app.command("bench")
def bench_cmd(
    neurons: int = typer.Option(100_000, "--neurons", min=1, help="Neurons of the synthetic brain."),
    synapses_per_neuron: int = typer.Option(100, "--synapses-per-neuron", min=0, help="Outgoing synapses each."),
    firing_rate: float = typer.Option(0.01, "--firing-rate", min=0.0, max=1.0, help="Driven firing rate."),
    bursts: int = typer.Option(200, "--bursts", min=1, help="Timed bursts."),
    warmup: int = typer.Option(20, "--warmup", min=0, help="Bursts before timing."),
    backend: str = typer.Option("both", "--backend", help="cpu, gpu or both (both: gpu only where one exists)."),
    blocking: bool = typer.Option(False, "--blocking", help="Wait for each burst's spikes (closed-loop latency)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the synthetic brain."),
    model: str = typer.Option("feagi_lif", "--model", help="Neuron model of every neuron (feagi_lif, izhikevich, adex...)."),
    model_params: list[str] = typer.Option([], "--param", help="A parameter of --model as KEY=VALUE (repeatable), "
                                           "e.g. --param input_gain=100."),
    plastic_fraction: float = typer.Option(0.0, "--plastic-fraction", min=0.0, max=1.0,
                                           help="Make about this fraction of the synapses plastic (STDP, window 5)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results here."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Fit the selection model and write it to --config."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml whose \\[backend] table to use or calibrate."),
) -> None:
    """Benchmark a synthetic brain on the CPU and/or GPU backends (or calibrate the selection model)."""
    from feagi_burst.backends import probe_adapters
    from feagi_burst.bench import bench
    from feagi_burst.config import BackendConfig
    from feagi_burst.fixed_point import compile_tables
    from feagi_burst.memory import check_fits
    from feagi_burst.synthetic import estimate_bytes, synthetic_brain

    if backend not in ("cpu", "gpu", "both"):
        raise InputError(f"--backend {backend!r}: use cpu, gpu or both")
    if calibrate and config is None:
        raise InputError("--calibrate needs --config brain.toml: the file the fitted constants are written to")
    check_json_path(json_path)
    from feagi_burst.models.assign import parse_model_specs

    given: dict[str, Any] = {}
    for kv in model_params:
        key, sep, value = kv.partition("=")
        try:
            given[key.strip()] = float(value) if sep else None
        except ValueError:
            given[key.strip()] = None
        if given[key.strip()] is None:
            raise InputError(f"--param {kv!r}: give KEY=NUMBER, e.g. --param input_gain=100")
    params = parse_model_specs([{"areas": ["synth"], "type": model, **given}], "bench")[0].params
    cfg = load_config(config).backend if config else BackendConfig()
    if calibrate:
        assert config is not None
        return bench_calibrate(config, backend, json_path)
    sizes = (neurons,)
    # the largest size is checked before anything is built: too big is one line, not a killed process
    check_fits(estimate_bytes(max(sizes), synapses_per_neuron),
               f"a synthetic brain of {max(sizes):,} neurons x {synapses_per_neuron} synapses",
               "use fewer --neurons or --synapses-per-neuron")
    has_gpu = any(not a.get("is_software") for a in probe_adapters()) or backend == "gpu"
    backends = ["cpu", "gpu"] if backend == "both" and has_gpu else (["cpu"] if backend == "both" else [backend])
    if backend == "both" and not has_gpu:
        warn("no hardware GPU adapter: benchmarking the CPU backend only")
    results = []
    for n in sizes:
        need = estimate_bytes(n, synapses_per_neuron)
        err.print(f"building a synthetic brain: {n:,} neurons x {synapses_per_neuron} synapses "
                  f"(~{need / 2**30:.1f} GiB at peak)", highlight=False)
        t0 = time.perf_counter()
        with err.status("building synapses"):
            brain = synthetic_brain(n, synapses_per_neuron, firing_rate, seed, model=model,
                                    plastic_fraction=plastic_fraction, **params)
        with err.status("quantising synapses"):
            tables = compile_tables(brain)
        build_s = time.perf_counter() - t0
        with err.status(f"running {warmup} + {bursts} bursts on {', '.join(backends)}"):
            r = bench(brain, build_s, backends, bursts, warmup, seed, cfg, blocking, tables)
        results.append(r)
        del brain, tables
        out.print(bench_table(r))
    if json_path is not None:
        write_json(json_path, results[0])


def bench_calibrate(config: Path, backend: str, json_path: Optional[Path]) -> None:
    """`bench --calibrate`: measure this machine (the first-use calibration, longer per point), write
    the fitted constants into the config's [backend] and this machine's calibration cache, and show
    each point measured against the model."""
    from feagi_burst import calibration
    from feagi_burst.backends import probe_adapters
    from feagi_burst.bench import calibrate as measure, update_backend_section

    adapters = probe_adapters()
    gpu = backend != "cpu" and any(not a.get("is_software") for a in adapters)
    if backend == "gpu" and not gpu:
        raise InputError("--calibrate --backend gpu: no hardware GPU adapter to measure (a software adapter "
                         "is never chosen automatically)")
    load_config(config)  # a broken config is refused before minutes of measuring
    with err.status("measuring the calibration brains on " + ("the CPU and the GPU" if gpu else "the CPU")):
        entry = measure(gpu)
    from feagi_burst.config import LEGACY_KEYS

    update_backend_section(config, entry["fitted"], remove=LEGACY_KEYS)
    key = calibration.machine_key(adapters)
    if entry["gpu_error"] is None and (gpu or not key["adapters"]):  # all of this machine: its cache entry too
        entry["machine"] = key
        path = calibration.cache_path()
        with calibration.cache_lock(path):
            calibration.store(path, key, {k: v for k, v in entry.items() if k != "fitted"},
                              f"{config} is calibrated all the same")
    from rich.table import Table

    measured_gpu = any("gpu_us" in r for r in entry["points"])
    t = Table(title=f"calibration: µs per burst measured / model ({entry['seconds']:.1f} s)", title_justify="left")
    for c in ("brain", "neurons", "synapses", "rate", "CPU") + (("GPU", "GPU device") if measured_gpu else ()):
        t.add_column(c, justify="left" if c == "brain" else "right", no_wrap=True)
    for r in entry["points"]:
        cells = [r["label"], f"{r['neurons']:,}", f"{r['synapses']:,}", f"{r['firing_rate']:.2%}"]
        pairs = (("cpu_us", "model_cpu_us"),) + ((("gpu_us", "model_gpu_us"), ("gpu_device_us", "model_gpu_device_us"))
                                                  if measured_gpu else ())
        for measured, model in pairs:
            cells.append(f"{r[measured]:,.1f} / {r[model]:,.1f}" if r.get(measured) is not None else "-")
        t.add_row(*cells)
    out.print(t)
    out.print(f"calibrated {config}: " + ", ".join(f"{k} = {v:.4g}" for k, v in entry["fitted"].items()),
              highlight=False)
    if entry["gpu_error"]:
        warn(f"the GPU failed to run the calibration brains ({entry['gpu_error']}): only the CPU constants were fitted")
    elif not gpu:
        warn("no GPU measured: only the CPU constants were fitted")
    if json_path is not None:
        write_json(json_path, entry)


def bench_table(r: dict[str, Any]) -> Any:
    """One size's bench result as a table: per backend, per phase mean/p50/p99."""
    from rich.table import Table

    from feagi_burst.bench import numpy_loop_line, plasticity_line

    t = Table(title=f"{r['neurons']:,} neurons, {r['synapses']:,} synapses, target rate {r['firing_rate']:.2%}, "
                    f"built in {r['build_s']:.1f} s, peak memory {r['peak_rss_mb']:,.0f} MB", title_justify="left")
    t.add_column("backend")
    t.add_column("phase")
    for c in ("mean µs", "p50 µs", "p99 µs"):
        t.add_column(c, justify="right")
    for name, b in r["backends"].items():
        for phase, s in b["phases"].items():
            t.add_row(name, phase.replace("_", " "), f"{s['mean_us']:,.1f}", f"{s['p50_us']:,.1f}", f"{s['p99_us']:,.1f}")
        t.add_row(name, f"[bold]per burst ({b['mode']})", f"[bold]{b['us_per_burst']:,.1f}", f"{b['p50_us']:,.1f}",
                  f"{b['p99_us']:,.1f}", end_section=True)
    lines = [f"{name}: {b['backend']}, {b['bursts_per_s']:,.0f} bursts/s, {b['events_per_s'] / 1e6:,.1f} M "
             f"synaptic events/s, measured firing rate {b['firing_rate']:.3%}"
             + (f"; phases and p50/p99 from GPU timestamps on {b['timed_bursts']:,} of {r['bursts']:,} bursts"
                if b["timed_bursts"] < r["bursts"] else "") for name, b in r["backends"].items()]
    if r.get("numpy_loop"):
        lines.append(numpy_loop_line(r))
    if r.get("plastic_synapses"):
        lines.append(plasticity_line(r))
    if r.get("speedup"):
        lines.append(f"speedup {r['speedup']:.1f}x (model predicted {r['predicted_speedup']:.1f}x)")
    else:
        lines.append(f"model: CPU {r['predicted_us']['cpu']:,.0f} µs, GPU {r['predicted_us']['gpu']:,.0f} µs per burst")
    t.caption = "\n".join(lines)
    return t
