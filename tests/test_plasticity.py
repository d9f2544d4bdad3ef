"""STDP (SPEC.md section 2 step 5) against FEAGI's own recordings, and on both backends bit for bit.

FEAGI 2.6.10's recordings in tests/data/feagi-reference/stdp/ (fire queue and every plastic
synapse's weight after every burst, keyed by source/destination voxel coordinates) are replayed
on the CPU and the GPU: every spike, every firing mp, every weight. `w0leak` is ours, recorded for
SPEC.md section 5 question 1: a synapse STDP brought to weight 0 still makes its target a fire
candidate, so the target leaks (docs/feagi-findings.md). Then: weights that grow past 2^16 with
the requantisation on both backends, checkpoints and resume, the weights API, `run
--record-weights` and `plot --weights`, and bench --plastic-fraction.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import DATA, FaultyBackend, assert_same_bursts, checkpoint_arrays, write_checkpoint
from feagi_burst.backends.base import BackendError, BurstResult
from feagi_burst.brain import Brain, CorticalArea, neuron_array, sort_synapses
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.fixed_point import SUM_LIMIT, compile_tables, shift_words
from feagi_burst.genome import expand_genome, load_genome
from feagi_burst.genome.plasticity import PlasticPair
from feagi_burst.plasticity import plastic_layout

STDP = DATA / "feagi-reference" / "stdp"
RECORDINGS = sorted(p.name.split(".")[0] for p in STDP.glob("*.rec.json"))


def recording(name: str) -> dict[str, Any]:
    return json.loads((STDP / f"{name}.rec.json").read_text())


def stdp_engine(name: str, backend: object = "cpu") -> Engine:
    brain = expand_genome(load_genome(STDP / f"{name}.genome.json"))
    engine = Engine(brain, backend=backend, warn=None)
    rec = recording(name)
    if rec.get("stimulus"):
        engine.add_schedule(rec["stimulus"])
    return engine


def weights_by_key(engine: Engine, pair: str) -> dict[str, list[float]]:
    """A pair's weights keyed as the recordings key them: 'sx,sy,sz>dx,dy,dz' -> [weight, ...]."""
    src, dst = pair.split(">")
    s = engine.synapses(src, dst)
    out: dict[str, list[float]] = {}
    for a, b, w in zip(s.source_xyz.tolist(), s.target_xyz.tolist(), s.weight.tolist()):
        out.setdefault(",".join(map(str, a)) + ">" + ",".join(map(str, b)), []).append(w)
    return out


# --- FEAGI's recordings --------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["cpu", "gpu"])
@pytest.mark.parametrize("name", RECORDINGS)
def test_stdp_recording_matches_feagi(name: str, backend: str, request: pytest.FixtureRequest) -> None:
    """Every spike, firing mp and plastic weight of FEAGI's recording, burst by burst."""
    rec = recording(name)
    assert not rec["missing"] and not rec["weights_read_after_next_burst"], "a complete recording"
    want = {int(b): {(a, x, y, z): mp for a, x, y, z, mp, _ in v} for b, v in rec["bursts"].items()}
    engine = stdp_engine(name, request.getfixturevalue("gpu_backend") if backend == "gpu" else "cpu")
    problems: list[str] = []
    checked = 0
    for b in range(1, max(want) + 1):
        r = engine.process_burst()
        have = dict(zip(engine.brain.describe(r.fired), r.mp.astype(float).tolist()))
        w = want.get(b, {})
        if set(w) != set(have):
            problems.append(f"burst {b}: missing {sorted(set(w) - set(have))[:3]}, extra {sorted(set(have) - set(w))[:3]}")
        elif any(abs(w[k] - have[k]) > 1e-4 * max(1.0, abs(w[k])) for k in w):
            problems.append(f"burst {b}: firing mp differs")
        for pair, synapses in rec["weights"].get(str(b), {}).items():
            got = weights_by_key(engine, pair)
            for key, entries in synapses.items():
                checked += 1
                if sorted(e[0] for e in entries) != sorted(got.get(key, [])):
                    problems.append(f"burst {b} {pair} {key}: FEAGI {[e[0] for e in entries]}, "
                                    f"we {got.get(key)}")
    assert checked > 0 or not rec["weights"]
    assert not problems, f"{name} on {backend}: {len(problems)} differences from FEAGI:\n" + "\n".join(problems[:10])


def test_recordings_exercise_the_rule() -> None:
    """No vacuous pass: weights change in the recordings, LTP and LTD both, and some reach 0."""
    seen_up = seen_down = seen_zero = 0
    for name in RECORDINGS:
        rec = recording(name)
        bursts = sorted(rec["weights"], key=int)
        for a, b in zip(bursts, bursts[1:]):
            for pair, syn in rec["weights"][b].items():
                for key, entries in syn.items():
                    before = rec["weights"][a].get(pair, {}).get(key)
                    if before is None:
                        continue
                    x, y = before[0][0], entries[0][0]
                    seen_up += y > x
                    seen_down += y < x
                    seen_zero += y == 0 < x
    assert seen_up > 20 and seen_down > 20 and seen_zero > 5


def test_weight_zero_synapse_still_makes_its_target_a_candidate() -> None:
    """SPEC.md section 5 question 1, as FEAGI 2.6.10 answered it (w0leak, docs/feagi-findings.md).

    pre_always fires every burst; its plastic synapses onto the w0_* targets lose 1 a burst (dp 0,
    dm 1) and are 0 from burst 2 on. drv_refrac4 gives every target 5 at bursts 3, 8, 13, ... The
    targets accumulate and leak 10% when they do not fire. At burst 8 w0_thr7 fires with
    5.4 * 0.9^4 + 5 = 8.5429: it leaked at bursts 4-7, when only weight-0 synapses reached it;
    the control without them fires with 5.4 + ... = 9.5 - 1 (it never had the +1 at burst 3).
    """
    rec = recording("w0leak")
    fired = {int(b): {e[0]: e[4] for e in v} for b, v in rec["bursts"].items()}
    assert rec["weights"]["3"]["cPreA0>cT7a00"]["0,0,0>0,0,0"][0][0] == 0.0
    assert fired[8]["cT7a00"] == pytest.approx(5.4 * 0.9**4 + 5, abs=1e-4)   # leaked 4 times: a candidate
    assert fired[8]["cC7000"] == pytest.approx(9.5, abs=1e-4)                # no synapse: no leak
    assert fired[8]["cZr070"] == pytest.approx(4.5 * 0.9**4 + 5, abs=1e-4)   # psc 0 from the start: the same
    assert "cT10a0" not in fired[8] and fired[13]["cT10a0"] == pytest.approx(10.0445, abs=1e-4)
    # and the engine does the same (the full replay is test_stdp_recording_matches_feagi)
    engine = stdp_engine("w0leak")
    got: dict[int, dict[str, float]] = {}
    engine.run(13, on_result=lambda r: got.__setitem__(
        r.burst, {a: float(m) for (a, *_), m in zip(engine.brain.describe(r.fired), r.mp)}))
    assert got[8]["cT7a00"] == pytest.approx(fired[8]["cT7a00"], abs=1e-4)
    assert got[8]["cZr070"] == pytest.approx(fired[8]["cZr070"], abs=1e-4)
    assert engine.synapses("cPreA0", "cT7a00").weight.tolist() == [0.0]


def test_deliveries_use_the_weights_before_the_burst_update() -> None:
    """w2to0: weight 2, dm 1. Burst 2's spike reaches the target at 3 with weight 2 (5 + 2 = 7, it
    fires), although burst 2's update had made it 1: a delivery uses the weight before its burst's update."""
    engine = stdp_engine("w0leak")
    out = [engine.process_burst() for _ in range(3)]
    assert engine.brain.describe(out[2].fired).count(("cT7w20", 0, 0, 0)) == 1
    k = out[2].fired.tolist().index(engine.brain.area("cT7w20").first_neuron)
    assert float(out[2].mp[k]) == pytest.approx(7.0, abs=1e-4)


# --- weights that grow without bound: the requantisation -------------------------------------
def growth_brain() -> Brain:
    """Power drives A, B, M, D, E every burst. A -> B (plastic, +255 a burst, window 2) grows past
    2^16 in ~260 bursts; A -> C static fractional weights (i32 words, divided at each
    requantisation); M (mp-driven) -> C static and -> D plastic (f32 words); A -> E inhibitory
    plastic (grows until E stops firing, then shrinks: it oscillates)."""
    sizes = [("_power", 1), ("cAAAAA", 4), ("cBBBBB", 3), ("cCCCCC", 6), ("cMMMMM", 1), ("cDDDDD", 2), ("cEEEEE", 2)]
    areas, first = [], 0
    for i, (cid, k) in enumerate(sizes):
        areas.append(CorticalArea(i, cid, cid[1:].lower(), (k, 1, 1), 1, first, psp=1.0,
                                  psp_uniform=cid != "cAAAAA", mp_driven_psp=cid == "cMMMMM"))
        first += k
    ids = {a.cortical_id: list(range(a.first_neuron, a.neuron_stop)) for a in areas}
    syn: list[tuple[int, int, float, bool]] = []

    def connect(a: str, b: str, w: float, inh: bool = False) -> None:
        syn.extend((s, t, w, inh) for s in ids[a] for t in ids[b])
    for a in ("cAAAAA", "cBBBBB", "cMMMMM", "cDDDDD", "cEEEEE"):
        connect("_power", a, 1.0)
    connect("cAAAAA", "cBBBBB", 1.0)
    for j, t in enumerate(ids["cCCCCC"]):
        syn.extend((s, t, [0.37, 1.3, 2.9, 0.05, 7.25, 3.0][j], False) for s in ids["cAAAAA"])
    connect("cMMMMM", "cCCCCC", 0.5)
    connect("cMMMMM", "cDDDDD", 1.0)
    connect("cAAAAA", "cEEEEE", 0.5, True)
    na = neuron_array(first)
    for a in areas:
        na.cortical_area[a.first_neuron:a.neuron_stop] = a.index
        na.x[a.first_neuron:a.neuron_stop] = np.arange(a.neuron_count)
    s = np.array(syn, dtype=object)
    synapses = sort_synapses(s[:, 0].astype(np.uint32), s[:, 1].astype(np.uint32), s[:, 2].astype(np.float32),
                             s[:, 3].astype(bool))
    pairs = [PlasticPair("cAAAAA", "cBBBBB", 2, 255, 3), PlasticPair("cMMMMM", "cDDDDD", 1, 7, 1),
             PlasticPair("cAAAAA", "cEEEEE", 1, 1, 1)]
    return Brain("growth", areas, na, synapses, power_neuron=0, plasticity=pairs, fingerprint="growth")


def run_growth(backend: object, bursts: int) -> tuple[Engine, list[BurstResult], list[dict[str, np.ndarray]]]:
    engine = Engine(growth_brain(), backend=backend, warn=None)
    results, weights = [], []
    for _ in range(bursts):
        results.append(engine.process_burst())
        weights.append(engine.weights())
    return engine, results, weights


def test_weights_past_2_16_requantise_identically_on_cpu_and_gpu(gpu_backend: Any) -> None:
    bursts = 320
    cpu, rc, wc = run_growth("cpu", bursts)
    gpu = Engine(growth_brain(), backend=gpu_backend, warn=None)
    rg: list[BurstResult] = []
    gpu.run(bursts, on_result=rg.append)  # pipelined on the GPU: the decisions are device words
    assert_same_bursts(rc, rg)
    a, b = cpu.state().plastic, gpu.state().plastic
    for name in ("weights", "committed", "stamps"):
        np.testing.assert_array_equal(getattr(a, name).view(np.uint32), getattr(b, name).view(np.uint32), name)
    assert a.scale_steps == b.scale_steps and a.cap_exp == b.cap_exp
    assert float(a.weights.max()) > 2**16
    assert len(a.scale_steps) >= 5, "several requantisations"
    assert cpu.resolution == gpu.resolution == 2.0 ** -a.scale_exp
    # the oscillating inhibitory pair went up and down (LTD after LTP) on the way
    e_hist = np.array([w["cAAAAA>cEEEEE"][0] for w in wc])
    assert (np.diff(e_hist) > 0).any() and (np.diff(e_hist) < 0).any()

    # the sums stayed exact: B's firing mp is 1 (power) + 4 A spikes x (weight two updates back) / 11
    b_first = cpu.brain.area("cBBBBB").first_neuron
    coarsest = 2.0 ** -a.scale_exp  # the scale only falls: the last resolution bounds every burst's error
    for r in rc[2:]:
        expected = 1.0 + 4 * float(wc[r.burst - 3]["cAAAAA>cBBBBB"][0]) / 11.0  # A fans out to 3 + 6 + 2
        mp = float(r.mp[r.fired.tolist().index(b_first)])
        assert abs(mp - expected) <= 4 * coarsest + 1e-6 * expected, r.burst
    # ~2^14.7 of input at the end: the first scale (2^17) would have needed sums of 2^31.7
    assert expected > 20_000 and a.scale_steps[0] == 17
    # and every target's worst-case sum fits the current scale
    words = cpu.backend.pairs.view(np.int32)[1::2].astype(np.int64)
    driven = cpu.tables.mp_driven_area[cpu.brain.neurons.cortical_area[cpu.brain.synapses.source]]
    per_target = np.bincount(cpu.brain.synapses.target[~driven], weights=np.abs(words[~driven]),
                             minlength=cpu.brain.neuron_count)
    assert per_target.max() < SUM_LIMIT


def test_shift_words_rounds_half_to_even() -> None:
    q = np.array([5, 6, 7, -5, -6, -7, 2, 3, -2, -3, 1 << 24, -(1 << 24)], np.int32)
    np.testing.assert_array_equal(shift_words(q, np.zeros(q.size, bool), 1),
                                  [2, 3, 4, -2, -3, -4, 1, 2, -1, -2, 1 << 23, -(1 << 23)])
    np.testing.assert_array_equal(shift_words(q, np.zeros(q.size, bool), 40), np.zeros(q.size))
    f = np.array([1.5, -3.0], np.float32).view(np.int32)
    np.testing.assert_array_equal(shift_words(f, np.ones(2, bool), 2).view(np.float32), [0.375, -0.75])


# --- state, checkpoints, the API ------------------------------------------------------------------
@pytest.mark.parametrize("first,second", [("cpu", "cpu"), ("gpu", "gpu"), ("gpu", "cpu"), ("cpu", "gpu")])
def test_checkpoint_resume_is_bit_identical(first: str, second: str, tmp_path: Path, gpu_backend: Any) -> None:
    """300 bursts equal 150 + checkpoint + 150 resumed, across requantisations, on either backend."""
    pick = {"cpu": "cpu", "gpu": gpu_backend}
    whole = Engine(growth_brain(), backend="cpu", warn=None)
    ref: list[BurstResult] = []
    whole.run(300, on_result=ref.append)
    a = Engine(growth_brain(), backend=pick[first], warn=None)
    got: list[BurstResult] = []
    a.run(150, on_result=got.append)
    a.checkpoint(tmp_path / "ck.npz")
    mid_steps = a.state().plastic.scale_steps
    b = Engine(growth_brain(), backend=pick[second], warn=None)
    assert b.restore(tmp_path / "ck.npz") == 150
    b.run(150, on_result=got.append)
    assert_same_bursts(ref, got)
    x, y = whole.state().plastic, b.state().plastic
    np.testing.assert_array_equal(x.weights, y.weights)
    np.testing.assert_array_equal(x.stamps, y.stamps)
    assert x.scale_steps == y.scale_steps and len(x.scale_steps) > len(mid_steps) > 1


def test_checkpoint_stores_weights_by_pair_name(tmp_path: Path) -> None:
    from feagi_burst import checkpoint as ckmod

    e = stdp_engine("stdp2")
    e.run(20)
    e.checkpoint(tmp_path / "ck.npz")
    arrays, meta = checkpoint_arrays(tmp_path / "ck.npz")
    names = [k for k in arrays if k.startswith("plastic:")]
    assert "plastic:stamps" in names and meta["plastic"]["pairs"]
    for pair in meta["plastic"]["pairs"]:
        src, dst = pair.split(">")
        np.testing.assert_array_equal(arrays[f"plastic:weights:{pair}"], e.synapses(src, dst).weight)
    # a brain with plastic pairs refuses a checkpoint without learned weights
    plain = Engine(expand_genome(load_genome(STDP / "stdp2.genome.json")), backend="cpu", warn=None)
    for k in names:
        del arrays[k]
    write_checkpoint(tmp_path / "old.npz", arrays)
    with pytest.raises(InputError, match="learned weights"):
        plain.restore(tmp_path / "old.npz")
    assert ckmod.load_checkpoint(tmp_path / "ck.npz").burst == 20


def test_synapses_api_by_id_and_name_and_state() -> None:
    e = stdp_engine("stdp1")
    before = e.synapses("cPre2x", "cPst2x")
    assert before.plastic and len(before) == 4 and before.weight.tolist() == [50.0] * 4
    by_name = e.synapses("pre2x_x0fires", "post2x_all")
    np.testing.assert_array_equal(by_name.source, before.source)
    e.run(12)
    after = e.synapses("cPre2x", "cPst2x")
    assert after.weight.tolist() != before.weight.tolist()
    assert e.weights()["cPre2x>cPst2x"].tolist() == after.weight.tolist()
    st = e.state()
    assert st.plastic is not None and st.plastic.weights.dtype == np.float32
    static = e.synapses("_power", "cPreE0")
    assert not static.plastic and static.weight.tolist() == [1.0]
    assert static.source_xyz.shape == (1, 3) and static.target_xyz.tolist() == [[0, 0, 0]]
    with pytest.raises(InputError, match="unknown cortical area"):
        e.synapses("nope", "cPst2x")
    b = growth_brain()
    assert Engine(Brain("static", b.areas, b.neurons, b.synapses), backend="cpu", warn=None).weights() == {}


def eager_weights(layout: Any, fire_sets: list[np.ndarray]) -> list[np.ndarray]:
    """SPEC.md step 5 as written: every plastic synapse, every burst (the reference the lazy
    updates must equal bit for bit)."""
    w = layout.initial_weights.copy()
    last = np.zeros(layout.hi, np.int64)
    win = layout.window.astype(np.int64)[layout.pair]
    dp, dm = layout.dp[layout.pair], layout.dm[layout.pair]
    out = []
    for b, fired in enumerate(fire_sets, start=1):
        last[fired] = b
        a, c = last[layout.src], last[layout.tgt]
        pre = (a != 0) & (b - a < win)
        post = (c != 0) & (b - c < win)
        on = b >= win
        ltp = on & pre & post
        ltd = on & (pre ^ post)
        x = w - dm
        w = np.where(ltp, w + dp, np.where(ltd, np.where(x > 0, x, np.float32(0)), w)).astype(np.float32)
        out.append(w.copy())
    return out


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_lazy_updates_equal_the_rule_burst_by_burst(backend: str, request: pytest.FixtureRequest) -> None:
    """Windows 1, 2 and 3 (the growth brain) and 5 (a busy synthetic brain, 30% firing): the
    weights read after every burst equal the rule applied to every synapse every burst, while the
    backend itself touched only the synapses of each burst's fired neurons."""
    for brain, bursts in ((growth_brain(), 40), (busy_plastic_brain(), 30)):
        engine = Engine(brain, backend=request.getfixturevalue("gpu_backend") if backend == "gpu" else "cpu",
                        warn=None)
        layout = plastic_layout(brain, engine.tables)
        fire_sets, got = [], []
        for _ in range(bursts):
            fire_sets.append(engine.process_burst().fired.astype(np.int64))
            got.append(engine.state().plastic.weights.copy())
        for b, (x, y) in enumerate(zip(got, eager_weights(layout, fire_sets)), start=1):
            np.testing.assert_array_equal(x.view(np.uint32), y.view(np.uint32), f"{brain.name}, burst {b}")
        assert len({float(v) for w in got for v in w}) > 3, "weights moved"


def chain_brain(dm: float) -> Brain:
    """A plastic chain of 2,000 neurons (window 3, dp 1), weights 0.5: a spike does not make the
    next neuron fire."""
    n = 2001
    na = neuron_array(n)
    na.x[:] = np.arange(n)
    na.cortical_area[1:] = 1
    src = np.concatenate([[0], np.arange(1, n - 1)])
    tgt = np.concatenate([[1], np.arange(2, n)])
    areas = [CorticalArea(0, "_power", "power", (1, 1, 1), 1, 0), CorticalArea(1, "cPlast", "p", (n - 1, 1, 1), 1, 1)]
    syn = sort_synapses(src.astype(np.uint32), tgt.astype(np.uint32), np.full(src.size, 0.5, np.float32),
                        np.zeros(src.size, bool))
    return Brain("chain", areas, na, syn, power_neuron=0, plasticity=[PlasticPair("cPlast", "cPlast", 3, 1, dm)])


def test_window_list_stays_with_the_active_neurons() -> None:
    """Bookkeeping costs the active neurons: with one neuron of a 2,000-neuron plastic area firing,
    the window list holds it and its neighbour only, and no stamp of a silent neuron is written."""
    e = Engine(chain_brain(1), backend="cpu", warn=None)
    e.force_fire([5], burst=2)
    e.run(3)
    rt = e.backend.plastic
    assert rt.listed().tolist() == [5]
    assert np.count_nonzero(rt.st.stamps) == 1


def test_gpu_burst_touches_only_its_fired_neurons_synapses(gpu_backend: Any) -> None:
    """Lazy updates on the GPU: with one neuron of a 2,000-neuron plastic chain firing, a burst
    stamps it alone and changes the stored weights of its two synapses alone; the rest are brought
    up to date when read."""
    e = Engine(chain_brain(0.125), backend=gpu_backend, warn=None)
    rt = e.backend.plastic
    p, span = rt.layout.size, rt.layout.span

    def stored() -> tuple[np.ndarray, np.ndarray]:
        e.backend._drain()  # every submitted burst finished
        raw = rt.gb.dev.download(rt.b_ps, 0, (2 * p + 2 * span) * 4).view(np.uint32)
        return raw[:p].view(np.float32).copy(), raw[2 * p: 2 * p + 2 * span: 2].copy()
    e.force_fire([5], burst=3)
    e.run(3)
    w, last = stored()
    assert np.flatnonzero(last).tolist() == [5 - rt.layout.lo]
    assert w[3:5].tolist() == [0.375, 0.375]  # 4 -> 5 and 5 -> 6: LTD at burst 3
    assert np.flatnonzero(w != 0.5).tolist() == [3, 4]
    e.run(2)
    assert e.synapses("cPlast", "cPlast").weight[3:5].tolist() == [0.125, 0.125]  # bursts 4, 5 replayed when read
    w, last = stored()
    assert np.flatnonzero(w != 0.5).tolist() == [3, 4] and w[3:5].tolist() == [0.375, 0.375]  # untouched since


# --- the engine's GPU fault fallback keeps the learned state -----------------------------------
def test_fault_fallback_replays_with_the_learned_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    import feagi_burst.engine as eng

    monkeypatch.setattr(eng, "SYNC_EVERY", 64)

    monkeypatch.setattr(eng, "SYNC_COST_RATIO", 0)
    ref = Engine(growth_brain(), backend="cpu", warn=None)
    want: list[BurstResult] = []
    ref.run(300, on_result=want.append)
    e = Engine(growth_brain(), backend=FaultyBackend(230, lag=2), warn=None)
    got: list[BurstResult] = []
    e.run(300, on_result=got.append)
    assert e.backend_name().startswith("CPU")
    assert_same_bursts(want, got)
    np.testing.assert_array_equal(ref.state().plastic.weights, e.state().plastic.weights)


# --- the command line -----------------------------------------------------------------------------
def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feagi_burst.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def test_cli_record_weights_and_plot(tmp_path: Path) -> None:
    from feagi_burst.weight_record import read_weights

    genome = STDP / "stdp1.genome.json"
    p = cli("run", "--genome", genome, "--bursts", 30, "--backend", "cpu", "--stimulus", STDP / "stim1.json",
            "--record-weights", tmp_path / "w.npz", "--record-weights-every", 4, "--json", tmp_path / "s.json")
    assert p.returncode == 0, p.stderr
    assert "weights: " in p.stderr and "snapshots" in p.stderr
    rec = read_weights(tmp_path / "w.npz")
    assert rec.bursts.tolist() == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    i = rec.find("cPre2x>cPst2x")
    assert rec.weights[i].shape == (9, 4) and rec.weights[i][0].tolist() == [50.0] * 4
    assert rec.source_xyz[i].shape == (4, 3) and rec.meta["pairs"][i]["window"] == 1
    engine = stdp_engine("stdp1")
    engine.run(30)
    np.testing.assert_array_equal(rec.weights[i][-1], engine.synapses("cPre2x", "cPst2x").weight)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert "plasticity" in summary["phases"]
    p = cli("plot", "--weights", tmp_path / "w.npz", "--pair", "pre2x_x0fires>post2x_all", "--out", tmp_path / "w.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "w.png").stat().st_size > 5000
    p = cli("plot", "--weights", tmp_path / "w.npz", "--out", tmp_path / "x.png")
    assert p.returncode == 2 and "choose one with --pair" in p.stderr
    p = cli("run", "--genome", DATA / "genomes" / "test_timer.json", "--bursts", 5, "--backend", "cpu",
            "--record-weights", tmp_path / "none.npz")
    assert p.returncode == 2 and "no plastic synapses" in p.stderr and not (tmp_path / "none.npz").exists()


def test_bench_plastic_fraction(tmp_path: Path) -> None:
    from feagi_burst.synthetic import synthetic_brain

    brain = synthetic_brain(20_000, 50, 0.01, 0, plastic_fraction=0.1)
    layout = plastic_layout(brain, compile_tables(brain))
    assert layout is not None and 0.09 < layout.size / brain.synapse_count < 0.11
    assert int(layout.window[0]) == 5
    plain = synthetic_brain(20_000, 50, 0.01, 0)
    np.testing.assert_array_equal(plain.synapses.target, brain.synapses.target)
    p = cli("bench", "--neurons", 20_000, "--synapses-per-neuron", 50, "--bursts", 20, "--warmup", 5,
            "--backend", "cpu", "--plastic-fraction", 0.1, "--json", tmp_path / "b.json")
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "b.json").read_text())
    assert 0.09 < r["plastic_fraction"] < 0.11 and r["plastic_pairs"][0]["window"] == 5
    cpu = r["backends"]["cpu"]
    assert cpu["phases"]["plasticity"]["mean_us"] > 0 and 0 < cpu["plasticity_share"] < 1
    phases = cpu["phases"]
    assert cpu["plasticity_share_p50"] == pytest.approx(
        phases["plasticity"]["p50_us"] / sum(v["p50_us"] for v in phases.values()))
    assert "STDP:" in p.stdout and "µs p50" in p.stdout


# --- larger brains: synapse chunks on the GPU ---------------------------
def busy_plastic_brain(fraction: float = 0.33) -> Brain:
    """A synthetic brain firing 30% a burst, part of its synapses plastic: weights climb, so the
    caps (and the scale) move several times in a few dozen bursts."""
    from feagi_burst.synthetic import synthetic_brain

    return synthetic_brain(2000, 20, 0.3, 3, plastic_fraction=fraction)


def test_parallel_cpu_update_equals_serial() -> None:
    """The update split over threads (each synapse written by one side, each side's synapses by
    one thread) gives the same bits as on one thread."""
    brain = busy_plastic_brain()
    runs = []
    for threads, split_from in ((1, 1 << 40), (2, 0)):
        e = Engine(brain, backend="cpu", warn=None)
        e.backend.plastic.sc[8:10] = (threads, split_from)
        out: list[BurstResult] = []
        e.run(60, on_result=out.append)
        runs.append((out, e.state().plastic))
    assert_same_bursts(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1].weights, runs[1][1].weights)
    assert len(runs[0][1].scale_steps) > 1


def test_plastic_synapse_chunks_on_gpu() -> None:
    """Synapses over several bindings (4+ chunks): the commit and the requantisation write into the
    right chunk, and the GPU equals the CPU."""
    brain = busy_plastic_brain(0.04)  # the STDP buffers (~32 bytes per plastic synapse) fit one binding
    cpu = Engine(brain, backend="cpu", warn=None)
    want: list[BurstResult] = []
    cpu.run(40, on_result=want.append)
    small = _new_gpu(batch=4, max_binding_bytes=100_000)
    try:
        gpu = Engine(brain, backend=small, warn=None)
        assert len(small.chunks) >= 4
        got: list[BurstResult] = []
        gpu.run(40, on_result=got.append)
        assert_same_bursts(want, got)
        a, b = cpu.state().plastic, gpu.state().plastic
        np.testing.assert_array_equal(a.weights, b.weights)
        assert a.scale_steps == b.scale_steps and len(a.scale_steps) > 1
    finally:
        small.close()


def _new_gpu(**kw: Any) -> Any:
    import os

    from feagi_burst.backends.wgpu import GPUBackend

    try:
        return GPUBackend(**kw)
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise
