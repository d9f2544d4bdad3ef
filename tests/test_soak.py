"""Soak: a million bursts with input, a streamed record and checkpoints, in flat memory.

Not in the default test run (marked `soak`); `make soak` runs it. Environment:
FEAGI_BURST_SOAK_BURSTS (default 1,000,000), FEAGI_BURST_SOAK_BACKEND (default cpu),
FEAGI_BURST_SOAK_JSON (where to write the figures; default out/soak.json when out/ exists).

What it runs is what a robot feeding a brain for hours does: the essential genome, a 3x3 "ball"
forced across the central vision area (one voxel per burst) and a proximity-like potential every
7 bursts, staged 10,000 bursts ahead at a time; every burst recorded to a streamed `.npz`; the
per-phase statistics the CLI keeps; a checkpoint every 100,000 bursts. Resident memory (RSS) is
sampled every 10,000 bursts; after a warm-up (the first 10 %, and at least until the 65,536-burst
timing window has filled) it must grow by less than 5 %.
"""
from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feagi_burst.checkpoint import load_checkpoint
from feagi_burst.engine import Engine
from feagi_burst.report import WINDOW, PhaseStats
from feagi_burst.spike_record import open_recorder

ROOT = Path(__file__).parent.parent
BURSTS = int(os.environ.get("FEAGI_BURST_SOAK_BURSTS", "1000000"))
BACKEND = os.environ.get("FEAGI_BURST_SOAK_BACKEND", "cpu")
BLOCK = 10_000  # bursts staged ahead, and between RSS samples
CHECKPOINT_EVERY = 100_000


def rss_mib() -> float:
    """Resident set size now, in MiB (Linux /proc; ru_maxrss elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def schedule(first: int, last: int, width: int) -> list[dict[str, Any]]:
    """The ball at column (b mod width) in bursts first..last, and a potential every 7th burst."""
    bursts = np.arange(first, last + 1)
    entries = []
    for col in range(width):
        at = bursts[bursts % width == col].tolist()
        if at:
            voxels = [[(col + dx) % width, 30 + dy, 0] for dx in range(3) for dy in range(3)]
            entries.append({"area": "iv00_C", "voxels": voxels, "bursts": at, "mode": "fire"})
    sevens = bursts[bursts % 7 == 0].tolist()
    if sevens:
        entries.append({"area": "iv00BL", "voxels": [[4, 4, 0]], "bursts": sevens, "mode": "potential",
                        "potential": 2.5})
    return entries


@pytest.mark.soak
def test_a_million_bursts_in_flat_memory(tmp_path: Path) -> None:
    engine = Engine.from_genome(ROOT / "examples" / "essential_genome.json", backend=BACKEND, warn=None)
    width = engine.brain.area("iv00_C").dimensions[0]
    recorder = open_recorder(tmp_path / "soak.npz", engine.brain)
    stats = PhaseStats()

    def on_result(r: Any) -> None:
        stats.add(r)
        recorder.add(r)

    samples: list[tuple[int, float]] = [(0, rss_mib())]
    started = time.perf_counter()
    while engine.submitted < BURSTS:
        n = min(BLOCK, BURSTS - engine.submitted)
        engine.add_schedule(schedule(engine.submitted + 1, engine.submitted + n, width))
        engine.run(n, on_result=on_result)
        if engine.submitted % CHECKPOINT_EVERY == 0:
            recorder.flush()
            engine.checkpoint(tmp_path / "soak-ck.npz")
        samples.append((engine.submitted, rss_mib()))
    wall = time.perf_counter() - started
    recorder.close()

    # warm-up: the first 10 %, and at least until the timing statistics' window (report.WINDOW
    # samples, allocated lazily) has filled
    warm = next((i for i, (b, _) in enumerate(samples) if b >= max(BURSTS // 10, WINDOW)), len(samples) - 1)
    base = samples[warm][1]
    after = [m for _, m in samples[warm:]]
    growth = max(after) / base - 1
    figures = {
        "bursts": BURSTS, "backend": engine.backend_name(), "neurons": engine.brain.neuron_count,
        "synapses": engine.brain.synapse_count, "spikes": stats.spikes, "wall_s": round(wall, 1),
        "bursts_per_s": round(BURSTS / wall, 1), "rss_start_mib": round(samples[0][1], 1),
        "rss_after_warmup_mib": round(base, 1), "rss_max_after_warmup_mib": round(max(after), 1),
        "rss_end_mib": round(samples[-1][1], 1), "growth_after_warmup_pct": round(100 * growth, 2),
        "record_mib": round((tmp_path / "soak.npz").stat().st_size / 2**20, 1),
        "samples": [(b, round(m, 1)) for b, m in samples],
    }
    out = os.environ.get("FEAGI_BURST_SOAK_JSON") or (str(ROOT / "out" / "soak.json")
                                                       if (ROOT / "out").is_dir() else "")
    if out:
        Path(out).write_text(json.dumps(figures, indent=1) + "\n")
    print("\n" + json.dumps({k: v for k, v in figures.items() if k != "samples"}, indent=1))

    assert growth < 0.05, f"RSS grew {100 * growth:.1f} % after warm-up: {figures['samples']}"
    with np.load(tmp_path / "soak.npz") as z:
        assert int(z["last_burst"]) == BURSTS and z["burst"].size == stats.spikes
    assert stats.spikes > BURSTS  # the stimulus really drove the brain, every burst
    if BURSTS >= CHECKPOINT_EVERY:
        assert load_checkpoint(tmp_path / "soak-ck.npz").burst == BURSTS // CHECKPOINT_EVERY * CHECKPOINT_EVERY
