"""Fixed-point synaptic input: exact, order-free, and never overflowing."""
from __future__ import annotations

import numpy as np

from conftest import tiny_brain
from feagi_burst.fixed_point import SUM_LIMIT, compile_tables, expand_ranges, quantise_mp_driven
from feagi_burst.synthetic import synthetic_brain


def test_contributions_are_quantised_weight_psp_over_fanout() -> None:
    brain = tiny_brain(4, [(0, 1, 3, False), (0, 2, 5, True), (0, 3, 255, False), (1, 2, 2, False)], psp=0.7)
    t = compile_tables(brain)
    scale = 2.0 ** t.scale_exp
    assert t.offsets.tolist() == [0, 3, 4, 4, 4]
    assert t.target.tolist() == [1, 2, 3, 2]
    want = np.rint(np.array([3 * 0.7 / 3, -5 * 0.7 / 3, 255 * 0.7 / 3, 2 * 0.7]) * scale)
    assert t.contribution.tolist() == want.astype(int).tolist()


def test_scale_keeps_worst_case_sum_below_2_pow_24() -> None:
    # 1,000 sources all at weight 255 onto one neuron
    brain = tiny_brain(1001, [(i, 1000, 255, False) for i in range(1000)], psp=1.0, psp_uniform=True)
    t = compile_tables(brain)
    worst = np.abs(t.contribution.astype(np.int64)).sum()
    assert worst < SUM_LIMIT and worst * 2 >= SUM_LIMIT // 2  # as fine as it can be, but safe
    assert t.scale_exp == 6


def test_mp_driven_synapses_store_a_factor_and_saturate() -> None:
    brain = tiny_brain(2, [(0, 1, 2, False)], mp_driven_psp=True, threshold=10.0)
    t = compile_tables(brain)
    assert t.mp_driven_area.tolist() == [True] and t.mp_cap[0] == 100.0
    factor = t.contribution.view(np.float32)[0]
    assert factor == np.float32(2 * 2.0 ** t.scale_exp)
    q = quantise_mp_driven(np.array([3.0, 1e9, np.nan], np.float32), t.contribution[[0, 0, 0]], t.mp_cap[[0, 0, 0]])
    assert q.tolist() == [int(3 * factor), int(100 * factor), 0]


def test_synthetic_tables_are_compact() -> None:
    t = compile_tables(synthetic_brain(10_000, 10, 0.01))
    assert t.pairs.dtype == np.int64 and t.pairs.size == 100_000
    assert t.resolution == 2.0 ** -t.scale_exp


def test_expand_ranges() -> None:
    got = expand_ranges(np.array([5, 0, 9]), np.array([2, 0, 3]))
    assert got.tolist() == [5, 6, 9, 10, 11]
