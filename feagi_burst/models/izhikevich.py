"""Izhikevich (2003) simple model, integrated exactly as the paper's `net.m`, one step per burst.

    dv/dt = 0.04 v^2 + 5 v + 140 - u + I        du/dt = a (b v - u)
    if v >= 30 mV: v = c, u = u + d

Per burst, with h = 0.5 * dt_ms (the paper: dt = 1 ms, v in two 0.5 ms half-steps "for numerical
stability", then u in one step):

    v += h * ((0.04 v + 5) v + 140 - u + I)       twice
    u += (dt_ms * a) * (b v - u)                   (with the new v)
    fire when v >= 30: firing mp = v (its value then, often far above 30), v = c, u += d

This is net.m's order: its `fired = find(v >= 30)` at the top of step t sees v as step t-1 left
it, and the spikes of t-1 reach their targets in step t, as a spike of burst b reaches its
targets at burst b+1 here. I is the burst's summed input (SPEC.md section 2, step 1: synapses,
power, potential stimulation) times `input_gain`, in the model's units. Every neuron of the
population is integrated every burst, input or not.

f32 operation order (the WGSL twin, shaders/models/izhikevich.wgsl, does the same, one rounding
per operation): t = 0.04*v; t = t + 5; t = t * v; t = t + 140; t = t - u; t = t + I; t = h*t;
v = v + t. Then t = b*v; t = t - u; t = adt*t; u = u + t, with adt = f32(dt_ms) * f32(a) and
h = 0.5 * f32(dt_ms) computed on the host (`_host`, shared by `step` and `gpu_row`), used as is
by both backends. I = input * input_gain.

Fused multiply-add and regrouping: numpy rounds every operation on its own and never fuses, but a
GPU compiler may turn `x*y + z` into one fma (NVIDIA does; one rounding instead of two: other
bits), and Mesa's compilers may also regroup sums. The WGSL therefore passes every +, -, * result
through `opaque()` (common.wgsl: a bitcast XOR with a zero the compiler cannot see) before another
operation uses it. docs/models-vs-brian2.md shows what goes wrong without it.

Guards that net.m does not have, invisible in any sensible regime: I, v (after each half-step)
and u are clamped to +-1e9, so no value can overflow to inf or NaN (whose handling GPUs do not
guarantee), however large the input.

Initial state: v = v0 (default -65) and u = u0 when given, else u = b*v0 (f32). "Not given" is
u0 = U0_FROM_B (1e30), a value outside u0's allowed range, so it cannot be written by mistake.

A forced fire (stimulation in fire mode) puts the neuron in the fire set and leaves its state
alone. An area with mp-driven psp passes on its firing mp clamped to +-100 (`mp_cap`'s default).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from feagi_burst.models.base import NeuronModel, Param, ParamTable, StateVar, StepContext
from feagi_burst.models.stepping import at, clamp_, prepared

F = np.float32
LIMIT = F(1e9)  # |I|, |v| and |u| are clamped to this (an f32 overflow guard, not part of the paper)
PEAK = F(30.0)
K = F(0.04)
U0_FROM_B = 1e30  # u0's default: u starts at b * v0


class Izhikevich(NeuronModel):
    name = "izhikevich"
    title = "Izhikevich (2003)"
    params: ClassVar[tuple[Param, ...]] = (
        Param("a", "f32", 0.02, -1.0, 1.0, "time scale of u (1/ms)"),
        Param("b", "f32", 0.2, -10.0, 10.0, "sensitivity of u to v"),
        Param("c", "f32", -65.0, -200.0, 100.0, "v after a spike (mV)"),
        Param("d", "f32", 8.0, -1000.0, 1000.0, "u increment at a spike"),
        Param("dt_ms", "f32", 1.0, 0.001, 10.0, "ms per burst"),
        Param("input_gain", "f32", 1.0, -1e6, 1e6, "I = summed input * input_gain"),
        Param("v0", "f32", -65.0, -200.0, 100.0, "initial v (mV)"),
        Param("u0", "f32", U0_FROM_B, -1e6, 1e6, "initial u; not given: b * v0"),
    )
    state: ClassVar[tuple[StateVar, ...]] = (
        StateVar("v", "f32", -65.0, "membrane potential (mV)"),
        StateVar("u", "f32", -13.0, "recovery variable"),
    )
    integrates_all = True
    wgsl = "models/izhikevich.wgsl"
    gpu_row_words = 6

    def init_state(self, params: ParamTable, ids: np.ndarray, state: dict[str, np.ndarray]) -> None:
        v0 = np.broadcast_to(np.asarray(params.gather("v0", ids), F), ids.shape)
        u0 = np.broadcast_to(np.asarray(params.gather("u0", ids), F), ids.shape)
        b = np.asarray(params.gather("b", ids), F)
        state["v"][ids] = v0
        state["u"][ids] = np.where(u0 == F(U0_FROM_B), b * v0, u0)

    @staticmethod
    def _host(p: ParamTable, ids: np.ndarray, area: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The f32 values both backends compute with (the GPU gets them from `gpu_row`)."""
        dt = np.asarray(p.gather("dt_ms", ids, area), F)
        return {"h": F(0.5) * dt, "adt": dt * np.asarray(p.gather("a", ids, area), F),
                "b": np.asarray(p.gather("b", ids, area), F), "c": np.asarray(p.gather("c", ids, area), F),
                "d": np.asarray(p.gather("d", ids, area), F),
                "gain": np.asarray(p.gather("input_gain", ids, area), F)}

    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """One burst for ctx.ids, in the documented order (in-place numpy: `t *= v` is t*v, one
        rounding per operation as before; x*y == y*x exactly)."""
        k, where = prepared(ctx.params, ctx.ids, ctx.area, self.name, self._host)
        v = ctx.state["v"][where]  # a view when the population is one id range
        u = ctx.state["u"][where]
        i_in = clamp_(np.multiply(ctx.input, k["gain"], dtype=F), LIMIT)
        t = np.empty_like(v)
        for _ in range(2):
            np.multiply(K, v, out=t)
            t += F(5.0)
            t *= v
            t += F(140.0)
            t -= u
            t += i_in
            t *= k["h"]
            v += t
            clamp_(v, LIMIT)
        np.multiply(k["b"], v, out=t)
        t -= u
        t *= k["adt"]
        u += t
        clamp_(u, LIMIT)
        pos = np.flatnonzero(v >= PEAK)
        mp = v[pos]
        v[pos] = at(k["c"], pos)
        u[pos] += at(k["d"], pos)
        if not isinstance(where, slice):
            ctx.state["v"][where] = v
            ctx.state["u"][where] = u
        return pos, mp

    # -- GPU: shaders/models/izhikevich.wgsl reads these words ----------------------------------
    def gpu_row(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """h = 0.5*dt_ms, adt = dt_ms*a, b, c, d, input_gain (f32 bits)."""
        k = self._host(params, ids)
        rows = np.zeros((ids.size, self.gpu_row_words), np.uint32)
        rf = rows.view(F)
        for j, name in enumerate(("h", "adt", "b", "c", "d", "gain")):
            rf[:, j] = k[name]
        return rows
