"""Per-phase statistics and the tables built from them."""
from __future__ import annotations

import numpy as np
from rich.console import Console

from feagi_burst.backends.base import BurstResult
from feagi_burst.report import WINDOW, PhaseStats, phase_table


def result(b: int, syn_us: float, spikes: int = 2) -> BurstResult:
    t = {"input": 1e-6, "synaptic_propagation": syn_us * 1e-6, "neural_dynamics": 2e-6, "output": 0.0}
    return BurstResult(b, np.arange(spikes, dtype=np.uint32), np.ones(spikes, np.float32), t)


def test_mean_p50_p99_in_microseconds() -> None:
    s = PhaseStats()
    for b in range(1, 101):
        s.add(result(b, float(b)))
    syn = s.phase("synaptic_propagation")
    assert syn["mean_us"] == 50.5
    assert syn["p50_us"] == 50.5 and abs(syn["p99_us"] - 99.01) < 1e-6
    assert s.phase("total")["mean_us"] == 50.5 + 3
    summary = s.summary(backend="x")
    assert (summary["bursts"], summary["spikes"], summary["first_burst"], summary["last_burst"]) == (100, 200, 1, 100)
    assert summary["backend"] == "x" and summary["bursts_per_s"] > 0


def test_memory_is_bounded_by_the_window() -> None:
    s = PhaseStats()
    for b in range(1, WINDOW + 11):
        s.add(result(b, 1.0 if b <= 10 else 5.0))
    assert s.samples["total"].size == WINDOW
    assert s.phase("synaptic_propagation")["p50_us"] == 5.0  # the first 10 samples fell out of the window


def test_table_renders_every_phase() -> None:
    s = PhaseStats()
    s.add(result(1, 10.0))
    console = Console(record=True, width=120)
    console.print(phase_table(s, "title"))
    text = console.export_text()
    for phase in ("input", "synaptic propagation", "neural dynamics", "output", "total"):
        assert phase in text
    assert "1 bursts, 2 spikes" in text
