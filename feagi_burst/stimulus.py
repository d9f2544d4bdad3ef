"""Stimulus schedules (SPEC.md section 4): which voxels get forced fires or potential, and when.

An entry's `area` is a cortical id as the genome writes it, a 3.0 area's decoded id (`cIHMot__`
for `Y0lITW90X18=`), a core alias (`_power`) or the area's name: one dict lookup per entry
(`feagi_burst.genome.ids.AreaLookup`, built once per brain).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.backends.base import BurstInput
from feagi_burst.brain import Brain
from feagi_burst.errors import InputError
from feagi_burst.files import read_json, read_toml
from feagi_burst.genome.ids import AreaLookup

MODES = ("fire", "potential")
ENTRY_KEYS = {"area", "voxels", "bursts", "mode", "potential"}


@dataclass
class Stimulation:
    """One schedule entry resolved to neuron ids (each voxel's last neuron)."""

    neurons: np.ndarray  # int64
    bursts: np.ndarray  # int64
    mode: str
    potential: float


def read_schedule(path: str | Path) -> list[dict[str, Any]]:
    """The raw entries of a TOML or JSON schedule file (TOML: a `[[stimulus]]` array of tables)."""
    p = Path(path)
    if p.suffix.lower() == ".toml":
        data: Any = read_toml(p, "stimulus schedule").get("stimulus", [])
    else:
        data = read_json(p, "stimulus schedule")
        if isinstance(data, dict):
            data = data.get("stimulus", data)
    if not isinstance(data, list):
        raise InputError(f"stimulus file {p}: expected a list of entries "
                         "({area, voxels, bursts, mode, potential}); got " + type(data).__name__)
    return data


def area_lookup(brain: Brain) -> AreaLookup:
    """The brain's areas by id, decoded id, core alias or name (built once per brain, then cached)."""
    cached = brain.__dict__.get("_stimulus_lookup")
    if cached is None or cached[0] is not brain.areas or cached[1] != len(brain.areas):
        cached = (brain.areas, len(brain.areas),
                  AreaLookup([a.cortical_id for a in brain.areas], [a.name for a in brain.areas]))
        brain.__dict__["_stimulus_lookup"] = cached
    return cached[2]


def resolve(entries: list[dict[str, Any]], brain: Brain, where: str = "stimulus") -> list[Stimulation]:
    """Validate schedule entries against the brain and resolve voxels to receiving neurons."""
    out = []
    lookup = area_lookup(brain)
    for i, e in enumerate(entries):
        at = f"{where} entry {i + 1}"
        if not isinstance(e, dict):
            raise InputError(f"{at}: expected a table with area, voxels, bursts; got {type(e).__name__}")
        unknown = set(e) - ENTRY_KEYS
        if unknown:
            raise InputError(f"{at}: unknown key {sorted(unknown)[0]!r}; allowed: {', '.join(sorted(ENTRY_KEYS))}")
        for key in ("area", "voxels", "bursts"):
            if key not in e:
                raise InputError(f"{at}: missing {key!r}")
        area_id = e["area"]
        if not isinstance(area_id, str):
            raise InputError(f"{at}: area must be a cortical id or area name (a string), got {area_id!r}")
        try:
            area = brain.areas[lookup.index(area_id)]
        except KeyError as err:
            raise InputError(f"{at}: {err.args[0]}; give a cortical id as in the genome, "
                             "its decoded id or the area's name") from None
        mode = e.get("mode", "fire")
        if mode not in MODES:
            raise InputError(f"{at}: mode {mode!r} is not one of {', '.join(MODES)}")
        potential = e.get("potential", 100.0)
        if isinstance(potential, bool) or not isinstance(potential, (int, float)) or not math.isfinite(potential):
            raise InputError(f"{at}: potential must be a finite number, got {potential!r}")
        voxels = _int_array(e["voxels"], at, "voxels")
        if voxels.size and (voxels.ndim != 2 or voxels.shape[1] != 3):
            raise InputError(f"{at}: voxels must be a list of [x, y, z] triples")
        voxels = voxels.reshape(-1, 3)
        dims = np.array(area.dimensions)
        bad = np.flatnonzero(((voxels < 0) | (voxels >= dims)).any(axis=1))
        if bad.size:
            v = voxels[bad[0]].tolist()
            raise InputError(f"{at}: voxel {v} is outside area {area_id!r} of size {list(area.dimensions)}")
        bursts = _int_array(e["bursts"], at, "bursts").reshape(-1)
        if (bursts < 1).any():
            raise InputError(f"{at}: bursts are numbered from 1; got {int(bursts.min())}")
        out.append(Stimulation(area.voxel_receiver(voxels), bursts, mode, float(potential)))
    return out


def _int_array(value: Any, at: str, key: str) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except ValueError:
        arr = np.asarray([], dtype=object)
    if arr.dtype == object or (arr.size and arr.dtype.kind not in "iu"):
        raise InputError(f"{at}: {key} must hold integers, got {value!r:.80}")
    return arr.astype(np.int64)


Item = tuple[str, np.ndarray, Any]  # (mode, neuron ids int64, potential: a number or one per neuron)


class _Schedule:
    """Stimulations staged at once, kept as arrays: every (stimulation, burst) pair sorted by burst
    (stably, so a burst's items keep their staging order), found by a binary search when popped.
    Staging a long schedule costs a sort, not a Python call per stimulation and burst."""

    def __init__(self, stimulations: list[Stimulation]) -> None:
        self.items: list[Item] = [(s.mode, np.asarray(s.neurons, np.int64), s.potential) for s in stimulations]
        bursts = [np.asarray(s.bursts, np.int64).reshape(-1) for s in stimulations]
        self.staged = np.concatenate(bursts) if bursts else np.zeros(0, np.int64)  # in staging order
        which = np.repeat(np.arange(len(bursts)), [b.size for b in bursts])
        order = np.argsort(self.staged, kind="stable")
        self.which = which[order]  # the stimulation of each pair, by burst then staging order
        self.bursts, start = np.unique(self.staged[order], return_index=True)
        self.start = np.append(start, order.size)  # burst i's pairs: which[start[i]:start[i + 1]]
        self.live = np.ones(self.bursts.size, bool)  # not popped yet
        self.top = self.bursts.size - 1  # the last live burst is at or below this
        self.lo, self.hi = (int(self.bursts[0]), int(self.bursts[-1])) if self.bursts.size else (1, 0)
        # the BurstInput arrays of a burst that holds one item, a forced fire of increasing ids (a
        # voxel patch, most bursts of a moving stimulus), made once here: building them at each
        # burst was most of a stimulated burst's host time for a small genome
        self.fire_arrays = [_patch_arrays(n, p) if m == "fire" else None for m, n, p in self.items]

    def _find(self, burst: int) -> int:
        if not self.lo <= burst <= self.hi:  # most parts, most bursts: one comparison
            return -1
        i = int(self.bursts.searchsorted(burst))
        return i if self.bursts[i] == burst and self.live[i] else -1

    def pop(self, burst: int) -> list[Item]:
        return [self.items[w] for w in self.pop_indices(burst)]

    def pop_indices(self, burst: int) -> list[int]:
        """The indices in `items` of burst's items (none when it has none or was popped)."""
        i = self._find(burst)
        if i < 0:
            return []
        self.live[i] = False
        return self.which[self.start[i]:self.start[i + 1]].tolist()

    def last(self) -> int | None:
        while self.top >= 0 and not self.live[self.top]:
            self.top -= 1
        return int(self.bursts[self.top]) if self.top >= 0 else None

    def as_dict(self) -> dict[int, list[Item]]:
        """The live pairs as `add` would have staged them: bursts in first-staged order, each
        burst's items in staging order."""
        out: dict[int, list[Item]] = {}
        uniq, first = np.unique(self.staged, return_index=True)
        for b in uniq[np.argsort(first, kind="stable")].tolist():
            items = self.pop(b)
            if items:
                out[b] = items
        return out


def _values(p: Any, neurons: np.ndarray, dtype: type) -> np.ndarray:
    """One value per neuron of a stimulation (its potential: a number, or one per neuron)."""
    v = np.asarray(p, dtype)
    return np.full(neurons.shape, v, dtype) if v.ndim == 0 else np.broadcast_to(v, neurons.shape)


def _increasing(ids: np.ndarray) -> bool:
    return ids.size < 2 or bool((ids[1:] > ids[:-1]).all())


def _patch_arrays(neurons: np.ndarray, potential: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(forced ids, forced mps) of one forced fire whose ids increase (a voxel patch: already
    unique and in order), else None (it needs the general merge)."""
    if not _increasing(neurons):
        return None
    return neurons.astype(np.uint32), _values(potential, neurons, np.float32).astype(np.float32)


class StimulusPlan:
    """Stimulation by burst: a schedule plus anything staged through the API.

    What is staged is kept in staging order as parts: a schedule given at once (`_Schedule`, arrays)
    or items staged one by one (`add`, a dict by burst). `pop` gathers a burst's items over the
    parts in order, which is the order `add` alone would have kept; `by_burst` turns the parts
    into that one dict (checkpoints read it).
    """

    def __init__(self, stimulations: list[Stimulation] | None = None) -> None:
        self._parts: list[_Schedule | dict[int, list[Item]]] = []
        if stimulations:
            self.add_schedule(stimulations)

    def add_schedule(self, stimulations: list[Stimulation]) -> None:
        """Stage every stimulation at each of its bursts, after anything staged so far (one sort,
        no call per stimulation and burst)."""
        schedule = _Schedule(list(stimulations))
        if schedule.bursts.size:  # one without bursts would never be popped, so never dropped
            self._parts.append(schedule)

    def add(self, burst: int, mode: str, neurons: np.ndarray, potential: float | np.ndarray) -> None:
        """Stage stimulation for `burst`: potentials sum, a forced fire keeps the latest potential."""
        if not self._parts or not isinstance(self._parts[-1], dict):
            self._parts.append({})
        part = self._parts[-1]
        assert isinstance(part, dict)
        part.setdefault(burst, []).append((mode, np.asarray(neurons, np.int64), potential))

    @property
    def by_burst(self) -> dict[int, list[Item]]:
        """Everything staged and not popped, burst -> [(mode, neurons, potential)] in staging order
        (the parts merged into one dict, which is then the plan's only part)."""
        if len(self._parts) == 1 and isinstance(self._parts[0], dict):
            return self._parts[0]
        out: dict[int, list[Item]] = {}
        for part in self._parts:
            for b, items in (part.as_dict() if isinstance(part, _Schedule) else part).items():
                out.setdefault(b, []).extend(items)
        self._parts = [out]
        return out

    def pop(self, burst: int) -> BurstInput:
        """The BurstInput for `burst` (and forget it: memory stays flat over long runs)."""
        items: list[Item] = []
        ready = None  # the arrays of the last schedule item popped alone (_Schedule.fire_arrays)
        spent = False
        for part in self._parts:
            if isinstance(part, _Schedule):
                got = part.pop_indices(burst)
                if got:  # only a pop can leave a part with nothing live
                    items += [part.items[w] for w in got]
                    ready = part.fire_arrays[got[0]] if len(got) == 1 else None
                    spent = spent or part.last() is None
            else:
                items += part.pop(burst, [])
                spent = spent or not part
        if spent:
            # a part with nothing left is dropped: a run that keeps adding schedules (one per period
            # of a repeated stimulus, a controller's each burst) would otherwise search them all
            # every burst, ever slower
            self._parts = [p for p in self._parts if (p.last() is not None if isinstance(p, _Schedule) else p)]
        inp = BurstInput(burst)
        if not items:
            return inp
        if len(items) == 1 and ready is not None:
            inp.forced_ids, inp.forced_mp = ready
            return inp
        pot = [(n, _values(p, n, np.float64)) for m, n, p in items if m == "potential"]
        if pot:
            ids = np.concatenate([n for n, _ in pot])
            vals = np.concatenate([v for _, v in pot])
            keep = np.isfinite(vals) & (vals != 0)
            uniq, inv = np.unique(ids[keep], return_inverse=True)
            inp.potential_ids = uniq.astype(np.uint32)
            inp.potential = np.bincount(inv, weights=vals[keep], minlength=uniq.size).astype(np.float32)
        fire = [(n, p) for m, n, p in items if m == "fire"]
        patch = _patch_arrays(*fire[0]) if len(fire) == 1 else None
        if patch is not None:
            inp.forced_ids, inp.forced_mp = patch
        elif fire:
            fire = [(n, _values(p, n, np.float32)) for n, p in fire]
            ids = np.concatenate([n for n, _ in fire])[::-1]
            vals = np.concatenate([v for _, v in fire])[::-1]
            uniq, first = np.unique(ids, return_index=True)  # reversed: the latest staging wins
            inp.forced_ids = uniq.astype(np.uint32)
            inp.forced_mp = vals[first].astype(np.float32)
        return inp

    def last_burst(self) -> int:
        """The last burst anything is staged for (0: none)."""
        last = [p.last() if isinstance(p, _Schedule) else max(p, default=None) for p in self._parts]
        return max((b for b in last if b is not None), default=0)
