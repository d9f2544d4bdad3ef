"""The brain as flat arrays: what a genome (or the synthetic builder) expands into.

Data flows one way: genome -> Brain -> backend -> BurstResult -> reports. A Brain is immutable
model description; the dynamic state (each neuron model's variables) lives in `NeuronState`,
owned by a backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feagi_burst.models import DEFAULT_MODEL, get_model
from feagi_burst.models.base import DTYPES, NeuronPopulation, ParamTable, StateVar, merge_ranges, state_key

# Compact dtypes: a FEAGI LIF neuron costs 31 bytes of parameters + 10 of state, a synapse 13 bytes.
COORD_DTYPE = np.uint16
MAX_COORD = int(np.iinfo(COORD_DTYPE).max)


@dataclass(frozen=True)
class CorticalArea:
    """One cortical area: a block of voxels, each holding `neurons_per_voxel` neurons."""

    index: int
    cortical_id: str
    name: str
    dimensions: tuple[int, int, int]
    neurons_per_voxel: int
    first_neuron: int
    psp: float = 1.0
    psp_uniform: bool = False
    mp_driven_psp: bool = False

    @property
    def neuron_count(self) -> int:
        x, y, z = self.dimensions
        return x * y * z * self.neurons_per_voxel

    @property
    def neuron_stop(self) -> int:
        return self.first_neuron + self.neuron_count

    def voxel_receiver(self, voxels: np.ndarray) -> np.ndarray:
        """Neuron id of the last neuron of each voxel (the one that receives synapses)."""
        v = np.asarray(voxels, dtype=np.int64).reshape(-1, 3)
        _, dy, dz = self.dimensions
        n = self.neurons_per_voxel
        return self.first_neuron + ((v[:, 0] * dy + v[:, 1]) * dz + v[:, 2]) * n + (n - 1)


@dataclass
class NeuronArray:
    """Per-neuron data, struct of arrays; index = neuron id.

    Where each neuron is (`cortical_area`, `x`, `y`, `z`), and `params`: the genome's parameters
    of FEAGI's LIF neuron (threshold, leak, ... as `feagi_burst.models.feagi_lif` declares them),
    which every area runs unless it is assigned another model (`Brain.populations`). They read as
    attributes too (`neurons.threshold`).
    """

    cortical_area: np.ndarray  # u16, index into Brain.areas
    x: np.ndarray  # u16
    y: np.ndarray  # u16
    z: np.ndarray  # u16
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __getattr__(self, name: str) -> np.ndarray:
        params = self.__dict__.get("params", {})
        if name in params:
            return params[name]
        raise AttributeError(f"NeuronArray has no field or parameter {name!r}")

    def __len__(self) -> int:
        return int(self.cortical_area.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.cortical_area, self.x, self.y, self.z, *self.params.values()))


@dataclass
class SynapseArray:
    """Per-synapse data, sorted by source (stable). psp is the source area's `CorticalArea.psp`."""

    source: np.ndarray  # u32
    target: np.ndarray  # u32
    weight: np.ndarray  # f32 magnitude, >= 0 (|psc multiplier|; plasticity changes it at run time)
    inhibitory: np.ndarray  # bool

    def __len__(self) -> int:
        return int(self.source.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class Drive:
    """Synthetic input: each burst, `per_burst` neurons get `potential`, walking a fixed random order.

    Burst b drives order[(b-1)*per_burst .. b*per_burst) (mod N), so every neuron is driven once
    every N/per_burst bursts. Backends apply it themselves (the GPU on the device).
    """

    order: np.ndarray  # u32 permutation of the driven neurons
    per_burst: int
    potential: float

    def neurons(self, burst: int) -> np.ndarray:
        n = self.order.shape[0]
        if self.per_burst == 0 or n == 0:
            return self.order[:0]
        start = ((burst - 1) * self.per_burst) % n
        idx = (start + np.arange(self.per_burst, dtype=np.int64)) % n
        return self.order[idx]


@dataclass
class Brain:
    """A whole brain: areas, neurons, synapses, the neuron model each area runs, and provenance.

    `populations` lists, per neuron model present, the areas that run it and its parameters; by
    default every area runs FEAGI's LIF with the genome's parameters (`neurons.params`).
    `plasticity` lists the plastic area pairs STDP changes the weights of (empty: static weights).
    """

    name: str
    areas: list[CorticalArea]
    neurons: NeuronArray
    synapses: SynapseArray
    power_neuron: int | None = None
    drive: Drive | None = None
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""
    populations: list[NeuronPopulation] = field(default_factory=list)
    plasticity: list[Any] = field(default_factory=list)  # genome.plasticity.PlasticPair per plastic area pair

    def __post_init__(self) -> None:
        if not self.populations:
            lif = get_model(DEFAULT_MODEL)
            params = {p.name: self.neurons.params[p.name] for p in lif.params} if self.neurons.params \
                else lif.defaults(len(self.neurons))
            self.populations = [NeuronPopulation(lif, tuple(a.index for a in self.areas), params,
                                           merge_ranges([(0, len(self.neurons))]))]
        self._lookup: Any = None
        self._tables: list[ParamTable] | None = None

    @property
    def neuron_count(self) -> int:
        return len(self.neurons)

    @property
    def synapse_count(self) -> int:
        return len(self.synapses)

    def area(self, cortical_id: str) -> CorticalArea:
        """The area with this cortical id (as written or decoded), core alias or name; KeyError names the known ids."""
        if self._lookup is None or len(self._lookup.ids) != len(self.areas):
            from feagi_burst.genome.ids import AreaLookup  # noqa: PLC0415 (the genome room imports brain)

            self._lookup = AreaLookup([a.cortical_id for a in self.areas], [a.name for a in self.areas])
        i = self._lookup.get(cortical_id)
        if i is None:
            known = ", ".join(a.cortical_id for a in self.areas[:20])
            raise KeyError(f"unknown cortical area {cortical_id!r} (known: {known})")
        return self.areas[i]

    def describe(self, ids: np.ndarray) -> list[tuple[str, int, int, int]]:
        """(cortical id, x, y, z) for each neuron id."""
        ids = np.asarray(ids, dtype=np.int64)
        n = self.neurons
        area = n.cortical_area[ids]
        return [(self.areas[a].cortical_id, int(x), int(y), int(z))
                for a, x, y, z in zip(area.tolist(), n.x[ids].tolist(), n.y[ids].tolist(), n.z[ids].tolist())]

    # -- neuron models --------------------------------------------------------------------
    def param_tables(self) -> list[ParamTable]:
        """Each population's ParamTable (built once)."""
        if self._tables is None or len(self._tables) != len(self.populations):
            whole = len(self.populations) == 1
            self._tables = [ParamTable(p.params, self.neurons.cortical_area, len(self.areas),
                                       None if whole else p.ids()) for p in self.populations]
        return self._tables

    def population_of_area(self) -> np.ndarray:
        """u8 [areas]: the index in `populations` of each area's model."""
        out = np.zeros(len(self.areas), np.uint8)
        for k, p in enumerate(self.populations):
            out[list(p.areas)] = k
        return out

    def model_of(self, area_index: int) -> str:
        """The name of the neuron model an area runs."""
        return self.populations[int(self.population_of_area()[area_index])].model.name

    def state_vars(self) -> list[tuple[str, NeuronPopulation, StateVar]]:
        """(name in NeuronState, population, variable) for every state variable of every model present."""
        return [(state_key(p.model, v), p, v) for p in self.populations for v in p.model.state]

    def initial_state(self) -> NeuronState:
        """Every model's state at burst 0."""
        n = self.neuron_count
        values: dict[str, np.ndarray] = {}
        for pop, table in zip(self.populations, self.param_tables()):
            arrays = {v.name: np.full(n, v.initial, DTYPES[v.dtype]) for v in pop.model.state}
            pop.model.init_state(table, pop.ids(), arrays)
            values.update({state_key(pop.model, v): arrays[v.name] for v in pop.model.state})
        return NeuronState(values, 0)


@dataclass
class NeuronState:
    """Dynamic per-neuron state: one full-length array per state variable of each model present,
    named '<model>.<variable>' (e.g. 'feagi_lif.mp'); `burst` is the last burst processed.
    `plastic` holds the synaptic weights STDP changes and its last-fire stamps, when the brain has
    plastic pairs (feagi_burst.plasticity.PlasticState; None otherwise).

    A variable whose short name is unique also reads as `state["mp"]` or `state.mp`.
    """

    values: dict[str, np.ndarray]
    burst: int = 0
    # the learned synaptic state of a brain with plastic pairs (feagi_burst.plasticity.PlasticState)
    plastic: Any = None

    def copy(self) -> NeuronState:
        return NeuronState({k: v.copy() for k, v in self.values.items()}, self.burst,
                           None if self.plastic is None else self.plastic.copy())

    def key(self, name: str) -> str:
        """The full name of a variable given by its full or unique short name."""
        if name in self.values:
            return name
        hits = [k for k in self.values if k.split(".", 1)[-1] == name]
        if len(hits) != 1:
            raise KeyError(f"no state variable {name!r}" if not hits else
                           f"state variable {name!r} is ambiguous: {', '.join(hits)}")
        return hits[0]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[self.key(name)]

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("__") or "values" not in self.__dict__:
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None


def neuron_array(n: int) -> NeuronArray:
    """A NeuronArray of n neurons with FEAGI's default parameters (all in area 0 at 0,0,0)."""
    return NeuronArray(cortical_area=np.zeros(n, np.uint16), x=np.zeros(n, COORD_DTYPE),
                       y=np.zeros(n, COORD_DTYPE), z=np.zeros(n, COORD_DTYPE),
                       params=get_model(DEFAULT_MODEL).defaults(n))


def sort_synapses(source: np.ndarray, target: np.ndarray, weight: np.ndarray,
                  inhibitory: np.ndarray) -> SynapseArray:
    """A SynapseArray sorted by source, keeping the given order within one source."""
    order = np.argsort(source, kind="stable")
    return SynapseArray(source=np.ascontiguousarray(source[order], np.uint32),
                        target=np.ascontiguousarray(target[order], np.uint32),
                        weight=np.ascontiguousarray(weight[order], np.float32),
                        inhibitory=np.ascontiguousarray(inhibitory[order], bool))
