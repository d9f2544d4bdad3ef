"""The population's live table (brains done, brains x bursts per second, memory) and its final rows."""
from __future__ import annotations

import os
import threading
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from feagi_burst.population.runner import BrainResult

MAX_ROWS = 30  # brains listed at the end; more are summarised (the files have every row)


def rss_mb() -> float:
    """This process's resident memory now (Linux /proc), else its peak."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PopulationReport:
    """A live table of a population run; `bursts` and `brain` may be called from worker threads."""

    def __init__(self, title: str, brains: int, bursts: int, console: Console, remote: bool = False) -> None:
        self.title, self.brains, self.bursts, self.console, self.remote = title, brains, bursts, console, remote
        self.lock = threading.Lock()
        self.done = self.failed = 0
        self.brain_bursts = 0  # finished bursts, whole brains and the running ones' so far
        self.peak_worker_mb = 0.0
        self.gpu_bytes = 0
        self.started = time.perf_counter()
        self._last = 0.0
        self.progress = Progress(TextColumn("[bold]brains"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 console=console)
        self.task = self.progress.add_task("brains", total=brains or None)
        self.live = Live(self._render(), console=console, refresh_per_second=4, transient=False)

    def _table(self) -> Table:
        wall = time.perf_counter() - self.started
        t = Table(title=self.title, title_justify="left")
        for c in ("brains done", "failed", "brains x bursts", "brains x bursts/s", "memory"):
            t.add_column(c, justify="right")
        if self.remote:
            mem = f"workers' peak {self.peak_worker_mb:,.0f} MiB"
        else:
            mem = f"{rss_mb():,.0f} MiB"
        if self.gpu_bytes:
            mem += f", GPU {self.gpu_bytes / 2**20:,.1f} MiB per brain"
        t.add_row(f"{self.done:,} / {self.brains:,}", f"{self.failed:,}", f"{self.brain_bursts:,}",
                  f"{self.brain_bursts / wall if wall > 0 else 0:,.0f}", mem)
        return t

    def _render(self) -> Group:
        return Group(self._table(), self.progress)

    def __enter__(self) -> PopulationReport:
        self.live.__enter__()
        return self

    def add_bursts(self, n: int) -> None:
        """Bursts finished by brains still running."""
        with self.lock:
            self.brain_bursts += n
        self._redraw()

    def add_brain(self, r: BrainResult, counted_bursts: bool) -> None:
        """A finished brain; `counted_bursts` when its bursts already came through add_bursts."""
        with self.lock:
            self.done += 1
            self.failed += r.error is not None
            if not counted_bursts:
                self.brain_bursts += r.bursts
            self.peak_worker_mb = max(self.peak_worker_mb, r.peak_rss_mb)
            self.gpu_bytes = max(self.gpu_bytes, r.gpu_bytes)
        self._redraw(force=True)

    def _redraw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self._last > 0.25:
            with self.lock:
                self._last = now
                self.progress.update(self.task, completed=self.done)
                self.live.update(self._render())

    def __exit__(self, *exc: object) -> None:
        self.progress.update(self.task, completed=self.done)
        self.live.update(self._render())
        self.live.__exit__(None, None, None)
        if not self.console.is_terminal:
            self.console.print()  # rich leaves the last line open when it cannot redraw


def rows_table(results: list[BrainResult], fitness: bool) -> Table:
    """The brains, best fitness first when there is one (at most MAX_ROWS); the genome column only
    when there are several."""
    genomes = {r.genome for r in results}
    t = Table(title="brains" + (" (best fitness first)" if fitness else "")
              + (f" of {os.path.basename(next(iter(genomes)))}" if len(genomes) == 1 else ""), title_justify="left")
    cols = ("#",) + (("genome",) if len(genomes) > 1 else ()) + ("variant", "seed", "spikes", "firing rate") \
        + (("fitness",) if fitness else ())
    for c in cols:
        t.add_column(c, justify="right" if c in ("#", "seed", "spikes", "firing rate", "fitness") else "left")
    ok = [r for r in results if r.error is None]
    if fitness:
        ok.sort(key=lambda r: (r.fitness is None, -(r.fitness or 0.0), r.index))
    for r in ok[:MAX_ROWS]:
        cells: list[Any] = [str(r.index)] + ([os.path.basename(r.genome)] if len(genomes) > 1 else []) + [
            r.variant or "-", str(r.seed), f"{r.spikes:,}", f"{r.firing_rate:.3%}"]
        if fitness:
            cells.append("" if r.fitness is None else f"{r.fitness:.6g}")
        t.add_row(*cells)
    if len(ok) > MAX_ROWS:
        t.caption = f"{len(ok) - MAX_ROWS:,} more in --json / --csv"
    return t
