"""`feagi-burst population`: its options; feagi_burst.population.command does the rest."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from feagi_burst.cli.program import app, err, out


@app.command("population", context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
             epilog="--ray [ADDRESS]: spread the brains over a Ray cluster (the address `ray start --head` prints); "
                    "without ADDRESS, a local Ray instance. Needs pip install 'feagi-burst\\[cluster]'.")
def population_cmd(
    ctx: typer.Context,
    config: Path = typer.Option(..., "--config", "-c", help="pop.toml: genomes, variants, replicas, bursts."),
    bursts: Optional[int] = typer.Option(None, "--bursts", "-n", min=1, help="Bursts per brain (replaces the config's)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="auto, cpu or gpu."),
    threads: int = typer.Option(1, "--threads", min=1, help="CPU brains at a time in this process (a thread pool)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the run and one row per brain here."),
    csv_path: Optional[Path] = typer.Option(None, "--csv", help="Write one row per brain here."),
    record_dir: Optional[Path] = typer.Option(None, "--record-dir", help="A spike record (.npz) per brain, and "
                                              "each variant's genome, in this folder."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, help="With --ray: brains per Ray task."),
    force: bool = typer.Option(False, "--force", help="Overwrite records already in --record-dir."),
) -> None:
    """Run a population of brains (genomes x variants x seeds) with a summary row per brain."""
    from feagi_burst.population.command import PopulationOptions, parse_ray, run_population

    opts = PopulationOptions(config=config, bursts=bursts, backend=backend, threads=threads, json_path=json_path,
                             csv_path=csv_path, record_dir=record_dir, force=force, ray=parse_ray(list(ctx.args)),
                             batch_size=batch_size)
    code = run_population(opts, err, out)
    if code:
        raise typer.Exit(code)
