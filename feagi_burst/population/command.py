"""`feagi-burst population`: what the command does once its options are parsed (cli/population.py declares them)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from feagi_burst.errors import InputError


@dataclass
class PopulationOptions:
    config: Path
    bursts: int | None = None
    backend: str = "auto"
    threads: int = 1
    json_path: Path | None = None
    csv_path: Path | None = None
    record_dir: Path | None = None
    force: bool = False
    ray: str | None = None  # None: no Ray; "": a local instance; else the cluster's address
    batch_size: int | None = None


def parse_ray(extra: list[str]) -> str | None:
    """`--ray [ADDRESS]` from the arguments the option parser left (typer has no optional-value
    options): None without --ray, "" for a local instance, else the address. Anything else is an error."""
    ray: str | None = None
    i = 0
    while i < len(extra):
        arg = extra[i]
        if arg == "--ray":
            ray = ""
            if i + 1 < len(extra) and not extra[i + 1].startswith("-"):
                ray = extra[i + 1]
                i += 1
        elif arg.startswith("--ray="):
            ray = arg.split("=", 1)[1]
        else:
            raise InputError(f"unexpected argument {arg!r}; see feagi-burst population --help")
        i += 1
    return ray


def check_outputs(opts: PopulationOptions, records: list[str]) -> None:
    """Every output is checked before a brain runs: a long population never ends in a refused write."""
    for path, option in ((opts.json_path, "--json"), (opts.csv_path, "--csv")):
        if path is None:
            continue
        if path.is_dir():
            raise InputError(f"{option} {path} is a directory; give a file name inside it")
        if not path.parent.is_dir():
            raise InputError(f"cannot write {option} {path}: folder {path.parent} does not exist; create it first")
    if opts.record_dir is not None:
        d = opts.record_dir
        if d.exists() and not d.is_dir():
            raise InputError(f"--record-dir {d} is a file; give a folder")
        if not d.exists():
            if not d.parent.is_dir():
                raise InputError(f"--record-dir {d}: folder {d.parent} does not exist; create it first")
            d.mkdir()
        clash = [n for n in records if (d / n).exists()]
        if clash and not opts.force:
            raise InputError(f"--record-dir {d} already holds {clash[0]} (and {len(clash) - 1} more records of this "
                             "population); choose another folder or pass --force")
        if not os.access(d, os.W_OK):
            raise InputError(f"--record-dir {d} is not writable")


def run_population(opts: PopulationOptions, err: Console, out: Console) -> int:
    """Run the population with a live table; write --json/--csv; return the exit code
    (0: every brain ran, 1: some failed, their errors listed)."""
    from feagi_burst.population.core import Population, RayOptions
    from feagi_burst.population.report import PopulationReport, rows_table
    from feagi_burst.population.runner import record_name

    if opts.backend not in ("auto", "cpu", "gpu"):
        raise InputError(f"--backend {opts.backend!r}: use auto, cpu or gpu")
    if opts.ray is not None:
        from feagi_burst.population.ray_runner import require_ray

        require_ray()
    pop = Population.from_config(opts.config)
    batch = pop.batch(opts.bursts)
    check_outputs(opts, [record_name(j, batch.genomes[j.genome]) for j in batch.jobs])
    cfg = pop.config
    n = len(pop.jobs)
    variants = len(cfg.variants()) if cfg.sweeps else 0
    title = (f"{opts.config}: {n:,} brains ({len(cfg.genomes)} genome{'s' * (len(cfg.genomes) != 1)}"
             + (f" x {variants} variants" if variants else "") + f" x {cfg.replicas} seeds) x {batch.bursts:,} bursts")
    from feagi_burst.cli import StopFlag  # the same Ctrl-C/SIGTERM behaviour as `run`

    stop = StopFlag()
    stop.install()
    ray = None if opts.ray is None else RayOptions(address=opts.ray or None, batch_size=opts.batch_size)
    warned: set[str] = set()
    counted = opts.ray is None  # local runners report bursts as they go; Ray tasks only whole brains

    def note(text: str) -> None:
        err.print(f"note: {text}", highlight=False, markup=False)

    with PopulationReport(title, n, batch.bursts, err, remote=opts.ray is not None) as live:
        def on_brain(r: Any) -> None:
            live.add_brain(r, counted)
            for w in r.warnings:
                key = f"{r.genome}: {w}"
                if key not in warned:
                    warned.add(key)
                    live.console.print(f"[yellow]warning:[/] {escape(key)}", highlight=False)
            if r.error and r.error not in warned:
                warned.add(r.error)
                live.console.print(f"[red]brain {r.index} failed:[/] {escape(r.error)}", highlight=False)

        result = pop.run(opts.bursts, backend=opts.backend, threads=opts.threads, record_dir=opts.record_dir,
                         ray=ray, progress=live.add_bursts if counted else None, on_brain=on_brain, stop=stop,
                         on_note=note)
    out.print(rows_table(result.results, pop.fitness is not None))
    err.print(f"{result.brain_bursts:,} brain-bursts in {result.wall_s:,.2f} s: {result.brain_bursts_per_s:,.0f} "
              f"brains x bursts per second ({result.where}); {result.run_brain_bursts_per_s:,.0f} while running "
              f"(set-up {result.setup_s:,.2f} s, bursts {result.run_s:,.2f} s)", highlight=False)
    if result.failed:
        err.print(f"{len(result.failed):,} of {n:,} brains failed (errors above and in the summaries)",
                  highlight=False)
    if opts.json_path is not None:
        result.write_json(opts.json_path)
        err.print(f"json: {opts.json_path}", highlight=False)
    if opts.csv_path is not None:
        result.write_csv(opts.csv_path)
        err.print(f"csv: {opts.csv_path}", highlight=False)
    if opts.record_dir is not None:
        err.print(f"records: {opts.record_dir}/ ({sum(1 for r in result.results if r.record):,} spike records)",
                  highlight=False)
    if stop():
        err.print("stopped: brains not run are listed with their error", highlight=False)
    return 1 if result.failed else 0
