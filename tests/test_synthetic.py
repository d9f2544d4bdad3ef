"""The synthetic benchmark brain holds its firing rate through its drive."""
from __future__ import annotations

import numpy as np
import pytest

from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.synthetic import synthetic_brain


def test_shape_and_determinism() -> None:
    a = synthetic_brain(1000, 20, 0.05, seed=3)
    b = synthetic_brain(1000, 20, 0.05, seed=3)
    assert (a.neuron_count, a.synapse_count) == (1000, 20_000)
    np.testing.assert_array_equal(a.synapses.target, b.synapses.target)
    assert a.fingerprint == b.fingerprint != synthetic_brain(1000, 20, 0.05, seed=4).fingerprint
    assert a.synapses.source.dtype == np.uint32 and a.synapses.weight.dtype == np.float32
    assert a.synapses.nbytes / a.synapse_count <= 13 and a.neurons.nbytes / a.neuron_count <= 48
    assert 0.15 < a.synapses.inhibitory.mean() < 0.25


def test_firing_rate_is_held() -> None:
    engine = Engine(synthetic_brain(20_000, 50, 0.02, seed=1), backend="cpu", warn=None)
    counts = []
    engine.run(60, on_result=lambda r: counts.append(r.spike_count))
    assert abs(np.mean(counts[10:]) / 20_000 - 0.02) < 0.002
    # the drive walks a permutation: over 50 bursts every neuron is driven exactly once
    seen = np.concatenate([engine.brain.drive.neurons(b) for b in range(1, 51)])
    assert np.unique(seen).size == 20_000


@pytest.mark.parametrize("args", [(0, 10, 0.01), (10, -1, 0.01), (10, 10, 1.5)])
def test_bad_sizes(args: tuple) -> None:
    with pytest.raises(InputError):
        synthetic_brain(*args)
