"""The engine loop: a brain, a backend, stimulation in; burst results out, in order.

The engine never asks which backend runs. If a backend fails mid-run (a GPU lost, out of memory,
a validation error), the engine says so once and continues on the CPU from the last synced state,
replaying the bursts since then, so the results are identical.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.backends import create_backend, make_backend
from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.config import BackendConfig, Config, load_config
from feagi_burst.errors import InputError
from feagi_burst.fixed_point import SynapseTables, compile_tables
from feagi_burst.stimulus import StimulusPlan, read_schedule, resolve

F32_MAX = float(np.finfo(np.float32).max)  # staged potentials are float32 on every backend
MAX_BURST = 2**32 - 1  # burst numbers are u32 in the backends' state (refractory blocks, the GPU's counter)
SYNC_EVERY = 1024  # bursts between host copies of an accelerator's state (what a fault rolls back to)
# ... and at least this many times the last copy's own time between two copies: a brain whose
# state is large (a 1M brain's plastic weights: ~100 MB, a few hundred ms) keeps the stalls to
# about 5% of the run, at the price of a longer replay after a fault
SYNC_COST_RATIO = 20


def notice(message: str) -> None:
    """Tell the user something they must know (a fallback, an ignored feature) on stderr, in the
    one warning format (`feagi-burst: warning: ...`, feagi_burst.files.warn)."""
    from feagi_burst.files import warn

    warn(message)


def load_brain(genome: str | Path, honour_snooze_i: bool = False, warn: Callable[[str], None] | None = notice) -> Brain:
    """Load and expand a FEAGI genome file, reporting each warning once."""
    from feagi_burst.genome import expand_genome, load_genome

    brain = expand_genome(load_genome(genome), honour_snooze_i=honour_snooze_i)
    if warn:
        for w in brain.warnings:
            warn(w)
    return brain


def brain_from_config(cfg: Config, warn: Callable[[str], None] | None = notice) -> Brain:
    """The brain a config describes: its genome expanded, or its synthetic brain built, with its
    [[model]] tables applied."""
    from feagi_burst.models.assign import apply_model_specs

    if cfg.synthetic is not None:
        from feagi_burst.synthetic import synthetic_brain

        s = cfg.synthetic
        brain = synthetic_brain(s.neurons, s.synapses_per_neuron, s.firing_rate, s.seed,
                                model=s.model, **cfg.synthetic_params)
    elif cfg.genome is not None:
        brain = load_brain(cfg.genome, cfg.honour_snooze_i, warn)
    else:
        raise InputError(f"{cfg.path or 'config'}: no brain given; set [genome] path or [genome.synthetic]")
    return apply_model_specs(brain, cfg.models)


class Engine:
    """Runs bursts of one brain on one backend (chosen automatically unless named)."""

    def __init__(self, brain: Brain, backend: str | Backend = "auto", seed: int = 0,
                 backend_config: BackendConfig | None = None, fallback: bool = True,
                 warn: Callable[[str], None] | None = notice, tables: SynapseTables | None = None) -> None:
        self.brain = brain
        self.seed = seed
        self.fallback = fallback
        self.warn = warn or (lambda _m: None)
        self.tables: SynapseTables = tables if tables is not None else compile_tables(brain)
        self.selection = None
        if isinstance(backend, Backend):
            self.backend = backend
        else:
            self.backend, self.selection = make_backend(backend, brain, backend_config or BackendConfig())
        try:
            self.backend.load(brain, self.tables, seed)
        except BackendError as e:
            if self.selection is None or not fallback:
                raise  # the user asked for this backend: say why it cannot run, do not swap it
            self.warn(f"{self.backend.backend_name()} cannot hold this brain ({e}); running on the CPU")
            self.backend.close()
            self.backend = create_backend("cpu")
            self.backend.load(brain, self.tables, seed)
        self.plan = StimulusPlan()
        self.submitted = 0  # last burst submitted
        self.delivered = 0  # last burst whose result was handed out
        self._since_sync: list[BurstInput] = []
        self._sync = (brain.initial_state(), np.zeros(0, np.uint32), np.zeros(0, np.float32))
        self._sync_due = 0.0  # perf_counter time before which no sync is taken (SYNC_COST_RATIO)

    # -- construction ----------------------------------------------------------------------
    @classmethod
    def from_genome(cls, path: str | Path, honour_snooze_i: bool = False, **kw: Any) -> Engine:
        """An engine for a FEAGI genome file."""
        return cls(load_brain(path, honour_snooze_i, kw.get("warn", notice)), **kw)

    @classmethod
    def synthetic(cls, neurons: int, synapses_per_neuron: int = 100, firing_rate: float = 0.01,
                  brain_seed: int = 0, **kw: Any) -> Engine:
        """An engine for a synthetic benchmark brain (see feagi_burst.synthetic)."""
        from feagi_burst.synthetic import synthetic_brain

        return cls(synthetic_brain(neurons, synapses_per_neuron, firing_rate, brain_seed), **kw)

    @classmethod
    def from_config(cls, config: str | Path | Config, backend: str | None = None, **kw: Any) -> Engine:
        """An engine as brain.toml describes it, its stimulus schedule staged."""
        cfg = config if isinstance(config, Config) else load_config(config)
        kw.setdefault("seed", cfg.seed)
        kw.setdefault("backend_config", cfg.backend)
        engine = cls(brain_from_config(cfg, kw.get("warn", notice)), backend=backend or "auto", **kw)
        if cfg.stimulus is not None:
            engine.add_schedule(cfg.stimulus)
        return engine

    # -- stimulation ----------------------------------------------------------------------
    def add_schedule(self, schedule: str | Path | list[dict[str, Any]]) -> None:
        """Stage a stimulus schedule (a TOML/JSON file or its list of entries)."""
        where = str(schedule) if isinstance(schedule, (str, Path)) else "stimulus"
        entries = read_schedule(schedule) if isinstance(schedule, (str, Path)) else schedule
        resolved = resolve(entries, self.brain, where)
        for s in resolved:  # all checked before any is staged: a refused schedule stages nothing
            if s.bursts.size and int(s.bursts.min()) <= self.submitted:
                raise InputError(f"{where}: burst {int(s.bursts.min())} has already run (now at burst "
                                 f"{self.submitted}); add the schedule before running, or stage later bursts")
        self.plan.add_schedule(resolved)

    # Every stimulation call validates all its arguments before staging anything: a bad value is an
    # InputError at the call that made it, never a failure at a later burst that would also lose
    # the other input staged for that burst.
    def stimulate(self, area: str, voxels: Iterable[Iterable[int]], mode: str = "fire",
                  potential: float = 100.0, burst: int | None = None) -> None:
        """Stimulate voxels of an area at `burst` (default: the next burst)."""
        self._check_open()
        b = self._check_burst(burst)
        try:
            vox = [list(v) for v in voxels]
        except TypeError:
            raise InputError(f"stimulate: voxels must be a list of [x, y, z] triples, got {voxels!r:.80}") from None
        self.add_schedule([{"area": area, "voxels": vox, "bursts": [b], "mode": mode, "potential": potential}])

    def stage_potential(self, neuron_ids: Any, potentials: Any, burst: int | None = None) -> None:
        """Add potential to neurons at `burst` (default: the next burst)."""
        self._check_open()
        ids = self._check_ids(neuron_ids)
        b = self._check_burst(burst)
        try:
            values = np.asarray(potentials)
            if values.dtype.kind not in "iuf" or values.dtype == np.bool_:
                raise TypeError
            values = np.broadcast_to(values.astype(np.float64), ids.shape)
        except (TypeError, ValueError):
            raise InputError(f"stage_potential: potentials must be numbers, one or one per neuron id "
                             f"({ids.size}), got {potentials!r:.80}") from None
        bad = ~np.isfinite(values) | (np.abs(values) > F32_MAX)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"stage_potential: potential {values[i]} for neuron {int(ids[i])} is not a finite "
                             f"float32 (within +-{F32_MAX:.3g})")
        self.plan.add(b, "potential", ids, values)

    def force_fire(self, neuron_ids: Any, potential: float = 100.0, burst: int | None = None) -> None:
        """Force neurons into the fire set of `burst` (default: the next burst)."""
        self._check_open()
        ids = self._check_ids(neuron_ids)
        b = self._check_burst(burst)
        if (isinstance(potential, (bool, np.bool_)) or not isinstance(potential, (int, float, np.integer, np.floating))
                or not math.isfinite(potential) or abs(potential) > F32_MAX):
            raise InputError(f"force_fire: potential must be a finite number within +-{F32_MAX:.3g}, "
                             f"got {potential!r:.40}")
        self.plan.add(b, "fire", ids, float(potential))

    def _check_ids(self, neuron_ids: Any) -> np.ndarray:
        """Neuron ids as int64, refusing non-integers (1.7, '3', NaN) and ids outside the brain."""
        try:
            raw = np.atleast_1d(np.asarray(neuron_ids)).reshape(-1)
        except (TypeError, ValueError):
            raw = np.zeros(1, object)
        if raw.size == 0:
            return np.zeros(0, np.int64)
        if raw.dtype.kind not in "iu":
            raise InputError(f"neuron ids must be integers, got {neuron_ids!r:.80} ({raw.dtype})")
        n = self.brain.neuron_count
        if int(raw.min()) < 0 or int(raw.max()) >= n:
            bad = int(raw.min()) if int(raw.min()) < 0 else int(raw.max())
            raise InputError(f"neuron id {bad} is out of range 0..{n - 1}")
        return raw.astype(np.int64)

    def _check_burst(self, burst: Any) -> int:
        """The burst to stage for: the next one by default; an integer after the last one submitted."""
        if burst is None:
            return self.submitted + 1
        if isinstance(burst, (bool, np.bool_)) or not isinstance(burst, (int, np.integer)):
            raise InputError(f"burst must be a whole number, got {burst!r:.40}")
        if burst < 1:
            raise InputError(f"burst {burst}: bursts are numbered from 1")
        if burst <= self.submitted:
            raise InputError(f"burst {burst} has already run (now at burst {self.submitted}); "
                             f"stage for burst {self.submitted + 1} or later")
        if burst > MAX_BURST:
            raise InputError(f"burst {burst} is beyond the last burst number {MAX_BURST:,}")
        return int(burst)

    def _check_open(self) -> None:
        if getattr(self, "_closed", False):
            raise InputError("this engine is closed; create a new Engine to run more bursts")

    # -- running ---------------------------------------------------------------------------
    def process_burst(self) -> BurstResult:
        """Run the next burst and return its result (blocking: for closed-loop use)."""
        self._check_open()
        inp = self._next_input()
        return self._deliver(self._guarded(lambda: [self.backend.process_burst(inp)]))[-1]

    def run(self, bursts: int, on_result: Callable[[BurstResult], None] | None = None,
            stop: Callable[[], bool] | None = None) -> int:
        """Run `bursts` bursts (0: until `stop()` is true), pipelined; returns the bursts run.

        `on_result` receives every BurstResult in burst order, as soon as it is ready.
        """
        self._check_open()
        if not isinstance(bursts, (int, np.integer)) or isinstance(bursts, bool) or bursts < 0:
            raise InputError(f"run: bursts must be a whole number of bursts, 0 or more, got {bursts!r:.40}")
        if bursts == 0 and stop is None:
            raise InputError("run(0) runs until stop() is true, and no stop was given: "
                             "give stop=callable, or a number of bursts")
        target = self.submitted + bursts if bursts else None
        start = self.submitted
        while target is None or self.submitted < target:
            if stop is not None and stop():
                break
            inp = self._next_input()
            done = self._guarded(lambda: (self.backend.submit(inp), self.backend.collect(wait=False))[1])
            for r in self._deliver(done):
                if on_result:
                    on_result(r)
        for r in self._deliver(self._guarded(lambda: self.backend.collect(wait=True))):
            if on_result:
                on_result(r)
        return self.submitted - start

    def _next_input(self) -> BurstInput:
        self.submitted += 1
        inp = self.plan.pop(self.submitted)
        if not self.backend.host_resident:  # a host backend never falls back: keeping inputs would leak
            self._since_sync.append(inp)
        return inp

    def _deliver(self, results: list[BurstResult]) -> list[BurstResult]:
        """Results not handed out yet, in order; takes a sync point when one is due."""
        fresh = [r for r in results if r.burst > self.delivered]
        if (not self.backend.host_resident and self.submitted - self._sync[0].burst >= SYNC_EVERY
                and time.perf_counter() >= self._sync_due):
            # one short stall every SYNC_EVERY bursts (or longer) bounds what a fault has to replay
            replayed = self._guarded(self._take_sync)
            if replayed:  # the sync itself hit a fault: the CPU replayed up to `submitted`
                fresh += [r for r in replayed if r.burst > max([self.delivered] + [f.burst for f in fresh])]
        if fresh:
            self.delivered = fresh[-1].burst
        return fresh

    def _take_sync(self) -> list[BurstResult]:
        t0 = time.perf_counter()
        st = self.backend.state()
        fired, mp = self.backend.last_fire_set()
        self._sync = (st, fired.copy(), mp.copy())
        now = time.perf_counter()
        self._sync_due = now + SYNC_COST_RATIO * (now - t0)
        self._since_sync = [i for i in self._since_sync if i.burst > st.burst]
        return []

    def _guarded(self, step: Callable[[], list[BurstResult]]) -> list[BurstResult]:
        """Run a backend step (it returns finished bursts); on a backend fault, move to the CPU and
        return what the replay since the last sync produced."""
        try:
            return step()
        except BackendError as e:
            if not self.fallback or self.backend.host_resident:
                raise
            state, fired, mp = self._sync
            self.warn(f"{self.backend.backend_name()} failed at burst {self.submitted}: {e}; "
                      f"continuing on the CPU from burst {state.burst} with identical results")
            try:
                self.backend.close()
            except Exception:  # the device is already gone; nothing more to release
                pass
            cpu = create_backend("cpu")
            cpu.load(self.brain, self.tables, self.seed)
            cpu.set_state(state, fired, mp)
            self.backend = cpu
            replay = [i for i in self._since_sync if i.burst > state.burst]
            for inp in replay:
                cpu.submit(inp)
            return cpu.collect()

    # -- checkpoints ------------------------------------------------------------------------
    def checkpoint(self, path: str | Path, settings: dict[str, Any] | None = None) -> None:
        """Save the run's full dynamic state to `path` atomically (see feagi_burst.checkpoint).

        `settings` are the run settings a resume must match (`checkpoint.run_settings`); by default
        the seed alone. Call it between `run` calls (every submitted burst delivered), so the
        checkpoint and the results handed out agree.
        """
        from feagi_burst.checkpoint import run_settings, save_checkpoint, settings_fingerprint

        if self.delivered != self.submitted:
            raise RuntimeError(f"checkpoint at burst {self.submitted} while burst {self.delivered + 1} onward "
                               "are not delivered; checkpoint between run() calls")
        settings = settings if settings is not None else run_settings(self.seed)
        state = self.backend.state()
        fired, mp = self.backend.last_fire_set()
        meta = {"seed": self.seed, "genome_fingerprint": self.brain.fingerprint, "brain": self.brain.name,
                "neurons": self.brain.neuron_count, "synapses": self.brain.synapse_count,
                "backend": self.backend_name(), "config": settings,
                "config_fingerprint": settings_fingerprint(settings)}
        plastic = None
        if state.plastic is not None:
            from feagi_burst.plasticity import plastic_layout, state_arrays

            plastic = state_arrays(plastic_layout(self.brain, self.tables), state.plastic)
        save_checkpoint(path, meta, state, fired, mp, self.plan, plastic)

    def restore(self, path: str | Path, settings: dict[str, Any] | None = None) -> int:
        """Continue from the checkpoint at `path`; returns its burst (the next one run is burst + 1).

        Refuses (InputError) a checkpoint of another genome, or, when `settings` is given, of other
        run settings. The checkpoint's staged input replaces anything staged so far.
        """
        from feagi_burst.checkpoint import check_compatible, load_checkpoint

        from feagi_burst.plasticity import expected_arrays, plastic_layout, state_from_arrays

        layout = plastic_layout(self.brain, self.tables)
        ck = load_checkpoint(path, {k: v.dtype for k, v in self._sync[0].values.items()},
                             self.brain.neuron_count, expected_arrays(layout) if layout is not None else None)
        check_compatible(ck, path, self.brain.fingerprint, self.brain.neuron_count, settings)
        if layout is not None:
            missing = sorted(set(expected_arrays(layout)) - set(ck.plastic or {}))
            if missing:
                raise InputError(f"checkpoint {path} holds no learned weights ({missing[0]} is missing) but this brain "
                                 "has plastic pairs; it was made by an older version: start the run again without "
                                 "--resume")
            try:
                ck.state.plastic = state_from_arrays(layout, ck.plastic or {}, ck.meta.get("plastic") or {})
            except (ValueError, KeyError, TypeError) as e:
                raise InputError(f"checkpoint {path}: its learned weights do not fit this brain ({e})") from None
        if settings is None and int(ck.meta.get("seed", self.seed)) != self.seed:
            raise InputError(f"checkpoint {path} was made with seed {ck.meta.get('seed')}, this engine has "
                             f"seed {self.seed}; resume with the same seed")
        self.backend.set_state(ck.state, ck.last_fired, ck.last_mp)
        self.submitted = self.delivered = ck.burst
        self.plan = ck.plan
        # the restored state is also the point a backend fault rolls back to
        self._sync = (ck.state.copy(), ck.last_fired.copy(), ck.last_mp.copy())
        self._since_sync = []
        return ck.burst

    # -- inspection ------------------------------------------------------------------------
    def backend_name(self) -> str:
        """The backend that runs the bursts, e.g. 'CPU (numba)' or 'WGPU (Vulkan): NVIDIA H100'."""
        return self.backend.backend_name()

    def state(self) -> NeuronState:
        """The neurons' current dynamic state (mp, consecutive-fire counts, refractory blocks)."""
        return self.backend.state()

    def synapses(self, src: str, dst: str) -> Any:
        """The synapses from area `src` to area `dst` (cortical ids or names) with their current
        weights: a feagi_burst.plasticity.Synapses (source/target ids and xyz, weight, inhibitory)."""
        from feagi_burst.plasticity import pair_synapses

        self._check_open()
        try:
            return pair_synapses(self.brain, self.tables, self.backend.plastic_state(), src, dst)
        except KeyError as e:
            raise InputError(str(e.args[0]) if e.args else str(e)) from None

    def weights(self) -> dict[str, np.ndarray]:
        """The weights of every plastic pair, {"src>dst": f32 array in table order} ({} without STDP)."""
        from feagi_burst.plasticity import pair_weights, plastic_layout

        self._check_open()
        layout = plastic_layout(self.brain, self.tables)
        state = self.backend.plastic_state()
        return {} if layout is None or state is None else pair_weights(layout, state)

    @property
    def resolution(self) -> float:
        """The fixed-point resolution of the synaptic sums now (STDP lowers it as weights grow)."""
        st = self.backend.plastic_state() if not getattr(self, "_closed", False) else None
        return st.resolution if st is not None else self.tables.resolution

    def describe(self, neuron_ids: Any) -> list[tuple[str, int, int, int]]:
        """(cortical id, x, y, z) of each neuron id."""
        return self.brain.describe(self._check_ids(neuron_ids))

    def close(self) -> None:
        """Release the backend's resources (once; the engine refuses to run afterwards)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self.backend.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
