"""Spike rasters: what the brain did, burst by burst, grouped by cortical area.

The figure has two panels sharing the burst axis:

- the raster: one dot per spike (burst on x); neurons are grouped into one horizontal band per
  cortical area, in neuron-id order, each band coloured and labelled with the area's name and id.
  Only neurons that fired get a row (a 100,000-neuron area with 40 active neurons stays readable),
  and every band gets a minimum height so one-neuron core areas stay visible beside big ones.
  Areas without a spike in the window are not drawn.
- the firing rate per area: the percentage of the area's neurons firing per burst when the record
  carries the area sizes (`.npz`), spikes per burst otherwise (`.jsonl`), averaged over bins when
  the window is wider than the plot.

matplotlib is an optional dependency (`pip install 'feagi-burst[plot]'`). Drawing goes through the
object-oriented API with the Agg canvas, so no global pyplot state or display is touched. Every
text drawn (title, area names) is shown literally: a `$` is escaped (matplotlib would otherwise read
`$...$` as mathtext and fail on a name like `cost$`), control characters are shown as escapes.

Several records are drawn as one only when they come from one genome: records carry the genome's
title and fingerprint, and records of different genomes are refused, naming both.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.files import MAX_INT, atomic_write, check_output, printable
from feagi_burst.spike_record import SpikeTable, read_spikes

FORMATS = (".png", ".svg", ".pdf")
MIN_BAND = 0.035  # the smallest band, as a share of the raster's height
MAX_RATE_BINS = 150  # at most this many points per rate line: a readable rate, not single bursts
LABEL_CHARS = 32


def require_matplotlib() -> None:
    """Fail in one clear line when the optional plotting dependency is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("plotting needs matplotlib, which is not installed; "
                         "run: pip install 'feagi-burst[plot]'") from None


def check_plot_path(path: Path, force: bool) -> None:
    """Refuse an unknown image format, a directory, a missing folder, or an existing file without --force."""
    if Path(path).suffix.lower() not in FORMATS:
        raise InputError(f"{path}: unknown image format {Path(path).suffix or '(none)'}; use {', '.join(FORMATS)}")
    check_output(path, "image", force)


def _plain(text: str, limit: int | None = None) -> str:
    """Text matplotlib draws as written: control characters escaped, every `$` escaped (no mathtext)."""
    return printable(text, limit).replace("$", r"\$")


def check_same_genome(tables: Sequence[SpikeTable]) -> None:
    """Refuse records of different genomes: drawn as one, their areas and neuron ids would be mislabelled."""
    def genome(t: SpikeTable) -> str:
        return f"{printable(t.brain or '?', 60)!r} ({(t.fingerprint or '?')[:12]})"

    known = [t for t in tables if t.fingerprint]
    for t in known[1:]:
        if t.fingerprint != known[0].fingerprint:
            raise InputError(f"{t.source} was recorded from genome {genome(t)} and {known[0].source} from "
                             f"{genome(known[0])}; records of different genomes cannot be drawn as one: "
                             "plot them separately")
    full = [t for t in tables if t.area_sizes is not None]  # .npz records list every area of their genome
    for t in full[1:]:
        if t.area_ids != full[0].area_ids:
            raise InputError(f"{t.source} and {full[0].source} list different cortical areas: they were recorded "
                             "from different genomes; plot them separately")


def merge_records(tables: Sequence[SpikeTable]) -> SpikeTable:
    """Several records of one brain (a run and its resumes) as one; a burst seen twice keeps the later."""
    if len(tables) == 1:
        return tables[0]
    check_same_genome(tables)
    ids: list[str] = []
    names: list[str] = []
    index: dict[str, int] = {}
    for t in tables:
        for i, n in zip(t.area_ids, t.area_names):
            if i not in index:
                index[i] = len(ids)
                ids.append(i)
                names.append(n)
    sizes = tables[0].area_sizes if all(t.area_sizes is not None and t.area_ids == ids for t in tables) else None
    parts = []
    covered = np.zeros(0, np.int64)
    for t in reversed(tables):  # later records win where bursts overlap (a resume after a crash)
        keep = ~np.isin(t.burst, covered)
        remap = np.array([index[a] for a in t.area_ids], np.int64)
        parts.append((t.burst[keep], t.neuron[keep], t.mp[keep], remap[t.spike_area[keep]] if remap.size else
                      t.spike_area[keep]))
        covered = np.union1d(covered, np.unique(t.burst))
    burst, neuron, mp, area = (np.concatenate(c) for c in zip(*parts))
    order = np.lexsort((neuron, burst))
    known = next((t for t in tables if t.fingerprint), tables[0])
    return SpikeTable(burst[order], neuron[order], mp[order], area[order], ids, names, sizes,
                      min(t.first_burst for t in tables if t.first_burst) if any(t.first_burst for t in tables) else 0,
                      max(t.last_burst for t in tables), known.brain, known.fingerprint,
                      ", ".join(t.source for t in tables))


def _label(name: str, cortical_id: str) -> str:
    """`name (id)`; a long name is shortened, the cortical id (what users type) always stays whole."""
    name, cortical_id = printable(name), printable(cortical_id, 40)
    if not name or name == cortical_id:
        return cortical_id
    room = max(LABEL_CHARS - len(cortical_id) - 3, 8)
    short = name if len(name) <= room else name[: room - 1].rstrip() + "…"
    return f"{short} ({cortical_id})"


def plot_raster(records: Sequence[str | Path], out: str | Path, areas: Sequence[str] | None = None,
                bursts: tuple[int | None, int | None] = (None, None), force: bool = False,
                title: str | None = None) -> dict[str, Any]:
    """Draw the raster and rate panels of `records` into `out` (written atomically).

    Returns what was drawn: spikes, areas (bands drawn), first_burst, last_burst, and the bands'
    area_ids and labels, top to bottom.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    check_plot_path(out, force)
    for b in bursts:
        if b is not None and (isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 0 <= b <= MAX_INT):
            raise InputError(f"burst window {bursts}: burst numbers are whole numbers from 0 to {MAX_INT:,}")
    if not records:
        raise InputError("no record to plot; give one or more .npz/.jsonl records")
    t = merge_records([read_spikes(r) for r in records])
    lo = bursts[0] if bursts[0] is not None else (t.first_burst or int(t.burst.min(initial=1)))
    hi = bursts[1] if bursts[1] is not None else max(t.last_burst, int(t.burst.max(initial=lo)))
    hi = max(hi, lo)
    sel = (t.burst >= lo) & (t.burst <= hi)
    if areas is not None:
        unknown = [a for a in areas if a not in t.area_ids]
        if unknown:
            raise InputError(f"--areas: {', '.join(unknown)} not in the record; its areas: "
                             f"{', '.join(t.area_ids[:30])}")
        sel &= np.isin(t.spike_area, [t.area_ids.index(a) for a in areas])
    burst, neuron, area = t.burst[sel], t.neuron[sel], t.spike_area[sel]

    # rows: each distinct firing neuron, in id order. Areas hold contiguous ids, so each area's rows
    # are consecutive and the bands come out in neuron-id order.
    rows, row_of = np.unique(neuron, return_inverse=True)
    row_area = np.zeros(rows.size, np.int64)
    row_area[row_of] = area
    starts = np.flatnonzero(np.r_[True, row_area[1:] != row_area[:-1]]) if rows.size else np.zeros(0, np.int64)
    shown = row_area[starts]  # areas with a spike, top to bottom
    per_band = np.diff(np.r_[starts, rows.size]).astype(np.float64)
    # every band at least MIN_BAND of the height, so one-neuron areas stay visible beside big ones
    band_h = np.maximum(per_band, MIN_BAND * max(per_band.sum(), 1.0))
    band_lo = np.r_[0.0, np.cumsum(band_h)[:-1]] if shown.size else band_h
    band = np.repeat(np.arange(shown.size), per_band.astype(np.int64))  # each row's band
    rank = np.arange(rows.size) - starts[band] if rows.size else np.zeros(0)
    row_y = band_lo[band] + (rank + 0.5) / per_band[band] * band_h[band] if rows.size else np.zeros(0)

    n_bands = int(shown.size)
    fig = Figure(figsize=(12, min(4.0 + 0.28 * n_bands, 30.0) + 3.0), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 1, height_ratios=[max(3.0, 0.28 * n_bands), 2.2])
    ax = fig.add_subplot(grid[0])
    ax_rate = fig.add_subplot(grid[1], sharex=ax)
    colours = _colours(n_bands)
    total_h = float(band_h.sum()) if n_bands else 1.0
    width = hi - lo + 1
    # marker length: a band row's height in points would be too small for big bands; use a fixed
    # tick that stays visible, thinner when there are many spikes
    marker_size = float(np.clip(2600.0 / max(width, 1), 1.5, 6.0))
    for k, a in enumerate(shown):
        y0 = band_lo[k]
        if k % 2 == 0:
            ax.axhspan(y0, y0 + band_h[k], color="0.94", zorder=0, lw=0)
        m = area == a
        ax.plot(burst[m], row_y[row_of[m]], linestyle="none", marker="|", markersize=marker_size,
                markeredgewidth=max(0.6, min(1.5, 600.0 / max(width, 1))), color=colours[k], rasterized=True)
    ax.set_ylim(total_h, 0)  # first area at the top
    ax.set_yticks(band_lo + band_h / 2)
    ax.set_yticklabels([_plain(_label(t.area_names[a], t.area_ids[a])) for a in shown], fontsize=8)
    for lbl, c in zip(ax.get_yticklabels(), colours):
        lbl.set_color(c)
    ax.tick_params(axis="y", length=0)
    ax.set_ylabel("cortical area (firing neurons)")
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.tick_params(axis="x", labelbottom=False)
    spikes = int(burst.size)
    head = _plain(title, 200) if title else "spike raster"
    ax.set_title(f"{head}: {spikes:,} spikes, bursts {lo:,}–{hi:,}", loc="left", fontsize=10)
    if not n_bands:
        ax.text(0.5, 0.5, "no spikes in this window", transform=ax.transAxes, ha="center", va="center",
                fontsize=12, color="0.4")
        ax.set_yticks([])

    # rate panel: per area, spikes per burst binned to at most MAX_RATE_BINS points
    step = -(-width // MAX_RATE_BINS)  # whole bursts per bin: fractional bins alias periodic firing
    edges = np.append(np.arange(lo, hi + 1, step), hi + 1).astype(np.float64)
    if edges.size > 2 and edges[-1] - edges[-2] < step:
        edges = np.delete(edges, -2)  # a short last bin is noise: fold it into the one before
    centres = (edges[:-1] + edges[1:] - 1) / 2
    per_bin_bursts = np.diff(edges)
    positive = []
    lines: list[Any] = []
    for k, a in enumerate(shown):
        counts, _ = np.histogram(burst[area == a], bins=edges)
        rate = counts / per_bin_bursts
        if t.area_sizes is not None and t.area_sizes[a] > 0:
            rate = rate / t.area_sizes[a] * 100.0
        positive.append(rate[rate > 0])
        lines += ax_rate.plot(centres, rate, color=colours[k], lw=1.0)
    ax_rate.set_ylabel("% of area firing" if t.area_sizes is not None else "spikes per burst")
    ax_rate.set_xlabel("burst")
    ax_rate.grid(True, alpha=0.3)
    pos = np.concatenate(positive) if positive else np.zeros(0)
    if pos.size and pos.max() / pos.min() > 100:
        # a one-neuron core area at 50 % beside a sensor area at 0.1 %: only a log axis shows both
        ax_rate.set_yscale("log")
        ax_rate.set_ylim(pos.min() / 2, pos.max() * 2)
    else:
        ax_rate.set_ylim(bottom=0)
    if 0 < n_bands <= 24:
        # labels passed explicitly: matplotlib drops automatic labels that start with "_" (___pwr)
        ax_rate.legend(lines, [_plain(_label(t.area_names[a], t.area_ids[a])) for a in shown], fontsize=7,
                       loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)

    fmt = out.suffix.lower().lstrip(".")
    with atomic_write(out, "wb") as f, warnings.catch_warnings():
        # a name in a script the font lacks (CJK, emoji) is drawn as boxes; matplotlib's two-line
        # warning per glyph would bury the one-line report
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(f, format=fmt)
    return {"spikes": spikes, "areas": n_bands, "first_burst": lo, "last_burst": hi,
            "area_ids": [t.area_ids[a] for a in shown], "labels": [_label(t.area_names[a], t.area_ids[a]) for a in shown]}


def _colours(n: int) -> list[Any]:
    """n distinct colours: tab10 for few areas, tab20 then a hue wheel for more."""
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    if n <= 20:
        cmap = colormaps["tab20"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["turbo"]
    return [cmap(0.05 + 0.9 * i / max(n - 1, 1)) for i in range(n)]


MAX_WEIGHT_LINES = 40  # a pair with more synapses is drawn as its spread (mean, quantile bands), plus samples
WEIGHT_SAMPLES = 12


def plot_weights(record: str | Path, out: str | Path, pair: str | None = None,
                 bursts: tuple[int | None, int | None] = (None, None), force: bool = False,
                 title: str | None = None) -> dict[str, Any]:
    """Draw one plastic pair's weights over time from a weight record (run --record-weights) into
    `out` (written atomically): one line per synapse when the pair has up to MAX_WEIGHT_LINES of
    them (labelled `source xyz > target xyz`), else the mean, the 10-90% and min-max bands and a
    few sampled synapses. Inhibitory synapses are drawn dashed (a weight is a magnitude).

    Returns what was drawn: pair, synapses, snapshots, first_burst, last_burst, min, max.
    """
    from feagi_burst.weight_record import read_weights

    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out)
    check_plot_path(out, force)
    rec = read_weights(record)
    if not rec.pair_names:
        raise InputError(f"weight record {record} holds no plastic pair")
    if pair is None:
        if len(rec.pair_names) > 1:
            raise InputError(f"weight record {record} holds {len(rec.pair_names)} plastic pairs; choose one with "
                             f"--pair SRC>DST: {', '.join(rec.pair_names[:12])}")
        p = 0
    else:
        p = rec.find(pair)
    meta = rec.meta["pairs"][p]
    b = rec.bursts
    w = rec.weights[p]
    lo = bursts[0] if bursts[0] is not None else (int(b.min()) if b.size else 0)
    hi = bursts[1] if bursts[1] is not None else (int(b.max()) if b.size else lo)
    sel = (b >= lo) & (b <= hi)
    b, w = b[sel], w[sel]
    k = w.shape[1]
    fig = Figure(figsize=(11, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    inh = rec.inhibitory[p]
    if b.size and k <= MAX_WEIGHT_LINES:
        colours = _colours(min(k, 20))
        labels = [f"{','.join(map(str, s))} > {','.join(map(str, d))}"
                  for s, d in zip(rec.source_xyz[p].tolist(), rec.target_xyz[p].tolist())]
        for j in range(k):
            ax.plot(b, w[:, j], lw=1.2, color=colours[j % len(colours)], ls="--" if inh[j] else "-",
                    drawstyle="steps-post", label=_plain(labels[j]))
        if k <= 12:
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False,
                      title="source xyz > target xyz", title_fontsize=7)
    elif b.size:
        ax.fill_between(b, w.min(axis=1), w.max(axis=1), color="0.85", step="post", label="min - max")
        q10, q90 = np.percentile(w, [10, 90], axis=1)
        ax.fill_between(b, q10, q90, color="tab:blue", alpha=0.25, step="post", label="10% - 90%")
        ax.plot(b, w.mean(axis=1), color="tab:blue", lw=1.6, drawstyle="steps-post", label="mean")
        pick = np.linspace(0, k - 1, WEIGHT_SAMPLES).astype(np.int64)
        for j in pick:
            ax.plot(b, w[:, j], lw=0.6, color="0.45", alpha=0.6, drawstyle="steps-post")
        ax.plot([], [], lw=0.6, color="0.45", label=f"{WEIGHT_SAMPLES} sampled synapses")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.005, 1.0), frameon=False)
    else:
        ax.text(0.5, 0.5, "no snapshot in this window", transform=ax.transAxes, ha="center", va="center",
                fontsize=12, color="0.4")
    ax.set_xlabel("burst (weights after its STDP update)")
    ax.set_ylabel("weight (|psc multiplier|)")
    ax.grid(True, alpha=0.3)
    name = f"{_label(meta['src_name'], meta['src'])} > {_label(meta['dst_name'], meta['dst'])}"
    head = _plain(title, 200) if title else "weights"
    ax.set_title(f"{head}: {_plain(name)}, {k:,} synapses, window {meta['window']}, "
                 f"+{meta['dp']:g} / -{meta['dm']:g}", loc="left", fontsize=10)
    fmt = out.suffix.lower().lstrip(".")
    with atomic_write(out, "wb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        fig.savefig(f, format=fmt)
    return {"pair": meta["name"], "synapses": int(k), "snapshots": int(b.size),
            "first_burst": int(b.min()) if b.size else lo, "last_burst": int(b.max()) if b.size else hi,
            "min": float(w.min()) if w.size else 0.0, "max": float(w.max()) if w.size else 0.0}
