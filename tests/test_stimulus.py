"""Stimulus schedules: validation against the brain, and resolution to burst inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_brain
from feagi_burst.brain import Brain, CorticalArea, neuron_array
from feagi_burst.errors import InputError
from feagi_burst.backends.base import BurstInput
from feagi_burst.stimulus import Stimulation, StimulusPlan, read_schedule, resolve


def two_area_brain() -> Brain:
    na = neuron_array(1 + 2 * 3 * 2 * 2)
    b = tiny_brain(1)
    areas = [CorticalArea(0, "_power", "power", (1, 1, 1), 1, 0),
             CorticalArea(1, "vis001", "vision", (2, 3, 2), 2, 1)]
    return Brain("t", areas, na, b.synapses)


def test_voxel_resolves_to_its_last_neuron() -> None:
    brain = two_area_brain()
    s = resolve([{"area": "vis001", "voxels": [[0, 0, 0], [1, 2, 1]], "bursts": [3]}], brain)[0]
    # voxel (x, y, z) holds neurons first + ((x*3 + y)*2 + z)*2 + k, k = 0, 1; the last one receives
    assert s.neurons.tolist() == [1 + 1, 1 + ((1 * 3 + 2) * 2 + 1) * 2 + 1]
    assert (s.mode, s.potential, s.bursts.tolist()) == ("fire", 100.0, [3])


@pytest.mark.parametrize("entry, fragment", [
    ({"area": "nope01", "voxels": [[0, 0, 0]], "bursts": [1]}, "unknown cortical area 'nope01'"),
    ({"area": "vis001", "voxels": [[2, 0, 0]], "bursts": [1]}, "voxel [2, 0, 0] is outside area 'vis001'"),
    ({"area": "vis001", "voxels": [[0, 0]], "bursts": [1]}, "[x, y, z] triples"),
    ({"area": "vis001", "voxels": [[0, 0, 0]], "bursts": [0]}, "numbered from 1"),
    ({"area": "vis001", "voxels": [[0, 0, 0]], "bursts": [1], "mode": "zap"}, "mode 'zap'"),
    ({"area": "vis001", "voxels": [[0, 0, 0]], "bursts": [1], "potential": float("nan")}, "finite number"),
    ({"area": "vis001", "voxels": [["a", 0, 0]], "bursts": [1]}, "voxels must hold integers"),
    ({"area": "vis001", "bursts": [1]}, "missing 'voxels'"),
    ({"area": "vis001", "voxels": [], "bursts": [1], "extra": 1}, "unknown key 'extra'"),
])
def test_bad_entries_name_the_problem(entry: dict, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        resolve([entry], two_area_brain(), "sched.toml")
    assert fragment in str(e.value) and "sched.toml entry 1" in str(e.value)


def test_plan_sums_potentials_and_latest_forced_potential_wins() -> None:
    plan = StimulusPlan()
    plan.add(2, "potential", np.array([5, 3]), 1.5)
    plan.add(2, "potential", np.array([5]), 2.0)
    plan.add(2, "fire", np.array([7]), 100.0)
    plan.add(2, "fire", np.array([7, 1]), 42.0)
    inp = plan.pop(2)
    assert inp.potential_ids.tolist() == [3, 5] and inp.potential.tolist() == [1.5, 3.5]
    assert inp.forced_ids.tolist() == [1, 7] and inp.forced_mp.tolist() == [42.0, 42.0]
    assert plan.pop(2).empty and plan.by_burst == {}


def test_toml_and_json_files(tmp_path: Path) -> None:
    t = tmp_path / "s.toml"
    t.write_text('[[stimulus]]\narea = "vis001"\nvoxels = [[0, 0, 0]]\nbursts = [1, 2]\nmode = "potential"\n')
    j = tmp_path / "s.json"
    j.write_text(json.dumps([{"area": "vis001", "voxels": [[0, 0, 0]], "bursts": [1, 2], "mode": "potential"}]))
    assert read_schedule(t) == read_schedule(j)
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(InputError, match="invalid JSON"):
        read_schedule(bad)


class ListPlan:
    """StimulusPlan as it was: one `add` per (stimulation, burst) into a dict (the reference)."""

    def __init__(self, stimulations: list[Stimulation] | None = None) -> None:
        self.by_burst: dict[int, list] = {}
        for s in stimulations or []:
            for b in s.bursts.tolist():
                self.add(b, s.mode, s.neurons, s.potential)

    def add(self, burst: int, mode: str, neurons: np.ndarray, potential: float | np.ndarray) -> None:
        self.by_burst.setdefault(burst, []).append((mode, np.asarray(neurons, np.int64), potential))

    def pop(self, burst: int) -> BurstInput:
        plan = StimulusPlan()
        for item in self.by_burst.pop(burst, []):
            plan.add(burst, *item)
        return plan.pop(burst)

    def last_burst(self) -> int:
        return max(self.by_burst, default=0)


def same_input(a: BurstInput, b: BurstInput) -> None:
    for f in ("potential_ids", "potential", "forced_ids", "forced_mp"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.dtype == y.dtype and x.tolist() == y.tolist(), f


def same_staged(a: dict, b: dict) -> None:
    assert list(a) == list(b)  # bursts in the same (first-staged) order
    for k in a:
        assert [(m, n.tolist(), np.asarray(p).tolist()) for m, n, p in a[k]] == \
            [(m, n.tolist(), np.asarray(p).tolist()) for m, n, p in b[k]]


@pytest.mark.parametrize("seed", range(8))
def test_schedule_plan_pops_what_one_add_per_burst_staged(seed: int) -> None:
    rng = np.random.default_rng(seed)

    def stims(k: int) -> list[Stimulation]:
        return [Stimulation(rng.integers(0, 30, rng.integers(0, 5)), rng.integers(1, 40, rng.integers(0, 12)),
                            str(rng.choice(["fire", "potential"])), float(rng.integers(-3, 4)))
                for _ in range(k)]

    first = stims(int(rng.integers(0, 12)))
    new, old = StimulusPlan(first), ListPlan(first)
    assert new.last_burst() == old.last_burst()
    for step in range(60):
        op = rng.integers(0, 6)
        b = int(rng.integers(1, 42))
        if op == 0:  # staged through the API between schedule parts
            ids, pot = rng.integers(0, 30, 3), rng.normal(size=3) if rng.random() < 0.5 else float(rng.integers(1, 5))
            mode = str(rng.choice(["fire", "potential"]))
            new.add(b, mode, ids, pot)
            old.add(b, mode, ids, pot)
        elif op == 1:  # another schedule staged later (after what is staged so far)
            more = stims(int(rng.integers(0, 4)))
            new.add_schedule(more)
            for s in more:
                for x in s.bursts.tolist():
                    old.add(x, s.mode, s.neurons, s.potential)
        elif op == 2 and step % 7 == 0:  # a checkpoint reads every staged item, then runs on
            same_staged(new.by_burst, old.by_burst)
        else:
            same_input(new.pop(b), old.pop(b))
        assert new.last_burst() == old.last_burst()
    same_staged(new.by_burst, old.by_burst)
    for b in range(0, 45):
        same_input(new.pop(b), old.pop(b))
    assert new.by_burst == {} and new.last_burst() == 0


def test_spent_schedules_are_dropped() -> None:
    """A run that adds a schedule per period keeps searching only what can still stage something."""
    plan = StimulusPlan()
    for period in range(50):
        b0 = period * 3 + 1
        plan.add_schedule([Stimulation(np.array([4, 2]), np.arange(b0, b0 + 3), "fire", 50.0)])
        for b in range(b0, b0 + 3):
            inp = plan.pop(b)
            assert inp.forced_ids.tolist() == [2, 4] and inp.forced_mp.tolist() == [50.0, 50.0]
        assert len(plan._parts) == 0
    plan.add_schedule([Stimulation(np.array([1]), np.array([200, 300]), "potential", 1.0)])
    plan.pop(200)
    assert len(plan._parts) == 1 and plan.last_burst() == 300 and plan.pop(300).potential.tolist() == [1.0]
