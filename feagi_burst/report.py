"""Where the time goes: per-phase statistics, the live table, and the run summary.

Units: `BurstResult.timings` holds seconds per phase (as the backends measure them); everything
this module shows or writes is labelled with its unit: phase times in µs (`mean_us`, `p50_us`,
`p99_us`, the table's "µs" columns), wall time in seconds (`wall_s`), rates per second.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feagi_burst.backends.base import PHASES, BurstResult

WINDOW = 1 << 16  # samples kept for percentiles: memory stays flat however long the run


@dataclass
class PhaseStats:
    """Running per-phase timing statistics (mean over the whole run, percentiles over a window)."""

    samples: dict[str, np.ndarray] = field(default_factory=lambda: {p: np.zeros(WINDOW) for p in PHASES + ("total",)})
    sums: dict[str, float] = field(default_factory=lambda: {p: 0.0 for p in PHASES + ("total",)})
    bursts: int = 0
    timed: int = 0  # bursts that carry timings (a GPU samples its timestamps on some batches only)
    spikes: int = 0
    first_burst: int = 0
    last_burst: int = 0
    started: float = field(default_factory=time.perf_counter)
    ended: float | None = None  # set by `stop()`: the summary's rate is the run's, not the run's plus what came after

    def add(self, r: BurstResult) -> None:
        """Count one burst's result (its timings, when it has them)."""
        if r.timings:
            i = self.timed % WINDOW
            total = 0.0
            for p in PHASES:
                v = r.timings.get(p, 0.0)
                self.samples[p][i] = v
                self.sums[p] += v
                total += v
            self.samples["total"][i] = total
            self.sums["total"] += total
            self.timed += 1
        self.bursts += 1
        self.spikes += r.spike_count
        self.first_burst = self.first_burst or r.burst
        self.last_burst = r.burst

    def phase(self, name: str) -> dict[str, float]:
        """mean / p50 / p99 of one phase over the timed bursts, in µs."""
        if self.timed == 0:
            return {"mean_us": 0.0, "p50_us": 0.0, "p99_us": 0.0}
        window = self.samples[name][: min(self.timed, WINDOW)] * 1e6
        p50, p99 = np.percentile(window, [50, 99])
        return {"mean_us": self.sums[name] / self.timed * 1e6, "p50_us": float(p50), "p99_us": float(p99)}

    def wall_s(self) -> float:
        """Seconds from the start to `stop()` (or to now, while running)."""
        return (self.ended if self.ended is not None else time.perf_counter()) - self.started

    def stop(self) -> None:
        """The run is over: freeze the wall time (drawing a raster or writing files does not count)."""
        if self.ended is None:
            self.ended = time.perf_counter()

    def summary(self, **extra: Any) -> dict[str, Any]:
        """The run summary written by --json."""
        wall = self.wall_s()
        return {
            **extra,
            "bursts": self.bursts,
            "timed_bursts": self.timed,
            "first_burst": self.first_burst,
            "last_burst": self.last_burst,
            "spikes": self.spikes,
            "spikes_per_burst": self.spikes / self.bursts if self.bursts else 0.0,
            "phases": {p: self.phase(p) for p in PHASES},
            "us_per_burst": self.phase("total"),
            "wall_s": wall,
            "bursts_per_s": self.bursts / wall if wall > 0 else 0.0,
        }


def phase_table(stats: PhaseStats, title: str) -> Table:
    """The per-phase table: mean, p50, p99 in µs, and each phase's share of the burst."""
    t = Table(title=title, title_justify="left")
    t.add_column("phase")
    for c in ("mean µs", "p50 µs", "p99 µs", "share"):
        t.add_column(c, justify="right")
    total = stats.phase("total")["mean_us"] or 1.0
    for p in PHASES + ("total",):
        s = stats.phase(p)
        t.add_row(p.replace("_", " "), f"{s['mean_us']:,.1f}", f"{s['p50_us']:,.1f}", f"{s['p99_us']:,.1f}",
                  f"{s['mean_us'] / total:.0%}", style="bold" if p == "total" else None)
    wall = stats.wall_s()
    sampled = f" (phases timed on {stats.timed:,} of them)" if stats.timed < stats.bursts else ""
    t.caption = (f"{stats.bursts:,} bursts{sampled}, {stats.spikes:,} spikes, "
                 f"{stats.bursts / wall if wall > 0 else 0:,.1f} bursts/s")
    return t


class LiveReport:
    """A progress bar over a live per-phase table; the final table stays on screen."""

    def __init__(self, title: str, total: int | None, console: Console | None = None,
                 stats: PhaseStats | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.stats = stats or PhaseStats()
        self.title = title
        self.progress = Progress(TextColumn("[bold]bursts"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=self.console)
        self.task = self.progress.add_task("run", total=total or None)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self._last = 0.0

    def _render(self) -> Group:
        return Group(phase_table(self.stats, self.title), self.progress)

    def __enter__(self) -> LiveReport:
        self.live.__enter__()
        return self

    def update(self, r: BurstResult) -> None:
        """Count a burst and redraw at most ten times a second."""
        self.stats.add(r)
        now = time.perf_counter()
        if now - self._last > 0.1:
            self._last = now
            self.progress.update(self.task, completed=self.stats.bursts)
            self.live.update(self._render())

    def __exit__(self, *exc: object) -> None:
        self.stats.stop()  # the table's bursts/s and the --json summary's are then the same number
        self.progress.update(self.task, completed=self.stats.bursts)
        self.live.update(self._render())
        self.live.__exit__(None, None, None)
        if not self.console.is_terminal:
            self.console.print()  # rich leaves the last line open when it cannot redraw
