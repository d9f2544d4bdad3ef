"""feagi_burst.batch: brains merged for one GPU keep their own ids, areas, synapses, scale and seed,
and a burst's input reaches each brain as it would alone. (That the merged brain runs every brain
bit for bit as alone is tested end to end in test_population.py.)"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import GENOMES
from feagi_burst.backends.base import BurstResult
from feagi_burst.backends.wgpu.params import SEED_MULT
from feagi_burst.batch import StimulusGroup, batch_input, merge_brains, not_batchable
from feagi_burst.engine import load_brain
from feagi_burst.fixed_point import compile_tables
from feagi_burst.stimulus import StimulusPlan


@pytest.fixture(scope="module")
def two() -> tuple[list, list]:
    brains = [load_brain(GENOMES / "Huma_feagi_genome_pong.json", False, warn=None),
              load_brain(GENOMES / "logic_and_gate__genome.json", False, warn=None)]
    return brains, [compile_tables(b) for b in brains]


def test_merged_brain_keeps_each_brains_ids_areas_synapses_and_words(two: tuple[list, list]) -> None:
    brains, tables = two
    m = merge_brains(brains, tables, [5, 9])
    n0 = brains[0].neuron_count
    assert m.first.tolist() == [0, n0, n0 + brains[1].neuron_count]
    assert m.brain.neuron_count == m.first[-1] and m.brain.synapse_count == sum(b.synapse_count for b in brains)
    second = m.brain.areas[len(brains[0].areas):]
    assert [a.first_neuron - n0 for a in second] == [a.first_neuron for a in brains[1].areas]
    assert [a.cortical_id for a in second] == [a.cortical_id for a in brains[1].areas]
    np.testing.assert_array_equal(m.brain.neurons.cortical_area[n0:], brains[1].neurons.cortical_area + len(brains[0].areas))
    # the second brain's synapses: its own rows, targets moved by its first id, contributions unchanged
    s0 = tables[0].pairs.size
    np.testing.assert_array_equal(m.tables.target[s0:], tables[1].target + n0)
    np.testing.assert_array_equal(m.tables.contribution[s0:], tables[1].contribution)
    np.testing.assert_array_equal(m.tables.offsets[n0:], tables[1].offsets + s0)
    # brain words: first id, seed term, each brain's own resolution
    a0 = len(brains[0].areas)
    assert m.brain_rows[0].tolist()[:2] == [0, 5 * SEED_MULT % 2**32]
    assert m.brain_rows[a0].tolist()[:2] == [n0, 9 * SEED_MULT % 2**32]
    assert m.brain_rows[a0, 2] == np.float32(tables[1].resolution).view(np.uint32)
    assert m.power.tolist() == [p + f for b, f in zip(brains, m.first) for p in [b.power_neuron] if p is not None]
    assert m.brain_of(np.array([0, n0 - 1, n0])).tolist() == [0, 0, 1]


def test_split_gives_each_brain_its_fires_in_its_own_ids(two: tuple[list, list]) -> None:
    brains, tables = two
    m = merge_brains(brains, tables, [0, 0])
    n0 = int(m.first[1])
    r = BurstResult(3, np.array([1, 7, n0, n0 + 4], np.uint32), np.array([1, 2, 3, 4], np.float32))
    a, b = m.split(r)
    assert a.fired.tolist() == [1, 7] and b.fired.tolist() == [0, 4] and b.mp.tolist() == [3, 4] and b.burst == 3


def test_batch_input_repeats_a_schedule_and_adds_power_after_external_potential(two: tuple[list, list]) -> None:
    brains, tables = two
    m = merge_brains([brains[0], brains[0]], [tables[0], tables[0]], [0, 1])
    power = int(brains[0].power_neuron)
    plan = StimulusPlan()
    plan.add(2, "potential", np.array([power, 3]), np.float32(0.1))
    plan.add(2, "fire", np.array([5]), 1.0)
    inp = batch_input(2, [StimulusGroup(plan, m.first[:2])], m.power)
    n0 = int(m.first[1])
    got = dict(zip(inp.potential_ids.tolist(), inp.potential.tolist()))
    assert got == {3: np.float32(0.1), power: np.float32(np.float32(0.1) + np.float32(1.0)),
                   n0 + 3: np.float32(0.1), n0 + power: np.float32(np.float32(0.1) + np.float32(1.0))}
    assert inp.forced_ids.tolist() == [5, n0 + 5]
    quiet = batch_input(3, [StimulusGroup(plan, m.first[:2])], m.power)  # power neurons only
    assert quiet.potential_ids.tolist() == [power, n0 + power] and quiet.potential.tolist() == [1.0, 1.0]


def test_plastic_brains_cannot_join_a_batch() -> None:
    stdp = load_brain(GENOMES / "feagi-stdp" / "stdp2.genome.json", False, warn=None)
    assert "plastic pairs" in str(not_batchable(stdp))
    with pytest.raises(ValueError, match="cannot join a batch: it has plastic pairs"):
        merge_brains([stdp], [compile_tables(stdp)], [0])


def test_merged_arrays_are_each_brains_joined(two: tuple[list, list]) -> None:
    # what merge_brains computed before it shared arrays and kept area ids in u16: every array
    # joined brain by brain, with the same values and dtypes
    from feagi_burst.models import get_model
    from feagi_burst.models.assign import assign_model

    pong, gate = two[0]
    izh = assign_model(pong, ["i__pro"] if any(a.cortical_id == "i__pro" for a in pong.areas)
                       else [pong.areas[-1].cortical_id], "izhikevich")
    brains = [pong, gate, izh, pong]
    m = merge_brains(brains, [compile_tables(b) for b in brains], [1, 2, 3, 4])
    first_area = np.cumsum([0] + [len(b.areas) for b in brains])
    want = np.concatenate([b.neurons.cortical_area.astype(np.int64) + first_area[i]
                           for i, b in enumerate(brains)]).astype(np.uint16)
    assert m.brain.neurons.cortical_area.dtype == np.uint16
    np.testing.assert_array_equal(m.brain.neurons.cortical_area, want)
    for k, v in m.brain.neurons.params.items():
        np.testing.assert_array_equal(v, np.concatenate([b.neurons.params[k] for b in brains]))
    for pop in m.brain.populations:
        for k, v in pop.params.items():
            parts = [next((p.params[k] for p in b.populations if p.model is pop.model),
                          pop.model.defaults(b.neuron_count)[k]) for b in brains]
            joined = np.concatenate([np.asarray(x) for x in parts])
            assert v.dtype == joined.dtype
            np.testing.assert_array_equal(v, joined)
    lif = next(p for p in m.brain.populations if p.model is get_model("feagi_lif"))
    assert all(lif.params[k] is m.brain.neurons.params[k] for k in lif.params)  # shared, as in one brain
