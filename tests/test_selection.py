"""Backend auto-selection: every rule decides at least once, in the documented order."""
from __future__ import annotations

from feagi_burst.config import BackendConfig
from feagi_burst.selection import RULE_NAMES, choose, estimate_us

H100 = [{"name": "NVIDIA H100 80GB HBM3", "is_software": False}]
LLVMPIPE = [{"name": "llvmpipe (LLVM 15.0.6, 256 bits)", "is_software": True}]
BIG = (1_000_000, 100_000_000)


def decided(sel) -> str:
    [rule] = [r.name for r in sel.rules if r.decided]
    return rule


def test_force_flags_decide_first() -> None:
    assert choose(10, 0, 0.01, BackendConfig(force_gpu=True), []).backend == "gpu"
    sel = choose(*BIG, 0.01, BackendConfig(force_cpu=True), H100)
    assert (sel.backend, decided(sel)) == ("cpu", "force flags")


def test_small_brain_stays_on_cpu() -> None:
    sel = choose(56_560, 442_380, 0.01, BackendConfig(), H100)
    assert (sel.backend, decided(sel)) == ("cpu", "brain size")
    assert [r.name for r in sel.rules] == RULE_NAMES
    assert sel.rules[-1].verdict == "not reached"


def test_no_adapter_and_software_adapter_do_not_count() -> None:
    for adapters, words in (([], "no GPU adapter"), (LLVMPIPE, "software adapter")):
        sel = choose(*BIG, 0.01, BackendConfig(), adapters)
        assert (sel.backend, decided(sel)) == ("cpu", "adapter")
        assert words in sel.reason


def test_low_firing_rate_stays_on_cpu() -> None:
    sel = choose(*BIG, 0.001, BackendConfig(), H100)
    assert (sel.backend, decided(sel)) == ("cpu", "firing rate")


def test_speedup_decides_last() -> None:
    fast = BackendConfig(cpu_gflops=1.0)  # a slow CPU: the GPU wins
    sel = choose(*BIG, 0.01, fast, H100)
    assert (sel.backend, decided(sel)) == ("gpu", "estimated speedup")
    assert sel.estimated_speedup > 1.5 and sel.adapter == H100[0]["name"]
    slow_gpu = BackendConfig(gpu_overhead_us=1e9)
    sel = choose(*BIG, 0.01, slow_gpu, H100)
    assert (sel.backend, decided(sel)) == ("cpu", "estimated speedup")


def test_model_terms() -> None:
    cfg = BackendConfig(cpu_overhead_us=0, gpu_overhead_us=200, bus_bandwidth_gbps=25, cpu_gflops=100, gpu_tflops=10)
    cpu, gpu = estimate_us(1_000_000, 100_000_000, 0.01, cfg)
    # 1M events * 4 + ~0.64M candidates * 20 operations; 10,000 spikes * 8 bytes over the bus
    assert 160 < cpu < 180
    assert abs(gpu - (200 + 80_000 / 25e3 + cpu * 100 / 10_000)) < 1e-6


def test_as_dict_shape() -> None:
    d = choose(*BIG, 0.01, BackendConfig(), H100).as_dict()
    for key in ("backend", "reason", "neurons", "synapses", "adapter", "estimated_cpu_us", "estimated_gpu_us",
                "estimated_speedup", "rules"):
        assert key in d
    assert {"name", "value", "verdict", "decided"} <= set(d["rules"][0])
