"""Backend auto-selection: the rules in order, the speedup model, and its constants measured once per
machine (the calibration cache: written once, reused, keyed by machine, config > cache > defaults).

No assertion here depends on how fast anything ran: measuring is replaced by a stand-in that
returns known constants, except in one test that only checks the measurement's shape.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from feagi_burst import calibration
from feagi_burst.config import CONSTANT_KEYS, BackendConfig, parse_config
from feagi_burst.selection import (DEFAULT_CONSTANTS, RULE_NAMES, Constants, burst_work, choose, constants_of,
                                   estimate_us)

H200 = [{"name": "NVIDIA H200", "is_software": False, "label": "WGPU (Vulkan): NVIDIA H200", "driver": "580.159.03"}]
LLVMPIPE = [{"name": "llvmpipe (LLVM 15.0.6, 256 bits)", "is_software": True,
             "label": "WGPU (OpenGL): llvmpipe (LLVM 15.0.6, 256 bits)", "driver": "Mesa 22.3.6"}]
BIG = (1_000_000, 100_000_000)
PONG = (56_560, 442_380)
MEASURED = {"cpu_fixed_us": 11.0, "cpu_input_us": 50.0, "cpu_ns_per_event": 3.0, "cpu_ns_per_neuron": 7.0,
            "cpu_ns_per_spike": 20.0, "cpu_slowdown_per_mneuron": 2.0, "cpu_parallel_speedup": 1.0,
            "gpu_host_us": 33.0, "gpu_input_us": 4.0, "gpu_fixed_us": 9.0, "gpu_ns_per_event": 0.04,
            "gpu_ns_per_neuron": 0.06, "gpu_ns_per_spike": 0.5}
TIMER = Path(__file__).parent / "data" / "genomes" / "test_timer.json"


def decided(sel: Any) -> str:
    [rule] = [r.name for r in sel.rules if r.decided]
    return rule


# -- the rules ------------------------------------------------------------------------------------
def test_force_flags_decide_first() -> None:
    assert choose(10, 0, 0.01, BackendConfig(force_gpu=True), []).backend == "gpu"
    sel = choose(*BIG, 0.01, BackendConfig(force_cpu=True), H200)
    assert (sel.backend, decided(sel)) == ("cpu", "force flags")
    assert [r.name for r in sel.rules] == RULE_NAMES and sel.rules[-1].verdict == "not reached"


def test_size_rule_is_off_by_default_and_opt_in() -> None:
    sel = choose(*PONG, 0.01, BackendConfig(), H200)
    assert sel.rules[1].verdict.startswith("no size rule") and decided(sel) == "estimated speedup"
    sel = choose(*PONG, 0.01, BackendConfig(gpu_neuron_threshold=500_000, gpu_synapse_threshold=50_000_000), H200)
    assert (sel.backend, decided(sel)) == ("cpu", "brain size")


def test_no_adapter_and_software_adapter_do_not_count() -> None:
    for adapters, words in (([], "no GPU adapter"), (LLVMPIPE, "software adapter, never chosen automatically")):
        sel = choose(*BIG, 0.01, BackendConfig(), adapters)
        assert (sel.backend, decided(sel)) == ("cpu", "adapter")
        assert words in sel.reason and "\n" not in sel.reason


def test_firing_rate_floor_is_opt_in() -> None:
    assert decided(choose(*BIG, 0.001, BackendConfig(), H200)) == "estimated speedup"
    sel = choose(*BIG, 0.001, BackendConfig(gpu_min_firing_rate=0.005), H200)
    assert (sel.backend, decided(sel)) == ("cpu", "firing rate")


def test_a_gpu_that_failed_its_calibration_is_not_chosen() -> None:
    sel = choose(*BIG, 0.01, BackendConfig(), H200, gpu_error="device lost")
    assert (sel.backend, decided(sel)) == ("cpu", "adapter") and "device lost" in sel.reason


def test_speedup_decides_last_and_picks_the_faster() -> None:
    slow_cpu = Constants(**{**MEASURED, "cpu_ns_per_event": 1e3})
    sel = choose(*BIG, 0.01, BackendConfig(), H200, slow_cpu)
    assert (sel.backend, decided(sel)) == ("gpu", "estimated speedup") and sel.adapter == "NVIDIA H200"
    slow_gpu = Constants(**{**MEASURED, "gpu_host_us": 1e9})
    sel = choose(*BIG, 0.01, BackendConfig(), H200, slow_gpu)
    assert (sel.backend, decided(sel)) == ("cpu", "estimated speedup") and "CPU is estimated faster" in sel.reason
    # min_speedup 1.0 (the default): whichever is estimated faster; a higher one asks more of the GPU
    c = Constants(**MEASURED)
    cpu, gpu = estimate_us(*PONG, 0.01, c)
    assert choose(*PONG, 0.01, BackendConfig(), H200, c).backend == ("gpu" if gpu <= cpu else "cpu")
    assert choose(*PONG, 0.01, BackendConfig(min_speedup=cpu / gpu * 1.01), H200, c).backend == "cpu"


def test_model_terms() -> None:
    c = Constants(**MEASURED)
    w = burst_work(*BIG, 0.01)
    assert w.events == 1_000_000 and 0.63e6 < w.candidates < 0.65e6  # 1 - 0.99**100 + 0.01 of the neurons
    assert w.spikes == 10_000
    cpu, gpu = estimate_us(*BIG, 0.01, c)
    # dense on both (events >= neurons / 4, and / 8): every neuron is visited; the CPU slows down 3x at 1M
    assert cpu == pytest.approx(11.0 + (w.events * 3.0 + 1e6 * 7.0 + 1e4 * 20.0) * 1e-3 * 3.0)
    assert gpu == pytest.approx(9.0 + (w.events * 0.04 + 1e6 * 0.06 + 1e4 * 0.5) * 1e-3)  # the device is the bound
    # sparse (pong at 0.15%): the candidates are visited; stimulated from outside: the input costs count
    p = burst_work(*PONG, 0.0015)
    cpu, gpu = estimate_us(*PONG, 0.0015, c, stimulated=True)
    assert cpu == pytest.approx(11.0 + 50.0 + (p.events * 3.0 + p.candidates * 7.0 + p.spikes * 20.0) * 1e-3
                                * (1 + 2.0 * PONG[0] / 1e6))
    assert gpu == 33.0 + 4.0  # the host is the bound: pipelined bursts take the longer of the two
    assert estimate_us(*PONG, 0.0015, c)[1] == 33.0
    # from 50K neurons the CPU backend uses every core: the per-event/neuron work divided by their speedup
    twice = Constants(**{**MEASURED, "cpu_parallel_speedup": 2.0})
    big_cpu = estimate_us(*BIG, 0.01, c)[0]
    assert estimate_us(*BIG, 0.01, twice)[0] - 11.0 == pytest.approx((big_cpu - 11.0) / 2)
    assert estimate_us(10_000, 1_000_000, 0.01, twice)[0] == estimate_us(10_000, 1_000_000, 0.01, c)[0]


def test_dense_rules_mirror_the_backends() -> None:
    from feagi_burst.backends import cpu as cpu_backend
    from feagi_burst.backends.wgpu.backend import GPUBackend
    from feagi_burst.selection import CPU_DENSE_EVENTS, CPU_PARALLEL_FROM, GPU_FULL_FRACTION

    assert CPU_DENSE_EVENTS == cpu_backend.DENSE_EVENTS and CPU_PARALLEL_FROM == cpu_backend.PARALLEL_FROM
    import inspect

    assert GPU_FULL_FRACTION == inspect.signature(GPUBackend.__init__).parameters["full_fraction"].default


def test_as_dict_shape() -> None:
    d = choose(*BIG, 0.01, BackendConfig(), H200).as_dict()
    for key in ("backend", "reason", "neurons", "synapses", "adapter", "estimated_cpu_us", "estimated_gpu_us",
                "estimated_speedup", "rules", "constants", "constants_source"):
        assert key in d
    assert {"name", "value", "verdict", "decided"} <= set(d["rules"][0])
    assert set(d["constants"]) == set(CONSTANT_KEYS)


# -- constants: config > cache > defaults ---------------------------------------------------------
@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fresh cache folder and a stand-in for measuring that counts its calls."""
    monkeypatch.setenv(calibration.ENV_CACHE_DIR, str(tmp_path / "cache"))
    monkeypatch.delenv(calibration.ENV_SKIP, raising=False)
    monkeypatch.setattr(calibration, "_memo", {})
    monkeypatch.setattr(calibration, "_warned", set())
    calls: list[bool] = []

    def fake(gpu: bool, **_kw: Any) -> dict[str, Any]:
        calls.append(gpu)
        return {"measured": "now", "seconds": 0.1, "constants": dict(MEASURED), "gpu_error": None, "points": []}
    monkeypatch.setattr(calibration, "calibrate_machine", fake)
    return {"calls": calls, "path": tmp_path / "cache" / "calibration.json"}


def forget() -> None:
    """As a new process would start: nothing remembered in memory."""
    calibration._memo.clear()


def test_cache_is_written_once_and_reused(cache: dict[str, Any]) -> None:
    said: list[str] = []
    used = calibration.resolve(BackendConfig(), H200, say=said.append)
    assert cache["calls"] == [True] and used.constants == Constants(**MEASURED)
    assert said == [f"measuring this machine once for backend selection (cached in {cache['path']})"]
    data = json.loads(cache["path"].read_text())
    [entry] = data["machines"].values()
    assert entry["constants"] == MEASURED and entry["machine"]["adapters"][0]["driver"] == "580.159.03"
    for _ in range(2):
        forget()
        used = calibration.resolve(BackendConfig(), H200, say=said.append)
        assert set(used.sources.values()) == {"cache"} and used.source.startswith(f"cache ({cache['path']}")
    assert cache["calls"] == [True] and len(said) == 1


def test_measuring_says_so_in_one_line_on_stderr(cache: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    calibration.resolve(BackendConfig(), H200)
    err = capsys.readouterr().err
    assert err == f"feagi-burst: measuring this machine once for backend selection (cached in {cache['path']})\n"


def test_cache_is_keyed_by_machine(cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
    other_driver = [{**H200[0], "driver": "590.1"}]
    calibration.resolve(BackendConfig(), other_driver, say=lambda _m: None)
    assert len(cache["calls"]) == 2
    monkeypatch.setattr(calibration, "cpu_identity", lambda: {"cpu": "another CPU", "cores": 64, "arch": "x86_64"})
    forget()
    calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
    assert len(cache["calls"]) == 3
    monkeypatch.setattr(calibration, "code_identity", lambda: "changed kernels")
    calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
    assert len(cache["calls"]) == 4
    machines = json.loads(cache["path"].read_text())["machines"]
    assert len(machines) == 4  # every machine kept, each under its own key
    forget()
    calibration.resolve(BackendConfig(), H200, say=lambda _m: None)  # the same machine again: no measuring
    assert len(cache["calls"]) == 4


def test_precedence_config_then_cache_then_defaults(cache: dict[str, Any]) -> None:
    # no hardware adapter: nothing to decide, nothing measured: the defaults
    used = calibration.resolve(BackendConfig(), LLVMPIPE)
    assert cache["calls"] == [] and used.constants == DEFAULT_CONSTANTS
    assert set(used.sources.values()) == {"defaults"} and "no usable hardware GPU adapter" in used.source
    # a GPU to decide for: measured and cached; a constant given in the config still wins
    cfg = BackendConfig(cpu_fixed_us=123.0)
    used = calibration.resolve(cfg, H200, say=lambda _m: None)
    assert used.constants.cpu_fixed_us == 123.0 and used.constants.gpu_host_us == MEASURED["gpu_host_us"]
    assert used.sources["cpu_fixed_us"] == "config" and used.sources["gpu_host_us"] == "cache"
    assert used.source.startswith("config ([backend]) for cpu_fixed_us; cache (")
    # every constant given: the config alone, the cache not even read
    full = BackendConfig(**{k: 1.0 for k in CONSTANT_KEYS})
    used = calibration.resolve(full, H200)
    assert set(used.sources.values()) == {"config"} and used.constants == Constants(**{k: 1.0 for k in CONSTANT_KEYS})
    # a forced backend needs no decision: nothing is measured
    forget()
    cache["path"].unlink()
    calibration.resolve(BackendConfig(force_cpu=True), H200, decide=False)
    assert len(cache["calls"]) == 1
    assert constants_of(BackendConfig(gpu_host_us=5.0)).gpu_host_us == 5.0  # over the defaults


def test_corrupt_cache_is_ignored_with_a_warning_and_rewritten(cache: dict[str, Any],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for garbage in ("{not json", json.dumps({"format": 1, "machines": {"x": {"constants": {"cpu_fixed_us": "fast"}}}}),
                    json.dumps([1, 2, 3])):
        forget()
        calibration._warned.clear()
        cache["path"].parent.mkdir(parents=True, exist_ok=True)
        cache["path"].write_text(garbage)
        used = calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
        err = capsys.readouterr().err
        assert f"feagi-burst: warning: calibration cache {cache['path']}" in err and "ignoring it" in err
        assert used.constants == Constants(**MEASURED)
        data = json.loads(cache["path"].read_text())  # rewritten: valid, with this machine's entry
        assert data["format"] == calibration.FORMAT and all(calibration.valid_entry(e) for e in data["machines"].values())
        assert len(data["machines"]) == 1
    assert len(cache["calls"]) == 3


def test_without_a_hardware_gpu_only_an_estimate_measures_the_cpu(cache: dict[str, Any]) -> None:
    said: list[str] = []
    used = calibration.resolve(BackendConfig(), LLVMPIPE, say=said.append)  # a decision: the CPU alone
    assert cache["calls"] == [] and used.constants == DEFAULT_CONSTANTS and said == []
    used = calibration.resolve(BackendConfig(), LLVMPIPE, say=said.append, estimate=True)
    assert cache["calls"] == [False]
    assert said == [f"measuring this machine's CPU once for the estimate (cached in {cache['path']})"]
    cpu_keys = {k for k in CONSTANT_KEYS if k.startswith("cpu_")}
    assert {k for k, v in used.sources.items() if v == "cache"} == cpu_keys
    assert {k for k, v in used.sources.items() if v == "defaults"} == set(CONSTANT_KEYS) - cpu_keys
    assert used.constants.cpu_fixed_us == MEASURED["cpu_fixed_us"]
    assert used.constants.gpu_fixed_us == DEFAULT_CONSTANTS.gpu_fixed_us
    forget()
    used = calibration.resolve(BackendConfig(), LLVMPIPE)  # later decisions read what it cached
    assert cache["calls"] == [False] and used.sources["cpu_fixed_us"] == "cache"


def test_env_var_skips_measuring(cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(calibration.ENV_SKIP, "1")
    used = calibration.resolve(BackendConfig(), H200)
    assert cache["calls"] == [] and not cache["path"].exists()
    assert used.constants == DEFAULT_CONSTANTS and calibration.ENV_SKIP in used.source
    monkeypatch.setenv(calibration.ENV_SKIP, "0")  # 0 or empty: not skipped
    calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
    assert cache["calls"] == [True]


def test_a_failed_measurement_falls_back_to_the_defaults(cache: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    def broken(gpu: bool, **_kw: Any) -> dict[str, Any]:
        raise MemoryError("no room for the 1M brain")
    monkeypatch.setattr(calibration, "calibrate_machine", broken)
    used = calibration.resolve(BackendConfig(), H200, say=lambda _m: None)
    assert used.constants == DEFAULT_CONSTANTS and "measuring failed" in used.source
    assert "could not measure this machine" in capsys.readouterr().err and not cache["path"].exists()


def test_legacy_keys_are_ignored_with_a_warning(cache: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = parse_config({"genome": {"path": "g.json"}, "backend": {"cpu_gflops": 100.0, "gpu_overhead_us": 200.0}})
    assert cfg.backend.legacy_keys == ("cpu_gflops", "gpu_overhead_us")
    used = calibration.resolve(cfg.backend, LLVMPIPE)
    assert used.constants == DEFAULT_CONSTANTS
    assert "cpu_gflops, gpu_overhead_us: keys of the older speedup model, ignored" in capsys.readouterr().err


def test_select_says_where_its_constants_come_from(cache: dict[str, Any], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from feagi_burst import backends
    from feagi_burst.cli import app

    cfg = tmp_path / "b.toml"
    cfg.write_text(f'[genome]\npath = "{TIMER}"\n')
    monkeypatch.setattr(backends, "probe_adapters", lambda: list(LLVMPIPE))
    r = CliRunner().invoke(app, ["select", "--config", str(cfg), "--dry-run"])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    # no hardware GPU: select measures the CPU alone for its estimate; the GPU terms stay built in
    assert "model constants: cache (" in text and "the GPU terms: defaults" in text and "software adapter" in text
    assert cache["calls"] == [False]
    monkeypatch.setattr(backends, "probe_adapters", lambda: list(H200))
    r = CliRunner().invoke(app, ["select", "--config", str(cfg), "--dry-run", "--json"])
    d = json.loads(r.stdout)
    assert d["constants_source"].startswith("cache (") and set(d["constants_from"].values()) == {"cache"}
    assert "GPU terms" not in d["constants_source"]
    assert cache["calls"] == [False, True]
    cfg.write_text(f'[genome]\npath = "{TIMER}"\n[backend]\n' + "".join(f"{k} = 2.0\n" for k in CONSTANT_KEYS))
    r = CliRunner().invoke(app, ["select", "--config", str(cfg), "--dry-run"])
    assert "model constants: config ([backend])" in " ".join(r.output.split())


# -- fitting and measuring ------------------------------------------------------------------------
def synthetic_rows(c: Constants) -> list[dict[str, Any]]:
    """Rows as measure_points gives them, timed exactly by the model with constants `c`."""
    from feagi_burst.selection import cpu_us, gpu_device_us, gpu_us

    rows = []
    for label, n, k, rate in calibration.POINTS:
        stimulated = label == calibration.STIMULATED
        w = burst_work(n, n * k, rate + 9 / n if stimulated else rate)
        rows.append({"label": label, "neurons": n, "synapses": n * k, "firing_rate": rate, "events": w.events,
                     "candidates": w.candidates, "spikes": w.spikes, "stimulated": stimulated,
                     "cpu_us": cpu_us(w, c, stimulated), "gpu_us": gpu_us(w, c, stimulated),
                     "gpu_device_us": gpu_device_us(w, c)})
    return rows


def test_fit_recovers_the_constants() -> None:
    truth = Constants(cpu_fixed_us=20.0, cpu_input_us=40.0, cpu_ns_per_event=4.0, cpu_ns_per_neuron=25.0,
                      cpu_ns_per_spike=30.0, cpu_slowdown_per_mneuron=calibration.SLOWDOWNS[9],
                      cpu_parallel_speedup=calibration.PARALLEL[14], gpu_host_us=38.0, gpu_input_us=6.0,
                      gpu_fixed_us=12.0, gpu_ns_per_event=0.05, gpu_ns_per_neuron=0.03, gpu_ns_per_spike=0.4)
    fitted, error = calibration.fit_constants(synthetic_rows(truth))
    assert error is None
    for k, v in truth.as_dict().items():
        assert fitted[k] == pytest.approx(v, rel=1e-3, abs=1e-3), k
    # one point stalled (another process took the cores): dropped, the rest still give the constants
    rows = synthetic_rows(truth)
    rows[1]["cpu_us"] *= 5
    fitted, _ = calibration.fit_constants(rows)
    assert fitted["cpu_ns_per_event"] == pytest.approx(4.0, rel=1e-3)
    # timestamps that cannot be the device's (longer than the burst): the whole burst is fitted
    rows = synthetic_rows(truth)
    for r in rows:
        r["gpu_device_us"] = 3.2e9
    fitted, _ = calibration.fit_constants(rows)
    assert fitted["gpu_host_us"] == 0.0 and fitted["gpu_fixed_us"] > 0


def test_measuring_gives_a_row_per_point() -> None:
    points = (("a", 500, 10, 0.02), ("b", 2_000, 10, 0.05), ("c", 2_000, 20, 0.01),
              (calibration.STIMULATED, 2_000, 20, 0.0))
    entry = calibration.calibrate_machine(gpu=False, seconds_per_point=0.01, points=points)
    assert [r["label"] for r in entry["points"]] == ["a", "b", "c", calibration.STIMULATED]
    assert all(r["cpu_us"] > 0 and "gpu_us" not in r for r in entry["points"])
    # the stimulated point fired at least what it was made to fire
    assert entry["points"][3]["stimulated"] and entry["points"][3]["firing_rate"] >= calibration.STIMULUS_FIRE / 2_000
    assert calibration.valid_entry(entry) and entry["gpu_error"] is None


def test_machine_key_names_cpu_adapters_and_code() -> None:
    key = calibration.machine_key(H200 + LLVMPIPE)
    assert key["cpu"] and key["cores"] >= 1 and key["code"]
    assert key["adapters"] == [{"label": "WGPU (Vulkan): NVIDIA H200", "driver": "580.159.03"}]  # software: not


def clocked_run(device_us: Any, seconds_per_burst: float = 1e-4) -> tuple[Any, list[float]]:
    """A stand-in for a pipelined GPU run on a fake clock: each burst's timestamped device time is
    device_us(elapsed), and each burst takes seconds_per_burst of that clock."""
    import numpy as np

    from feagi_burst.backends.base import BurstResult
    clock = [0.0]

    def run(count: int, on_result: Any = None) -> float:
        for _ in range(count):
            us = device_us(clock[0])
            clock[0] += seconds_per_burst
            if on_result:
                on_result(BurstResult(1, np.zeros(0, np.uint32), np.zeros(0, np.float32),
                                      {"input": 0.0, "synaptic_propagation": us * 1e-6, "neural_dynamics": 0.0,
                                       "output": 0.0, "plasticity": 0.0}))
        return count * seconds_per_burst
    return run, clock


STEPS = {"warm": lambda t: 65.0, "two steps": lambda t: 150.0 if t < 0.4 else 100.0 if t < 0.8 else 65.0,
         "still rising": lambda t: 65.0 + 1000.0 * math.exp(-t)}


@pytest.mark.parametrize("clocks, stops_after", [("warm", (0.5, 0.76)), ("two steps", (1.0, 1.76)),
                                                 ("still rising", (2.0, 2.26))])
def test_gpu_warm_up_runs_until_the_clocks_are_up(monkeypatch: pytest.MonkeyPatch, clocks: str,
                                                  stops_after: tuple[float, float]) -> None:
    # device time per burst over the warm-up as clocks rise: warm once a window is no faster than
    # the one before (at least GPU_WARM_MIN_S, at most GPU_WARM_MAX_S)
    run, clock = clocked_run(STEPS[clocks])
    monkeypatch.setattr(calibration.time, "perf_counter", lambda: clock[0])
    est = calibration.gpu_warm_up(run)
    assert stops_after[0] <= clock[0] <= stops_after[1] and est == pytest.approx(1e-4)
