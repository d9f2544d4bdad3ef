"""The CPU backend: SPEC.md section 2 in vectorised numpy, touching only candidate neurons."""
from __future__ import annotations

import time

import numpy as np

from feagi_burst.backends.base import Backend, BurstInput, BurstResult
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables, quantise_mp_driven

EXCITABILITY_ALWAYS = np.float32(0.999)


def excitability_draw(ids: np.ndarray, burst: int, seed: int = 0) -> np.ndarray:
    """rand(id, b) of SPEC.md in wrapping u32 arithmetic, as f32 in [0, 1). seed 0 is FEAGI's."""
    with np.errstate(over="ignore"):
        i = (ids.astype(np.uint32) * np.uint32(2654435761)
             + np.uint32((burst * 1597334677 + seed * 3266489917) & 0xFFFFFFFF))
        s = i * np.uint32(747796405) + np.uint32(2891336453)
        w = ((s >> ((s >> np.uint32(28)) + np.uint32(4))) ^ s) * np.uint32(277803737)
        h = (w >> np.uint32(22)) ^ w
    return (h.astype(np.float32) / np.float32(4294967296.0)).astype(np.float32)


def expand_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + c) for each (s, c), without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    jump = starts.astype(np.int64) - (ends - counts)  # per range: index - position
    return np.repeat(jump, counts) + np.arange(total, dtype=np.int64)


class NeuronParams:
    """Per-neuron parameters gathered for a set of neurons, with constant ones kept as scalars.

    Genomes set parameters per cortical area, and many are equal across the whole brain; a scalar
    or a per-area table avoids a gather of a 1M-entry array per parameter per burst.
    """

    def __init__(self, brain: Brain) -> None:
        n = brain.neurons
        self.area = n.cortical_area
        self.values: dict[str, np.ndarray | np.generic] = {}
        self.per_area: dict[str, np.ndarray] = {}
        n_areas = len(brain.areas)
        for name in ("threshold", "threshold_limit", "leak", "refractory_period", "excitability", "cfc_limit",
                     "snooze", "mp_accumulate"):
            arr = getattr(n, name)
            if arr.size == 0 or (arr == arr[0]).all():
                self.values[name] = arr[:1][0] if arr.size else arr.dtype.type(0)
                continue
            table = np.zeros(n_areas, arr.dtype)
            table[n.cortical_area] = arr  # any neuron's value; checked below
            if (table[n.cortical_area] == arr).all():
                self.per_area[name] = table
            else:
                self.values[name] = arr

    def is_scalar(self, name: str) -> bool:
        return name in self.values and np.ndim(self.values[name]) == 0

    def scalar(self, name: str) -> np.generic | None:
        return self.values[name] if self.is_scalar(name) else None  # type: ignore[return-value]

    def gather(self, name: str, ids: np.ndarray, area: np.ndarray | None) -> np.ndarray | np.generic:
        """The parameter for `ids` (a scalar when it is the same for every neuron)."""
        if name in self.per_area:
            return self.per_area[name][area if area is not None else self.area[ids]]
        v = self.values[name]
        return v if np.ndim(v) == 0 else v[ids]

    def any(self, name: str) -> bool:
        """Whether any neuron has a non-zero value of this parameter."""
        if name in self.per_area:
            return bool(self.per_area[name].any())
        return bool(np.any(self.values[name]))


class CPUBackend(Backend):
    """Numpy burst engine. Per burst it costs O(synaptic events + candidates), never O(neurons)."""

    name = "CPU (numpy)"

    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        self.brain, self.tables, self.seed = brain, tables, seed
        n = brain.neuron_count
        self.st = NeuronState.zeros(n)
        self.slot = np.zeros(n, np.int32)  # scratch for de-duplicating candidates
        self.fired = np.zeros(0, np.uint32)
        self.fired_mp = np.zeros(0, np.float32)
        self.results: list[BurstResult] = []
        self.scale_inv = np.float32(tables.resolution)
        self.driven_area = tables.mp_driven_area
        self.any_driven = bool(tables.mp_driven_area.any())
        self.p = NeuronParams(brain)
        self.need_area = bool(self.p.per_area)
        # blocks only exist where a refractory period or a snooze can be non-zero
        self.may_block = self.p.any("refractory_period") or (self.p.any("snooze") and self.p.any("cfc_limit"))
        self.any_cfc = self.p.any("cfc_limit")
        self.any_limit = self.p.any("threshold_limit")

    def submit(self, inp: BurstInput) -> None:
        self.results.append(self._burst(inp))

    def collect(self, wait: bool = True) -> list[BurstResult]:
        out, self.results = self.results, []
        return out

    def state(self) -> NeuronState:
        return self.st.copy()

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        self.st = state.copy()
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
        """Step 3 of SPEC.md for the candidates; returns the self-fired ids (sorted) and their mp.

        mp_accumulate = false is applied at the end of the burst (FEAGI's order): a candidate that
        neither fired nor was forced ends the burst at mp 0, a forced one keeps its mp
        (docs/feagi-findings.md, case f).
        """
        st, p = self.st, self.p
        area = self.brain.neurons.cortical_area[cand] if self.need_area else None
        mp = st.mp[cand]
        gain = np.maximum(inp_val, np.float32(0))
        if self.may_block:
            bu = st.blocked_until[cand]
            active = bu < b
            ended = (bu != 0) & active
            if ended.any():
                # a block ended since this neuron was last touched: apply its cfc reset now
                e = cand[ended]
                lim_e = p.gather("cfc_limit", e, None)
                cfc_e = st.cfc_count[e]
                st.cfc_count[e] = np.where((lim_e > 0) & (cfc_e >= lim_e), np.uint16(0), cfc_e)
                st.blocked_until[e] = 0
            gain = np.where(active, gain, np.float32(0))
        else:
            active = None
        m = mp + gain
        thr = p.gather("threshold", cand, area)
        above = thr <= m
        if self.any_limit:
            tl = p.gather("threshold_limit", cand, area)
            above &= (tl == 0) | (m <= tl)
        if active is not None:
            above &= active
        if self.any_cfc:
            lim = p.gather("cfc_limit", cand, area)
            cfc = st.cfc_count[cand]
            capped = above & (lim > 0) & (cfc >= lim)
            try_fire = above & ~capped
        else:
            capped = None
            try_fire = above
        ex = p.gather("excitability", cand, area)
        if np.ndim(ex) == 0:
            if ex >= EXCITABILITY_ALWAYS:
                fire = try_fire
            elif ex > 0:
                fire = try_fire & (excitability_draw(cand, b, self.seed) < ex)
            else:
                fire = np.zeros_like(try_fire)
        else:
            fire = try_fire & (ex >= EXCITABILITY_ALWAYS)
            maybe = np.flatnonzero(try_fire & (ex > 0) & (ex < EXCITABILITY_ALWAYS))
            if maybe.size:
                fire[maybe] = excitability_draw(cand[maybe], b, self.seed) < ex[maybe]

        fi = np.flatnonzero(fire)
        fired_ids = cand[fi]
        fired_mp = m[fi]
        # did not fire (and not held by the consecutive-fire limit): leak; a blocked neuron keeps mp
        leak = p.gather("leak", cand, area)
        if np.ndim(leak) != 0 or leak != 0:
            keep = fire if capped is None else fire | capped
            if active is not None:
                keep = keep | ~active
            m = np.where(keep, m, m * (np.float32(1) - leak)).astype(np.float32)
        acc = p.gather("mp_accumulate", cand, area)
        if np.ndim(acc) != 0 or not acc:
            keep_mp = acc | np.isin(cand, forced) if forced.size else acc
            m = np.where(keep_mp, m, np.float32(0)).astype(np.float32)
        m[fi] = 0.0
        st.mp[cand] = m
        if self.any_cfc:
            # capped neurons restart their count; so do active neurons that did not fire
            reset = capped | (~fire & (lim > 0))
            if active is not None:
                reset &= active
            cfc = np.where(reset, np.uint16(0), cfc)
            cfc[fi] = np.minimum(cfc[fi], np.uint16(65534)) + np.uint16(1)  # saturate, never wrap
            st.cfc_count[cand] = cfc
            cfc_fired = cfc[fi]
        else:
            cfc_fired = np.minimum(st.cfc_count[fired_ids], np.uint16(65534)) + np.uint16(1)
            st.cfc_count[fired_ids] = cfc_fired
        if self.may_block:
            st.blocked_until[fired_ids] = self._block_end(fired_ids, cfc_fired, b)
        if not self.sorted_candidates:
            order = np.argsort(fired_ids)
            fired_ids, fired_mp = fired_ids[order], fired_mp[order]
        return fired_ids.astype(np.uint32), fired_mp.astype(np.float32)

    def _block_end(self, ids: np.ndarray, cfc_after: np.ndarray, b: int) -> np.ndarray:
        """blocked_until for neurons firing at b: refractory, plus snooze at the consecutive limit."""
        p = self.p
        lim = p.gather("cfc_limit", ids, None)
        countdown = np.asarray(p.gather("refractory_period", ids, None), np.int64) + np.where(
            (lim > 0) & (cfc_after >= lim), p.gather("snooze", ids, None), 0)
        countdown = np.broadcast_to(countdown, ids.shape)
        return np.where(countdown > 0, b + countdown, 0).astype(np.uint32)

    def _forced(self, inp: BurstInput, fired: np.ndarray, fired_mp: np.ndarray,
                b: int) -> tuple[np.ndarray, np.ndarray]:
        """Add forced fires to the fire set (rule measured on FEAGI: docs/feagi-findings.md).

        A forced neuron that fired by itself keeps its own entry. One that did not is added with
        the stimulation's potential as its firing mp, and its own state is left alone, except that
        a forced burst inside a refractory or snooze block does not count toward the block: the
        block gets one burst longer.
        """
        if not inp.forced_ids.size:
            return fired, fired_mp
        forced = inp.forced_ids.astype(np.int64)
        extra = ~np.isin(forced, fired)
        fo = forced[extra]
        if self.may_block:
            blocked = fo[self.st.blocked_until[fo] >= b]
            self.st.blocked_until[blocked] += np.uint32(1)
        fired = np.concatenate([fired, fo.astype(np.uint32)])
        fired_mp = np.concatenate([fired_mp, inp.forced_mp[extra].astype(np.float32)])
        order = np.argsort(fired, kind="stable")
        return fired[order], fired_mp[order]
