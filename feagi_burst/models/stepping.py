"""Helpers the CPU steps of models that integrate every neuron share (Izhikevich, AdEx).

Such a model steps its whole population every burst, so at 1M neurons the fixed costs count:
the population is usually one contiguous id range (read and write its state through a slice, not
a gather and a scatter), and its host-computed f32 values are the same every burst (compute them
once). Neither changes a single bit of the result.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from feagi_burst.models.base import ParamTable


def span(ids: np.ndarray) -> slice | np.ndarray:
    """A slice over `ids` when they are one ascending run (a population's ids), else `ids`."""
    if ids.size and int(ids[-1]) - int(ids[0]) + 1 == ids.size and (ids.size < 3 or np.all(ids[1:] > ids[:-1])):
        return slice(int(ids[0]), int(ids[-1]) + 1)
    return ids


def prepared(params: ParamTable, ids: np.ndarray, area: np.ndarray | None, key: str,
             host: Callable[[ParamTable, np.ndarray, np.ndarray | None], dict[str, Any]]
             ) -> tuple[dict[str, Any], slice | np.ndarray]:
    """`host(params, ids, area)` and `span(ids)`, kept on `params` while the same ids array comes back
    (the CPU backend passes a population's one ids array every burst)."""
    cache = params.__dict__.setdefault("_step_cache", {})
    hit = cache.get(key)
    if hit is not None and hit[0] is ids:
        return hit[1], hit[2]
    values, where = host(params, ids, area), span(ids)
    cache[key] = (ids, values, where)  # holding ids keeps its identity unique
    return values, where


def clamp_(x: np.ndarray, limit: np.float32) -> np.ndarray:
    """x clamped to [-limit, limit] in place (min and max are exact: no rounding)."""
    np.maximum(x, -limit, out=x)
    return np.minimum(x, limit, out=x)


def at(values: Any, pos: np.ndarray) -> Any:
    """A host value for the neurons at positions `pos` (a scalar stays a scalar)."""
    return values if np.ndim(values) == 0 else values[pos]
