"""Add your own neuron model: a quadratic integrate-and-fire (QIF) cell, in one file plus its WGSL.

A model declares its parameters and state variables, steps a set of neurons on the CPU in numpy,
and does the very same f32 operations in WGSL (my_model.wgsl, beside this file) for the GPU. Then
`register_model` makes it a `type` for brain.toml's [[model]] tables and for `assign_model`.

    tau dv/dt = k (v - v_rest)(v - v_crit) + I       fire at v >= v_peak, then v = v_reset

one forward Euler step per burst. Run it with `.venv/bin/python examples/my_model.py [--gpu]`: it puts the
essential genome's motor area (8 neurons) on this model and prints how often each fires under a
current that grows from voxel to voxel.

The rules that keep the CPU and the GPU bit for bit equal (see feagi_burst/models/base.py):
- use +, -, *, comparisons, min/max only; no division (the host computes 1/tau: `_host`), no
  exp/log/pow (build them from those operations: feagi_burst/models/expf32.py);
- compute host values once, in f32, in one place used by both `step` and `gpu_row`;
- do the operations in the same order on both sides, one at a time (numpy: one statement each);
- in WGSL pass every +, -, * result through `opaque()` before another operation uses it, so the
  shader compiler can neither fuse `x*y + z` into an fma nor regroup a sum.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from feagi_burst.engine import Engine, load_brain
from feagi_burst.models import register_model
from feagi_burst.models.assign import assign_model
from feagi_burst.models.base import NeuronModel, Param, ParamTable, StateVar, StepContext

F = np.float32
HERE = Path(__file__).resolve().parent


class QIF(NeuronModel):
    name = "qif"  # the `type` in brain.toml
    title = "quadratic integrate-and-fire"
    params: ClassVar[tuple[Param, ...]] = (  # name, dtype, default, allowed range, what it is
        Param("tau_ms", "f32", 10.0, 0.1, 1000.0, "membrane time constant (ms)"),
        Param("k", "f32", 0.1, 0.001, 10.0, "curvature (1/mV)"),
        Param("v_rest", "f32", -65.0, -200.0, 100.0, "stable fixed point (mV)"),
        Param("v_crit", "f32", -50.0, -200.0, 100.0, "unstable fixed point: the threshold (mV)"),
        Param("v_peak", "f32", 30.0, -100.0, 200.0, "spike cut-off (mV)"),
        Param("v_reset", "f32", -70.0, -200.0, 100.0, "v after a spike (mV)"),
        Param("dt_ms", "f32", 1.0, 0.001, 10.0, "ms per burst"),
        Param("input_gain", "f32", 1.0, -1e6, 1e6, "I = summed input * input_gain (mV)"),
    )
    state: ClassVar[tuple[StateVar, ...]] = (StateVar("v", "f32", -65.0, "membrane potential (mV)"),)
    integrates_all = True  # every neuron is stepped every burst, input or not (input 0 if none)
    wgsl = str(HERE / "my_model.wgsl")  # a shader file beside this one (built-in models: "models/x.wgsl")
    gpu_row_words = 7

    def init_state(self, params: ParamTable, ids: np.ndarray, state: dict[str, np.ndarray]) -> None:
        state["v"][ids] = params.gather("v_rest", ids)  # start at rest

    @staticmethod
    def _host(p: ParamTable, ids: np.ndarray, area: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The f32 values both backends use: h = dt/tau is computed here once, never on the GPU."""
        g = {n: np.asarray(p.gather(n, ids, area), F) for n in
             ("k", "v_rest", "v_crit", "v_peak", "v_reset", "input_gain", "dt_ms", "tau_ms")}
        g["h"] = g["dt_ms"] * (F(1) / g["tau_ms"])
        return g

    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """One burst for ctx.ids; returns the positions in ctx.ids that fired and their firing mp."""
        q = self._host(ctx.params, ctx.ids, ctx.area)
        v = ctx.state["v"][ctx.ids]
        i_in = ctx.input * q["input_gain"]
        t = q["k"] * (v - q["v_rest"])
        t = t * (v - q["v_crit"])
        t = t + i_in
        v = v + q["h"] * t
        fired = np.flatnonzero(v >= q["v_peak"])
        mp = v[fired]
        v[fired] = q["v_reset"] if np.ndim(q["v_reset"]) == 0 else q["v_reset"][fired]
        ctx.state["v"][ctx.ids] = v
        return fired, mp

    def gpu_row(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """The words my_model.wgsl reads with model_word(id, k): h, k, v_rest, v_crit, v_peak,
        v_reset, input_gain (f32 bits)."""
        q = self._host(params, ids)
        rows = np.zeros((ids.size, self.gpu_row_words), np.uint32)
        for j, name in enumerate(("h", "k", "v_rest", "v_crit", "v_peak", "v_reset", "input_gain")):
            rows.view(F)[:, j] = q[name]
        return rows


register_model(QIF())


def main(bursts: int = 200, backend: str = "cpu") -> list[int]:
    brain = load_brain(HERE / "essential_genome.json", warn=None)
    brain = assign_model(brain, ["o__mot"], "qif", tau_ms=10.0, k=0.1)  # or [[model]] type = "qif"
    motor = brain.area("o__mot")
    ids = np.arange(motor.first_neuron, motor.neuron_stop)
    current = np.linspace(4.0, 25.0, ids.size)  # mV: from below the rheobase (5.6 here) upwards
    engine = Engine(brain, backend=backend, warn=None)
    for b in range(1, bursts + 1):
        engine.stage_potential(ids, current, burst=b)
    counts = np.zeros(ids.size, int)
    engine.run(bursts, on_result=lambda r: np.add.at(counts, r.fired[np.isin(r.fired, ids)] - ids[0], 1))
    print(f"on {engine.backend_name()}:")
    for i, n in zip(current, counts):
        print(f"I = {i:5.2f} mV: {n:3d} spikes in {bursts} bursts")
    engine.close()
    return counts.tolist()


if __name__ == "__main__":
    import sys

    cpu = main()
    if "--gpu" in sys.argv:  # the same model on the GPU, through my_model.wgsl: the same spikes
        assert main(backend="gpu") == cpu
        print("GPU == CPU")
