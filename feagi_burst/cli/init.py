"""`feagi-burst init`: a default brain.toml."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from feagi_burst.cli.program import app, out
from feagi_burst.config import default_config_text, write_config
from feagi_burst.files import check_output


@app.command()
def init(
    path: Path = typer.Argument(Path("brain.toml"), help="Where to write the config."),
    genome: str = typer.Option("genome.json", "--genome", help="Genome path to put in the config."),
    synthetic: Optional[int] = typer.Option(None, "--synthetic", min=1, metavar="NEURONS",
                                            help="Configure a synthetic brain of this many neurons instead "
                                                 "(100 synapses each, 1% firing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Write a default brain.toml (a genome's, or with --synthetic N a synthetic brain's)."""
    check_output(path, "config", force)
    data = default_config_text(genome)
    if synthetic is not None:
        from feagi_burst.config import SyntheticSpec

        spec = SyntheticSpec(neurons=synthetic)
        data["genome"] = {"synthetic": {"neurons": spec.neurons, "synapses_per_neuron": spec.synapses_per_neuron,
                                        "firing_rate": spec.firing_rate, "seed": spec.seed}}
    write_config(path, data)
    out.print(f"wrote {path}")
