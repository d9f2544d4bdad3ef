"""GPU backend (wgpu): the hash table, and GPU == CPU bit for bit on brains exercising every rule.

Runs on whatever adapter wgpu finds (here: Mesa's lavapipe/llvmpipe software adapter). A missing
adapter fails the tests, so CI cannot pass without one; set FEAGI_BURST_ALLOW_NO_GPU=1 to skip.
"""
from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pytest

from feagi_burst.backends.base import NO_IDS, BackendError, BurstInput, BurstResult
from feagi_burst.backends.cpu import CPUBackend
from feagi_burst.brain import Brain, CorticalArea, Drive, NeuronState, neuron_array, sort_synapses
from feagi_burst.fixed_point import compile_tables

from feagi_burst.backends.wgpu import GPUBackend, probe_adapters
from feagi_burst.backends.wgpu.backend import TS_SAMPLE
from feagi_burst.backends.wgpu.layout import COUNT_BITS
from feagi_burst.backends.wgpu.hashing import build_synapse_hash, hash_slot, lookup_synapse_hash


def new_gpu(**kwargs: object) -> GPUBackend:
    """A GPUBackend; no adapter (or no wgpu) fails, unless FEAGI_BURST_ALLOW_NO_GPU=1 skips."""
    try:
        return GPUBackend(**kwargs)  # type: ignore[arg-type]
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise


@pytest.fixture(scope="module")
def gpu() -> Iterable[GPUBackend]:
    """One device for the module (pipelines compile once); tests reload brains and set `path`."""
    g = new_gpu(batch=8)
    yield g
    g.close()


# --- helpers -------------------------------------------------------------------------------------
def make_brain(n: int, src: np.ndarray, tgt: np.ndarray, weight: np.ndarray | int = 1,
               inhibitory: np.ndarray | bool = False, areas: list[CorticalArea] | None = None,
               power: int | None = None, drive: Drive | None = None, **params: np.ndarray | float) -> Brain:
    """A brain of n neurons (default parameters unless given) with the listed synapses."""
    na = neuron_array(n)
    for k, v in params.items():
        getattr(na, k)[:] = v
    s = np.asarray(src).size
    w = np.broadcast_to(np.asarray(weight, np.float32), (s,)).copy()
    inh = np.broadcast_to(np.asarray(inhibitory, bool), (s,)).copy()
    syn = sort_synapses(np.asarray(src, np.uint32), np.asarray(tgt, np.uint32), w, inh)
    if areas is None:
        areas = [CorticalArea(0, "a", "a", (n, 1, 1), 1, 0)]
    for a in areas:
        na.cortical_area[a.first_neuron:a.neuron_stop] = a.index
    return Brain("test", areas, na, syn, power_neuron=power, drive=drive)


def assert_same(g: BurstResult, c: BurstResult) -> None:
    assert g.burst == c.burst
    assert np.array_equal(g.fired, c.fired), f"burst {g.burst}: fire sets differ: {g.fired} vs {c.fired}"
    assert np.array_equal(g.mp.view(np.uint32), c.mp.view(np.uint32)), f"burst {g.burst}: firing mp differ"
    assert g.candidates == c.candidates, f"burst {g.burst}: {g.candidates} vs {c.candidates} candidates"


def assert_same_state(g: NeuronState, c: NeuronState) -> None:
    assert np.array_equal(g.mp.view(np.uint32), c.mp.view(np.uint32)), \
        f"mp differs at {np.flatnonzero(g.mp.view(np.uint32) != c.mp.view(np.uint32))[:10]}"
    assert np.array_equal(g.cfc_count, c.cfc_count)
    assert np.array_equal(g.blocked_until, c.blocked_until)
    assert g.burst == c.burst


def run_both(gpu: GPUBackend, brain: Brain, inputs: list[BurstInput], path: str,
             seed: int = 0) -> tuple[list[BurstResult], CPUBackend]:
    """Run the same bursts on both backends (GPU pipelined), compare everything, return CPU results."""
    tables = compile_tables(brain)
    gpu.path = path
    gpu.load(brain, tables, seed)
    cpu = CPUBackend()
    cpu.load(brain, tables, seed)
    got: list[BurstResult] = []
    for inp in inputs:
        gpu.submit(inp)
        cpu.submit(inp)
        got += gpu.collect(wait=False)
    got += gpu.collect(wait=True)
    want = cpu.collect()
    assert [r.burst for r in got] == [i.burst for i in inputs]
    for g, c in zip(got, want):
        assert_same(g, c)
    assert_same_state(gpu.state(), cpu.state())
    return want, cpu


def bursts(n: int, forced: dict[int, list[int]] | None = None, potential: dict[int, dict[int, float]] | None = None,
           forced_mp: float = 100.0) -> list[BurstInput]:
    forced, potential = forced or {}, potential or {}
    out = []
    for b in range(1, n + 1):
        f = np.array(forced.get(b, []), np.uint32)
        p = potential.get(b, {})
        out.append(BurstInput(b, potential_ids=np.array(list(p.keys()), np.uint32),
                              potential=np.array(list(p.values()), np.float32),
                              forced_ids=f, forced_mp=np.full(f.size, forced_mp, np.float32)))
    return out


PATHS = ["fcl", "full"]


# --- the hash table -----------------------------------------------------------------------------
def test_hash_colliding_ids_never_miss() -> None:
    cap_bits = 6  # 64 slots for up to 32 keys
    shift = 32 - cap_bits
    cand = np.arange(200_000, dtype=np.int64)
    home = hash_slot(cand, shift)
    same = cand[home == home[123]][:20]  # 20 ids with one home slot: a probe chain of 20
    more = cand[home == (home[123] + 1) % 64][:5]  # and neighbours that must step over them
    ids = np.unique(np.concatenate([same, more]))
    n = int(ids.max()) + 1
    counts = np.zeros(n, np.int64)
    counts[ids] = np.arange(1, ids.size + 1)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    table, max_probe = build_synapse_hash(offsets, min_capacity=64)
    assert table.shape == (64, 4)
    assert max_probe >= same.size - 1
    start, count = lookup_synapse_hash(table, max_probe, ids)
    assert np.array_equal(start, offsets[ids]) and np.array_equal(count, counts[ids])
    # the bound is tight: one probe less misses some key
    _, short = lookup_synapse_hash(table, max_probe - 1, ids)
    assert (short != counts[ids]).any()
    # ids without synapses are not found (count 0)
    absent = np.setdiff1d(np.arange(n), ids)[:1000]
    assert not lookup_synapse_hash(table, max_probe, absent)[1].any()


def test_hash_large_random_and_half_full() -> None:
    rng = np.random.default_rng(3)
    n = 300_000
    counts = rng.integers(0, 3, n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    table, max_probe = build_synapse_hash(offsets)
    keys = np.flatnonzero(counts)
    assert table.shape[0] >= 2 * keys.size and table.shape[0] & (table.shape[0] - 1) == 0
    start, count = lookup_synapse_hash(table, max_probe, np.arange(n))
    assert np.array_equal(count, counts) and np.array_equal(start[keys], offsets[keys])


@pytest.mark.parametrize("path", PATHS)
def test_gpu_colliding_sources(gpu: GPUBackend, path: str) -> None:
    """Fired sources that share a home slot in the GPU table propagate like any other."""
    n = 4096
    cap = 16
    while cap < 2 * 40:
        cap *= 2
    home = hash_slot(np.arange(n), 32 - (cap.bit_length() - 1))
    srcs = np.flatnonzero(home == home[7])[:40]
    src = np.repeat(srcs, 5)
    tgt = (src * 7 + np.tile(np.arange(5), srcs.size)) % n
    brain = make_brain(n, src, tgt, weight=3)
    inputs = bursts(4, forced={1: srcs.tolist(), 3: srcs[::2].tolist()})
    run_both(gpu, brain, inputs, path)


# --- one rule at a time -------------------------------------------------------------------------
@pytest.mark.parametrize("path", PATHS)
def test_refractory_and_lazy_cfc_reset(gpu: GPUBackend, path: str) -> None:
    n = 64
    src = np.arange(n - 1)
    brain = make_brain(n, src, src + 1, weight=2, refractory_period=np.arange(n) % 4,
                       cfc_limit=np.where(np.arange(n) % 3 == 0, 2, 0), snooze=np.arange(n) % 3,
                       mp_accumulate=np.arange(n) % 2 == 0)
    inputs = bursts(30, potential={b: {i: 1.0 for i in range(0, n, 5)} for b in range(1, 30, 2)})
    want, cpu = run_both(gpu, brain, inputs, path)
    assert cpu.state().blocked_until.any()


@pytest.mark.parametrize("path", PATHS)
def test_consecutive_fire_limit_and_snooze(gpu: GPUBackend, path: str) -> None:
    n = 16
    brain = make_brain(n, [], [], cfc_limit=np.arange(n) % 4, snooze=np.arange(n) % 5, refractory_period=0)
    inputs = bursts(40, potential={b: {i: 2.0 for i in range(n)} for b in range(1, 41)})
    want, _ = run_both(gpu, brain, inputs, path)
    sizes = {r.fired.size for r in want}
    assert len(sizes) > 1  # the limit holds some neurons back some bursts


@pytest.mark.parametrize("path", PATHS)
def test_threshold_limit_leak_and_accumulate(gpu: GPUBackend, path: str) -> None:
    n = 40
    i = np.arange(n)
    brain = make_brain(n, [], [], threshold=1 + (i % 3), threshold_limit=np.where(i % 2 == 0, 2.5, 0),
                       leak=np.array([0, 0.1, 0.5, 1.0, 1.7])[i % 5], mp_accumulate=i % 4 != 3)
    rng = np.random.default_rng(0)
    inputs = bursts(30, potential={b: {int(k): float(rng.uniform(-0.5, 1.6)) for k in rng.choice(n, 25)}
                                   for b in range(1, 31)})
    run_both(gpu, brain, inputs, path)


@pytest.mark.parametrize("path", PATHS)
def test_psp_division_uniform_and_inhibition(gpu: GPUBackend, path: str) -> None:
    areas = [CorticalArea(0, "div", "div", (10, 1, 1), 1, 0, psp=0.7, psp_uniform=False),
             CorticalArea(1, "uni", "uni", (10, 1, 1), 1, 10, psp=0.3, psp_uniform=True),
             CorticalArea(2, "dst", "dst", (20, 1, 1), 1, 20, psp=1.0)]
    rng = np.random.default_rng(1)
    src = np.repeat(np.arange(20), 6)
    tgt = rng.integers(20, 40, src.size)
    brain = make_brain(40, src, tgt, weight=rng.integers(1, 255, src.size), inhibitory=rng.random(src.size) < 0.3,
                       areas=areas, mp_accumulate=True, leak=0.05)
    inputs = bursts(25, forced={b: rng.choice(20, 8, replace=False).tolist() for b in range(1, 26)})
    want, _ = run_both(gpu, brain, inputs, path)
    assert sum(int((r.fired >= 20).sum()) for r in want) > 0


@pytest.mark.parametrize("path", PATHS)
def test_mp_driven_psp(gpu: GPUBackend, path: str) -> None:
    areas = [CorticalArea(0, "drv", "drv", (8, 1, 1), 1, 0, psp=1.0, mp_driven_psp=True),
             CorticalArea(1, "dst", "dst", (8, 1, 1), 1, 8)]
    src = np.repeat(np.arange(8), 3)
    tgt = 8 + (np.arange(src.size) % 8)
    brain = make_brain(16, src, tgt, weight=np.arange(src.size) % 7 + 1, inhibitory=np.arange(src.size) % 5 == 0,
                       areas=areas, threshold=np.where(np.arange(16) < 8, 1.0, 30.0), mp_accumulate=True)
    rng = np.random.default_rng(2)
    # firing mps from potentials, from forced fires (100) and beyond the cap (clamped)
    inputs = bursts(20, potential={b: {int(k): float(rng.uniform(1, 60)) for k in range(8)} for b in range(1, 21, 2)},
                    forced={b: [0, 3] for b in range(2, 21, 3)}, forced_mp=1e6)
    run_both(gpu, brain, inputs, path)


@pytest.mark.parametrize("path", PATHS)
def test_excitability_draw_and_seed(gpu: GPUBackend, path: str) -> None:
    n = 500
    brain = make_brain(n, [], [], excitability=np.linspace(0, 1.2, n).astype(np.float32))
    inputs = bursts(10, potential={b: {i: 1.0 for i in range(n)} for b in range(1, 11)})
    want, _ = run_both(gpu, brain, inputs, path, seed=12345)
    assert 0 < want[0].fired.size < n


@pytest.mark.parametrize("path", PATHS)
def test_forced_fires(gpu: GPUBackend, path: str) -> None:
    """Forced alone, forced while blocked (block + 1), forced while a candidate (mp kept), forced
    while firing by itself (own mp kept), forced repeatedly."""
    n = 12
    src = np.array([0, 1, 2, 3, 4])
    tgt = np.array([5, 6, 7, 8, 9])
    brain = make_brain(n, src, tgt, weight=1, refractory_period=np.array([3, 0, 2, 0, 4, 0, 0, 0, 0, 2, 0, 0]),
                       threshold=np.array([1, 1, 1, 1, 1, 1, 3, 1, 1, 2, 1, 1], np.float32),
                       mp_accumulate=np.arange(n) % 2 == 1, cfc_limit=np.array([0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                       snooze=3)
    forced = {1: [0, 2], 2: [0, 6, 9], 3: [0, 6, 11], 4: [2, 9], 5: [4], 6: [4, 6], 8: [9], 9: [9, 10]}
    potential = {b: {1: 1.0, 6: 0.5, 9: 1.2} for b in range(1, 12)}
    run_both(gpu, brain, bursts(12, forced=forced, potential=potential), path)


@pytest.mark.parametrize("path", PATHS)
def test_power_neuron_and_drive(gpu: GPUBackend, path: str) -> None:
    n = 300
    rng = np.random.default_rng(5)
    src = np.concatenate([np.zeros(40, np.int64), rng.integers(1, n, 600)])
    tgt = rng.integers(0, n, src.size)
    # the power neuron is also in the Drive order and in the external list: f32 order matters
    drive = Drive(order=rng.permutation(n).astype(np.uint32), per_burst=37, potential=0.6)
    brain = make_brain(n, src, tgt, weight=rng.integers(1, 4, src.size), inhibitory=rng.random(src.size) < 0.2,
                       power=0, drive=drive, threshold=1.3, mp_accumulate=True, leak=0.2)
    potential = {b: {0: 0.1, 5: 0.7, int(drive.neurons(b)[0]): 0.35} for b in range(1, 41)}
    run_both(gpu, brain, bursts(40, potential=potential), path)


def test_drive_larger_than_order(gpu: GPUBackend) -> None:
    n = 50
    brain = make_brain(n, [0, 1], [2, 3], drive=Drive(np.arange(n, dtype=np.uint32)[::-1].copy(), 80, 0.4),
                       mp_accumulate=True)
    run_both(gpu, brain, bursts(6), "fcl")


# --- a synthetic-style random brain: every rule mixed, input, both paths --------------------------
def random_brain(n: int, k: int, seed: int) -> Brain:
    rng = np.random.default_rng(seed)
    a0 = n // 2
    areas = [CorticalArea(0, "r0", "r0", (a0, 1, 1), 1, 0, psp=1.0 / k, psp_uniform=True),
             CorticalArea(1, "r1", "r1", (n - a0 - 1, 1, 1), 1, a0, psp=0.8, psp_uniform=False),
             CorticalArea(2, "pw", "_power", (1, 1, 1), 1, n - 1)]
    src = np.repeat(np.arange(n, dtype=np.uint32), k)
    tgt = rng.integers(0, n, src.size, dtype=np.uint32)
    i = np.arange(n)
    drive = Drive(order=rng.permutation(n).astype(np.uint32), per_burst=n // 100, potential=1.5)
    return make_brain(n, src, tgt, weight=rng.integers(1, 4, src.size).astype(np.uint8),
                      inhibitory=rng.random(src.size) < 0.2, areas=areas, power=n - 1, drive=drive,
                      refractory_period=(i % 3).astype(np.uint16), cfc_limit=np.where(i % 7 == 0, 3, 0),
                      snooze=(i % 4).astype(np.uint16), mp_accumulate=i % 5 < 2, leak=(i % 4) * 0.1,
                      threshold_limit=np.where(i % 11 == 0, 3.0, 0), excitability=np.where(i % 13 == 0, 0.5, 100))


def random_inputs(n: int, count: int, seed: int) -> list[BurstInput]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(1, count + 1):
        p = rng.choice(n, 20, replace=False).astype(np.uint32) if b % 3 else np.zeros(0, np.uint32)
        f = rng.choice(n, 10, replace=False).astype(np.uint32) if b % 4 == 0 else np.zeros(0, np.uint32)
        out.append(BurstInput(b, potential_ids=p, potential=rng.uniform(-1, 2, p.size).astype(np.float32),
                              forced_ids=f, forced_mp=np.full(f.size, 100, np.float32)))
    return out


@pytest.mark.parametrize("path", ["fcl", "full", "auto"])
def test_random_brain_100k_1000_bursts(gpu: GPUBackend, path: str) -> None:
    n, k = 100_000, 10
    brain = random_brain(n, k, seed=7)
    want, _ = run_both(gpu, brain, random_inputs(n, 1000, seed=8), path, seed=3)
    assert np.mean([r.fired.size for r in want]) > n // 100


def sparse_inputs(n: int, count: int, seed: int) -> list[BurstInput]:
    """Mostly bursts without input (their header rows are written ahead), forced fires now and then."""
    rng = np.random.default_rng(seed)
    out = []
    for b in range(1, count + 1):
        f = rng.choice(n, 10, replace=False).astype(np.uint32) if b % 97 == 0 or b in (300, 301) else NO_IDS
        out.append(BurstInput(b, forced_ids=f, forced_mp=np.full(f.size, 100, np.float32)))
    return out


@pytest.mark.parametrize("path", ["full", "auto"])
def test_header_rows_written_ahead_fit_every_burst(gpu: GPUBackend, path: str) -> None:
    # past the header ring's wrap (256 rows), with stimulation and (auto) path changes rewriting rows
    n = 20_000
    want, _ = run_both(gpu, random_brain(n, 10, seed=11), sparse_inputs(n, 700, seed=12), path)
    assert sum(r.fired.size for r in want) > 700 * n // 200


def test_header_rows_written_ahead_fit_blocking_bursts(gpu: GPUBackend) -> None:
    n = 20_000
    brain, inputs = random_brain(n, 10, seed=13), sparse_inputs(n, 400, seed=14)
    tables = compile_tables(brain)
    gpu.path = "auto"
    gpu.load(brain, tables, 0)
    cpu = CPUBackend()
    cpu.load(brain, tables, 0)
    for inp in inputs:  # one burst at a time: each its own batch
        gpu.submit(inp)
        cpu.submit(inp)
        (g,), (c,) = gpu.collect(wait=True), cpu.collect()
        assert_same(g, c)
    assert_same_state(gpu.state(), cpu.state())


def test_synapse_chunks() -> None:
    """Synapses split over several bindings (a small binding limit forces 4+ chunks)."""
    n, k = 2000, 20
    brain = random_brain(n, k, seed=11)
    small = new_gpu(batch=4, max_binding_bytes=80_000)
    try:
        run_both(small, brain, random_inputs(n, 60, seed=12), "fcl")
        assert len(small.chunks) >= 4
        run_both(small, brain, random_inputs(n, 60, seed=12), "full")
    finally:
        small.close()


def test_public_wgpu_api_path_gives_the_same_bursts(gpu: GPUBackend) -> None:
    """Without wgpu-native's direct calls (another wgpu-py version) the public API gives the same bursts."""
    assert gpu.dev.native is not None  # the fast path is what runs here; this test covers the other
    n = 3000
    brain = random_brain(n, 8, seed=13)
    plain = new_gpu(batch=4, native=False)
    try:
        assert plain.dev.native is None
        run_both(plain, brain, random_inputs(n, 40, seed=14), "auto")
        plain.load(brain, compile_tables(brain))
        assert plain.process_burst(BurstInput(1)).burst == 1
    finally:
        plain.close()


# --- the Backend interface ----------------------------------------------------------------------
def test_process_burst_state_roundtrip(gpu: GPUBackend) -> None:
    n = 5000
    brain = random_brain(n, 8, seed=21)
    tables = compile_tables(brain)
    gpu.path = "auto"
    gpu.load(brain, tables)
    cpu = CPUBackend()
    cpu.load(brain, tables)
    inputs = random_inputs(n, 30, seed=22)
    for inp in inputs[:10]:  # closed loop: one blocking burst at a time
        assert_same(gpu.process_burst(inp), cpu.process_burst(inp))
    ids, mp = gpu.last_fire_set()
    cids, cmp_ = cpu.last_fire_set()
    assert np.array_equal(ids, cids) and np.array_equal(mp, cmp_)
    saved, saved_ids, saved_mp = gpu.state(), ids.copy(), mp.copy()
    assert_same_state(saved, cpu.state())
    first = [gpu.process_burst(inp) for inp in inputs[10:20]]
    # rewind: set_state, then the same bursts give the same results
    gpu.set_state(saved, saved_ids, saved_mp)
    again = [gpu.process_burst(inp) for inp in inputs[10:20]]
    for a, b in zip(first, again):
        assert_same(a, b)
    # and a CPU state continues on the GPU
    for inp in inputs[10:20]:
        cpu.process_burst(inp)
    gpu.set_state(cpu.state(), *cpu.last_fire_set())
    for inp in inputs[20:]:
        assert_same(gpu.process_burst(inp), cpu.process_burst(inp))
    assert_same_state(gpu.state(), cpu.state())


def test_state_downloads_only_touched_neurons_when_few(gpu: GPUBackend) -> None:
    """state() reads back the neurons touched since the last sync when they are few, else all of
    them; either way it equals the CPU's state, forced neurons in a block included."""
    n = 20_000
    src = np.arange(0, 200, dtype=np.uint32)
    brain = make_brain(n, src, src + 1, refractory_period=2, leak=0.25)
    tables = compile_tables(brain)
    gpu.path = "auto"
    gpu.load(brain, tables)
    cpu = CPUBackend()
    cpu.load(brain, tables)
    # 400 fires at burst 5 (refractory until 7) and is forced at 7, after the sync at 6 and
    # without being a candidate: only its forced mark says its block got longer
    inputs = bursts(12, forced={1: [0, 50, 120], 2: [50, 9000], 5: [7, 19_999], 7: [400]},
                    potential={3: {300: 0.5}, 5: {400: 2.0}, 9: {300: 0.75}})
    for inp in inputs[:6]:
        assert_same(gpu.process_burst(inp), cpu.process_burst(inp))
    assert_same_state(gpu.state(), cpu.state())
    assert gpu.state_download.startswith("delta")
    touched = int(gpu.state_download.split("(")[1].split()[0].replace(",", ""))
    assert 0 < touched < 1000  # a few hundred neurons of 20,000
    assert_same_state(gpu.state(), cpu.state())  # nothing ran since: no download at all
    for inp in inputs[6:]:
        assert_same(gpu.process_burst(inp), cpu.process_burst(inp))
    assert_same_state(gpu.state(), cpu.state())
    # a burst that touches most neurons: the whole state comes back in one read
    every = np.arange(n, dtype=np.uint32)
    big = BurstInput(13, potential_ids=every, potential=np.full(n, 0.25, np.float32))
    assert_same(gpu.process_burst(big), cpu.process_burst(big))
    assert_same_state(gpu.state(), cpu.state())
    assert gpu.state_download == "full"


def test_collect_nowait_returns_finished_in_order(gpu: GPUBackend) -> None:
    brain = random_brain(3000, 5, seed=31)
    gpu.path = "auto"
    gpu.load(brain, compile_tables(brain))
    seen: list[int] = []
    for b in range(1, 50):
        gpu.submit(BurstInput(b))
        seen += [r.burst for r in gpu.collect(wait=False)]
    seen += [r.burst for r in gpu.collect(wait=True)]
    assert seen == list(range(1, 50))
    assert gpu.collect(wait=True) == []
    assert gpu.process_burst(BurstInput(50)).burst == 50


def test_timestamps_are_sampled_one_batch_in_ts_sample(gpu: GPUBackend) -> None:
    """timing="auto": GPU timestamps on one batch in TS_SAMPLE (they slow a batch by ~15%); the
    other bursts carry no timings, and PhaseStats counts only the timed ones."""
    from feagi_burst.report import PhaseStats
    brain = random_brain(3000, 5, seed=32)
    gpu.load(brain, compile_tables(brain))
    assert gpu.ts_every == (TS_SAMPLE if gpu.dev.timestamps else 0)
    results = [gpu.process_burst(BurstInput(b)) for b in range(1, 2 * TS_SAMPLE + 1)]
    timed = [r.burst for r in results if r.timings]
    phases = {"input", "synaptic_propagation", "neural_dynamics", "output", "plasticity"}
    assert all(set(r.timings) == phases for r in results if r.timings)
    if gpu.dev.timestamps:  # batches 1 and 1 + TS_SAMPLE (one burst each) are the timed ones
        assert timed == [1, 1 + TS_SAMPLE]
        assert all(r.timings["neural_dynamics"] > 0 for r in results if r.timings)
    stats = PhaseStats()
    for r in results:
        stats.add(r)
    assert stats.bursts == len(results) and stats.timed == len(timed)
    assert stats.phase("total")["mean_us"] == pytest.approx(
        np.mean([sum(r.timings.values()) for r in results if r.timings]) * 1e6)


def test_names_and_adapters(gpu: GPUBackend) -> None:
    name = gpu.backend_name()
    assert name.startswith("WGPU (") and "): " in name
    found = probe_adapters()
    assert found and all(isinstance(a.is_software, bool) for a in found)
    assert any(a.label == name for a in found)
    assert isinstance(gpu.is_software, bool)


def test_too_big_fails_at_load_with_the_limit() -> None:
    g = new_gpu(batch=2, max_binding_bytes=4096)
    try:
        brain = make_brain(1000, [0], [1])
        with pytest.raises(BackendError, match="max-storage-buffer-binding-size"):
            g.load(brain, compile_tables(brain))
    finally:
        g.close()


# --- a sum of exactly 0 still makes a candidate (it leaks), on both paths ----------------------------
@pytest.mark.parametrize("path", ["full", "fcl"])
def test_inputs_summing_to_zero_still_make_a_candidate(gpu: GPUBackend, path: str) -> None:
    """Neurons 0 and 1 fire every burst (forced); 0 excites and 1 inhibits neuron 2 equally, so its
    sum is exactly 0: it is a candidate all the same and leaks (SPEC.md step 3), on both paths.
    Neuron 3 gets +w twice and -w twice (the sum crosses 0 on the way); neuron 4 a contribution
    that rounds to 0. (A full path that stamps only sums reaching 0, to spend one atomic per event,
    must still pass this.)"""
    n = 6
    src = np.array([0, 1, 0, 0, 1, 1, 5], np.uint32)
    tgt = np.array([2, 2, 3, 3, 3, 3, 4], np.uint32)
    inh = np.array([False, True, False, False, True, True, False])
    weight = np.array([1, 1, 1, 1, 1, 1, 1e-30], np.float32)
    brain = make_brain(n, src, tgt, weight=weight, inhibitory=inh, mp_accumulate=True, leak=0.5, threshold=100.0)
    stim = {b: [0, 1, 5] for b in range(1, 9)}
    pot = {1: {2: 0.75, 3: 0.75, 4: 0.75}}
    results, cpu = run_both(gpu, brain, bursts(8, forced=stim, potential=pot), path)
    st = cpu.state()
    # burst 1 staged 0.75 and leaked it to 0.375; bursts 2..8 brought zero sums: 7 more halvings
    assert st.mp[2] == np.float32(0.75) * np.float32(0.5) ** 8
    assert st.mp[3] == st.mp[2] and st.mp[4] == st.mp[2]


def test_every_burst_of_a_batch_writes_its_timestamps(gpu: GPUBackend) -> None:
    """Bursts encoded as one batch each write all TS timestamps of their own rows: a query left
    unwritten and then resolved hangs NVIDIA's Vulkan driver (seen on the H200), and reads as
    garbage here."""
    brain = random_brain(3000, 5, seed=33)
    gpu.load(brain, compile_tables(brain))
    if not gpu.dev.timestamps:
        pytest.skip("this adapter has no timestamp queries")
    gpu.ts_every, gpu.batch = 1, 8
    for b in range(1, 9):
        gpu.submit(BurstInput(b))
    results = gpu.collect(wait=True)
    assert [r.burst for r in results] == list(range(1, 9))
    for r in results:
        assert all(0.0 <= t < 1.0 for t in r.timings.values()), (r.burst, r.timings)


# --- narrow targets are marked by their event count, wide ones (fan-in >= 2^COUNT_BITS) by a stamp ------
@pytest.mark.parametrize("path", ["full", "fcl"])
def test_event_counts_and_wide_targets(gpu: GPUBackend, path: str) -> None:
    """Sources 0..299 fire every burst (forced). Zero sums: 20,000 gets 127 synapses (the most a sum
    word counts: 63 excite, 63 inhibit, one rounds to 0) and 20,001 gets 128 (a wide target);
    both stay candidates and leak. Non-zero sums (each contribution divided by its source's fan-out):
    20,002 (fan-in 300) 150 excite (5 each) and 150 inhibit (1 each), > 0; 20,003 and
    20,004 (fan-in 127) 64 x 2 - 63 x 3 < 0 and 63 x 3 - 64 x 2 > 0. state() reads only the touched
    neurons back, so counted candidates must carry their stamp as well."""
    n, base = 20_100, 20_000
    k = COUNT_BITS
    assert 1 << k == 128
    src = [np.arange(127), np.arange(128), np.arange(300), np.arange(127), np.arange(127)]
    inh = [np.arange(127) % 2 == 1, np.arange(128) % 2 == 1, np.arange(300) >= 150,
           np.arange(127) >= 64, np.arange(127) < 64]
    weight = [np.where(np.arange(127) == 126, 1e-30, 1.0), np.ones(128), np.where(np.arange(300) < 150, 5.0, 1.0),
              np.where(np.arange(127) < 64, 2.0, 3.0), np.where(np.arange(127) < 64, 2.0, 3.0)]
    tgt = [np.full(s.size, base + i) for i, s in enumerate(src)]
    brain = make_brain(n, np.concatenate(src), np.concatenate(tgt), weight=np.concatenate(weight).astype(np.float32),
                       inhibitory=np.concatenate(inh), mp_accumulate=True, leak=0.5, threshold=1e9)
    tables = compile_tables(brain)
    assert int(tables.fan_in[base + 1]) == 128 and int(tables.fan_in[base]) == 127
    stim = {b: list(range(300)) for b in range(1, 9)}
    pot = {1: {base: 0.75, base + 1: 0.75}}
    _, cpu = run_both(gpu, brain, bursts(8, forced=stim, potential=pot), path)
    assert gpu.state_download.startswith("delta")
    st = cpu.state()
    assert st.mp[base] == st.mp[base + 1] == np.float32(0.75) * np.float32(0.5) ** 8
    assert st.mp[base + 3] == 0 and st.mp[base + 2] > 0 and st.mp[base + 4] > 0
