"""The brain as flat arrays: what a genome (or the synthetic builder) expands into.

Data flows one way: genome -> Brain -> backend -> BurstResult -> reports. A Brain is immutable
model description; the dynamic state (membrane potentials, refractory blocks) lives in
`NeuronState`, owned by a backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Compact dtypes: a neuron costs 31 bytes of parameters + 10 of state, a synapse 10 bytes.
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
    """Per-neuron parameters, struct of arrays; index = neuron id."""

    threshold: np.ndarray  # f32
    threshold_limit: np.ndarray  # f32, 0 = none
    leak: np.ndarray  # f32
    refractory_period: np.ndarray  # u16
    excitability: np.ndarray  # f32
    cfc_limit: np.ndarray  # u16, 0 = none
    snooze: np.ndarray  # u16
    mp_accumulate: np.ndarray  # bool
    cortical_area: np.ndarray  # u16, index into Brain.areas
    x: np.ndarray  # u16
    y: np.ndarray  # u16
    z: np.ndarray  # u16

    def __len__(self) -> int:
        return int(self.threshold.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, f).nbytes for f in self.__dataclass_fields__)


@dataclass
class SynapseArray:
    """Per-synapse data, sorted by source (stable). psp is the source area's `CorticalArea.psp`."""

    source: np.ndarray  # u32
    target: np.ndarray  # u32
    weight: np.ndarray  # u8, 0..255
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
    """A whole brain: areas, neurons, synapses and where they came from."""

    name: str
    areas: list[CorticalArea]
    neurons: NeuronArray
    synapses: SynapseArray
    power_neuron: int | None = None
    drive: Drive | None = None
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def neuron_count(self) -> int:
        return len(self.neurons)

    @property
    def synapse_count(self) -> int:
        return len(self.synapses)

    def area(self, cortical_id: str) -> CorticalArea:
        """The area with this cortical id; KeyError names the known ids."""
        for a in self.areas:
            if a.cortical_id == cortical_id:
                return a
        known = ", ".join(a.cortical_id for a in self.areas[:20])
        raise KeyError(f"unknown cortical area {cortical_id!r} (known: {known})")

    def describe(self, ids: np.ndarray) -> list[tuple[str, int, int, int]]:
        """(cortical id, x, y, z) for each neuron id."""
        ids = np.asarray(ids, dtype=np.int64)
        n = self.neurons
        area = n.cortical_area[ids]
        return [(self.areas[a].cortical_id, int(x), int(y), int(z))
                for a, x, y, z in zip(area.tolist(), n.x[ids].tolist(), n.y[ids].tolist(), n.z[ids].tolist())]


@dataclass
class NeuronState:
    """Dynamic per-neuron state.

    `blocked_until[i] = B` means neuron i discards input at bursts up to and including B; a value
    below the current burst that is not 0 marks a block that ended and whose consecutive-fire
    reset has not been applied yet (it is applied lazily, when the neuron is next touched).
    """

    mp: np.ndarray  # f32
    cfc_count: np.ndarray  # u16
    blocked_until: np.ndarray  # u32
    burst: int = 0  # last burst processed

    @classmethod
    def zeros(cls, n: int) -> NeuronState:
        return cls(np.zeros(n, np.float32), np.zeros(n, np.uint16), np.zeros(n, np.uint32), 0)

    def copy(self) -> NeuronState:
        return NeuronState(self.mp.copy(), self.cfc_count.copy(), self.blocked_until.copy(), self.burst)


def neuron_array(n: int) -> NeuronArray:
    """A NeuronArray of n neurons with FEAGI's default parameters (all in area 0 at 0,0,0)."""
    return NeuronArray(
        threshold=np.ones(n, np.float32),
        threshold_limit=np.zeros(n, np.float32),
        leak=np.zeros(n, np.float32),
        refractory_period=np.zeros(n, np.uint16),
        excitability=np.full(n, 100.0, np.float32),
        cfc_limit=np.zeros(n, np.uint16),
        snooze=np.zeros(n, np.uint16),
        mp_accumulate=np.zeros(n, bool),
        cortical_area=np.zeros(n, np.uint16),
        x=np.zeros(n, COORD_DTYPE),
        y=np.zeros(n, COORD_DTYPE),
        z=np.zeros(n, COORD_DTYPE),
    )


def sort_synapses(source: np.ndarray, target: np.ndarray, weight: np.ndarray,
                  inhibitory: np.ndarray) -> SynapseArray:
    """A SynapseArray sorted by source, keeping the given order within one source."""
    order = np.argsort(source, kind="stable")
    return SynapseArray(source=np.ascontiguousarray(source[order], np.uint32),
                        target=np.ascontiguousarray(target[order], np.uint32),
                        weight=np.ascontiguousarray(weight[order], np.uint8),
                        inhibitory=np.ascontiguousarray(inhibitory[order], bool))
