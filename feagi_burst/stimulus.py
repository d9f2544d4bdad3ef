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


class StimulusPlan:
    """Stimulation by burst: a schedule plus anything staged through the API."""

    def __init__(self, stimulations: list[Stimulation] | None = None) -> None:
        self.by_burst: dict[int, list[tuple[str, np.ndarray, float]]] = {}
        for s in stimulations or []:
            for b in s.bursts.tolist():
                self.add(b, s.mode, s.neurons, s.potential)

    def add(self, burst: int, mode: str, neurons: np.ndarray, potential: float | np.ndarray) -> None:
        """Stage stimulation for `burst`: potentials sum, a forced fire keeps the latest potential."""
        self.by_burst.setdefault(burst, []).append((mode, np.asarray(neurons, np.int64), potential))

    def pop(self, burst: int) -> BurstInput:
        """The BurstInput for `burst` (and forget it: memory stays flat over long runs)."""
        items = self.by_burst.pop(burst, [])
        inp = BurstInput(burst)
        if not items:
            return inp
        pot = [(n, np.broadcast_to(np.asarray(p, np.float64), n.shape)) for m, n, p in items if m == "potential"]
        if pot:
            ids = np.concatenate([n for n, _ in pot])
            vals = np.concatenate([v for _, v in pot])
            keep = np.isfinite(vals) & (vals != 0)
            uniq, inv = np.unique(ids[keep], return_inverse=True)
            inp.potential_ids = uniq.astype(np.uint32)
            inp.potential = np.bincount(inv, weights=vals[keep], minlength=uniq.size).astype(np.float32)
        fire = [(n, np.broadcast_to(np.asarray(p, np.float32), n.shape)) for m, n, p in items if m == "fire"]
        if fire:
            ids = np.concatenate([n for n, _ in fire])[::-1]
            vals = np.concatenate([v for _, v in fire])[::-1]
            uniq, first = np.unique(ids, return_index=True)  # reversed: the latest staging wins
            inp.forced_ids = uniq.astype(np.uint32)
            inp.forced_mp = vals[first].astype(np.float32)
        return inp

    def last_burst(self) -> int:
        return max(self.by_burst, default=0)
