"""The `feagi-burst` command line: run, plot, init, genome info, select, bench."""
from __future__ import annotations

import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Optional

import typer
from typer.exceptions import Abort, TyperException
from rich.console import Console

from feagi_burst.backends.base import BackendError
from feagi_burst.config import Config, default_config_text, load_config, write_config
from feagi_burst.engine import Engine, brain_from_config, notice
from feagi_burst.errors import InputError
from feagi_burst.files import MAX_INT, WriteError, atomic_write, check_output, open_input, printable, warn
from feagi_burst.models.assign import model_summary
from feagi_burst.report import LiveReport, PhaseStats

HELP = {"help_option_names": ["-h", "--help"]}
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, context_settings=HELP,
                  help="A fast, exact burst engine for FEAGI spiking neural networks.")
genome_app = typer.Typer(no_args_is_help=True, context_settings=HELP, help="Inspect FEAGI genomes.")
app.add_typer(genome_app, name="genome")
out = Console()
err = Console(stderr=True)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (never a half-written file); strict JSON: a NaN is written as null."""
    with atomic_write(path) as f:
        json.dump(finite(data), f, indent=2, allow_nan=False)
        f.write("\n")


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as None, so that it is JSON every parser reads."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def version_callback(value: bool) -> None:
    if value:
        from feagi_burst import __version__

        print(f"feagi-burst {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """A fast, exact burst engine for FEAGI spiking neural networks."""


class StopFlag:
    """First Ctrl-C or SIGTERM: finish the current burst and stop cleanly. Second Ctrl-C: abort (130)."""

    def __init__(self) -> None:
        self.stopped = False

    def __call__(self) -> bool:
        return self.stopped

    def handle(self, signum: int, _frame: Any) -> None:
        if self.stopped and signum == signal.SIGINT:
            raise SystemExit(130)
        if self.stopped:
            return  # a second SIGTERM: the clean stop is already under way
        self.stopped = True
        # Ignored from now on: Python restores the default handler while it shuts down, and a SIGTERM
        # landing then would kill the process (143) after a clean stop. SIG_IGN survives shutdown.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
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


def check_json_path(path: Optional[Path]) -> None:
    """--json is checked before anything runs: a missing folder must not lose a long run's summary."""
    if path is not None:
        check_output(path, "--json")


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


def stimulus_entries(path: Optional[Path]) -> Any:
    """The stimulus schedule's entries, for the checkpoint's run-settings fingerprint."""
    if path is None:
        return None
    from feagi_burst.stimulus import read_schedule

    return read_schedule(path)


@app.command()
def run(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml to run."),
    genome: Optional[Path] = typer.Option(None, "--genome", "-g", help="FEAGI genome JSON (replaces the config's)."),
    bursts: Optional[int] = typer.Option(None, "--bursts", "-n", min=0, show_default="the config's [run] bursts, "
                                         "else 100", help="Bursts to run (0: until Ctrl-C/SIGTERM; with --resume: "
                                         "N more)."),
    backend: str = typer.Option("auto", "--backend", "-b", help="auto, cpu or gpu."),
    stimulus: Optional[Path] = typer.Option(None, "--stimulus", "-s", help="Stimulus schedule (TOML or JSON)."),
    record: Optional[Path] = typer.Option(None, "--record", "-r", help="Spike record to write (.jsonl or .npz)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, show_default="the config's [run] seed, else 0",
                                       help="Seed of the excitability draws (0 reproduces FEAGI)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write a JSON summary here."),
    raster: Optional[Path] = typer.Option(None, "--raster", help="Draw a spike raster here at the end (.png, .svg, .pdf)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Save the run's state here (.npz) at the end."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", min=1,
                                                   help="Also save the checkpoint every N bursts."),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from this checkpoint."),
    record_weights: Optional[Path] = typer.Option(None, "--record-weights", help="Write the weights of the plastic "
                                                  "pairs (STDP) here (.npz), every --record-weights-every bursts."),
    record_weights_every: int = typer.Option(1, "--record-weights-every", min=1,
                                             help="Bursts between weight snapshots (on absolute burst numbers)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing record, raster or checkpoint."),
) -> None:
    """Run a brain for some bursts with a live per-phase timing table."""
    from feagi_burst.spike_record import check_writable, open_recorder

    cfg = resolve_config(config, genome)
    if stimulus is not None:
        cfg.stimulus = stimulus
    if record is not None:
        cfg.record = record
    n_bursts = cfg.bursts if bursts is None else bursts
    run_seed = cfg.seed if seed is None else seed
    if checkpoint_every is not None and checkpoint is None:
        raise InputError("--checkpoint-every needs --checkpoint PATH (where to save)")
    if resume is not None:
        if not resume.exists():
            raise InputError(f"checkpoint {resume} does not exist; check the --resume path")
        open_input(resume, "checkpoint").close()  # a directory or a FIFO is named as such, not "missing"
    if cfg.stimulus is not None:
        open_input(cfg.stimulus, "stimulus schedule").close()  # a device or FIFO: refused before the brain is built
    # every output is checked before the brain is built or a burst runs: a long run never ends
    # in a refused write
    check_json_path(json_path)
    if cfg.record is not None:
        from feagi_burst.spike_record import FORMATS, partial_path

        if cfg.record.suffix.lower() not in FORMATS:
            raise InputError(f"--record {cfg.record}: unknown format {cfg.record.suffix or '(none)'}; "
                             "use a .jsonl or .npz file")
        check_writable(cfg.record, force, "--record")
        if partial_path(cfg.record).exists() and not force:
            raise InputError(f"{partial_path(cfg.record)} exists (left by an interrupted run); "
                             "choose another --record path or pass --force")
    if raster is not None:
        from feagi_burst.plot import check_plot_path, require_matplotlib

        require_matplotlib()
        check_plot_path(raster, force)
    if record_weights is not None:
        if record_weights.suffix.lower() != ".npz":
            raise InputError(f"--record-weights {record_weights}: weight records are .npz files; name it *.npz")
        check_writable(record_weights, force, "--record-weights")
    if checkpoint is not None:
        if checkpoint.suffix.lower() != ".npz":
            raise InputError(f"--checkpoint {checkpoint}: checkpoints are .npz files; name it *.npz")
        same_as_resume = resume is not None and checkpoint.resolve() == resume.resolve()
        check_writable(checkpoint, force or same_as_resume, "--checkpoint")
    settings = None
    if resume is not None or checkpoint is not None:
        from feagi_burst.checkpoint import run_settings

        settings = run_settings(run_seed, cfg.honour_snooze_i, stimulus_entries(cfg.stimulus))
    engine = Engine.from_config(cfg, backend=backend, seed=run_seed, warn=warn)
    if resume is not None:
        start = engine.restore(resume, settings)
        err.print(f"resumed from {resume} at burst {start:,}", highlight=False)
    from feagi_burst.engine import MAX_BURST

    if engine.submitted + max(n_bursts, 1) > MAX_BURST:  # a crafted or ancient checkpoint: refuse before burst 1
        raise InputError(f"this run would start at burst {engine.submitted + 1:,} and pass {MAX_BURST:,}, the last "
                         "burst number (32-bit in the engine's state and in .npz records); start from a new run")
    weights = None
    if record_weights is not None:
        from feagi_burst.memory import check_fits
        from feagi_burst.weight_record import WeightRecorder

        weights = WeightRecorder(engine, record_weights, record_weights_every)
        if n_bursts:
            snaps = n_bursts // record_weights_every + 2
            check_fits(snaps * weights.bytes_per_snapshot, f"--record-weights: {snaps:,} snapshots of "
                       f"{weights.bytes_per_snapshot // 4:,} weights", "record less often (--record-weights-every)")
        weights.snapshot()  # the weights the run starts from
    err.print(selection_line(engine, backend), highlight=False, soft_wrap=True)
    err.print(model_summary(engine.brain), highlight=False, markup=False)
    recorder = None
    scratch = None
    record_path = cfg.record
    if record_path is None and raster is not None:
        # the raster is drawn from a record; without --record, keep one in a scratch folder
        import tempfile

        scratch = tempfile.TemporaryDirectory(prefix="feagi-burst-")
        record_path = Path(scratch.name) / "spikes.npz"
    if record_path is not None:
        recorder = open_recorder(record_path, engine.brain, force=force)
    stop = StopFlag()
    stop.install()
    title = (f"{printable(engine.brain.name, 80)}: {engine.brain.neuron_count:,} neurons, "
             f"{engine.brain.synapse_count:,} synapses")
    saved_at = -1
    try:
        with LiveReport(title, n_bursts, console=err) as live:
            def on_result(r: Any) -> None:
                live.update(r)
                if recorder:
                    recorder.add(r)
            ran = 0
            # run in segments between checkpoints; each segment drains the pipeline, so the saved
            # state and the delivered results agree
            while not stop() and (n_bursts == 0 or ran < n_bursts):
                step = checkpoint_every - ran % checkpoint_every if checkpoint_every else 0
                if weights is not None:  # stop at each weight snapshot (absolute burst numbers)
                    due = weights.every - engine.submitted % weights.every
                    step = min(step, due) if step else due
                if n_bursts:
                    step = min(step, n_bursts - ran) if step else n_bursts - ran
                ran += engine.run(step, on_result=on_result, stop=stop)
                if weights is not None and weights.due(engine.submitted):
                    weights.snapshot()
                if checkpoint is not None and checkpoint_every is not None and engine.submitted != saved_at \
                        and (ran % checkpoint_every == 0 or stop() or ran == n_bursts):
                    if recorder:
                        recorder.flush()  # the record on disk reaches at least the checkpoint
                    if weights is not None:
                        weights.write()
                    engine.checkpoint(checkpoint, settings)
                    saved_at = engine.submitted
        if recorder:
            recorder.close()
        if weights is not None:
            weights.snapshot()  # the last burst, wherever the run stopped
            weights.write()
        if checkpoint is not None and engine.submitted != saved_at:
            engine.checkpoint(checkpoint, settings)
    except BaseException:
        if recorder:
            kept = recorder.abort()
            if kept is not None and scratch is None and not recorder.failed:  # a failed write said it already
                notice(f"run aborted; spikes up to the last flushed chunk are in {kept}")
        if scratch is not None:
            scratch.cleanup()
        raise
    if stop():
        err.print(f"stopped at burst {engine.submitted:,}", highlight=False)
    if recorder and scratch is None:
        err.print(f"record: {record_path} ({recorder.spikes:,} spikes)", highlight=False)
    if checkpoint is not None:
        err.print(f"checkpoint: {checkpoint} (burst {engine.submitted:,})", highlight=False)
    if weights is not None:
        err.print(f"weights: {record_weights} ({len(weights.bursts):,} snapshots of {len(weights.pairs)} plastic "
                  "pair(s))", highlight=False)
    if raster is not None and record_path is not None:
        from feagi_burst.plot import plot_raster

        try:
            plot_raster([record_path], raster, force=force, title=title)
        finally:
            if scratch is not None:
                scratch.cleanup()
        err.print(f"raster: {raster}", highlight=False)
    if json_path is not None:
        summary = live.stats.summary(backend=engine.backend_name(), neurons=engine.brain.neuron_count,
                                     synapses=engine.brain.synapse_count, resolution=engine.resolution)
        try:
            write_json(json_path, summary)
        except WriteError as e:
            kept = []
            if recorder and scratch is None:
                kept.append(f"record {record_path}")
            if checkpoint is not None:
                kept.append(f"checkpoint {checkpoint}")
            raise InputError(f"{e}; the run itself completed" + (f" ({', '.join(kept)} written)" if kept else "")) \
                from None
    engine.close()


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
    sel = select_backend(brain, cfg.backend, adapters)
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


@app.command("bench")
def bench_cmd(
    neurons: int = typer.Option(100_000, "--neurons", min=1, help="Neurons of the synthetic brain."),
    synapses_per_neuron: int = typer.Option(100, "--synapses-per-neuron", min=0, help="Outgoing synapses each."),
    firing_rate: float = typer.Option(0.01, "--firing-rate", min=0.0, max=1.0, help="Driven firing rate."),
    bursts: int = typer.Option(200, "--bursts", min=1, help="Timed bursts."),
    warmup: int = typer.Option(20, "--warmup", min=0, help="Bursts before timing."),
    backend: str = typer.Option("both", "--backend", help="cpu, gpu or both (both: gpu only where one exists)."),
    blocking: bool = typer.Option(False, "--blocking", help="Wait for each burst's spikes (closed-loop latency)."),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the synthetic brain."),
    model: str = typer.Option("feagi_lif", "--model", help="Neuron model of every neuron (feagi_lif, izhikevich, adex...)."),
    model_params: list[str] = typer.Option([], "--param", help="A parameter of --model as KEY=VALUE (repeatable), "
                                           "e.g. --param input_gain=100."),
    plastic_fraction: float = typer.Option(0.0, "--plastic-fraction", min=0.0, max=1.0,
                                           help="Make about this fraction of the synapses plastic (STDP, window 5)."),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the results here."),
    calibrate: bool = typer.Option(False, "--calibrate", help="Fit the selection model and write it to --config."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="brain.toml whose \\[backend] table to use or calibrate."),
) -> None:
    """Benchmark a synthetic brain on the CPU and/or GPU backends (or calibrate the selection model)."""
    from feagi_burst.backends import probe_adapters
    from feagi_burst.bench import bench
    from feagi_burst.config import BackendConfig
    from feagi_burst.fixed_point import compile_tables
    from feagi_burst.memory import check_fits
    from feagi_burst.synthetic import estimate_bytes, synthetic_brain

    if backend not in ("cpu", "gpu", "both"):
        raise InputError(f"--backend {backend!r}: use cpu, gpu or both")
    if calibrate and config is None:
        raise InputError("--calibrate needs --config brain.toml: the file the fitted constants are written to")
    check_json_path(json_path)
    from feagi_burst.models.assign import parse_model_specs

    given: dict[str, Any] = {}
    for kv in model_params:
        key, sep, value = kv.partition("=")
        try:
            given[key.strip()] = float(value) if sep else None
        except ValueError:
            given[key.strip()] = None
        if given[key.strip()] is None:
            raise InputError(f"--param {kv!r}: give KEY=NUMBER, e.g. --param input_gain=100")
    params = parse_model_specs([{"areas": ["synth"], "type": model, **given}], "bench")[0].params
    cfg = load_config(config).backend if config else BackendConfig()
    if calibrate:
        assert config is not None
        return bench_calibrate(config, backend, json_path)
    sizes = (neurons,)
    # the largest size is checked before anything is built: too big is one line, not a killed process
    check_fits(estimate_bytes(max(sizes), synapses_per_neuron),
               f"a synthetic brain of {max(sizes):,} neurons x {synapses_per_neuron} synapses",
               "use fewer --neurons or --synapses-per-neuron")
    has_gpu = any(not a.get("is_software") for a in probe_adapters()) or backend == "gpu"
    backends = ["cpu", "gpu"] if backend == "both" and has_gpu else (["cpu"] if backend == "both" else [backend])
    if backend == "both" and not has_gpu:
        warn("no hardware GPU adapter: benchmarking the CPU backend only")
    results = []
    for n in sizes:
        need = estimate_bytes(n, synapses_per_neuron)
        err.print(f"building a synthetic brain: {n:,} neurons x {synapses_per_neuron} synapses "
                  f"(~{need / 2**30:.1f} GiB at peak)", highlight=False)
        t0 = time.perf_counter()
        with err.status("building synapses"):
            brain = synthetic_brain(n, synapses_per_neuron, firing_rate, seed, model=model,
                                    plastic_fraction=plastic_fraction, **params)
        with err.status("quantising synapses"):
            tables = compile_tables(brain)
        build_s = time.perf_counter() - t0
        with err.status(f"running {warmup} + {bursts} bursts on {', '.join(backends)}"):
            r = bench(brain, build_s, backends, bursts, warmup, seed, cfg, blocking, tables)
        results.append(r)
        del brain, tables
        out.print(bench_table(r))
    if json_path is not None:
        write_json(json_path, results[0])


def bench_calibrate(config: Path, backend: str, json_path: Optional[Path]) -> None:
    """`bench --calibrate`: measure this machine (the first-use calibration, longer per point), write
    the fitted constants into the config's [backend] and this machine's calibration cache, and show
    each point measured against the model."""
    from feagi_burst import calibration
    from feagi_burst.backends import probe_adapters
    from feagi_burst.bench import calibrate as measure, update_backend_section

    adapters = probe_adapters()
    gpu = backend != "cpu" and any(not a.get("is_software") for a in adapters)
    if backend == "gpu" and not gpu:
        raise InputError("--calibrate --backend gpu: no hardware GPU adapter to measure (a software adapter "
                         "is never chosen automatically)")
    load_config(config)  # a broken config is refused before minutes of measuring
    with err.status("measuring the calibration brains on " + ("the CPU and the GPU" if gpu else "the CPU")):
        entry = measure(gpu)
    from feagi_burst.config import LEGACY_KEYS

    update_backend_section(config, entry["fitted"], remove=LEGACY_KEYS)
    key = calibration.machine_key(adapters)
    if entry["gpu_error"] is None and (gpu or not key["adapters"]):  # all of this machine: its cache entry too
        entry["machine"] = key
        path = calibration.cache_path()
        with calibration.cache_lock(path):
            calibration.store(path, key, {k: v for k, v in entry.items() if k != "fitted"},
                              f"{config} is calibrated all the same")
    from rich.table import Table

    measured_gpu = any("gpu_us" in r for r in entry["points"])
    t = Table(title=f"calibration: µs per burst measured / model ({entry['seconds']:.1f} s)", title_justify="left")
    for c in ("brain", "neurons", "synapses", "rate", "CPU") + (("GPU", "GPU device") if measured_gpu else ()):
        t.add_column(c, justify="left" if c == "brain" else "right", no_wrap=True)
    for r in entry["points"]:
        cells = [r["label"], f"{r['neurons']:,}", f"{r['synapses']:,}", f"{r['firing_rate']:.2%}"]
        pairs = (("cpu_us", "model_cpu_us"),) + ((("gpu_us", "model_gpu_us"), ("gpu_device_us", "model_gpu_device_us"))
                                                  if measured_gpu else ())
        for measured, model in pairs:
            cells.append(f"{r[measured]:,.1f} / {r[model]:,.1f}" if r.get(measured) is not None else "-")
        t.add_row(*cells)
    out.print(t)
    out.print(f"calibrated {config}: " + ", ".join(f"{k} = {v:.4g}" for k, v in entry["fitted"].items()),
              highlight=False)
    if entry["gpu_error"]:
        warn(f"the GPU failed to run the calibration brains ({entry['gpu_error']}): only the CPU constants were fitted")
    elif not gpu:
        warn("no GPU measured: only the CPU constants were fitted")
    if json_path is not None:
        write_json(json_path, entry)


def bench_table(r: dict[str, Any]) -> Any:
    """One size's bench result as a table: per backend, per phase mean/p50/p99."""
    from rich.table import Table

    from feagi_burst.bench import numpy_loop_line, plasticity_line

    t = Table(title=f"{r['neurons']:,} neurons, {r['synapses']:,} synapses, target rate {r['firing_rate']:.2%}, "
                    f"built in {r['build_s']:.1f} s, peak memory {r['peak_rss_mb']:,.0f} MB", title_justify="left")
    t.add_column("backend")
    t.add_column("phase")
    for c in ("mean µs", "p50 µs", "p99 µs"):
        t.add_column(c, justify="right")
    for name, b in r["backends"].items():
        for phase, s in b["phases"].items():
            t.add_row(name, phase.replace("_", " "), f"{s['mean_us']:,.1f}", f"{s['p50_us']:,.1f}", f"{s['p99_us']:,.1f}")
        t.add_row(name, f"[bold]per burst ({b['mode']})", f"[bold]{b['us_per_burst']:,.1f}", f"{b['p50_us']:,.1f}",
                  f"{b['p99_us']:,.1f}", end_section=True)
    lines = [f"{name}: {b['backend']}, {b['bursts_per_s']:,.0f} bursts/s, {b['events_per_s'] / 1e6:,.1f} M "
             f"synaptic events/s, measured firing rate {b['firing_rate']:.3%}"
             + (f"; phases and p50/p99 from GPU timestamps on {b['timed_bursts']:,} of {r['bursts']:,} bursts"
                if b["timed_bursts"] < r["bursts"] else "") for name, b in r["backends"].items()]
    if r.get("numpy_loop"):
        lines.append(numpy_loop_line(r))
    if r.get("plastic_synapses"):
        lines.append(plasticity_line(r))
    if r.get("speedup"):
        lines.append(f"speedup {r['speedup']:.1f}x (model predicted {r['predicted_speedup']:.1f}x)")
    else:
        lines.append(f"model: CPU {r['predicted_us']['cpu']:,.0f} µs, GPU {r['predicted_us']['gpu']:,.0f} µs per burst")
    t.caption = "\n".join(lines)
    return t


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


def fail(message: str, code: int) -> None:
    """The one error line (control characters escaped: it stays one line and cannot drive the terminal)."""
    print(f"feagi-burst: error: {printable(message)}", file=sys.stderr, flush=True)
    sys.exit(code)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)
    except InputError as e:
        fail(str(e), 2)
    except BackendError as e:  # a device failure with fallback off, or a brain the chosen backend cannot hold
        fail(str(e), 1)
    except Abort as e:
        if isinstance(e.__cause__, EOFError):  # click turns an EOFError from any reader into a silent abort
            fail(f"a file ended early ({e.__cause__ or 'EOFError'}): it is empty or truncated; check the inputs", 2)
        sys.exit(130)
    except TyperException as e:
        if type(e).__name__ == "NoArgsIsHelpError":
            print(e.format_message(), file=sys.stderr)
        else:
            fail(e.format_message(), e.exit_code)
        sys.exit(e.exit_code)
    # Safety nets: the readers and writers above turn these into precise InputErrors; one reaching
    # here still gets one line rather than a traceback.
    except MemoryError:
        fail("out of memory; the input is too large for this machine (use a smaller brain or record)", 2)
    except RecursionError:
        fail("an input is nested too deeply to process; check the genome, schedule or record", 2)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        fail(f"{where}{e.strerror or e}", 2)
    except ValueError as e:
        if "null byte" not in str(e):
            raise
        fail("a path contains a NUL byte; paths cannot hold one", 2)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
