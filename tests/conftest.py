"""Shared fixtures: small real genomes, FEAGI's recordings, a way to replay them, a backend that fails on
cue and crafted checkpoint files."""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.backends.cpu import CPUBackend
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.engine import Engine
from feagi_burst.fixed_point import SynapseTables

# backend="auto" may measure the machine and cache the result (feagi_burst.calibration): tests and the
# commands they start use a cache of their own, never the user's
os.environ["FEAGI_BURST_CACHE_DIR"] = tempfile.mkdtemp(prefix="feagi-burst-test-cache-")
atexit.register(shutil.rmtree, os.environ["FEAGI_BURST_CACHE_DIR"], True)

DATA = Path(__file__).parent / "data"
REFERENCE = DATA / "feagi-reference"
GENOMES = DATA / "genomes"
PROBES = sorted(p.name.split(".")[0] for p in REFERENCE.glob("*.feagi.json"))


def load_recording(name: str) -> dict[int, dict[tuple[str, int, int, int], float]]:
    """FEAGI's fire queue: burst -> {(cortical id, x, y, z): firing mp}."""
    rec = json.loads((REFERENCE / f"{name}.feagi.json").read_text())
    return {int(b): {(a, x, y, z): mp for a, x, y, z, mp, _nid in entries} for b, entries in rec["bursts"].items()}


def feagi_ids(name: str) -> dict[str, int]:
    """The first FEAGI neuron id seen for each area (what excitability draws hash)."""
    rec = json.loads((REFERENCE / f"{name}.feagi.json").read_text())
    first: dict[str, int] = {}
    for entries in rec["bursts"].values():
        for a, x, y, z, _mp, nid in entries:
            first[a] = min(first.get(a, nid), nid)
    return first


def stimulus(name: str) -> list[dict[str, Any]]:
    path = REFERENCE / f"{name}.stimulus.json"
    return json.loads(path.read_text()) if path.exists() else []


def replay(engine: Engine, bursts: int) -> dict[int, dict[tuple[str, int, int, int], float]]:
    """Run `bursts` bursts and return the fire sets in the recording's shape."""
    out: dict[int, dict[tuple[str, int, int, int], float]] = {}

    def keep(r: Any) -> None:
        out[r.burst] = dict(zip(engine.brain.describe(r.fired), r.mp.astype(float).tolist()))
    engine.run(bursts, on_result=keep)
    return out


@pytest.fixture(scope="session")
def gpu_backend() -> Any:
    """One GPUBackend shared by the session (engines reload brains into it; never close it).

    A missing adapter fails: GPU tests must not pass vacuously. FEAGI_BURST_ALLOW_NO_GPU=1 skips.
    """
    from feagi_burst.backends.base import BackendError
    from feagi_burst.backends.wgpu import GPUBackend

    try:
        backend = GPUBackend()
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise
    yield backend
    backend.close()


def assert_same_bursts(a: list[Any], b: list[Any]) -> None:
    """Two lists of BurstResult are identical: fire sets and firing mp bit for bit."""
    assert [r.burst for r in a] == [r.burst for r in b]
    for ra, rb in zip(a, b):
        np.testing.assert_array_equal(ra.fired, rb.fired, err_msg=f"burst {ra.burst}")
        np.testing.assert_array_equal(ra.mp.view(np.uint32), rb.mp.view(np.uint32), err_msg=f"burst {ra.burst}")


def brain_of(engine: Engine) -> Brain:
    return engine.brain


def tiny_brain(n: int, synapses: list[tuple[int, int, int, bool]] = (), power: int | None = None,
               psp: float = 1.0, psp_uniform: bool = False, mp_driven_psp: bool = False, **params: Any) -> Brain:
    """A one-area brain of n neurons for rule tests; params override NeuronArray fields (scalar or list)."""
    from feagi_burst.brain import CorticalArea, neuron_array, sort_synapses

    na = neuron_array(n)
    na.x[:] = np.arange(n)
    for key, value in params.items():
        getattr(na, key)[:] = value
    s = np.array(synapses, dtype=np.int64).reshape(-1, 4)
    syn = sort_synapses(s[:, 0].astype(np.uint32), s[:, 1].astype(np.uint32), s[:, 2].astype(np.uint8),
                        s[:, 3].astype(bool))
    area = CorticalArea(0, "test01", "test", (n, 1, 1), 1, 0, psp=psp, psp_uniform=psp_uniform,
                        mp_driven_psp=mp_driven_psp)
    return Brain("tiny", [area], na, syn, power_neuron=power)


class FaultyBackend(Backend):
    """A stand-in accelerator: correct bursts from a CPU backend inside, until it fails at `fail_at`.

    Results come back late (up to `lag` bursts behind), as a pipelined GPU's do, so the fault
    arrives while bursts are in flight.
    """

    name = "faulty accelerator"

    def __init__(self, fail_at: int, lag: int = 3) -> None:
        self.inner, self.fail_at, self.lag = CPUBackend(), fail_at, lag
        self.pending: list[BurstResult] = []
        self.closed = False

    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        self.inner.load(brain, tables, seed)

    def submit(self, inp: BurstInput) -> None:
        if inp.burst == self.fail_at:
            raise BackendError("device lost (injected)")
        self.inner.submit(inp)
        self.pending += self.inner.collect()

    def collect(self, wait: bool = True) -> list[BurstResult]:
        keep = 0 if wait else self.lag
        done, self.pending = self.pending[: max(0, len(self.pending) - keep)], self.pending[max(0, len(self.pending) - keep):]
        return done

    def state(self) -> NeuronState:
        return self.inner.state()

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        self.inner.set_state(state, last_fired, last_mp)

    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.last_fire_set()

    def close(self) -> None:
        self.closed = True


def checkpoint_arrays(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A checkpoint's arrays and its decoded `meta`, to craft a changed copy with `write_checkpoint`."""
    with np.load(path) as z:
        arrays = dict(z)
    return arrays, json.loads(arrays["meta"].tobytes())


def write_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None) -> None:
    """Write a crafted checkpoint .npz: `arrays`, with `meta` encoded as the engine writes it (JSON
    bytes as u1) when given."""
    if meta is not None:
        arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)}
    np.savez(path, **arrays)
