"""`feagi-burst plot`: a spike raster from records, or a plastic pair's weights over time."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from feagi_burst.cli.program import app, out
from feagi_burst.errors import InputError
from feagi_burst.files import MAX_INT


def parse_burst_range(text: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    """`A:B`, `A:` or `:B` (inclusive) as (A, B); None for an open end."""
    if text is None:
        return None, None
    parts = text.split(":")
    try:
        if len(parts) != 2 or any(len(p.strip()) > 20 for p in parts):
            raise ValueError
        lo, hi = (int(p) if p.strip() else None for p in parts)
    except ValueError:
        raise InputError(f"--bursts {text!r}: expected A:B, A: or :B with burst numbers") from None
    if any(b is not None and not 0 <= b <= MAX_INT for b in (lo, hi)):
        raise InputError(f"--bursts {text!r}: burst numbers go from 0 to {MAX_INT:,}")
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"--bursts {text!r}: the first burst is after the last")
    return lo, hi


@app.command()
def plot(
    records: Optional[list[Path]] = typer.Argument(None, help="Spike record(s): .npz, .jsonl or a .partial left by a "
                                                   "crash; several (e.g. a run and its resumes) are drawn as one."),
    weights_path: Optional[Path] = typer.Option(None, "--weights", help="A weight record (run --record-weights): "
                                                "draw a plastic pair's weights over time instead of a raster."),
    pair: Optional[str] = typer.Option(None, "--pair", help="With --weights: the pair, SRC>DST (ids or names); "
                                       "optional when the record has one pair."),
    out_path: Path = typer.Option(..., "--out", "-o", help="Image to write (.png, .svg, .pdf)."),
    areas: Optional[str] = typer.Option(None, "--areas", help="Only these cortical ids, comma-separated."),
    burst_range: Optional[str] = typer.Option(None, "--bursts", help="Only bursts A:B (inclusive; A: or :B)."),
    title: Optional[str] = typer.Option(None, "--title", help="Title above the raster."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing image."),
) -> None:
    """Draw a spike raster (bursts x neurons, grouped by cortical area) over per-area firing rates, or with
    --weights a plastic pair's weights over time."""
    from feagi_burst.plot import check_plot_path, plot_raster, plot_weights, require_matplotlib

    if weights_path is not None:
        if records:
            raise InputError("give either spike records or --weights, not both")
        require_matplotlib()
        check_plot_path(out_path, force)
        info = plot_weights(weights_path, out_path, pair=pair, bursts=parse_burst_range(burst_range), force=force,
                            title=title)
        out.print(f"wrote {out_path} ({info['pair']}: {info['synapses']:,} synapses, {info['snapshots']:,} snapshots, "
                  f"weights {info['min']:g}..{info['max']:g})", highlight=False)
        return
    if not records:
        raise InputError("nothing to plot: give spike record(s), or --weights PATH for a weight record")
    if pair is not None:
        raise InputError("--pair goes with --weights PATH (a weight record)")
    require_matplotlib()
    check_plot_path(out_path, force)
    wanted = [a.strip() for a in areas.split(",") if a.strip()] if areas is not None else None
    if wanted is not None and not wanted:
        raise InputError("--areas is empty; give cortical ids separated by commas")
    info = plot_raster(records, out_path, areas=wanted, bursts=parse_burst_range(burst_range), force=force,
                       title=title)
    out.print(f"wrote {out_path} ({info['spikes']:,} spikes, {info['areas']} areas, bursts "
              f"{info['first_burst']:,}..{info['last_burst']:,})", highlight=False)
