"""`feagi-burst select`: which backend `run --backend auto` picks for a brain, and why."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from feagi_burst.cli.options import resolve_config
from feagi_burst.cli.program import app, out
from feagi_burst.engine import Engine, brain_from_config
from feagi_burst.files import finite, printable, warn
from feagi_burst.report import PhaseStats


@app.command("select")
def select_cmd(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml to decide for."),
    genome: Optional[Path] = typer.Option(None, "--genome", "-g", help="FEAGI genome JSON (replaces the config's)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only decide; do not build the backend."),
    as_json: bool = typer.Option(False, "--json", help="Print the decision as one JSON object."),
    bursts: int = typer.Option(10, "--bursts", min=1, help="Bursts to confirm the choice with (without --dry-run)."),
) -> None:
    """Explain which backend `run --backend auto` picks for a brain, and why."""
    from feagi_burst.backends import probe_adapters, select_backend

    cfg = resolve_config(config, genome)
    brain = brain_from_config(cfg, warn)
    adapters = probe_adapters()
    sel = select_backend(brain, cfg.backend, adapters, estimate=True)
    result = sel.as_dict()
    result["adapters"] = adapters
    if not dry_run:
        engine = Engine(brain, backend=sel.backend, seed=cfg.seed, warn=warn)
        stats = PhaseStats()
        engine.run(bursts, on_result=stats.add)
        result["confirmed"] = {"backend": engine.backend_name(), "bursts": stats.bursts,
                               "us_per_burst": stats.phase("total")["mean_us"]}
        engine.close()
    if as_json:
        print(json.dumps(finite(result), indent=2, allow_nan=False))  # strict JSON: NaN would not parse
        return
    from rich.table import Table

    t = Table(title=f"{printable(brain.name, 80)}: {brain.neuron_count:,} neurons, {brain.synapse_count:,} synapses, "
                    f"expected firing rate {sel.firing_rate:.2%}", title_justify="left")
    for c in ("rule", "value", "verdict"):
        t.add_column(c)
    for r in sel.rules:
        t.add_row(r.name, r.value, r.verdict, style="bold" if r.decided else ("dim" if r.verdict == "not reached" else None))
    t.add_row("estimate", f"CPU {sel.estimated_cpu_us:,.0f} µs, GPU {sel.estimated_gpu_us:,.0f} µs per burst",
              f"speedup {sel.estimated_speedup:.2f}x")
    out.print(t)
    out.print(f"model constants: {sel.constants_source}", highlight=False, markup=False)
    out.print(f"[bold]{sel.backend.upper()}[/]: {sel.reason}")
    if "confirmed" in result:
        c = result["confirmed"]
        out.print(f"confirmed: {c['bursts']} bursts on {c['backend']}, {c['us_per_burst']:,.1f} µs per burst")
