"""Stimulus schedules: validation against the brain, and resolution to burst inputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_brain
from feagi_burst.brain import Brain, CorticalArea, neuron_array
from feagi_burst.errors import InputError
from feagi_burst.stimulus import StimulusPlan, read_schedule, resolve


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
