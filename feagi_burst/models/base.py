"""What a neuron model is: its parameters, its state variables, and its step on each backend.

A model is declared once, here, and everything else takes it from the declaration: the brain
arrays (`NeuronPopulation.params`), the CPU backend (`NeuronModel.step`), the GPU backend (the model's
WGSL file and `gpu_row`), `Engine.state()`, checkpoints (state arrays stored by name) and the
reports. Adding a model is one new file: subclass `NeuronModel`, write its `.wgsl`, register it
(`feagi_burst.models.register_model`). See examples/my_model.py.

Exactness: a model's CPU step and its WGSL step must do the same f32 operations in the same order,
using only operations both sides round correctly (+, -, *, comparisons, integer ops). Divisions
and transcendental functions are not correctly rounded on GPUs: precompute reciprocals on the host
(`gpu_row`) and build anything like exp() from those operations (see models/adex.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

DTYPES: dict[str, type] = {"f32": np.float32, "u32": np.uint32, "u16": np.uint16, "bool": np.bool_}


@dataclass(frozen=True)
class Param:
    """One parameter of a model: its name, type, default and allowed range (inclusive)."""

    name: str
    dtype: str  # a key of DTYPES
    default: float
    low: float | None = None
    high: float | None = None
    doc: str = ""

    def check(self, value: Any, where: str) -> np.ndarray:
        """`value` (a number or a per-neuron array) as this parameter's dtype; ValueError names the problem."""
        arr = np.asarray(value)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise ValueError(f"{where}: {self.name} must be a number, got {value!r:.40}")
        if self.dtype == "bool":
            if arr.dtype != np.bool_:
                raise ValueError(f"{where}: {self.name} must be true or false, got {value!r:.40}")
            return arr.astype(np.bool_)
        f = arr.astype(np.float64)
        if not np.all(np.isfinite(f)):
            raise ValueError(f"{where}: {self.name} must be finite, got {value!r:.40}")
        if self.dtype != "f32" and np.any(f != np.floor(f)):
            raise ValueError(f"{where}: {self.name} must be a whole number, got {value!r:.40}")
        lo, hi = self.low, self.high
        if self.dtype == "f32":
            big = float(np.finfo(np.float32).max)
            lo, hi = max(-big, lo if lo is not None else -big), min(big, hi if hi is not None else big)
        else:
            info = np.iinfo(DTYPES[self.dtype])
            lo, hi = max(info.min, lo if lo is not None else info.min), min(info.max, hi if hi is not None else info.max)
        if f.size and (f.min() < lo or f.max() > hi):
            bad = f.min() if f.min() < lo else f.max()
            raise ValueError(f"{where}: {self.name} = {bad:g} is out of range; allowed {lo:g} .. {hi:g}")
        return f.astype(DTYPES[self.dtype])


@dataclass(frozen=True)
class StateVar:
    """One dynamic variable of a model (one 32-bit word per neuron on the GPU)."""

    name: str
    dtype: str  # "f32", "u32" or "u16"
    initial: float = 0.0
    doc: str = ""


class ParamTable:
    """A population's parameters for any set of its neurons, with constant ones kept as scalars.

    Genomes set parameters per cortical area, and many are equal across the whole brain; a scalar
    or a per-area table avoids a gather of a 1M-entry array per parameter per burst.
    """

    def __init__(self, params: dict[str, np.ndarray], area: np.ndarray, n_areas: int,
                 members: np.ndarray | None = None) -> None:
        """`params` full-length arrays; `members` the ids of this population (None: every neuron)."""
        self.area = area
        self.values: dict[str, np.ndarray | np.generic] = {}
        self.per_area: dict[str, np.ndarray] = {}
        for name, arr in params.items():
            mine = arr if members is None else arr[members]
            my_area = area if members is None else area[members]
            if mine.size == 0 or (mine == mine[0]).all():
                self.values[name] = mine[:1][0] if mine.size else arr.dtype.type(0)
                continue
            table = np.zeros(n_areas, arr.dtype)
            table[my_area] = mine  # any neuron's value; checked below
            if (table[my_area] == mine).all():
                self.per_area[name] = table
            else:
                self.values[name] = arr

    def is_scalar(self, name: str) -> bool:
        return name in self.values and np.ndim(self.values[name]) == 0

    def gather(self, name: str, ids: np.ndarray, area: np.ndarray | None = None) -> np.ndarray | np.generic:
        """The parameter for `ids` (a scalar when it is the same for every neuron)."""
        if name in self.per_area:
            return self.per_area[name][area if area is not None else self.area[ids]]
        v = self.values[name]
        return v if np.ndim(v) == 0 else v[ids]

    def any(self, name: str) -> bool:
        """Whether any neuron has a non-zero value of this parameter."""
        if name in self.per_area:
            return bool(self.per_area[name].any())
        return bool(np.any(self.values[name]))

    @property
    def needs_area(self) -> bool:
        return bool(self.per_area)


@dataclass
class StepContext:
    """What a model's CPU step gets for one burst.

    `ids`: the neurons to step (int64; candidates for a candidates-only model, every neuron of the
    population for one that integrates all); `input`: their summed input of SPEC.md step 1 (f32);
    `state`: the model's state arrays, full length, to read and update in place; `forced`: ids
    forced to fire this burst (sorted, all models); `area`: cortical area of each id, or None when
    no parameter needs it.
    """

    ids: np.ndarray
    input: np.ndarray
    burst: int
    seed: int
    params: ParamTable
    state: dict[str, np.ndarray]
    forced: np.ndarray
    area: np.ndarray | None = None


class NeuronModel(ABC):
    """A neuron model: declarations plus a CPU step and a WGSL step doing the same f32 operations.

    Subclasses set the class attributes and implement `step` (CPU) and `gpu_row` (the parameter
    words its WGSL file reads); see models/feagi_lif.py and examples/my_model.py.
    """

    name: ClassVar[str]  # registry key, as written in brain.toml ("feagi_lif", "izhikevich")
    title: ClassVar[str]  # for people ("FEAGI LIF")
    params: ClassVar[tuple[Param, ...]]
    state: ClassVar[tuple[StateVar, ...]]  # at most 3 (models.MAX_STATE_VARS)
    # False: only fire candidates are stepped (FEAGI: no input, no change); True: every neuron of
    # the population is integrated every burst, input or not
    integrates_all: ClassVar[bool] = True
    wgsl: ClassVar[str]  # shader file, relative to shaders/ (e.g. "models/izhikevich.wgsl")
    gpu_row_words: ClassVar[int]  # words `gpu_row` returns per neuron

    # -- declarations -------------------------------------------------------------------------
    @classmethod
    def param(cls, name: str) -> Param:
        for p in cls.params:
            if p.name == name:
                return p
        raise KeyError(name)

    @classmethod
    def defaults(cls, n: int) -> dict[str, np.ndarray]:
        """Full-length parameter arrays holding the defaults."""
        return {p.name: np.full(n, p.default, DTYPES[p.dtype]) for p in cls.params}

    def init_state(self, params: ParamTable, ids: np.ndarray, state: dict[str, np.ndarray]) -> None:
        """Write the initial state of neurons `ids` (default: each variable's `initial`)."""
        for v in self.state:
            state[v.name][ids] = v.initial

    def mp_cap(self, params: ParamTable, ids: np.ndarray) -> float:
        """Bound on the firing mp an mp-driven-psp area of this model passes on (larger values saturate)."""
        return 100.0

    # -- CPU ----------------------------------------------------------------------------------
    @abstractmethod
    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """One burst for `ctx.ids`; returns (positions in ctx.ids that fired, their firing mp f32)."""

    def forced(self, ids: np.ndarray, burst: int, params: ParamTable, state: dict[str, np.ndarray]) -> None:
        """What a forced fire does to the neuron's own state when it did not fire by itself (default: nothing)."""

    # -- GPU ----------------------------------------------------------------------------------
    def gpu_neuron_word(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """One u32 per neuron kept beside its row index (a parameter that varies inside an area)."""
        return np.zeros(ids.size, np.uint32)

    @abstractmethod
    def gpu_row(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """u32 [len(ids), gpu_row_words]: the parameter words the WGSL step reads, host-computed in f32."""


@dataclass
class NeuronPopulation:
    """The cortical areas that run one neuron model, and that model's parameters.

    `params` are full-length arrays (index = neuron id); only the entries of this population's
    neurons are used. Areas are contiguous id ranges, so a population is a list of ranges.
    """

    model: NeuronModel
    areas: tuple[int, ...]
    params: dict[str, np.ndarray]
    ranges: tuple[tuple[int, int], ...] = field(default=())

    def ids(self) -> np.ndarray:
        """Every neuron id of the population, ascending (int64)."""
        if not self.ranges:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in self.ranges])

    @property
    def size(self) -> int:
        return sum(b - a for a, b in self.ranges)


def merge_ranges(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sorted, non-empty ranges with touching ones joined."""
    out: list[list[int]] = []
    for a, b in sorted(r for r in ranges if r[1] > r[0]):
        if out and out[-1][1] == a:
            out[-1][1] = b
        else:
            out.append([a, b])
    return tuple((a, b) for a, b in out)


def state_key(model: NeuronModel, var: StateVar) -> str:
    """The name a state array goes by in NeuronState and checkpoints: '<model>.<variable>'."""
    return f"{model.name}.{var.name}"
