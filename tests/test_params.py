"""backends/wgpu/params.py: the GPU parameter buffer built from one neuron per area is word for word
the buffer of the neuron-by-neuron algorithm it replaced (params.py keeps it as the general path), for uniform
areas, areas whose threshold varies inside them, areas whose rows vary inside them, several models
and a merged batch of brains."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from conftest import GENOMES
from feagi_burst.backends.wgpu.params import BRAIN_WORDS, _area_layout, _params_by_neuron, brain_words, neuron_params
from feagi_burst.batch import merge_brains
from feagi_burst.brain import Brain, NeuronArray
from feagi_burst.engine import load_brain
from feagi_burst.fixed_point import compile_tables
from feagi_burst.models.assign import assign_model

EXAMPLES = Path(__file__).parent.parent / "examples"


def reference_params(brain: Brain, per_area: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, int, int]:
    """neuron_params as it was: a row per neuron, then the areas' rows or np.unique's distinct rows
    (kept in params.py as the general path for brains the per-area path cannot split)."""
    if per_area is None:
        per_area = brain_words(len(brain.areas), seed)
    stride = (1 + max(p.model.gpu_row_words for p in brain.populations) + 1) // 2 + BRAIN_WORDS // 2
    if not brain.neuron_count:
        return np.zeros(0, np.uint32), 0, stride
    return _params_by_neuron(brain, per_area, stride)


def same(brain: Brain, per_area: np.ndarray | None = None, seed: int = 0) -> int:
    """Assert both algorithms give the same buffer, row count and stride; return the row count."""
    assert _area_layout(brain, np.asarray(brain.neurons.cortical_area)) is not None  # the per-area path
    got, want = neuron_params(brain, per_area, seed), reference_params(brain, per_area, seed)
    assert got[1:] == want[1:]
    assert got[0].dtype == want[0].dtype == np.uint32
    np.testing.assert_array_equal(got[0], want[0])
    return got[1]


def with_params(brain: Brain, **changes: np.ndarray) -> Brain:
    """`brain` with some FEAGI LIF parameter arrays replaced (its populations rebuilt from them)."""
    params = {**brain.neurons.params, **changes}
    return Brain(name=brain.name, areas=brain.areas, neurons=replace(brain.neurons, params=params),
                 synapses=brain.synapses, power_neuron=brain.power_neuron)


@pytest.fixture(scope="module")
def essential() -> Brain:
    return load_brain(EXAMPLES / "essential_genome.json", False, warn=None)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Brain:
    """The essential genome with threshold increments: the threshold varies inside the vision areas."""
    doc = json.loads((EXAMPLES / "essential_genome.json").read_text())
    keys = [k for k in doc["blueprint"] if k.endswith("-nx-ftincx-f") and "-iv00" in k]
    assert keys
    for i, k in enumerate(keys):
        doc["blueprint"][k] = 0.5 + i
        doc["blueprint"][k.replace("ftincx", "ftincy")] = 0.25
    p = tmp_path_factory.mktemp("graded") / "graded_genome.json"
    p.write_text(json.dumps(doc))
    return load_brain(p, False, warn=None)


def test_uniform_areas(essential: Brain) -> None:
    assert same(essential) == len(essential.areas)
    assert same(essential, seed=12345) == len(essential.areas)


def test_threshold_varies_inside_an_area(graded: Brain) -> None:
    table = graded.param_tables()[0]
    assert np.ndim(table.values.get("threshold", 0)) == 1  # kept per neuron
    a = graded.area("iv00_C")
    assert np.unique(graded.neurons.threshold[a.first_neuron:a.neuron_stop]).size > 1
    assert same(graded, seed=7) == len(graded.areas)  # threshold is the neuron word: rows stay per area


def test_rows_vary_inside_an_area(essential: Brain) -> None:
    # leak and refractory period per neuron (in the row): distinct rows, np.unique's order
    n = essential.neuron_count
    rng = np.random.default_rng(3)
    leak = essential.neurons.leak.copy()
    a = essential.area("iv00_C")
    leak[a.first_neuron:a.neuron_stop] = rng.choice(np.float32([0.1, 0.2, 0.3]), a.neuron_count)
    refr = essential.neurons.refractory_period.copy()
    refr[: n // 3] = rng.integers(0, 4, n // 3).astype(refr.dtype)
    brain = with_params(essential, leak=leak, refractory_period=refr)
    assert same(brain) != len(brain.areas)  # the distinct rows, not the areas'


def test_several_models(essential: Brain, graded: Brain) -> None:
    two = assign_model(essential, ["o__mot", "iv00BL"], "izhikevich")
    assert same(two, seed=3) == len(two.areas)
    # izhikevich's a per neuron inside its areas, adex on one more, the threshold graded elsewhere
    ids = np.concatenate([np.arange(graded.area(c).first_neuron, graded.area(c).neuron_stop)
                          for c in ("o__mot", "iv00TR")])
    three = assign_model(graded, ["o__mot", "iv00TR"], "izhikevich", a=np.linspace(0.01, 0.1, ids.size))
    three = assign_model(three, ["iv00BM"], "adex")
    assert same(three, seed=5) != len(three.areas)


def test_merged_batch(essential: Brain, graded: Brain) -> None:
    pong = load_brain(GENOMES / "Huma_feagi_genome_pong.json", False, warn=None)
    brains = [essential, graded, essential, pong, assign_model(essential, ["iv00BL"], "izhikevich")]
    m = merge_brains(brains, [compile_tables(b) for b in brains], [0, 1, 2, 3, 4])
    same(m.brain, m.brain_rows)
    leak = np.tile(np.float32([0.1, 0.3]), essential.neuron_count // 2 + 1)[:essential.neuron_count]
    odd = [essential, with_params(essential, leak=leak), essential]
    m = merge_brains(odd, [compile_tables(b) for b in odd], [9, 8, 7])
    assert same(m.brain, m.brain_rows) != len(m.brain.areas)


def test_empty_brain_and_empty_areas(essential: Brain) -> None:
    empty = Brain(name="empty", areas=[], neurons=NeuronArray(*(np.zeros(0, np.uint16) for _ in range(4))),
                  synapses=essential.synapses)
    got = neuron_params(empty)
    assert got[0].size == 0 and got[1] == 0
    # an area without neurons gets no row (it is not one of the present areas)
    shrunk = replace(essential.areas[1], dimensions=(0, 1, 1))
    areas = [*essential.areas[:1], shrunk, *essential.areas[2:]]
    n = essential.neurons
    keep = n.cortical_area != 1
    neurons = NeuronArray(n.cortical_area[keep], n.x[keep], n.y[keep], n.z[keep],
                          {k: v[keep] for k, v in n.params.items()})
    fixed = [replace(a, first_neuron=a.first_neuron - (8 if a.index > 1 else 0)) for a in areas]
    brain = Brain(name="holes", areas=fixed, neurons=neurons, synapses=essential.synapses)
    assert same(brain) == len(brain.areas) - 1
    # an area split between two models: the neuron-by-neuron path, the same buffer
    half = assign_model(essential, ["iv00BL"], "izhikevich")
    lif, izh = half.populations
    a = half.area("iv00BL")
    mid = a.first_neuron + a.neuron_count // 2
    split = replace(half, populations=[
        replace(lif, ranges=((0, a.first_neuron), (mid, half.neuron_count))),
        replace(izh, ranges=((a.first_neuron, mid),))])
    assert _area_layout(split, np.asarray(split.neurons.cortical_area)) is None
    np.testing.assert_array_equal(neuron_params(split, seed=2)[0], reference_params(split, seed=2)[0])
