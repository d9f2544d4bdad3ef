"""Izhikevich's 1,000-neuron network (the paper's net.m, 2003) on the Izhikevich model, with a raster.

800 excitatory cells (regular spiking to chattering) and 200 inhibitory ones (fast spiking to
low-threshold spiking), all-to-all synapses with random weights, and a random "thalamic" input
every millisecond, all drawn as net.m draws them, from a fixed seed. Synapses are a SynapseArray
with weight |S| and inhibitory for negative S (psp 1, psp_uniform: a spike adds its weight, not
divided by the fan-out); the thalamic input is staged as potential, burst by burst. One burst is
net.m's 1 ms step. tests/test_models_brian2.py runs the same network in Brian2 and compares.

    .venv/bin/python examples/izhikevich_network.py     # writes out/izhikevich_network.npz and
                                                         # docs/izhikevich_network.png
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from feagi_burst.brain import Brain, CorticalArea, neuron_array, sort_synapses
from feagi_burst.engine import Engine
from feagi_burst.models.assign import assign_model

ROOT = Path(__file__).resolve().parents[1]
N_EXC, N_INH = 800, 200


@dataclass
class NetM:
    """net.m's random draws, f32: per-cell a, b, c, d; S[i, j] the synapse j -> i; thalamic[t, i]."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray
    S: np.ndarray
    thalamic: np.ndarray


def draw(seed: int = 2003, bursts: int = 1000) -> NetM:
    """net.m's parameters, weights and thalamic input (numpy's generator in place of Matlab's)."""
    rng = np.random.default_rng(seed)
    n = N_EXC + N_INH
    re, ri = rng.random(N_EXC), rng.random(N_INH)
    a = np.r_[np.full(N_EXC, 0.02), 0.02 + 0.08 * ri]
    b = np.r_[np.full(N_EXC, 0.2), 0.25 - 0.05 * ri]
    c = np.r_[-65 + 15 * re**2, np.full(N_INH, -65.0)]
    d = np.r_[8 - 6 * re**2, np.full(N_INH, 2.0)]
    S = np.c_[0.5 * rng.random((n, N_EXC)), -rng.random((n, N_INH))]
    thalamic = np.c_[5 * rng.standard_normal((bursts, N_EXC)), 2 * rng.standard_normal((bursts, N_INH))]
    f = np.float32
    return NetM(a.astype(f), b.astype(f), c.astype(f), d.astype(f), S.astype(f), thalamic.astype(f))


def brain_of(net: NetM) -> Brain:
    """Two areas, 'exc' and 'inh', on the Izhikevich model, with every synapse of S."""
    areas = [CorticalArea(0, "exc", "excitatory", (N_EXC, 1, 1), 1, 0, psp_uniform=True),
             CorticalArea(1, "inh", "inhibitory", (N_INH, 1, 1), 1, N_EXC, psp_uniform=True)]
    neurons = neuron_array(N_EXC + N_INH)
    neurons.cortical_area[N_EXC:] = 1
    neurons.x[:] = np.r_[np.arange(N_EXC), np.arange(N_INH)]
    target, source = np.indices(net.S.shape).reshape(2, -1)
    w = net.S.ravel()
    synapses = sort_synapses(source.astype(np.uint32), target.astype(np.uint32), np.abs(w), w < 0)
    brain = Brain("izhikevich-net.m", areas, neurons, synapses)
    return assign_model(brain, ["exc", "inh"], "izhikevich", a=net.a, b=net.b, c=net.c, d=net.d)


def engine_for(net: NetM, backend: str = "cpu") -> Engine:
    """An engine for the network with the whole thalamic input staged, burst by burst."""
    engine = Engine(brain_of(net), backend=backend, warn=None)
    ids = np.arange(N_EXC + N_INH)
    for t, row in enumerate(net.thalamic):
        engine.stage_potential(ids, row, burst=t + 1)
    return engine


def main() -> None:
    from feagi_burst.plot import plot_raster
    from feagi_burst.spike_record import open_recorder

    net = draw()
    engine = engine_for(net)
    record = ROOT / "out" / "izhikevich_network.npz"
    record.parent.mkdir(exist_ok=True)
    recorder = open_recorder(record, engine.brain, force=True)
    counts = np.zeros(N_EXC + N_INH)

    def keep(r: object) -> None:
        recorder.add(r)
        counts[r.fired] += 1  # type: ignore[attr-defined]
    engine.run(len(net.thalamic), on_result=keep)
    recorder.close()
    seconds = len(net.thalamic) / 1000
    print(f"mean rates: excitatory {counts[:N_EXC].mean() / seconds:.2f} Hz, "
          f"inhibitory {counts[N_EXC:].mean() / seconds:.2f} Hz")
    out = ROOT / "docs" / "izhikevich_network.png"
    plot_raster([record], out, force=True,
                title="Izhikevich (2003) net.m: 800 excitatory + 200 inhibitory cells, 1,000 ms")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
