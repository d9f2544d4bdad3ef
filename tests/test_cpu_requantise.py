"""The CPU requantisation kernels (feagi_burst/backends/cpu_requantise.py) against their references."""
from __future__ import annotations

import numpy as np

from feagi_burst.backends.cpu_requantise import shift_all
from feagi_burst.fixed_point import shift_words


def test_shift_rows_equal_shift_words() -> None:
    """The requantisation's shift (one expression, vectorised) gives fixed_point.shift_words' words:
    every half (ties to even, both signs), the extremes of i32, f32 words of mp-driven rows."""
    rng = np.random.default_rng(1)
    edges = np.array([0, 1, -1, 2, -2, 3, -3, 2**31 - 1, -2**31, 2**30, -2**30, 2**30 + 1, -2**30 - 1], np.int64)
    for d in (1, 2, 3, 7, 16, 29, 30, 31, 40):
        halves = (np.arange(-40, 40, dtype=np.int64) << max(d - 1, 0)) if d <= 30 else np.zeros(0, np.int64)
        halves = halves[(halves >= -2**31) & (halves < 2**31)]
        q = np.concatenate([edges, halves, halves + 1, halves - 1, rng.integers(-2**31, 2**31, 5000)])
        f = np.concatenate([[0.0, 1.0, -1.0, 2.0**-126, 3e38], rng.normal(0, 100, 500)]).astype(np.float32)
        q = np.concatenate([q.astype(np.int32), f.view(np.int32)])
        rows = np.array([0, 0, 9, q.size - f.size, q.size], np.int64)  # an empty row, f32 words last
        driven = np.array([True, False, False, True])
        pairs = np.zeros(2 * q.size, np.int32)
        pairs[1::2] = q
        shift_all(rows, pairs, pairs.view(np.float32), driven, d)
        with np.errstate(invalid="ignore"):  # shift_words scales every word as f32 too, NaN patterns among them
            want = shift_words(q, np.repeat(driven, np.diff(rows)), d)
        np.testing.assert_array_equal(pairs[1::2], want, err_msg=f"d={d}")


def test_requantise_split_balances_the_plastic_words() -> None:
    """The threads' source bounds cover every source once, in order, and put the plastic rows
    (here all at the end) over several threads."""
    from feagi_burst.backends.cpu_requantise import requantise_split

    offsets = np.arange(0, 1001 * 10, 10, dtype=np.int64)  # 1000 sources, 10 synapses each
    index = np.arange(8000, 10000, dtype=np.int64)  # the last 200 sources' rows are plastic
    for nt in (1, 2, 3, 8):
        b = requantise_split(offsets, index, nt)
        assert b.size == nt + 1 and b[0] == 0 and b[-1] == 1000 and np.all(np.diff(b) >= 0)
    b = requantise_split(offsets, index, 2)
    assert 800 < b[1] < 1000  # equal in sources would be 500, leaving all 2000 plastic words to one thread
