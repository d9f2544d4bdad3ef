"""The `feagi-burst` command line: run, init, genome info, select, bench."""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from typer.exceptions import Abort, TyperException
from rich.console import Console

from feagi_burst.config import Config, default_config_text, load_config, write_config
from feagi_burst.engine import Engine, notice
from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write
from feagi_burst.report import LiveReport

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="A fast, exact burst engine for FEAGI spiking neural networks.")
genome_app = typer.Typer(no_args_is_help=True, help="Inspect FEAGI genomes.")
app.add_typer(genome_app, name="genome")
out = Console()
err = Console(stderr=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (never a half-written file)."""
    with atomic_write(path) as f:
        json.dump(data, f, indent=2)
        f.write("\n")


class StopFlag:
    """First Ctrl-C or SIGTERM: finish the current burst and stop cleanly. Second Ctrl-C: abort (130)."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def handle(self, signum: int, _frame: Any) -> None:
        if self.stopped and signum == signal.SIGINT:
            raise SystemExit(130)
        self.stopped = True
        notice("stopping after the current burst (Ctrl-C again to abort)")

    def install(self) -> None:
        signal.signal(signal.SIGINT, self.handle)
        signal.signal(signal.SIGTERM, self.handle)


def resolve_config(config: Optional[Path], genome: Optional[Path]) -> Config:
    """The run's config: brain.toml if given, with --genome replacing its brain."""
    cfg = load_config(config) if config else Config()
    if genome is not None:
        cfg.genome, cfg.synthetic = genome, None
    if cfg.genome is None and cfg.synthetic is None:
        raise InputError("no brain to run: pass --config brain.toml or --genome genome.json")
    return cfg


def selection_line(engine: Engine, requested: str) -> str:
    if engine.selection is not None:
        return f"backend: {engine.backend_name()} (auto: {engine.selection.reason})"
    return f"backend: {engine.backend_name()} (--backend {requested})"


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml to run."),
    genome: Optional[Path] = typer.Option(None, "--genome", "-g", help="FEAGI genome JSON (replaces the config's)."),
    bursts: Optional[int] = typer.Option(None, "--bursts", "-n", min=0, help="Bursts to run (0: until Ctrl-C)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="auto, cpu or gpu."),
    stimulus: Optional[Path] = typer.Option(None, "--stimulus", "-s", help="Stimulus schedule (TOML or JSON)."),
    record: Optional[Path] = typer.Option(None, "--record", "-r", help="Spike record to write (.jsonl or .npz)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Seed of the excitability draws."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write a JSON summary here."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing record."),
) -> None:
    """Run a brain for some bursts with a live per-phase timing table."""
    cfg = resolve_config(config, genome)
    if stimulus is not None:
        cfg.stimulus = stimulus
    if record is not None:
        cfg.record = record
    n_bursts = cfg.bursts if bursts is None else bursts
    engine = Engine.from_config(cfg, backend=backend, seed=cfg.seed if seed is None else seed)
    err.print(selection_line(engine, backend), highlight=False)
    recorder = None
    if cfg.record is not None:
        from feagi_burst.spike_record import open_recorder

        recorder = open_recorder(cfg.record, engine.brain, force=force)
    stop = StopFlag()
    stop.install()
    title = f"{engine.brain.name}: {engine.brain.neuron_count:,} neurons, {engine.brain.synapse_count:,} synapses"
    try:
        with LiveReport(title, n_bursts, console=err) as live:
            def on_result(r: Any) -> None:
                live.update(r)
                if recorder:
                    recorder.add(r)
            engine.run(n_bursts, on_result=on_result, stop=stop)
    except BaseException:
        if recorder:
            recorder.abort()
        raise
    if recorder:
        recorder.close()
        err.print(f"record: {cfg.record} ({recorder.spikes:,} spikes)", highlight=False)
    if json_path is not None:
        write_json(json_path, live.stats.summary(backend=engine.backend_name(), neurons=engine.brain.neuron_count,
                                                 synapses=engine.brain.synapse_count,
                                                 resolution=engine.tables.resolution))
    engine.close()


@app.command()
def init(
    path: Path = typer.Argument(Path("brain.toml"), help="Where to write the config."),
    genome: str = typer.Option("genome.json", "--genome", help="Genome path to put in the config."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a default brain.toml."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists; pass --force to overwrite it")
    write_config(path, default_config_text(genome))
    out.print(f"wrote {path}")


@genome_app.command("info")
def genome_info_cmd(
    path: Path = typer.Argument(..., help="FEAGI genome JSON."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Areas, neuron and synapse counts, mappings and warnings of a genome."""
    from feagi_burst.genome import expand_genome, genome_info, load_genome

    g = load_genome(path)
    brain = expand_genome(g)
    info = genome_info(g, brain)
    if as_json:
        print(json.dumps(info, indent=2))
        return
    from rich.table import Table

    t = Table(title=f"{path.name}: {info['neurons']:,} neurons, {info['synapses']:,} synapses", title_justify="left")
    for c in ("cortical id", "name", "size", "npv", "neurons"):
        t.add_column(c, justify="right" if c in ("npv", "neurons") else "left")
    for a in info["areas"]:
        t.add_row(a["cortical_id"], a["name"], "x".join(map(str, a["dimensions"])), str(a["neurons_per_voxel"]),
                  f"{a['neurons']:,}")
    out.print(t)
    if info.get("mappings"):
        m = Table(title="mappings", title_justify="left")
        for c in ("source", "destination", "morphology", "synapses"):
            m.add_column(c, justify="right" if c == "synapses" else "left")
        for row in info["mappings"]:
            m.add_row(row["source"], row["destination"], str(row["morphology"]), f"{row['synapses']:,}")
        out.print(m)
    for w in info.get("warnings", []):
        out.print(f"[yellow]warning:[/] {w}")


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except InputError as e:
        print(f"feagi-burst: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Abort:
        sys.exit(130)
    except TyperException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message(), file=sys.stderr)
        else:
            print(f"feagi-burst: error: {e.format_message()}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
