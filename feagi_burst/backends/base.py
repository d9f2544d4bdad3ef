"""The one small interface every backend implements, and the data that crosses it."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables

# `plasticity` is STDP (SPEC.md step 5), after the fire set is out; 0 for a brain without plastic pairs
PHASES = ("input", "synaptic_propagation", "neural_dynamics", "output", "plasticity")


def _empty(dtype: type) -> np.ndarray:
    a = np.zeros(0, dtype)
    a.flags.writeable = False
    return a


# shared by every burst without stimulation (most of them): four fresh arrays a burst cost ~3 µs
NO_IDS, NO_VALUES = _empty(np.uint32), _empty(np.float32)


@dataclass
class BurstInput:
    """External stimulation for one burst, already resolved to neuron ids.

    `potential_ids` are unique, with `potential` the f32 sum of everything staged for each;
    `forced_ids` are unique, with `forced_mp` the firing mp recorded for a forced-only spike.
    The power neuron and a synthetic Drive are not here: backends apply them from the Brain.
    """

    burst: int
    potential_ids: np.ndarray = field(default_factory=lambda: NO_IDS)
    potential: np.ndarray = field(default_factory=lambda: NO_VALUES)
    forced_ids: np.ndarray = field(default_factory=lambda: NO_IDS)
    forced_mp: np.ndarray = field(default_factory=lambda: NO_VALUES)

    @property
    def empty(self) -> bool:
        return self.potential_ids.size == 0 and self.forced_ids.size == 0


@dataclass
class BurstResult:
    """What one burst produced: the fire set (sorted ids), their firing mp, and phase timings (s)."""

    burst: int
    fired: np.ndarray  # u32, sorted
    mp: np.ndarray  # f32
    timings: dict[str, float] = field(default_factory=dict)
    candidates: int = 0

    @property
    def spike_count(self) -> int:
        return int(self.fired.size)


class BackendError(RuntimeError):
    """A backend could not do what was asked (no adapter, device lost, out of memory...)."""


class Backend(ABC):
    """Holds a brain's data where it computes, and runs bursts on it.

    Bursts are submitted in order; `collect` returns the finished ones in order. A backend may
    finish bursts later than they were submitted (the GPU pipelines them); `process_burst` is the
    blocking form for closed-loop use.
    """

    name: str = "backend"
    # True when the state lives in host memory, so a fault cannot lose it: the engine then keeps
    # no replay log and never falls back from it
    host_resident: bool = False

    @abstractmethod
    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        """Set up persistent data for `brain` (called again when the brain changes)."""

    @abstractmethod
    def submit(self, inp: BurstInput) -> None:
        """Start burst `inp.burst` (it must be the burst after the last one submitted)."""

    @abstractmethod
    def collect(self, wait: bool = True) -> list[BurstResult]:
        """Results of finished bursts, oldest first; with wait, every submitted burst is finished."""

    @abstractmethod
    def state(self) -> NeuronState:
        """Every model's state variables after the last submitted burst (waits for it)."""

    @abstractmethod
    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        """Continue from `state`, whose last burst fired `last_fired` with firing mp `last_mp`."""

    @abstractmethod
    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mp) fired by the last submitted burst: what the next burst propagates."""

    def plastic_state(self) -> object | None:
        """The STDP state after the last submitted burst (feagi_burst.plasticity.PlasticState), or
        None for a brain without plastic synapses. Backends may read only that, not the neurons."""
        return self.state().plastic

    def process_burst(self, inp: BurstInput) -> BurstResult:
        """Run one burst and return its result (blocking)."""
        self.submit(inp)
        return self.collect(wait=True)[-1]

    def backend_name(self) -> str:
        return self.name

    def close(self) -> None:
        """Release what the backend holds."""
