"""`feagi-burst run`: a brain for some bursts, with records, a raster, checkpoints and a clean stop on
Ctrl-C/SIGTERM (StopFlag, which `population` shares)."""
from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Optional

import typer

from feagi_burst.cli.options import check_json_path, resolve_config
from feagi_burst.cli.program import app, err
from feagi_burst.engine import Engine, notice
from feagi_burst.errors import InputError
from feagi_burst.files import WriteError, open_input, printable, warn, write_json
from feagi_burst.models.assign import model_summary
from feagi_burst.report import LiveReport


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


def selection_line(engine: Engine, requested: str) -> str:
    """The run's first line: the backend, and why (auto's reason or the --backend given)."""
    if engine.selection is not None:
        return f"backend: {engine.backend_name()} (auto: {engine.selection.reason})"
    return f"backend: {engine.backend_name()} (--backend {requested})"


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
