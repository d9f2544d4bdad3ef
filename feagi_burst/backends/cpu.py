"""The CPU backend: SPEC.md section 2 in vectorised numpy; each neuron model's `step` does step 3.

Per burst it costs O(synaptic events + candidates) for FEAGI LIF populations, plus the size of
the populations whose model integrates every neuron (Izhikevich, AdEx).
"""
from __future__ import annotations

import time

import numpy as np

from feagi_burst.backends.base import Backend, BurstInput, BurstResult
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables, quantise_mp_driven
from feagi_burst.models.base import StepContext
from feagi_burst.models.feagi_lif import excitability_draw  # noqa: F401 (re-exported: tests and tools use it here)

def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    jump = starts.astype(np.int64) - (ends - counts)  # per range: index - position
    return np.repeat(jump, counts) + np.arange(total, dtype=np.int64)


class CPUBackend(Backend):
    """Numpy burst engine. Per burst it costs O(synaptic events + candidates), never O(neurons)."""

    name = "CPU (numpy)"
    host_resident = True

    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        self.brain, self.tables, self.seed = brain, tables, seed
        n = self.n = brain.neuron_count
        self.slot = np.zeros(n, np.int32)  # scratch for de-duplicating candidates
        self.fired = np.zeros(0, np.uint32)
        self.fired_mp = np.zeros(0, np.float32)
        self.results: list[BurstResult] = []
        self.scale_inv = np.float32(tables.resolution)
        self.driven_area = tables.mp_driven_area
        self.any_driven = bool(tables.mp_driven_area.any())
        self.pop_of_area = brain.population_of_area()
        self.pop_ids = [p.ids() for p in brain.populations]
        self._set(brain.initial_state())

    def _set(self, st: NeuronState) -> None:
        """Take `st` as the state, and hand each model its own arrays of it (by name, no copies)."""
        self.st = st
        self.pops = [(pop, table, {v.name: st.values[key] for key, p2, v in self.brain.state_vars() if p2 is pop})
                     for pop, table in zip(self.brain.populations, self.brain.param_tables())]

    def submit(self, inp: BurstInput) -> None:
        self.results.append(self._burst(inp))

    def collect(self, wait: bool = True) -> list[BurstResult]:
        out, self.results = self.results, []
        return out

    def state(self) -> NeuronState:
        return self.st.copy()

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        self._set(state.copy())
        self.fired = np.asarray(last_fired, np.uint32)
        self.fired_mp = np.asarray(last_mp, np.float32)

    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.fired, self.fired_mp

    # -- one burst -------------------------------------------------------------------------
    def _burst(self, inp: BurstInput) -> BurstResult:
        b = inp.burst
        brain, tables = self.brain, self.tables
        t0 = time.perf_counter()

        # input: sensory potentials in a fixed order (external, power, drive) so f32 sums agree
        sens: list[tuple[np.ndarray, np.ndarray | np.float32]] = []
        if inp.potential_ids.size:
            sens.append((inp.potential_ids.astype(np.int64), inp.potential.astype(np.float32)))
        if brain.power_neuron is not None:
            sens.append((np.array([brain.power_neuron], np.int64), np.float32(1.0)))
        if brain.drive is not None and brain.drive.per_burst:
            sens.append((brain.drive.neurons(b).astype(np.int64), np.float32(brain.drive.potential)))
        t1 = time.perf_counter()

        # synaptic propagation: every synapse of last burst's fire set, as fixed-point integers
        src = self.fired.astype(np.int64)
        starts = tables.offsets[src]
        counts = tables.offsets[src + 1] - starts
        idx = expand_ranges(starts, counts)
        words = tables.pairs[idx].view(np.int32)
        targets, q = words[0::2].view(np.uint32), words[1::2]
        if self.any_driven and src.size:
            src_area = brain.neurons.cortical_area[src]
            src_driven = self.driven_area[src_area]
            if src_driven.any():
                row_driven = np.repeat(src_driven, counts)
                row_mp = np.repeat(self.fired_mp, counts)[row_driven]
                row_area = np.repeat(src_area, counts)[row_driven]
                q = q.copy()
                q[row_driven] = quantise_mp_driven(row_mp, q[row_driven], tables.mp_cap[row_area])
        cand, qsum, local = self._candidates(targets, q, [ids for ids, _ in sens])
        inp_val = qsum.astype(np.float32) * self.scale_inv
        if sens:
            extra = np.zeros(cand.size, np.float32)
            for (ids, val), loc in zip(sens, local):
                extra[loc] += val  # ids are unique within each source, so += is a plain add
            inp_val += extra
        t2 = time.perf_counter()

        fired_self, fired_self_mp = self._dynamics(cand, inp_val, b, inp.forced_ids)
        t3 = time.perf_counter()

        fired, fired_mp = self._forced(inp, fired_self, fired_self_mp, b)
        self.fired, self.fired_mp = fired, fired_mp
        self.st.burst = b
        t4 = time.perf_counter()
        return BurstResult(b, fired, fired_mp, {"input": t1 - t0, "synaptic_propagation": t2 - t1,
                                                "neural_dynamics": t3 - t2, "output": t4 - t3},
                           candidates=int(cand.size))

    def _candidates(self, targets: np.ndarray, q: np.ndarray,
                    sens_ids: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """The fire candidate list: distinct neurons with input, their summed quantised input, and
        the candidate position of each sensory id.

        Few events: de-duplicate through a scratch slot array (O(events)). Events comparable to
        the brain size: a dense mark and bincount are faster, and yield sorted candidates.
        """
        n = self.brain.neuron_count
        slot = self.slot
        if targets.size * 4 >= n:
            mark = np.zeros(n, bool)
            mark[targets] = True
            for ids in sens_ids:
                mark[ids] = True
            cand = np.flatnonzero(mark)
            self.sorted_candidates = True
            qsum = np.bincount(targets, weights=q, minlength=n)[cand]
            slot[cand] = np.arange(cand.size, dtype=np.int32)
        else:
            all_ids = np.concatenate(sens_ids + [targets.astype(np.int64)]) if sens_ids else targets
            pos = np.arange(all_ids.size, dtype=np.int32)
            slot[all_ids] = pos
            cand = all_ids[slot[all_ids] == pos]  # exactly one position per distinct id survives
            self.sorted_candidates = False
            slot[cand] = np.arange(cand.size, dtype=np.int32)
            qsum = np.bincount(slot[targets], weights=q, minlength=cand.size) if targets.size else np.zeros(cand.size)
        return cand.astype(np.int64), qsum, [slot[ids] for ids in sens_ids]

    def _dynamics(self, cand: np.ndarray, inp_val: np.ndarray, b: int,
                  forced: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each population's model steps its neurons; returns the self-fired ids (sorted) and their mp.

        A candidates-only model (FEAGI LIF) gets its candidates; a model that integrates every
        neuron gets its whole population, with zero input where a neuron is not a candidate.
        """
        brain = self.brain
        forced = np.sort(forced.astype(np.int64)) if forced.size else forced.astype(np.int64)
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
            return np.zeros(0, np.uint32), np.zeros(0, np.float32)
        fired_ids = np.concatenate(ids_out) if len(ids_out) > 1 else ids_out[0]
        fired_mp = np.concatenate(mp_out) if len(mp_out) > 1 else mp_out[0]
        if not (single and (self.sorted_candidates or self.pops[0][0].model.integrates_all)):
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
        if not inp.forced_ids.size:
            return fired, fired_mp
        forced = inp.forced_ids.astype(np.int64)
        extra = ~np.isin(forced, fired)
        fo = forced[extra]
        if len(self.pops) == 1:
            pop, table, state = self.pops[0]
            pop.model.forced(fo, b, table, state)
        else:
            which = self.pop_of_area[self.brain.neurons.cortical_area[fo]]
            for k, (pop, table, state) in enumerate(self.pops):
                pop.model.forced(fo[which == k], b, table, state)
        fired = np.concatenate([fired, fo.astype(np.uint32)])
        fired_mp = np.concatenate([fired_mp, inp.forced_mp[extra].astype(np.float32)])
        order = np.argsort(fired, kind="stable")
        return fired[order], fired_mp[order]
