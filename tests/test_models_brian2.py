"""Izhikevich and AdEx against a peer: Brian2 running the same equations with the same integration.

Brian2 (numpy code generation, f64) is a test dependency only. Our engine computes in f32 and takes
its synaptic input through fixed-point sums, so spikes agree exactly at first and drift apart
after a while (net.m's 1 ms scheme is sensitive to rounding: even two f64 implementations drift);
the assertions say how far they must agree, and docs/models-vs-brian2.md records how far they do.
Run with `-s` to see the numbers.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from test_models import area_brain, run_with_input

from feagi_burst.models.assign import assign_model

ROOT = Path(__file__).resolve().parents[1]
F = np.float32


class _PtpFix(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """brian2 <= 2.9.0 wraps np.ndarray.ptp, which numpy 2.4 removed (brian2 PR #1705 fixes it
    upstream): load that one module with np.ptp in its place."""

    NAME = "brian2.units.fundamentalunits"

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != self.NAME:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None:
            self.origin = spec.origin
            spec.loader = self
        return spec

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        src = Path(self.origin).read_text(encoding="utf-8").replace("np.ndarray.ptp)", "np.ptp)")
        exec(compile(src, self.origin, "exec"), module.__dict__)  # noqa: S102 (brian2's own source)


def import_brian2() -> Any:
    if not hasattr(np.ndarray, "ptp") and "brian2" not in sys.modules:
        sys.meta_path.insert(0, _PtpFix())
    import brian2

    brian2.prefs.codegen.target = "numpy"  # no C++ compiler needed
    return brian2


@pytest.fixture(scope="module")
def b2() -> Any:
    return import_brian2()


def report(line: str) -> None:
    print(line, file=sys.stderr)


# -- Izhikevich: single neurons ----------------------------------------------------------------------------
IZH_TYPES = {"regular spiking": (0.02, 0.2, -65.0, 8.0), "fast spiking": (0.1, 0.2, -65.0, 2.0),
             "chattering": (0.02, 0.2, -50.0, 2.0), "intrinsically bursting": (0.02, 0.2, -55.0, 4.0)}
CURRENTS = (5.0, 10.0, 15.0)
CASES = [(t, i) for t in IZH_TYPES for i in CURRENTS]
IZH_EQS = """v : 1
u : 1
I : 1
a : 1 (constant)
b : 1 (constant)
c : 1 (constant)
d : 1 (constant)
"""
# net.m's scheme: v in two 0.5 ms half-steps, then u (with the new v)
NET_M_STEP = """v = v + 0.5*((0.04*v + 5)*v + 140 - u + I)
v = v + 0.5*((0.04*v + 5)*v + 140 - u + I)
u = u + a*(b*v - u)"""


def izh_group(b2: Any, n: int, a: Any, b: Any, c: Any, d: Any, extra: str = "", code: str = NET_M_STEP) -> Any:
    g = b2.NeuronGroup(n, IZH_EQS + extra, threshold="v >= 30", reset="v = c; u += d", method=None,
                       namespace={})
    g.a, g.b, g.c, g.d = (np.asarray(x, np.float64) for x in (a, b, c, d))
    g.v = -65.0
    g.u = g.b * -65.0
    g.run_regularly(code, when="groups")  # before the threshold test, every 1 ms step
    return g


@pytest.fixture(scope="module")
def izh_single(b2: Any) -> dict[tuple[str, float], tuple[list[int], list[int]]]:
    """(type, current) -> (our spike bursts, Brian2's spike steps), 1,000 ms each."""
    steps = 1000
    p = np.array([IZH_TYPES[t] for t, _ in CASES], F)
    current = np.array([i for _, i in CASES])
    brain = assign_model(area_brain([("cells", len(CASES))]), ["cells"], "izhikevich",
                         a=p[:, 0], b=p[:, 1], c=p[:, 2], d=p[:, 3])
    ours, _ = run_with_input(brain, current, steps)

    b2.defaultclock.dt = 1 * b2.ms
    g = izh_group(b2, len(CASES), p[:, 0], p[:, 1], p[:, 2], p[:, 3])
    g.I = current
    mon = b2.SpikeMonitor(g)
    b2.Network(g, mon).run(steps * b2.ms, namespace={})
    trains = mon.spike_trains()
    theirs = [(np.rint(np.asarray(trains[k] / b2.ms)).astype(int) + 1).tolist() for k in range(len(CASES))]
    return {case: (ours[k], theirs[k]) for k, case in enumerate(CASES)}


@pytest.mark.parametrize("cell,current", CASES)
def test_izhikevich_single_neuron_agrees_with_brian2(izh_single: Any, cell: str, current: float) -> None:
    ours, theirs = izh_single[(cell, current)]
    same = next((k for k, (x, y) in enumerate(zip(ours, theirs)) if x != y), min(len(ours), len(theirs)))
    report(f"izhikevich {cell:22s} I={current:4.0f}: spikes ours {len(ours):3d}, Brian2 {len(theirs):3d} "
           f"({100 * (len(ours) - len(theirs)) / len(theirs):+5.1f}%); first {same} spikes identical")
    assert len(theirs) >= 4
    assert ours[:4] == theirs[:4]
    assert abs(len(ours) - len(theirs)) <= 0.12 * len(theirs)


# -- Izhikevich: the paper's 1,000-neuron network -----------------------------------------------------------
@pytest.fixture(scope="module")
def izh_network(b2: Any) -> dict[str, np.ndarray]:
    sys.path.insert(0, str(ROOT / "examples"))
    try:
        from izhikevich_network import N_EXC, draw, engine_for
    finally:
        sys.path.pop(0)
    net = draw(seed=2003, bursts=1000)
    n = net.S.shape[0]
    ours = np.zeros(n)
    engine = engine_for(net)
    engine.run(1000, on_result=lambda r: np.add.at(ours, r.fired.astype(np.int64), 1))

    # Brian2: the same cells, weights and thalamic input; a spike's weight reaches its target's
    # Isyn in the same step, and is used by the next step's update (net.m: I = thalamic + S*fired)
    b2.defaultclock.dt = 1 * b2.ms
    thalamic = b2.TimedArray(net.thalamic.astype(np.float64), dt=1 * b2.ms)
    g = izh_group(b2, n, net.a, net.b, net.c, net.d, extra="Isyn : 1\n",
                  code="I = thalamic(t, i) + Isyn\n" + NET_M_STEP + "\nIsyn = 0")
    g.namespace["thalamic"] = thalamic
    target, source = np.indices(net.S.shape).reshape(2, -1)
    syn = b2.Synapses(g, g, "w : 1", on_pre="Isyn_post += w", namespace={})
    syn.connect(i=source, j=target)
    syn.w = net.S.ravel().astype(np.float64)
    mon = b2.SpikeMonitor(g)
    b2.Network(g, syn, mon).run(1000 * b2.ms, namespace={})
    theirs = np.bincount(np.asarray(mon.i[:]), minlength=n).astype(float)
    return {"ours": ours, "theirs": theirs, "n_exc": np.array(N_EXC)}


def test_izhikevich_network_rates_agree_with_brian2(izh_network: dict[str, np.ndarray]) -> None:
    ours, theirs, ne = izh_network["ours"], izh_network["theirs"], int(izh_network["n_exc"])
    for name, part in (("excitatory", slice(0, ne)), ("inhibitory", slice(ne, None))):
        mine, peer = ours[part].mean(), theirs[part].mean()  # spikes per neuron in 1 s: Hz
        report(f"izhikevich net.m {name}: ours {mine:.2f} Hz, Brian2 {peer:.2f} Hz ({100 * (mine - peer) / peer:+.1f}%)")
        assert abs(mine - peer) <= 0.10 * peer
        assert 3.0 < peer < 20.0  # the paper's regime: a few spikes per second, rhythmic
    r = np.corrcoef(ours, theirs)[0, 1]
    report(f"izhikevich net.m: per-neuron spike counts correlate r = {r:.3f}")
    assert r > 0.9  # the same cells are the busy ones in both


# -- AdEx: Naud et al. 2008's eight firing patterns ------------------------------------------------------------
# name: C pF, g_L nS, E_L mV, V_T mV, Delta_T mV, a nS, tau_w ms, b pA, V_r mV, I pA (Naud et al. 2008,
# Table 1, as adapted by P. Mueller to match the paper's figures: Brian2's adex_firing_patterns example)
NAUD = {
    "tonic": (200, 10, -70, -50, 2, 2, 30, 0, -58, 500),
    "adapting": (200, 12, -70, -50, 2, 2, 300, 60, -58, 500),
    "initial burst": (130, 18, -58, -50, 2, 4, 150, 120, -50, 400),
    "regular bursting": (200, 10, -58, -50, 2, 2, 120, 100, -46, 210),
    "delayed accelerating": (200, 12, -70, -50, 2, -10, 300, 0, -58, 300),
    "delayed regular bursting": (100, 10, -65, -50, 2, -10, 90, 30, -47, 110),
    "transient": (100, 10, -65, -50, 2, 10, 90, 100, -47, 180),
    "irregular": (100, 12, -60, -50, 2, -11, 130, 30, -48, 160),
}
ADEX_KEYS = ("C", "g_L", "E_L", "V_T", "Delta_T", "a", "tau_w", "b", "V_r")
SUBSTEPS = 10


@pytest.fixture(scope="module")
def adex_patterns(b2: Any) -> dict[str, tuple[list[int], list[int], int]]:
    """pattern -> (our spike bursts, Brian2's spike bursts, Brian2's spike count), 1 s each."""
    table = np.array(list(NAUD.values()), float)
    n, ms = len(NAUD), 1000
    brain = assign_model(area_brain([("cells", n)]), ["cells"], "adex",
                         **{k: table[:, j].astype(F) for j, k in enumerate(ADEX_KEYS)})
    ours, _ = run_with_input(brain, table[:, 9], ms)

    u = b2
    u.defaultclock.dt = 1.0 / SUBSTEPS * u.ms  # the same forward Euler steps as ours
    g = u.NeuronGroup(n, """dV/dt = (g_L*(E_L - V) + g_L*Delta_T*exp((V - V_T)/Delta_T) - w + I)/C : volt
dw/dt = (a*(V - E_L) - w)/tau_w : amp
C : farad (constant)
g_L : siemens (constant)
E_L : volt (constant)
V_T : volt (constant)
Delta_T : volt (constant)
a : siemens (constant)
tau_w : second (constant)
b : amp (constant)
V_r : volt (constant)
I : amp (constant)""", threshold="V >= 0*mV", reset="V = V_r; w += b", method="euler", namespace={})
    units = (u.pF, u.nS, u.mV, u.mV, u.mV, u.nS, u.ms, u.pA, u.mV, u.pA)
    for j, (key, unit) in enumerate(zip(ADEX_KEYS + ("I",), units)):
        setattr(g, key, table[:, j] * unit)
    g.V = g.E_L
    g.w = 0 * u.pA
    mon = u.SpikeMonitor(g)
    u.Network(g, mon).run(ms * u.ms, namespace={})
    trains = mon.spike_trains()
    out = {}
    for k, name in enumerate(NAUD):
        step = np.rint(np.asarray(trains[k] / u.ms) * SUBSTEPS).astype(int)  # Brian2's time step index
        bursts = sorted(set((step // SUBSTEPS + 1).tolist()))  # the burst whose sub-steps hold it
        out[name] = (ours[k], bursts, len(step))
    return out


@pytest.mark.parametrize("pattern", list(NAUD))
def test_adex_pattern_agrees_with_brian2(adex_patterns: Any, pattern: str) -> None:
    ours, theirs, raw = adex_patterns[pattern]
    first = min(5, len(theirs))
    off = [a - b for a, b in zip(ours[:first], theirs[:first])]
    report(f"adex {pattern:25s}: spikes ours {len(ours):3d}, Brian2 {len(theirs):3d} (in {raw} steps); "
           f"first {first} spike bursts off by {off}")
    assert len(theirs) >= 1 and len(ours) >= first
    assert all(abs(x) <= 1 for x in off)
    assert abs(len(ours) - len(theirs)) <= 0.10 * len(theirs)
    if pattern == "irregular":  # chaotic: the spike trains drift apart, their statistics must not
        isi_ours, isi_theirs = np.diff(ours), np.diff(theirs)
        cv_ours, cv_theirs = isi_ours.std() / isi_ours.mean(), isi_theirs.std() / isi_theirs.mean()
        report(f"adex irregular: ISI mean ours {isi_ours.mean():.1f} ms, Brian2 {isi_theirs.mean():.1f} ms; "
               f"CV ours {cv_ours:.2f}, Brian2 {cv_theirs:.2f}")
        assert cv_ours > 0.3 and cv_theirs > 0.3
        assert abs(isi_ours.mean() - isi_theirs.mean()) <= 0.10 * isi_theirs.mean()
    if pattern == "transient":
        assert ours[-1] < 100  # fires at the onset only
