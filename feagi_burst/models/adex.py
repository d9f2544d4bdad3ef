"""Adaptive exponential integrate-and-fire (Brette & Gerstner 2005), forward Euler, sub-stepped.

    C dV/dt = -g_L (V - E_L) + g_L Delta_T exp((V - V_T) / Delta_T) - w + I
    tau_w dw/dt = a (V - E_L) - w
    at V >= V_cut: V = V_r, w = w + b

Units as in Naud et al. 2008: C pF, g_L and a nS, E_L, V_T, Delta_T, V_r, V_cut mV, tau_w ms,
b, w and I pA (nS * mV = pA, pA / pF = mV/ms). Each burst is `dt_ms`, integrated in `n_substeps`
forward Euler steps of h = dt_ms / n_substeps; V and w are both updated from the old values, then
V is tested against V_cut (and reset) after every sub-step. A neuron fires in a burst when it
crosses V_cut in any of its sub-steps; its firing mp is V at the first crossing (V as the step
left it: the exponential can carry it far past V_cut). Crossing twice in one burst is one fire
(the engine's fire set has one entry per neuron per burst); both resets are applied.

I = the burst's summed input (SPEC.md section 2, step 1) * input_gain, held for the burst.

No division on the GPU (Vulkan allows 2.5 ulp): the host computes, in f32 and once, inv_dt =
1/Delta_T, gl_dt = g_L*Delta_T, hc = h*(1/C), hw = h*(1/tau_w) with h = dt_ms/n_substeps
(`_host`, shared by `step` and `gpu_row`). exp is `exp_f32` (models/expf32.py), built from
correctly rounded operations. One sub-step, in this f32 order on both backends:

    x  = min((V - V_T) * inv_dt, 60)        e = exp_f32(x)
    s  = g_L * (E_L - V);  s = s + gl_dt * e;  s = s - w;  s = s + I
    dw = a * (V - E_L);    dw = dw - w
    V  = V + hc * s;  w = w + hw * dw;  both clamped to +-1e9

Fused multiply-add and regrouping: numpy rounds every operation on its own and never fuses, but a
GPU compiler may turn `x*y + z` into one fma (NVIDIA does; one rounding instead of two: other
bits), and Mesa's compilers may also regroup sums. shaders/models/adex.wgsl therefore passes every
+, -, * result through `opaque()` (common.wgsl: a bitcast XOR with a zero the compiler cannot see)
before another operation uses it. The exponent is capped at 60 (V is then far
past any V_cut for any sensible parameters: only the firing mp of that sub-step can differ from
an uncapped exp) and V, w are clamped to +-1e9: nothing can overflow to inf or NaN.

Initial state: V = V0, or E_L when V0 is not given (V0 = V0_FROM_EL, outside V0's range, marks
that); w = w0 (default 0).

A forced fire (stimulation in fire mode) puts the neuron in the fire set and leaves its state
alone. An area with mp-driven psp passes on its firing mp clamped to +-100 (`mp_cap`'s default).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from feagi_burst.models.base import NeuronModel, Param, ParamTable, StateVar, StepContext
from feagi_burst.models.expf32 import exp_f32
from feagi_burst.models.stepping import at, clamp_, prepared

F = np.float32
LIMIT = F(1e9)  # |V|, |w| and |I| are clamped to this (an f32 overflow guard)
X_MAX = F(60.0)  # cap of the exponent (V - V_T) / Delta_T
V0_FROM_EL = 1e30  # V0's default: V starts at E_L


class AdEx(NeuronModel):
    name = "adex"
    title = "AdEx (Brette & Gerstner 2005)"
    # defaults: Brette & Gerstner 2005's cell, with V_cut = 0 mV
    params: ClassVar[tuple[Param, ...]] = (
        Param("C", "f32", 281.0, 1.0, 1e5, "membrane capacitance (pF)"),
        Param("g_L", "f32", 30.0, 0.0, 1e4, "leak conductance (nS)"),
        Param("E_L", "f32", -70.6, -200.0, 100.0, "leak reversal potential (mV)"),
        Param("V_T", "f32", -50.4, -200.0, 100.0, "threshold potential (mV)"),
        Param("Delta_T", "f32", 2.0, 0.01, 100.0, "slope factor (mV)"),
        Param("a", "f32", 4.0, -1e4, 1e4, "subthreshold adaptation (nS)"),
        Param("tau_w", "f32", 144.0, 0.01, 1e6, "adaptation time constant (ms)"),
        Param("b", "f32", 80.5, -1e5, 1e5, "spike-triggered adaptation (pA)"),
        Param("V_r", "f32", -70.6, -200.0, 100.0, "reset potential (mV)"),
        Param("V_cut", "f32", 0.0, -200.0, 200.0, "spike detection: fires at V >= V_cut (mV)"),
        Param("dt_ms", "f32", 1.0, 0.001, 10.0, "ms per burst"),
        Param("n_substeps", "u16", 10, 1, 1000, "Euler steps per burst"),
        Param("input_gain", "f32", 1.0, -1e6, 1e6, "I (pA) = summed input * input_gain"),
        Param("V0", "f32", V0_FROM_EL, -200.0, 100.0, "initial V (mV); not given: E_L"),
        Param("w0", "f32", 0.0, -1e5, 1e5, "initial w (pA)"),
    )
    state: ClassVar[tuple[StateVar, ...]] = (
        StateVar("V", "f32", -70.6, "membrane potential (mV)"),
        StateVar("w", "f32", 0.0, "adaptation current (pA)"),
    )
    integrates_all = True
    wgsl = "models/adex.wgsl"
    gpu_row_words = 13
    ROW = ("g_L", "E_L", "V_T", "inv_dt", "gl_dt", "a", "b", "V_r", "V_cut", "hc", "hw", "gain", "n")

    def init_state(self, params: ParamTable, ids: np.ndarray, state: dict[str, np.ndarray]) -> None:
        v0 = np.broadcast_to(np.asarray(params.gather("V0", ids), F), ids.shape)
        el = np.broadcast_to(np.asarray(params.gather("E_L", ids), F), ids.shape)
        state["V"][ids] = np.where(v0 == F(V0_FROM_EL), el, v0)
        state["w"][ids] = np.asarray(params.gather("w0", ids), F)

    @staticmethod
    def _host(p: ParamTable, ids: np.ndarray, area: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The f32 values both backends compute with, reciprocals included (f32 divisions here only)."""
        def g(name: str) -> np.ndarray:
            return np.asarray(p.gather(name, ids, area), F)
        n = np.asarray(p.gather("n_substeps", ids, area), np.uint32)
        h = g("dt_ms") / n.astype(F)
        return {"g_L": g("g_L"), "E_L": g("E_L"), "V_T": g("V_T"), "inv_dt": F(1) / g("Delta_T"),
                "gl_dt": g("g_L") * g("Delta_T"), "a": g("a"), "b": g("b"), "V_r": g("V_r"), "V_cut": g("V_cut"),
                "hc": h * (F(1) / g("C")), "hw": h * (F(1) / g("tau_w")), "gain": g("input_gain"), "n": n,
                "n_min": int(np.min(n))}

    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """One burst for ctx.ids, in the documented order (in-place numpy: `s *= g_L` is g_L*s, one
        rounding per operation; x*y == y*x exactly)."""
        k, where = prepared(ctx.params, ctx.ids, ctx.area, self.name, self._host)
        V = ctx.state["V"][where]  # a view when the population is one id range
        w = ctx.state["w"][where]
        i_in = clamp_(np.multiply(ctx.input, k["gain"], dtype=F), LIMIT)
        fired = np.zeros(V.size, bool)
        mp = np.zeros(V.size, F)
        x, s, dw = np.empty_like(V), np.empty_like(V), np.empty_like(V)
        n = k["n"]
        for j in range(int(np.max(n))):
            # neurons whose sub-step count is done keep their values (counts may differ per neuron)
            live = None if np.ndim(n) == 0 or j < k["n_min"] else n > j
            np.subtract(V, k["V_T"], out=x)
            x *= k["inv_dt"]
            np.minimum(x, X_MAX, out=x)
            e = exp_f32(x)
            np.subtract(k["E_L"], V, out=s)
            s *= k["g_L"]
            e *= k["gl_dt"]
            s += e
            s -= w
            s += i_in
            np.subtract(V, k["E_L"], out=dw)  # from the old V and w, like s
            dw *= k["a"]
            dw -= w
            s *= k["hc"]
            dw *= k["hw"]
            np.add(V, s, out=V, where=live if live is not None else True)
            np.add(w, dw, out=w, where=live if live is not None else True)
            clamp_(V, LIMIT)
            clamp_(w, LIMIT)
            spike = V >= k["V_cut"]
            if live is not None:
                spike &= live
            hit = np.flatnonzero(spike)
            if hit.size:
                first = hit[~fired[hit]]
                mp[first] = V[first]  # the first crossing of the burst is its firing mp
                fired[hit] = True
                V[hit] = at(k["V_r"], hit)
                w[hit] += at(k["b"], hit)
        if not isinstance(where, slice):
            ctx.state["V"][where] = V
            ctx.state["w"][where] = w
        pos = np.flatnonzero(fired)
        return pos, mp[pos]

    # -- GPU: shaders/models/adex.wgsl reads these words -----------------------------------------
    def gpu_row(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """g_L, E_L, V_T, 1/Delta_T, g_L*Delta_T, a, b, V_r, V_cut, h/C, h/tau_w, input_gain (f32
        bits), n_substeps (u32)."""
        k = self._host(params, ids)
        rows = np.zeros((ids.size, self.gpu_row_words), np.uint32)
        rf = rows.view(F)
        for j, name in enumerate(self.ROW[:-1]):
            rf[:, j] = k[name]
        rows[:, 12] = k["n"]
        return rows
