"""`feagi-burst genome info`: a genome's areas, models, counts, mappings, plastic pairs and warnings."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from feagi_burst.cli.program import genome_app, out
from feagi_burst.config import load_config
from feagi_burst.errors import InputError
from feagi_burst.files import printable


@genome_app.command("info")
def genome_info_cmd(
    path: Path = typer.Argument(..., help="FEAGI genome JSON (flat 2.x or 3.0)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
    area: Optional[str] = typer.Option(None, "--area", help="Only this area and its mappings: a cortical id as "
                                       "written, a 3.0 area's decoded id, or the area's name."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml whose [[model]] tables say which "
                                          "neuron model each area runs (default: FEAGI LIF everywhere)."),
) -> None:
    """Format, areas (and the neuron model each runs), neuron and synapse counts, mappings, plastic pairs and warnings."""
    from feagi_burst.genome import expand_genome, genome_info, load_genome
    from feagi_burst.models.assign import apply_model_specs

    g = load_genome(path)
    brain = expand_genome(g)
    if config is not None:
        brain = apply_model_specs(brain, load_config(config).models)
    try:
        info = genome_info(g, brain, area=area)
    except KeyError as e:
        raise InputError(f"--area: {e.args[0]}") from None
    if as_json:
        print(json.dumps(info, indent=2))
        return
    from rich.table import Table

    from rich.markup import escape

    from feagi_burst.genome.ids import decoded_id

    def shown_text(text: object, limit: int | None = None) -> str:
        """A genome's text for the tables: control characters escaped, rich markup ([red]) literal."""
        return escape(printable(text, limit))

    v3 = info["format"] == "3.0"
    shown = decoded_id if v3 else str  # 3.0 tables show decoded ids (the areas table has both)
    title = (f"{shown_text(path.name)} (FEAGI {info['format']} genome, version {shown_text(info['version'])}): "
             f"{info['neurons']:,} neurons, "
             f"{info['synapses']:,} synapses")
    t = Table(title=title, title_justify="left")
    cols = ("cortical id", "decoded id", "name", "size", "npv", "neurons", "model") if v3 else \
        ("cortical id", "name", "size", "npv", "neurons", "model")
    for c in cols:
        t.add_column(c, justify="right" if c in ("npv", "neurons") else "left")
    for a in info["areas"]:
        # a genome's ids and names can hold anything: escape control characters (printable)
        row = [shown_text(a["cortical_id"])] + ([shown_text(a["decoded_id"])] if v3 else []) + [
            shown_text(a["name"]), "x".join(map(str, a["dimensions"])), str(a["neurons_per_voxel"]),
            f"{a['neurons']:,}", a["model"]]
        t.add_row(*row)
    out.print(t)
    if info.get("mappings"):
        m = Table(title="mappings", title_justify="left")
        for c in ("source", "destination", "morphology", "synapses", "note"):
            m.add_column(c, justify="right" if c == "synapses" else "left")
        for row in info["mappings"]:
            m.add_row(shown_text(shown(row["source"])), shown_text(shown(row["destination"])),
                      shown_text(row["morphology"]), f"{row['synapses']:,}",
                      row.get("dropped") or "")
        out.print(m)
    if info.get("plasticity"):
        pt = Table(title="plastic area pairs (STDP)", title_justify="left")
        for c in ("source", "destination", "window", "ltp step", "ltd step"):
            pt.add_column(c, justify="left" if c in ("source", "destination") else "right")
        for p in info["plasticity"]:
            pt.add_row(shown(p["src_area"]), shown(p["dst_area"]), str(p["window"]), str(p["dp"]), str(p["dm"]))
        out.print(pt)
    for w in info.get("warnings", []):
        out.print(f"[yellow]warning:[/] {shown_text(w)}")
