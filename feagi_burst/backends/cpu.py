"""The CPU backend: SPEC.md section 2, compiled (numba kernels: cpu_kernels.py propagates into the
accumulator, cpu_lif.py steps FEAGI LIF).

Per burst it costs O(synaptic events + candidates) while the events are few against the brain
(candidates are listed as they are touched), and one pass over the neurons, split over the cores,
when they are many (then most neurons are candidates anyway). FEAGI LIF, when it is the brain's
only model, runs fused into that pass; other models (and brains mixing models) get their
candidates and inputs and step through `NeuronModel.step`, which for FEAGI LIF is compiled too.
Models that integrate every neuron (Izhikevich, AdEx) add the size of their populations.
"""
from __future__ import annotations

import os
import time

import numba
import numpy as np

from feagi_burst.backends import cpu_kernels as K
from feagi_burst.backends import cpu_lif as L
from feagi_burst.backends.base import Backend, BurstInput, BurstResult
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables
from feagi_burst.models.base import DTYPES, StepContext
from feagi_burst.models.feagi_lif import FeagiLIF
from feagi_burst.models.feagi_lif import excitability_draw  # noqa: F401 (re-exported: tests and tools use it here)
from feagi_burst.backends.cpu_plasticity import attach_cpu

# one pass over the neurons instead of a candidate list when events * DENSE_EVENTS >= neurons
DENSE_EVENTS = 4
# below this many neurons a burst stays on one thread (handing work to others costs more)
PARALLEL_FROM = 50_000
# threads that propagate into accumulators of their own (the step adds them up: each costs a pass)
MAX_ACCUMULATORS = 4
# a threaded dense burst lists its events by target part (scatter_events, step_parts) while the
# lists take at most this many bytes or 1/8 of the synapse table; more events take the accumulators
# of their own (propagate_dense, step_dense)
LIST_BYTES = 64 << 20
EMPTY_F32 = np.zeros(0, np.float32)
EMPTY_U32 = np.zeros(0, np.uint32)
EMPTY_I64 = np.zeros(0, np.int64)


_cpu_sample: list[tuple[float, float, bool]] = []  # (others' CPU seconds so far, monotonic time, verdict)


def _others_cpu_s() -> float:
    """CPU seconds the machine has spent since boot on everything but this process (/proc/stat's
    busy time, steal included, less this process's user and system time)."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:9]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # less idle and iowait
    t = os.times()
    return busy / os.sysconf("SC_CLK_TCK") - (t.user + t.system)


def machine_busy() -> bool:
    """Whether other work keeps the cores busy: more than half a core of CPU time taken by other
    processes since the last call (at least 0.1 s ago; a shorter gap repeats the last verdict).
    Where /proc/stat cannot say, or at the first call, the 1-minute load average (this process
    included) above cores - 0.5. The load average lags by a minute: a run started right after
    another would read its predecessor's load as other work."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        by_load = os.getloadavg()[0] > cores - 0.5
    except OSError:
        by_load = False
    try:
        others, now = _others_cpu_s(), time.monotonic()
    except (OSError, ValueError, IndexError):
        return by_load
    if not _cpu_sample:
        _cpu_sample.append((others, now, by_load))
        return by_load
    prev_others, prev_now, verdict = _cpu_sample[0]
    if now - prev_now < 0.1:
        return verdict
    verdict = (others - prev_others) / (now - prev_now) > 0.5
    _cpu_sample[0] = (others, now, verdict)
    return verdict


class ThreadChoice:
    """Whether a dense burst runs on all threads, decided by timing both, again and again.

    On an idle machine the threads nearly halve a large burst; on one whose cores are busy with
    other work, each fork-join waits for its slowest thread to be scheduled and can cost several
    times the burst. Results are the same bits either way, so the backend measures: it starts on
    one thread, tries the other mode for PROBE bursts after `period` bursts (and one before them,
    not counted: on 16 cores the first fork-join after a stretch on one thread took over 1.5x the
    burst, which ended every probe there and left a 100K brain on one thread at 2x its time),
    switches when the probe's median is faster, and waits twice as long before the next probe when it is not; a
    probe burst 1.5x slower than usual ends its probe there, and no probe of the threads starts
    while the load average says the cores are taken (one such burst can cost 50x the burst).
    """

    PROBE = 4
    FIRST, LAST = 16, 4096  # bursts between probes: after a switch, and at most

    def __init__(self) -> None:
        machine_busy()  # the first sample of the other processes' CPU time, for the first probe
        self.parallel = False
        self.period = self.FIRST
        self.until_probe = self.FIRST
        self.probe: list[float] = []
        self.woken = False  # the current probe's first burst has run
        self.recent: list[float] = []

    def next(self) -> bool:
        """The mode of the next dense burst."""
        if self.until_probe > 0:
            return self.parallel
        if not self.parallel and machine_busy():  # threads cannot win: skip the probe, as if lost
            self.period = min(2 * self.period, self.LAST)
            self.until_probe = self.period
            return False
        return not self.parallel

    def record(self, parallel: bool, seconds: float) -> None:
        if parallel == self.parallel:
            self.recent = (self.recent + [seconds])[-2 * self.PROBE:]
            self.until_probe -= 1
            return
        if not self.woken:  # the probe's first burst wakes the other mode (the thread pool): not counted
            self.woken = True
            return
        self.probe.append(seconds)
        usual = float(np.median(self.recent)) if self.recent else np.inf
        if len(self.probe) < self.PROBE and seconds < 1.5 * usual:
            return  # a probe burst far slower than usual ends the probe at once
        if len(self.probe) == self.PROBE and np.median(self.probe) < 0.9 * usual:
            self.parallel, self.period, self.recent = not self.parallel, self.FIRST, self.probe
        else:
            self.period = min(2 * self.period, self.LAST)
        self.probe, self.woken = [], False
        self.until_probe = self.period


class CPUBackend(Backend):
    """Compiled burst engine on the host's cores; results bit-identical to the GPU backend."""

    name = "CPU (numba)"
    host_resident = True

    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        self.brain, self.tables, self.seed = brain, tables, seed
        n = self.n = brain.neuron_count
        self.threads = max(1, numba.get_num_threads())
        # kernel inputs, contiguous and of fixed dtypes (each new combination would compile anew)
        self.offsets = np.ascontiguousarray(tables.offsets, np.int64)
        self.pairs = np.ascontiguousarray(tables.pairs, np.int64)
        self.pairs_f = self.pairs.view(np.float32)
        self.src_area = np.ascontiguousarray(brain.neurons.cortical_area, np.uint16
                                             if brain.neurons.cortical_area.dtype == np.uint16 else np.int64)
        self.driven_area = np.ascontiguousarray(tables.mp_driven_area, np.bool_)
        self.caps = np.ascontiguousarray(tables.mp_cap, np.float32)
        self.any_driven = bool(self.driven_area.any())
        self.scale = np.float32(tables.resolution)
        self.power = -1 if brain.power_neuron is None else int(brain.power_neuron)
        drive = brain.drive
        self.drive_order = (np.ascontiguousarray(drive.order, np.uint32) if drive is not None and drive.per_burst
                            else EMPTY_U32)
        self.drive_per_burst = int(drive.per_burst) if self.drive_order.size else 0
        # a neuron is driven once per burst, even when per_burst wraps around the order
        self.drive_count = min(self.drive_per_burst, self.drive_order.size)
        self.drive_pot = np.float32(drive.potential if drive is not None else 0.0)
        # per-burst scratch: the accumulators (the first, plus one per further propagating
        # thread), sensory sums, the candidate list and the fire set
        self.accs = np.full((min(self.threads, MAX_ACCUMULATORS), n), K.UNTOUCHED, np.int32)
        self.acc = self.accs[0]
        self.sens = np.zeros(n, np.float32)
        self.cand = np.zeros(n, np.int32)  # ids < 2**31
        self.out_ids = np.zeros(n, np.uint32)
        self.out_mp = np.zeros(n, np.float32)
        self.dense_from = max(1, -(-n // DENSE_EVENTS))
        # large brains: all threads or one, whichever measures faster (ThreadChoice); tests may
        # set `parallel` and `choice = None` to pin one
        self.parallel = self.threads > 1 and n >= PARALLEL_FROM
        self.choice = ThreadChoice() if self.parallel else None
        # threaded dense bursts: each thread's events listed by target part, one part per thread
        # (cpu_kernels.scatter_events); lists allocated at the first such burst, grown as needed
        self.part_mul = K.part_mul(n, self.threads)
        self.part_bounds = K.part_bounds(n, self.part_mul, self.threads)
        self.max_row = int(np.diff(self.offsets).max()) if n else 0
        self.list_bytes = max(LIST_BYTES, self.pairs.nbytes // 8)
        self.lists = np.zeros((self.threads, self.threads, 0), np.int64)
        self.list_counts = np.zeros((self.threads, self.threads), np.int64)
        self.pop_of_area = brain.population_of_area()
        self.pop_ids = [p.ids() for p in brain.populations]
        self.fused = len(brain.populations) == 1 and type(brain.populations[0].model) is FeagiLIF
        self.fired = EMPTY_U32
        self.fired_mp = EMPTY_F32
        self.results: list[BurstResult] = []
        self._set(brain.initial_state())
        # STDP (feagi_burst.plasticity): its own copy of the table words, updated each burst
        self.plastic = attach_cpu(self, brain, tables)
        self._warm()

    def pin_threads(self, parallel: bool) -> None:
        """Run dense bursts on every thread (where the brain is large enough to) or on one from now
        on, without ThreadChoice's probes: the calibration times each mode, as a long run settles
        on the faster."""
        self.parallel = parallel and self.choice is not None
        self.choice = None

    def _warm(self) -> None:
        """Load (or, the first time on a machine, compile) the kernels this brain uses, with no
        work to do, so that the first burst does not wait for them."""
        none = (EMPTY_U32, EMPTY_F32, self.offsets, self.pairs, self.pairs_f, self.src_area, self.driven_area,
                self.caps, self.any_driven)
        K.propagate_sparse(*none, EMPTY_U32, EMPTY_F32, -1, self.drive_order, 0, 0, self.drive_pot, self.acc,
                           self.sens, self.cand, 0)
        K.merge_forced(EMPTY_U32, EMPTY_F32, EMPTY_U32, EMPTY_F32, np.empty(0, np.bool_), EMPTY_U32, EMPTY_F32,
                       EMPTY_U32, 0)
        if not self.fused:
            K.gather_inputs(self.cand, 0, self.acc, self.sens, self.scale, EMPTY_F32)
            return
        mix = L.draw_mix(1, self.seed)
        L.step_sparse(self.cand, 0, self.accs, self.sens, self.scale, 1, mix, *self.lif, EMPTY_I64, self.out_ids,
                      self.out_mp)
        K.propagate_dense_serial(*none, self.acc)
        L.step_dense_serial(self.n, self.accs[:1], self.sens, self.scale, 1, mix, *self.lif, EMPTY_I64, self.out_ids,
                            self.out_mp)
        if self.choice is not None:
            K.propagate_dense(*none, self.accs, self.accs.shape[0])
            L.step_dense(self.n, self.threads, self.accs, self.sens, self.scale, 1, mix, *self.lif, EMPTY_I64,
                         self.out_ids, self.out_mp)
            K.scatter_events(*none, self.part_mul, self.lists, self.list_counts)
            L.step_parts(self.lists, self.list_counts, self.part_bounds, self.accs[:1], self.sens, self.scale, 1,
                         mix, *self.lif, EMPTY_I64, self.out_ids, self.out_mp)

    def _set(self, st: NeuronState) -> None:
        """Take `st` as the state, and hand each model its own arrays of it (by name, no copies)."""
        for key, _pop, var in self.brain.state_vars():
            arr = st.values[key]
            if arr.dtype != DTYPES[var.dtype] or not arr.flags.c_contiguous or not arr.flags.writeable:
                st.values[key] = np.array(arr, DTYPES[var.dtype], order="C")  # the kernels' one signature
        self.st = st
        self.pops = [(pop, table, {v.name: st.values[key] for key, p2, v in self.brain.state_vars() if p2 is pop})
                     for pop, table in zip(self.brain.populations, self.brain.param_tables())]
        if self.fused:
            _, table, state = self.pops[0]
            thr, tlim, leak, exc, refr, cfcl, snz, accum, area, may_block, any_cfc, any_limit = \
                FeagiLIF.kernel_args(table)
            self.lif = (thr, tlim, leak, exc, refr, cfcl, snz, accum, area,
                        state["mp"], state["cfc_count"], state["blocked_until"], may_block, any_cfc, any_limit)

    def submit(self, inp: BurstInput) -> None:
        self.results.append(self._burst(inp))

    def collect(self, wait: bool = True) -> list[BurstResult]:
        out, self.results = self.results, []
        return out

    def state(self) -> NeuronState:
        st = self.st.copy()
        st.plastic = self.plastic.state() if self.plastic else None
        return st

    def plastic_state(self) -> object | None:
        return self.plastic.state() if self.plastic else None

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        self._set(state.copy())
        if self.plastic:
            self.plastic.attach(self, state.plastic, state.burst)
        self.fired = np.ascontiguousarray(last_fired, np.uint32)
        self.fired_mp = np.ascontiguousarray(last_mp, np.float32)

    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.fired, self.fired_mp

    # -- one burst -------------------------------------------------------------------------
    def _burst(self, inp: BurstInput) -> BurstResult:
        b = inp.burst
        t0 = time.perf_counter()
        # input: sensory potentials, staged in SPEC order (external, power, drive) with the events
        if inp.potential_ids.size:
            ext_ids = np.ascontiguousarray(inp.potential_ids, np.uint32)
            ext_val = np.ascontiguousarray(inp.potential, np.float32)
        else:
            ext_ids, ext_val = EMPTY_U32, EMPTY_F32
        drive_start = ((b - 1) * self.drive_per_burst) % self.drive_order.size if self.drive_count else 0
        if inp.forced_ids.size:
            forced = np.sort(inp.forced_ids.astype(np.int64))
        else:
            forced = EMPTY_I64
        t1 = time.perf_counter()

        # synaptic propagation: every synapse of last burst's fire set, as fixed-point integers
        fired, fired_mp = self.fired, self.fired_mp
        nc = K.propagate_sparse(fired, fired_mp, self.offsets, self.pairs, self.pairs_f, self.src_area,
                                self.driven_area, self.caps, self.any_driven, ext_ids, ext_val, self.power,
                                self.drive_order, drive_start, self.drive_count, self.drive_pot, self.acc, self.sens,
                                self.cand, self.dense_from if self.fused else 0)
        listed = False
        if nc < 0:
            if self.choice is not None:
                self.parallel = self.choice.next()
            args = (fired, fired_mp, self.offsets, self.pairs, self.pairs_f, self.src_area, self.driven_area,
                    self.caps, self.any_driven)
            listed = self.parallel and self.fused and self._lists_for(-1 - nc)
            if listed:
                K.scatter_events(*args, self.part_mul, self.lists, self.list_counts)
            elif self.parallel:
                K.propagate_dense(*args, self.accs, self.accs.shape[0])
            else:
                K.propagate_dense_serial(*args, self.acc)
        t2 = time.perf_counter()

        mix = L.draw_mix(b, self.seed)
        if not self.fused:
            inp_val = np.empty(nc, np.float32)
            K.gather_inputs(self.cand, nc, self.acc, self.sens, self.scale, inp_val)
            fired_self, fired_self_mp = self._dynamics(self.cand[:nc].astype(np.int64), inp_val, b, forced)
            candidates = nc
        else:
            if nc >= 0:
                nf = L.step_sparse(self.cand, nc, self.accs, self.sens, self.scale, b, mix, *self.lif, forced,
                                   self.out_ids, self.out_mp)
                candidates = nc
            elif listed:  # the lists' accumulator writes count as neural dynamics here
                nf, candidates = L.step_parts(self.lists, self.list_counts, self.part_bounds, self.accs[:1],
                                              self.sens, self.scale, b, mix, *self.lif, forced, self.out_ids,
                                              self.out_mp)
            elif self.parallel:
                nf, candidates = L.step_dense(self.n, self.threads, self.accs, self.sens, self.scale, b, mix,
                                              *self.lif, forced, self.out_ids, self.out_mp)
            else:
                nf, candidates = L.step_dense_serial(self.n, self.accs[:1], self.sens, self.scale, b, mix,
                                                     *self.lif, forced, self.out_ids, self.out_mp)
            fired_self, fired_self_mp = self.out_ids[:nf].copy(), self.out_mp[:nf].copy()
        t3 = time.perf_counter()
        if nc < 0 and self.choice is not None:
            self.choice.record(self.parallel, t3 - t1)

        fired, fired_mp = self._forced(inp, fired_self, fired_self_mp, b)
        self.fired, self.fired_mp = fired, fired_mp
        self.st.burst = b
        t4 = time.perf_counter()
        if self.plastic:
            self.plastic.step(b, fired)
        t5 = time.perf_counter()
        return BurstResult(b, fired, fired_mp, {"input": t1 - t0, "synaptic_propagation": t2 - t1,
                                                "neural_dynamics": t3 - t2, "output": t4 - t3,
                                                "plasticity": t5 - t4},
                           candidates=int(candidates))

    def _lists_for(self, events: int) -> bool:
        """Whether scatter_events can list `events` events (growing the lists if they may), or the
        burst takes propagate_dense's accumulators instead. A thread's run holds at most its share
        plus one row, and all of it may target one part."""
        nt = self.threads
        need = events // nt + self.max_row + 1
        if self.lists.shape[2] >= need:
            return True
        cap = need + need // 4
        if nt * nt * cap * 8 > self.list_bytes:
            return False
        self.lists = np.empty((nt, nt, cap), np.int64)
        return True

    def _dynamics(self, cand: np.ndarray, inp_val: np.ndarray, b: int,
                  forced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each population's model steps its neurons; returns the self-fired ids (sorted) and their mp.

        A candidates-only model (FEAGI LIF) gets its candidates; a model that integrates every
        neuron gets its whole population, with zero input where a neuron is not a candidate.
        """
        brain = self.brain
        ids_out: list[np.ndarray] = []
        mp_out: list[np.ndarray] = []
        single = len(self.pops) == 1
        cand_pop = None if single else self.pop_of_area[brain.neurons.cortical_area[cand]]
        for k, (pop, table, state) in enumerate(self.pops):
            model = pop.model
            if model.integrates_all:
                ids = self.pop_ids[k]
                dense = np.zeros(self.n, np.float32)
                mine = slice(None) if single else cand_pop == k
                dense[cand[mine]] = inp_val[mine]
                inp = dense[ids]
            elif single:
                ids, inp = cand, inp_val
            else:
                mine = cand_pop == k
                ids, inp = cand[mine], inp_val[mine]
            if not ids.size:
                continue
            area = brain.neurons.cortical_area[ids] if table.needs_area else None
            pos, mp = model.step(StepContext(ids, inp, b, self.seed, table, state, forced, area))
            ids_out.append(ids[pos])
            mp_out.append(mp)
        if not ids_out:
            return EMPTY_U32, EMPTY_F32
        fired_ids = np.concatenate(ids_out) if len(ids_out) > 1 else ids_out[0]
        fired_mp = np.concatenate(mp_out) if len(mp_out) > 1 else mp_out[0]
        if not (single and self.pops[0][0].model.integrates_all):
            order = np.argsort(fired_ids, kind="stable")
            fired_ids, fired_mp = fired_ids[order], fired_mp[order]
        return fired_ids.astype(np.uint32), fired_mp.astype(np.float32)

    def _forced(self, inp: BurstInput, fired: np.ndarray, fired_mp: np.ndarray,
                b: int) -> tuple[np.ndarray, np.ndarray]:
        """Add forced fires to the fire set (rule measured on FEAGI: docs/feagi-findings.md).

        A forced neuron that fired by itself keeps its own entry. One that did not is added with
        the stimulation's potential as its firing mp; what that does to its own state is its
        model's `forced` rule.
        """
        m = inp.forced_ids.size
        if not m:
            return fired, fired_mp
        extra = np.empty(m, np.bool_)
        ids, mps = np.empty(fired.size + m, np.uint32), np.empty(fired.size + m, np.float32)
        # fused FEAGI LIF: its forced rule inside the merge (lif[11] blocked_until, lif[12] may_block)
        bu = self.lif[11] if self.fused and self.lif[12] else EMPTY_U32
        c = K.merge_forced(fired, fired_mp, np.ascontiguousarray(inp.forced_ids, np.uint32),
                           np.ascontiguousarray(inp.forced_mp, np.float32), extra, ids, mps, bu, b)
        fired, fired_mp = ids[:c], mps[:c]
        if self.fused:
            return fired, fired_mp
        fo = inp.forced_ids[extra].astype(np.int64)
        if len(self.pops) == 1:
            pop, table, state = self.pops[0]
            pop.model.forced(fo, b, table, state)
        else:
            which = self.pop_of_area[self.brain.neurons.cortical_area[fo]]
            for k, (pop, table, state) in enumerate(self.pops):
                pop.model.forced(fo[which == k], b, table, state)
        return fired, fired_mp
