"""Izhikevich, AdEx and exp_f32: CPU steps on known values, their WGSL twins bit for bit, parameters.

The comparisons with a peer simulator are in test_models_brian2.py.
"""
from __future__ import annotations

import hashlib
import os
import re
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from feagi_burst.brain import Brain, CorticalArea, neuron_array, sort_synapses
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.models import get_model
from feagi_burst.models.assign import assign_model, parse_model_specs
from feagi_burst.models.base import StepContext, state_key
from feagi_burst.models.expf32 import EXP_HI, EXP_LO, exp_f32

F = np.float32
ROOT = Path(__file__).resolve().parents[1]
SHADERS = ROOT / "shaders"


# -- helpers (test_models_brian2.py uses them too) ---------------------------------------------------
def area_brain(sizes: list[tuple[str, int]], synapses: tuple[Any, ...] | None = None, name: str = "models") -> Brain:
    """A brain of 1-D areas (cortical id, neurons), FEAGI LIF everywhere; `synapses` is
    (source, target, weight, inhibitory). psp 1 and psp_uniform: a synapse adds its weight."""
    areas, first = [], 0
    for i, (cid, n) in enumerate(sizes):
        areas.append(CorticalArea(i, cid, cid, (n, 1, 1), 1, first, psp=1.0, psp_uniform=True))
        first += n
    na = neuron_array(first)
    for a in areas:
        na.cortical_area[a.first_neuron:a.neuron_stop] = a.index
        na.x[a.first_neuron:a.neuron_stop] = np.arange(a.neuron_count)
    if synapses is None:
        synapses = (np.zeros(0, np.uint32), np.zeros(0, np.uint32), np.zeros(0, np.float32), np.zeros(0, bool))
    src, tgt, w, inh = synapses
    syn = sort_synapses(np.asarray(src, np.uint32), np.asarray(tgt, np.uint32), np.asarray(w, np.float32),
                        np.asarray(inh, bool))
    return Brain(name, areas, na, syn)


def run_with_input(brain: Brain, inputs: np.ndarray, bursts: int) -> tuple[list[list[int]], Engine]:
    """Run on the CPU with `inputs` (one potential per neuron, or [bursts, neurons]) staged every
    burst; returns the bursts at which each neuron fired, and the engine."""
    engine = Engine(brain, backend="cpu", warn=None)
    inputs = np.asarray(inputs, np.float64)
    ids = np.arange(brain.neuron_count)
    for b in range(1, bursts + 1):
        row = inputs if inputs.ndim == 1 else inputs[b - 1]
        engine.stage_potential(ids, row, burst=b)
    fired: list[list[int]] = [[] for _ in ids]
    engine.run(bursts, on_result=lambda r: [fired[i].append(r.burst) for i in r.fired.tolist()])
    return fired, engine


def one_model(model: str, n: int, **params: Any) -> Brain:
    return assign_model(area_brain([("cell", n)]), ["cell"], model, **params)


def step_once(brain: Brain, inputs: np.ndarray, state: dict[str, np.ndarray] | None = None,
              burst: int = 1) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """One CPU step of the brain's last population straight through its model (no engine)."""
    pop, table = brain.populations[-1], brain.param_tables()[-1]
    if state is None:
        st = brain.initial_state()
        state = {v.name: st.values[state_key(pop.model, v)].copy() for v in pop.model.state}
    pos, mp = pop.model.step(StepContext(pop.ids(), np.asarray(inputs, F), burst, 0, table, state,
                                         np.zeros(0, np.int64)))
    return pos, mp, state


def r32(x: float) -> float:
    """Round a Python float (exact here: sums and products of two f32) to f32."""
    return float(F(x))


# -- exp_f32 -------------------------------------------------------------------------------------------
def test_exp_f32_is_within_one_ulp_of_exp() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-87, 88, 400_001, dtype=F), rng.uniform(-87, 88, 200_000).astype(F),
                        rng.uniform(-1, 1, 100_000).astype(F), F([0.0, -0.0, 1.0, -1.0, 1e-30, -1e-30])])
    got = exp_f32(x).astype(np.float64)
    ref = np.exp(x.astype(np.float64))
    ulps = np.abs(got - ref) / np.spacing(ref.astype(F)).astype(np.float64)
    assert ulps.max() <= 1.0, f"{ulps.max():.2f} ulp at x = {x[ulps.argmax()]}"
    assert exp_f32(F(0.0)) == F(1.0)


def test_exp_f32_clamps_to_finite_normal_numbers() -> None:
    x = F([-1e30, -1000, -88, -87, 88, 89, 1000, 1e30])
    y = exp_f32(x)
    assert np.isfinite(y).all() and (y >= np.finfo(F).tiny).all()
    assert y[0] == y[1] == y[2] == y[3] == exp_f32(EXP_LO)
    assert y[4] == y[5] == y[6] == y[7] == exp_f32(EXP_HI)


def exp_by_hand(x: float) -> float:
    """expf32.py's algorithm on Python floats, rounding every operation to f32 by hand."""
    from feagi_burst.models import expf32 as e

    x = min(max(r32(x), float(e.EXP_LO)), float(e.EXP_HI))
    k = float(np.floor(r32(r32(x * float(e.LOG2E)) + 0.5)))
    r = r32(x - r32(k * float(e.LN2_HI)))
    r = r32(r - r32(k * float(e.LN2_LO)))
    p = r32(r32(float(e.P[0]) * r) + float(e.P[1]))
    for c in e.P[2:]:
        p = r32(r32(p * r) + float(c))
    y = r32(r32(r32(p * r32(r * r)) + r) + 1.0)
    return r32(y * 2.0 ** int(k))


def test_exp_f32_is_deterministic() -> None:
    # every operation is a correctly rounded IEEE one: an independent scalar version, arrays of any
    # length and repeated calls give the same bits, and so does any machine (the digest)
    rng = np.random.default_rng(1)
    x = rng.uniform(-90, 90, 3000).astype(F)
    y = exp_f32(x)
    assert [exp_by_hand(float(v)) for v in x[:300]] == y[:300].astype(float).tolist()
    assert np.array_equal(np.array([exp_f32(v) for v in x[:100]]).view(np.uint32), y[:100].view(np.uint32))
    assert np.array_equal(exp_f32(x).view(np.uint32), y.view(np.uint32))
    grid = np.linspace(-100, 100, 100_001, dtype=F)
    digest = hashlib.sha256(exp_f32(grid).tobytes()).hexdigest()[:16]
    assert digest == "40318d6a95fcc9c9", digest


def wgsl_consts(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^const (\w+): f32 = ([-0-9.e]+);", path.read_text(), re.M))


def test_wgsl_constants_are_the_python_f32_values_written_exactly() -> None:
    from feagi_burst.models import expf32 as e

    consts = wgsl_consts(SHADERS / "models" / "exp_f32.wgsl")
    want = {"EXP_LO": e.EXP_LO, "EXP_HI": e.EXP_HI, "EXP_LOG2E": e.LOG2E, "EXP_LN2_HI": e.LN2_HI,
            "EXP_LN2_LO": e.LN2_LO, **{f"EXP_P{i}": c for i, c in enumerate(e.P)}}
    assert set(want) <= set(consts)
    for name, value in want.items():
        assert Decimal(consts[name]) == Decimal(float(value)), name  # exact: no literal rounding anywhere
    izh = wgsl_consts(SHADERS / "models" / "izhikevich.wgsl")
    assert Decimal(izh["IZH_K"]) == Decimal(float(F(0.04)))
    assert F(izh["IZH_LIMIT"]) == F(1e9) and F(izh["IZH_PEAK"]) == F(30)
    adex = wgsl_consts(SHADERS / "models" / "adex.wgsl")
    assert F(adex["ADEX_LIMIT"]) == F(1e9) and F(adex["ADEX_X_MAX"]) == F(60)


# -- Izhikevich ----------------------------------------------------------------------------------------
def izh_by_hand(v: float, u: float, inp: float, a: float, b: float, c: float, d: float,
                dt: float = 1.0) -> tuple[float, float, bool, float]:
    """One burst in the documented f32 order, by hand (Python floats rounded per operation)."""
    h, adt, i_in = r32(0.5 * dt), r32(r32(dt) * r32(a)), r32(inp)
    for _ in range(2):
        t = r32(r32(r32(r32(r32(r32(float(F(0.04)) * v) + 5.0) * v) + 140.0) - u) + i_in)
        v = r32(v + r32(h * t))
    u = r32(u + r32(adt * r32(r32(r32(b) * v) - u)))
    if v >= 30.0:
        return r32(c), r32(u + r32(d)), True, v
    return v, u, False, 0.0


def test_izhikevich_one_burst_matches_the_documented_operations() -> None:
    a, b, c, d = F([0.02, 0.1, 0.02, 0.02]), F([0.2, 0.2, 0.25, 0.2]), F([-65, -65, -50, -55]), F([8, 2, 2, 4])
    inputs = F([0.0, 5.0, 13.7, 1000.0])
    brain = one_model("izhikevich", 4, a=a, b=b, c=c, d=d, dt_ms=0.5)
    state, quiet = None, True
    for burst in range(1, 40):
        st_before = None if state is None else {k: v.copy() for k, v in state.items()}
        pos, mp, state = step_once(brain, inputs, state, burst)
        if st_before is None:
            st_before = {"v": np.full(4, F(-65)), "u": (b * F(-65)).astype(F)}
        for i in range(4):
            v, u, fire, m = izh_by_hand(float(st_before["v"][i]), float(st_before["u"][i]), float(inputs[i]),
                                        float(a[i]), float(b[i]), float(c[i]), float(d[i]), 0.5)
            assert (float(state["v"][i]), float(state["u"][i])) == (v, u), (burst, i)
            assert (i in pos) == fire
            if fire:
                assert float(mp[list(pos).index(i)]) == m >= 30.0
        quiet &= 0 not in pos
    assert quiet  # no input: no spike


def net_m(a: float, b: float, c: float, d: float, current: float, bursts: int) -> list[int]:
    """Izhikevich's net.m scheme for one neuron in f64, as the paper runs it (spike steps, 1-based)."""
    v, u, out = -65.0, b * -65.0, []
    for t in range(1, bursts + 1):
        for _ in range(2):
            v += 0.5 * (0.04 * v * v + 5 * v + 140 - u + current)
        u += a * (b * v - u)
        if v >= 30:
            out.append(t)
            v, u = c, u + d
    return out


def test_izhikevich_regular_spiking_neuron_through_the_engine() -> None:
    brain = one_model("izhikevich", 3, a=0.02, b=0.2, c=-65.0, d=8.0)
    fired, engine = run_with_input(brain, np.array([5.0, 10.0, 15.0]), 300)
    for i, current in enumerate((5.0, 10.0, 15.0)):
        ref = net_m(0.02, 0.2, -65, 8, current, 300)
        assert fired[i][:4] == ref[:4], (current, fired[i][:6], ref[:6])
    assert fired[1][:3] == [4, 31, 79]  # net.m at I = 10 (f64): 4, 31, 79, ...
    st = engine.state()
    assert set(st.values) == {"izhikevich.v", "izhikevich.u"}
    assert st.values["izhikevich.v"].dtype == np.float32 and st.values["izhikevich.u"].dtype == np.float32


def test_izhikevich_spike_resets_and_records_v() -> None:
    brain = one_model("izhikevich", 1, a=0.02, b=0.2, c=-65.0, d=8.0)
    state, before = None, (-65.0, float(F(0.2) * F(-65)))
    for burst in range(1, 10):
        pos, mp, state = step_once(brain, F([10.0]), state, burst)
        if pos.size:
            break
        before = (float(state["v"][0]), float(state["u"][0]))
    v, u, fire, m = izh_by_hand(*before, 10.0, 0.02, 0.2, -65.0, 8.0)
    assert burst == 4 and pos.tolist() == [0] and fire
    assert float(mp[0]) == m and m > 30.0  # v as the half-steps left it, past the peak
    assert state["v"][0] == F(-65.0) == v  # v = c
    assert float(state["u"][0]) == u and u > before[1] + 8.0  # u's update, then + d


def test_izhikevich_rests_without_input_and_stays_finite_under_huge_input() -> None:
    brain = one_model("izhikevich", 2, a=0.02, b=0.2, c=-65.0, d=8.0)
    fired, engine = run_with_input(brain, np.array([0.0, 0.0]), 200)
    assert fired == [[], []]
    v = engine.state()["izhikevich.v"]
    assert np.all((v > -71) & (v < -69))  # the resting point of a regular-spiking cell, about -70 mV
    brain = one_model("izhikevich", 2, a=0.02, b=0.2, c=-65.0, d=8.0, input_gain=1e6)
    fired, engine = run_with_input(brain, np.array([1e30, -1e30]), 50)
    st = engine.state()
    assert all(np.isfinite(st[k]).all() for k in ("izhikevich.v", "izhikevich.u"))
    assert np.abs(st["izhikevich.v"]).max() <= 1e9
    assert len(fired[0]) == 50  # (the quadratic term makes a huge negative v shoot up too: it fires as well)


def test_izhikevich_initial_state() -> None:
    b = F([0.2, 0.25, 0.2])
    st = one_model("izhikevich", 3, b=b).initial_state()
    assert st["v"].tolist() == [-65.0] * 3
    assert np.array_equal(st["u"], (b * F(-65)).astype(F))
    st = one_model("izhikevich", 3, b=b, v0=-70.0, u0=F([-14.0, -1.5, 0.0])).initial_state()
    assert st["v"].tolist() == [-70.0] * 3 and st["u"].tolist() == [-14.0, -1.5, 0.0]
    st = one_model("izhikevich", 3, b=b, v0=-60.0).initial_state()
    assert np.array_equal(st["u"], (b * F(-60)).astype(F))


# -- AdEx ----------------------------------------------------------------------------------------------
def adex_by_hand(V: float, w: float, inp: float, p: dict[str, float]) -> tuple[float, float, bool, float]:
    """One burst in the documented f32 order, by hand, exp included (exp_by_hand)."""
    n = int(p["n_substeps"])
    h = r32(r32(p["dt_ms"]) / n)
    hc, hw = r32(h * r32(1.0 / r32(p["C"]))), r32(h * r32(1.0 / r32(p["tau_w"])))
    inv_dt, gl_dt = r32(1.0 / r32(p["Delta_T"])), r32(r32(p["g_L"]) * r32(p["Delta_T"]))
    gl, el, vt, a = r32(p["g_L"]), r32(p["E_L"]), r32(p["V_T"]), r32(p["a"])
    fired, mp = False, 0.0
    for _ in range(n):
        e = exp_by_hand(min(r32(r32(V - vt) * inv_dt), 60.0))
        s = r32(r32(r32(r32(gl * r32(el - V)) + r32(gl_dt * e)) - w) + r32(inp))
        dw = r32(r32(a * r32(V - el)) - w)
        V, w = r32(V + r32(hc * s)), r32(w + r32(hw * dw))
        if V >= r32(p["V_cut"]):
            if not fired:
                fired, mp = True, V
            V, w = r32(p["V_r"]), r32(w + r32(p["b"]))
    return V, w, fired, mp


TONIC = {"C": 200.0, "g_L": 10.0, "E_L": -70.0, "V_T": -50.0, "Delta_T": 2.0, "a": 2.0, "tau_w": 30.0,
         "b": 0.0, "V_r": -58.0}


@pytest.mark.parametrize("n_substeps,dt_ms", [(10, 1.0), (1, 0.1), (7, 1.5)])
def test_adex_bursts_match_the_documented_operations(n_substeps: int, dt_ms: float) -> None:
    params = {**TONIC, "b": 30.0, "a": 4.0, "n_substeps": n_substeps, "dt_ms": dt_ms}
    inputs = F([0.0, 300.0, 500.0, 5000.0])
    brain = one_model("adex", 4, **params)
    state, hand = None, [(-70.0, 0.0)] * 4
    spikes = 0
    for burst in range(1, round(30 / dt_ms) + 1):  # 30 ms
        pos, mp, state = step_once(brain, inputs, state, burst)
        for i in range(4):
            V, w, fire, m = adex_by_hand(*hand[i], float(inputs[i]), {**params, "V_cut": 0.0})
            hand[i] = (V, w)
            assert (float(state["V"][i]), float(state["w"][i])) == (V, w), (burst, i)
            assert (i in pos) == fire
            if fire:
                spikes += 1
                assert float(mp[list(pos).index(i)]) == m >= 0.0
    assert spikes > 10


def test_adex_tonic_neuron_fires_regularly_and_resets() -> None:
    brain = one_model("adex", 1, **TONIC)
    fired, engine = run_with_input(brain, np.array([500.0]), 300)
    isi = np.diff(fired[0])
    assert fired[0][:3] == [15, 24, 34] and len(fired[0]) == 30  # Brian2 (f64, same Euler steps) agrees
    assert set(isi[2:].tolist()) <= {9, 10}  # tonic: a constant interval once w has settled
    # Naud's adapting cell: spike-triggered adaptation, slow to decay, lengthens the intervals
    brain = one_model("adex", 1, **{**TONIC, "g_L": 12.0, "tau_w": 300.0, "b": 60.0})
    fired, _ = run_with_input(brain, np.array([500.0]), 300)
    isi = np.diff(fired[0])
    assert fired[0][:4] == [16, 27, 42, 62] and np.all(np.diff(isi) > 0) and isi[-1] > 3 * isi[0]


def test_adex_substeps_may_differ_per_neuron() -> None:
    both = one_model("adex", 2, **TONIC, n_substeps=np.array([10, 25], np.uint16))
    f_both, e_both = run_with_input(both, np.array([500.0, 500.0]), 100)
    for k, n in enumerate((10, 25)):
        alone = one_model("adex", 1, **TONIC, n_substeps=n)
        f_alone, e_alone = run_with_input(alone, np.array([500.0]), 100)
        assert f_both[k] == f_alone[0]
        assert e_both.state()["adex.V"][k] == e_alone.state()["adex.V"][0]
    assert f_both[0] != f_both[1]


def test_adex_row_holds_host_computed_f32_reciprocals() -> None:
    brain = one_model("adex", 1, **TONIC, dt_ms=1.0, n_substeps=3)
    model, table = brain.populations[-1].model, brain.param_tables()[-1]
    row = model.gpu_row(table, np.array([0]))[0]
    f = row.view(F)
    h = F(1.0) / F(3)
    assert f[3] == F(1) / F(2.0) and f[4] == F(10.0) * F(2.0)
    assert f[9] == h * (F(1) / F(200.0)) and f[10] == h * (F(1) / F(30.0))
    assert row[12] == 3 and model.gpu_row_words == row.size == 13


def test_adex_initial_state() -> None:
    st = one_model("adex", 2, E_L=F([-70.0, -58.0])).initial_state()
    assert st["V"].tolist() == [-70.0, -58.0] and st["w"].tolist() == [0.0, 0.0]
    st = one_model("adex", 2, V0=-50.0, w0=12.5).initial_state()
    assert st["V"].tolist() == [-50.0, -50.0] and st["w"].tolist() == [12.5, 12.5]


# -- parameters ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model,key,value,says", [
    ("izhikevich", "a", 5.0, "a = 5 is out of range; allowed -1 .. 1"),
    ("izhikevich", "dt_ms", 0.0, "dt_ms = 0 is out of range"),
    ("izhikevich", "u0", 1e30, "u0 = 1e+30 is out of range"),
    ("izhikevich", "c", float("nan"), "c must be finite"),
    ("adex", "Delta_T", 0.0, "Delta_T = 0 is out of range"),
    ("adex", "n_substeps", 0, "n_substeps = 0 is out of range; allowed 1 .. 1000"),
    ("adex", "n_substeps", 2.5, "n_substeps must be a whole number"),
    ("adex", "C", -1.0, "C = -1 is out of range"),
    ("adex", "V0", 1e30, "V0 = 1e+30 is out of range"),
    ("adex", "tau", 10.0, "unknown parameter 'tau' for model adex"),
])
def test_parameter_errors_name_the_key(model: str, key: str, value: float, says: str) -> None:
    with pytest.raises(InputError, match=re.escape(says)):
        one_model(model, 2, **{key: value})
    with pytest.raises(InputError, match=re.escape(says)):
        parse_model_specs([{"areas": ["cell"], "type": model, key: value}], "brain.toml")


def test_per_neuron_parameters_need_one_value_per_neuron() -> None:
    with pytest.raises(InputError, match="3 values for 2 neurons"):
        one_model("izhikevich", 2, a=F([0.02, 0.02, 0.02]))


# -- three models in one brain ------------------------------------------------------------------------------
def three_model_brain() -> Brain:
    # izh (4 cells, driven) -> adx (4 cells, one synapse each) -> lif (4 cells)
    src = np.r_[np.arange(4, 8), np.arange(8, 12)]
    tgt = np.r_[np.arange(8, 12), np.arange(0, 4)]
    brain = area_brain([("lif", 4), ("izh", 4), ("adx", 4)], (src, tgt, np.ones(8, F), np.zeros(8, bool)))
    brain = assign_model(brain, ["izh"], "izhikevich", a=0.02, b=0.2, c=-65.0, d=8.0)
    return assign_model(brain, ["adx"], "adex", input_gain=20000.0)


def test_a_brain_with_three_models_runs_on_the_cpu() -> None:
    brain = three_model_brain()
    assert [brain.model_of(i) for i in range(3)] == ["feagi_lif", "izhikevich", "adex"]
    inputs = np.r_[np.zeros(4), [5.0, 10.0, 15.0, 0.0], np.zeros(4)]
    fired, engine = run_with_input(brain, inputs, 200)
    izh, adx, lif = fired[4:8], fired[8:12], fired[0:4]
    assert izh[1][:3] == [4, 31, 79] and izh[3] == []
    # each Izhikevich spike drives its AdEx cell over V_cut in the next burst (and, the cell pushed
    # far past its threshold, maybe once more right after); each AdEx spike fires its LIF cell
    for k in range(4):
        assert set(b + 1 for b in izh[k]) <= set(adx[k]) <= set(b + j for b in izh[k] for j in (1, 2))
        assert lif[k] == [b + 1 for b in adx[k] if b < 200]
    assert sum(map(len, izh)) > 10
    st = engine.state()
    assert {"feagi_lif.mp", "izhikevich.v", "izhikevich.u", "adex.V", "adex.w"} <= set(st.values)
    again, _ = run_with_input(three_model_brain(), inputs, 200)
    assert again == fired


# -- the WGSL twins, on whatever GPU adapter there is -----------------------------------------------------
_INCLUDE = re.compile(r"^//!include\s+(\S+)\s*$", re.M)

# The parts of common.wgsl a model file may use, as the model contract describes them
PRELUDE = """
struct Outcome { fire: bool, mp: f32, };
struct Hdr { burst: u32, zero: u32, n: u32, words: u32, bursts: u32, p0: u32, p1: u32, p2: u32, };
@group(0) @binding(0) var<uniform> H: Hdr;
@group(0) @binding(1) var<storage, read_write> state: array<u32>;
@group(0) @binding(2) var<storage, read> rows: array<u32>;
@group(0) @binding(3) var<storage, read> inputs: array<f32>;
@group(0) @binding(4) var<storage, read_write> outs: array<u32>;
fn opaque(x: f32) -> f32 { return bitcast<f32>(bitcast<u32>(x) ^ H.zero); }
fn model_word(id: u32, k: u32) -> u32 { return rows[id * H.words + k]; }
fn neuron_word(id: u32) -> u32 { return 0u; }
fn state_word(id: u32, k: u32) -> u32 { return state[k * H.n + id]; }
fn set_state_word(id: u32, k: u32, v: u32) { state[k * H.n + id] = v; }
"""
STEP_KERNEL = """
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    let id = g.x;
    if (id >= H.n) { return; }
    for (var t = 0u; t < H.bursts; t = t + 1u) {
        let o = model_step(id, inputs[t * H.n + id], false);
        outs[2u * (t * H.n + id)] = select(0u, 1u, o.fire);
        outs[2u * (t * H.n + id) + 1u] = bitcast<u32>(o.mp);
    }
}
"""
EXP_KERNEL = """
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) g: vec3<u32>) {
    if (g.x >= H.n) { return; }
    outs[g.x] = bitcast<u32>(exp_f32(inputs[g.x]));
}
"""


def wgsl_source(path: Path) -> str:
    """A model file with its `//!include` lines expanded (paths relative to shaders/), each once."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            if m.group(1) in seen:
                return ""
            seen.add(m.group(1))
            return expand((SHADERS / m.group(1)).read_text())
        return _INCLUDE.sub(sub, text)
    return expand(path.read_text())


@pytest.fixture(scope="module")
def wgpu_device() -> Any:
    try:
        import wgpu

        adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        if adapter is None:
            raise RuntimeError("no adapter")
        return adapter, adapter.request_device_sync()
    except Exception as e:  # no wgpu, no adapter: fail, as the GPU tests do, unless told to skip
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise


def run_kernel(device: Any, code: str, n: int, state: np.ndarray, rows: np.ndarray, inputs: np.ndarray,
               n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """One dispatch of `code` over n invocations; returns (outs, state) as u32. The state's [n, 4]
    words go to the device transposed, one array per word, as common.wgsl's state_word reads them."""
    import wgpu

    _, dev = device
    words = rows.shape[1] if rows.ndim == 2 else 0
    bursts = inputs.shape[0] if inputs.ndim == 2 else 1
    hdr = np.array([1, 0, n, words, bursts, 0, 0, 0], np.uint32)
    U = wgpu.BufferUsage

    def buf(a: np.ndarray, usage: int) -> Any:
        data = np.ascontiguousarray(a).tobytes() or bytes(16)
        return dev.create_buffer_with_data(data=data, usage=usage | U.COPY_SRC)
    bufs = [buf(hdr, U.UNIFORM), buf(state.T, U.STORAGE), buf(rows, U.STORAGE), buf(inputs.astype(F), U.STORAGE),
            buf(np.zeros(n_out, np.uint32), U.STORAGE)]
    T = wgpu.BufferBindingType
    kinds = [T.uniform, T.storage, T.read_only_storage, T.read_only_storage, T.storage]
    bgl = dev.create_bind_group_layout(entries=[{"binding": i, "visibility": wgpu.ShaderStage.COMPUTE,
                                                 "buffer": {"type": k}} for i, k in enumerate(kinds)])
    pipe = dev.create_compute_pipeline(layout=dev.create_pipeline_layout(bind_group_layouts=[bgl]),
                                       compute={"module": dev.create_shader_module(code=code), "entry_point": "main"})
    bg = dev.create_bind_group(layout=bgl, entries=[{"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}}
                                                    for i, b in enumerate(bufs)])
    enc = dev.create_command_encoder()
    cp = enc.begin_compute_pass()
    cp.set_pipeline(pipe)
    cp.set_bind_group(0, bg)
    cp.dispatch_workgroups((n + 63) // 64)
    cp.end()
    dev.queue.submit([enc.finish()])
    outs = np.frombuffer(dev.queue.read_buffer(bufs[4]), np.uint32)[:n_out].copy()
    st = np.frombuffer(dev.queue.read_buffer(bufs[1]), np.uint32).reshape(4, -1).T[:n].copy()
    return outs, st


def test_wgsl_exp_f32_gives_the_cpu_bits(wgpu_device: Any) -> None:
    rng = np.random.default_rng(2)
    x = np.concatenate([np.linspace(-100, 100, 200_001, dtype=F), rng.uniform(-90, 90, 100_000).astype(F)])
    code = PRELUDE + wgsl_source(SHADERS / "models" / "exp_f32.wgsl") + EXP_KERNEL
    got, _ = run_kernel(wgpu_device, code, x.size, np.zeros((1, 4), np.uint32), np.zeros((1, 1), np.uint32), x, x.size)
    bad = np.flatnonzero(got != exp_f32(x).view(np.uint32))
    assert bad.size == 0, f"{bad.size} of {x.size} differ, first at x = {x[bad[0]]!r}"


def random_params(model: str, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    u = rng.uniform
    if model == "izhikevich":
        return {"a": u(0.01, 0.1, n).astype(F), "b": u(0.15, 0.3, n).astype(F), "c": u(-70, -45, n).astype(F),
                "d": u(0, 10, n).astype(F), "dt_ms": rng.choice(F([0.25, 0.5, 1.0]), n),
                "input_gain": rng.choice(F([1.0, 0.7, 3.0]), n)}
    return {"C": u(80, 300, n).astype(F), "g_L": u(5, 30, n).astype(F), "E_L": u(-72, -55, n).astype(F),
            "V_T": u(-52, -48, n).astype(F), "Delta_T": u(0.5, 3, n).astype(F), "a": u(-12, 10, n).astype(F),
            "tau_w": u(20, 300, n).astype(F), "b": u(0, 120, n).astype(F), "V_r": u(-60, -45, n).astype(F),
            "n_substeps": rng.choice(np.array([1, 5, 10, 20], np.uint16), n)}


@pytest.mark.parametrize("model_name,scale", [("izhikevich", 8.0), ("adex", 300.0)])
def test_wgsl_model_step_gives_the_cpu_bits(wgpu_device: Any, model_name: str, scale: float) -> None:
    """model_step in WGSL against the numpy step: every fire, firing mp and state word, bit for bit,
    over 300 bursts of 512 neurons with random parameters and inputs (some huge: the clamps)."""
    rng = np.random.default_rng(5)
    n, bursts = 512, 300
    brain = one_model(model_name, n, **random_params(model_name, n, rng))
    inputs = rng.normal(scale, scale, (bursts, n)).astype(F)
    inputs[:, :16] = rng.normal(0, 1e8, (bursts, 16))
    fire, mp, gpu_state, cpu_state = compare_step(wgpu_device, brain, inputs)
    assert fire.sum() > 1000
    assert np.array_equal(fire[0], fire[1]), f"{(fire[0] != fire[1]).sum()} fire decisions differ"
    assert np.array_equal(mp[0][fire[0]], mp[1][fire[0]]), "firing mp differs"
    assert np.array_equal(gpu_state, cpu_state), "state differs"


def compare_step(device: Any, brain: Brain, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the brain's last population `len(inputs)` bursts on the GPU (model_step) and the CPU (step);
    returns fires [2, bursts, n], mp bits [2, bursts, n], state words GPU [n, 4] and CPU [n, 4]."""
    bursts, n = inputs.shape
    pop, table = brain.populations[-1], brain.param_tables()[-1]
    model, ids = pop.model, pop.ids()
    st = brain.initial_state()
    state = {v.name: st.values[state_key(model, v)].copy() for v in model.state}
    words = np.zeros((n, 4), np.uint32)
    for j, v in enumerate(model.state):
        words[:, j] = state[v.name].view(np.uint32)
    words[:, 3] = 0xDEADBEEF  # not the model's: must come back untouched
    code = PRELUDE + wgsl_source(SHADERS / model.wgsl) + STEP_KERNEL
    outs, gpu_state = run_kernel(device, code, n, words, model.gpu_row(table, ids), inputs, 2 * bursts * n)
    outs = outs.reshape(bursts, n, 2)
    fire = np.zeros((2, bursts, n), bool)
    mp = np.zeros((2, bursts, n), np.uint32)
    fire[0], mp[0] = outs[:, :, 0] == 1, outs[:, :, 1]
    for t in range(bursts):
        pos, m = model.step(StepContext(ids, inputs[t], t + 1, 0, table, state, np.zeros(0, np.int64)))
        fire[1, t, pos] = True
        mp[1, t, pos] = m.view(np.uint32)
    cpu_state = words.copy()
    for j, v in enumerate(model.state):
        cpu_state[:, j] = state[v.name].view(np.uint32)
    return fire, mp, gpu_state, cpu_state


# -- the worked "add your own model" example -----------------------------------------------------------
@pytest.fixture(scope="module")
def my_model() -> ModuleType:
    import importlib.util

    spec = importlib.util.spec_from_file_location("my_model", ROOT / "examples" / "my_model.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_model_registers_and_runs(my_model: ModuleType) -> None:
    assert get_model("qif").title == "quadratic integrate-and-fire"
    spec = parse_model_specs([{"areas": ["o__mot"], "type": "qif", "tau_ms": 20.0}], "brain.toml")[0]
    assert spec.type == "qif" and spec.params == {"tau_ms": 20.0}
    counts = my_model.main(bursts=200)
    assert counts[0] == 0 and counts == sorted(counts) and counts[-1] >= 10  # an f-I curve


def test_example_model_wgsl_gives_the_cpu_bits(wgpu_device: Any, my_model: ModuleType) -> None:
    rng = np.random.default_rng(6)
    n, bursts = 256, 200
    brain = one_model("qif", n, tau_ms=rng.uniform(5, 30, n).astype(F), k=rng.uniform(0.05, 0.2, n).astype(F))
    fire, mp, gpu_state, cpu_state = compare_step(wgpu_device, brain, rng.uniform(0, 30, (bursts, n)).astype(F))
    assert fire.sum() > 500
    assert np.array_equal(fire[0], fire[1]) and np.array_equal(mp[0][fire[0]], mp[1][fire[0]])
    assert np.array_equal(gpu_state, cpu_state)
