"""The CPU backend, one rule of SPEC.md section 2 at a time (FEAGI conformance: test_conformance.py)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import tiny_brain
from feagi_burst.backends.base import BurstInput
from feagi_burst.backends.cpu import CPUBackend, excitability_draw
from feagi_burst.brain import Brain, CorticalArea, Drive, neuron_array, sort_synapses
from feagi_burst.engine import Engine
from feagi_burst.fixed_point import compile_tables


def spikes(engine: Engine, bursts: int) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {}
    engine.run(bursts, on_result=lambda r: out.__setitem__(r.burst, list(zip(r.fired.tolist(), r.mp.tolist()))))
    return out


def fire_bursts(engine: Engine, bursts: int, neuron: int) -> list[int]:
    return [b for b, f in spikes(engine, bursts).items() if any(i == neuron for i, _ in f)]


def reference_rand(i: int, b: int) -> float:
    """SPEC.md's rand(id, b) in plain Python integers."""
    m = 0xFFFFFFFF
    x = (i * 2654435761 + b * 1597334677) & m
    s = (x * 747796405 + 2891336453) & m
    w = (((s >> ((s >> 28) + 4)) ^ s) * 277803737) & m
    return float(np.float32(((w >> 22) ^ w) & m) / np.float32(4294967296.0))


def test_rand_matches_spec_formula() -> None:
    ids = np.array([0, 1, 7, 14, 29, 123456, 2**32 - 1], np.uint32)
    for b in (1, 2, 55, 10**6):
        got = excitability_draw(ids, b)
        assert got.tolist() == [reference_rand(int(i), b) for i in ids]


def test_power_neuron_fires_every_burst_and_drives_targets() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, threshold=[1.0, 2.0], mp_accumulate=[False, True])
    s = spikes(Engine(brain, backend="cpu", warn=None), 6)
    assert [b for b in s if (0, 1.0) in s[b]] == [1, 2, 3, 4, 5, 6]
    # neuron 1 gets +1 from burst 2 on, accumulates, fires every second burst at mp 2
    assert [b for b in s if any(i == 1 for i, _ in s[b])] == [3, 5]
    assert all(m == 2.0 for b in (3, 5) for i, m in s[b] if i == 1)


def test_psp_divided_by_fanout_unless_uniform() -> None:
    syn = [(0, 1, 1, False), (0, 2, 1, False)]
    for uniform, want in ((False, 0.5 * 3), (True, 3.0)):
        brain = tiny_brain(3, syn, power=0, psp=3.0, psp_uniform=uniform, threshold=[1.0, 0.1, 0.1])
        s = spikes(Engine(brain, backend="cpu", warn=None), 2)
        assert (1, want) in s[2] and (2, want) in s[2]


def test_mp_driven_psp_passes_the_firing_mp() -> None:
    # neuron 0 is driven by power (weight 5) and fires with mp 5; its target gets 5 * weight 2
    brain = tiny_brain(3, [(1, 0, 5, False), (0, 2, 2, False)], power=1, mp_driven_psp=True,
                       psp_uniform=True, threshold=[1.0, 1.0, 100.0], mp_accumulate=True)
    s = spikes(Engine(brain, backend="cpu", warn=None), 12)
    fired0 = [m for b in s for i, m in s[b] if i == 0]
    assert fired0[:3] == [5.0, 5.0, 5.0]  # weight 5 times the power neuron's firing mp 1
    # neuron 2 gets weight 2 * firing mp 5 = 10 per burst from burst 3, so it reaches 100 at 12
    assert [(b, m) for b in s for i, m in s[b] if i == 2] == [(12, 100.0)]


def test_mp_accumulate_false_resets_every_burst() -> None:
    brain = tiny_brain(3, [(0, 1, 1, False), (0, 2, 1, False)], power=0, psp_uniform=True,
                       threshold=[1.0, 3.0, 3.0], mp_accumulate=[False, False, True])
    e = Engine(brain, backend="cpu", warn=None)
    s = spikes(e, 7)
    assert [b for b in s if any(i == 2 for i, _ in s[b])] == [4, 7]
    assert not any(i == 1 for b in s for i, _ in s[b])
    assert e.state().mp[1] == 0.0  # reset at the end of each burst it was a candidate


def test_refractory_is_counted_in_wall_clock_bursts() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, refractory_period=[0, 2])
    assert fire_bursts(Engine(brain, backend="cpu", warn=None), 12, 1) == [2, 5, 8, 11]


def test_consecutive_fire_limit_and_snooze() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, cfc_limit=[0, 2], snooze=[0, 3])
    # fires 2, 3 (limit reached), blocked 4..6 by snooze, count resets when the block ends
    assert fire_bursts(Engine(brain, backend="cpu", warn=None), 14, 1) == [2, 3, 7, 8, 12, 13]


def test_consecutive_fire_limit_without_snooze_skips_one_burst() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, cfc_limit=[0, 2], mp_accumulate=[False, True])
    got = fire_bursts(Engine(brain, backend="cpu", warn=None), 10, 1)
    assert got == [2, 3, 5, 6, 8, 9]


def test_threshold_limit_stops_firing_above_it() -> None:
    brain = tiny_brain(3, [(0, 1, 3, False), (0, 2, 1, False)], power=0, psp_uniform=True,
                       threshold=[1.0, 1.0, 1.0], threshold_limit=[0.0, 2.0, 2.0])
    s = spikes(Engine(brain, backend="cpu", warn=None), 4)
    assert not any(i == 1 for b in s for i, _ in s[b])  # input 3 > limit 2
    assert fire_bursts(Engine(brain, backend="cpu", warn=None), 4, 2) == [2, 3, 4]


def test_leak_above_one_flips_the_sign() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, threshold=[1.0, 5.0], leak=[0.0, 3.0],
                       mp_accumulate=[False, True])
    e = Engine(brain, backend="cpu", warn=None)
    e.run(2)
    assert e.state().mp[1] == np.float32(1.0) * np.float32(1 - 3.0)


def test_net_negative_input_adds_nothing_but_still_leaks() -> None:
    brain = tiny_brain(3, [(0, 2, 1, False), (1, 2, 2, True)], power=0, psp_uniform=True,
                       threshold=[1.0, 100.0, 100.0], leak=[0.0, 0.0, 0.5], mp_accumulate=True)
    e = Engine(brain, backend="cpu", warn=None)
    e.stage_potential([2], [4.0], burst=1)
    e.force_fire([1], burst=2)
    # burst 1: 4, leaks to 2; burst 2: power +1 -> 3, leaks to 1.5;
    # burst 3: power +1 and inhibition -2 sum to -1, which adds nothing, and it still leaks to 0.75
    e.run(3)
    assert e.state().mp[2] == np.float32(0.75)


def test_excitability_draws_are_deterministic_and_at_the_rate() -> None:
    n = 4000
    brain = tiny_brain(n + 1, [(0, i, 1, False) for i in range(1, n + 1)], power=0, psp_uniform=True,
                       excitability=[100.0] + [0.3] * n)
    e = Engine(brain, backend="cpu", warn=None)
    r = [e.process_burst() for _ in range(3)][-1]
    rate = (r.fired.size - 1) / n
    assert 0.27 < rate < 0.33
    expected = np.flatnonzero(excitability_draw(np.arange(1, n + 1), 3) < np.float32(0.3)) + 1
    np.testing.assert_array_equal(r.fired[1:], expected)


def test_excitability_zero_never_fires() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, excitability=[100.0, 0.0])
    assert fire_bursts(Engine(brain, backend="cpu", warn=None), 5, 1) == []


def test_forced_fire_in_a_block_lengthens_it() -> None:
    brain = tiny_brain(2, [(0, 1, 1, False)], power=0, refractory_period=[0, 3])
    e = Engine(brain, backend="cpu", warn=None)
    e.force_fire([1], burst=4)
    # fires 2, blocked 3..5; forced at 4 (mp 100) makes the block 3..6
    s = spikes(e, 12)
    assert [(b, m) for b in s for i, m in s[b] if i == 1] == [(2, 1.0), (4, 100.0), (7, 1.0), (11, 1.0)]


def test_potential_input_and_forced_fire_through_the_api() -> None:
    brain = tiny_brain(3, threshold=[2.0, 2.0, 2.0], mp_accumulate=True)
    e = Engine(brain, backend="cpu", warn=None)
    e.stimulate("test01", [[0, 0, 0]], mode="potential", potential=1.5)
    r1 = e.process_burst()
    e.stimulate("test01", [[0, 0, 0]], mode="potential", potential=1.0)
    e.stimulate("test01", [[2, 0, 0]], mode="fire", potential=42.0)
    r2 = e.process_burst()
    assert r1.fired.tolist() == []
    assert list(zip(r2.fired.tolist(), r2.mp.tolist())) == [(0, 2.5), (2, 42.0)]
    assert e.describe([2]) == [("test01", 2, 0, 0)]
    assert e.backend_name() == "CPU (numba)"


def test_forced_fires_merge_into_the_fire_set_in_id_order() -> None:
    """A forced neuron that fired by itself keeps its own mp; the others join in id order with the
    stimulation's potential, whatever order they were staged in; with FEAGI LIF's blocks, an added
    neuron inside its block gets it one burst longer (FeagiLIF.forced), one that fired by itself not."""
    from feagi_burst.backends.cpu_kernels import merge_forced

    f32, u32 = np.float32, np.uint32

    def merge(fired: list[int], fired_mp: list[float], forced: list[int], forced_mp: list[float],
              blocked_until: np.ndarray, b: int = 0) -> tuple[list[int], list[float], list[bool]]:
        extra = np.empty(len(forced), bool)
        ids, mps = np.empty(len(fired) + len(forced), u32), np.empty(len(fired) + len(forced), f32)
        c = merge_forced(np.array(fired, u32), np.array(fired_mp, f32), np.array(forced, u32),
                         np.array(forced_mp, f32), extra, ids, mps, blocked_until, b)
        return ids[:c].tolist(), mps[:c].tolist(), extra.tolist()

    none = np.zeros(0, u32)
    assert merge([2, 5, 9], [0.5, 1.5, 2.5], [9, 1, 7], [10, 20, 30], none) == \
        ([1, 2, 5, 7, 9], [20.0, 0.5, 1.5, 30.0, 2.5], [False, True, True])
    assert merge([], [], [4, 3], [1, 2], none) == ([3, 4], [2.0, 1.0], [True, True])
    bu = np.array([0, 6, 4, 5, 9, 0, 0, 7, 0, 8], u32)  # neuron i blocked until bu[i]
    assert merge([2, 9], [0.5, 2.5], [9, 1, 7, 3, 0], [10, 20, 30, 40, 50], bu, b=6)[2] == \
        [False, True, True, True, True]
    # added and inside its block at burst 6 (bu >= 6): 1 and 7; 3 and 0 were not; 9 fired by itself
    assert bu.tolist() == [0, 7, 4, 5, 9, 0, 0, 8, 0, 8]


# --- the compiled paths: every way through the kernels gives the same bits ------------------------
def rule_brain(n: int = 3000, k: int = 8, seed: int = 5) -> Brain:
    """Every rule mixed: per-neuron parameters, an mp-driven area, psp division, power, drive."""
    rng = np.random.default_rng(seed)
    a0 = n // 2
    areas = [CorticalArea(0, "r0", "r0", (a0, 1, 1), 1, 0, psp=1.0 / k, psp_uniform=True, mp_driven_psp=True),
             CorticalArea(1, "r1", "r1", (n - a0 - 1, 1, 1), 1, a0, psp=0.8),
             CorticalArea(2, "pw", "_power", (1, 1, 1), 1, n - 1)]
    na = neuron_array(n)
    i = np.arange(n)
    for a in areas:
        na.cortical_area[a.first_neuron:a.neuron_stop] = a.index
    na.refractory_period[:] = i % 3
    na.cfc_limit[:] = np.where(i % 7 == 0, 3, 0)
    na.snooze[:] = i % 4
    na.mp_accumulate[:] = i % 5 < 2
    na.leak[:] = (i % 4) * 0.1 + (i % 17 == 0) * 2.5
    na.threshold[:] = 1.0 + (i % 9) * 0.25
    na.threshold_limit[:] = np.where(i % 11 == 0, 3.0, 0)
    na.excitability[:] = np.where(i % 13 == 0, 0.5, np.where(i % 19 == 0, 0.0, 100))
    src = np.repeat(np.arange(n, dtype=np.uint32), k)
    syn = sort_synapses(src, rng.integers(0, n, src.size, dtype=np.uint32), rng.integers(1, 4, src.size),
                        rng.random(src.size) < 0.2)
    drive = Drive(order=rng.permutation(n).astype(np.uint32), per_burst=n // 20, potential=1.5)
    return Brain("rules", areas, na, syn, power_neuron=n - 1, drive=drive)


def rule_inputs(n: int, count: int, seed: int) -> list[BurstInput]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(1, count + 1):
        p = rng.choice(n, 20, replace=False).astype(np.uint32) if b % 3 else np.zeros(0, np.uint32)
        f = rng.choice(n, 10, replace=False).astype(np.uint32) if b % 4 == 0 else np.zeros(0, np.uint32)
        out.append(BurstInput(b, potential_ids=p, potential=rng.uniform(-1, 2, p.size).astype(np.float32),
                              forced_ids=f, forced_mp=np.full(f.size, 100, np.float32)))
    return out


def test_every_kernel_path_gives_the_same_bits() -> None:
    """Candidate lists or one pass over the neurons, one thread or all, FEAGI LIF fused into the
    burst or through its model step: identical fire sets, firing mp, candidates and state."""
    brain = rule_brain()
    tables = compile_tables(brain)
    inputs = rule_inputs(brain.neuron_count, 60, seed=6)
    runs = {}
    for dense in ("auto", "never", "always"):
        for parallel in (False, True):
            for fused in (True, False):
                cpu = CPUBackend()
                cpu.load(brain, tables, seed=3)
                cpu.dense_from = {"auto": cpu.dense_from, "never": 0, "always": 1}[dense]
                cpu.parallel, cpu.fused, cpu.choice = parallel and cpu.threads > 1, fused, None
                results = [cpu.process_burst(inp) for inp in inputs]
                runs[dense, parallel, fused] = (results, cpu.state())
    (want, want_state), *others = runs.values()
    assert sum(r.fired.size for r in want) > 1000 and sum(r.candidates for r in want) > 20_000
    for got, state in others:
        for a, b in zip(want, got):
            assert a.burst == b.burst and a.candidates == b.candidates
            np.testing.assert_array_equal(a.fired, b.fired, err_msg=f"burst {a.burst}")
            np.testing.assert_array_equal(a.mp.view(np.uint32), b.mp.view(np.uint32), err_msg=f"burst {a.burst}")
        for key, arr in want_state.values.items():
            np.testing.assert_array_equal(arr.view(np.uint8), state.values[key].view(np.uint8), err_msg=key)


def test_every_brain_calls_each_compiled_kernel_with_one_signature() -> None:
    """numba compiles a kernel again for every new combination of argument types (~5 s each):
    brains with uniform, per-area and per-neuron parameters, with and without blocking rules,
    fused or through the model step, must all reuse the one compilation of each kernel."""
    from numba.core.registry import CPUDispatcher

    from feagi_burst.backends import cpu_kernels, cpu_lif
    from feagi_burst.synthetic import synthetic_brain

    per_area = rule_brain()
    per_area.neurons.threshold[:] = 1.0 + per_area.neurons.cortical_area * 0.5
    for brain in (synthetic_brain(3000, 8, 0.05, seed=1),
                  synthetic_brain(3000, 8, 0.05, seed=1, refractory_period=2, cfc_limit=3, snooze=1),
                  rule_brain(), per_area):
        tables = compile_tables(brain)
        for dense, parallel, fused in (("never", False, True), ("always", False, True), ("always", True, True),
                                       ("auto", False, False)):
            cpu = CPUBackend()
            cpu.load(brain, tables)
            cpu.dense_from = {"auto": cpu.dense_from, "never": 0, "always": 1}[dense]
            cpu.parallel, cpu.fused, cpu.choice = parallel and cpu.threads > 1, fused, None
            fired = sum(cpu.process_burst(BurstInput(b)).fired.size for b in range(1, 6))
            assert fired > 0
    kernels = {name: k for module in (cpu_kernels, cpu_lif) for name, k in vars(module).items()
               if isinstance(k, CPUDispatcher) and k.signatures}
    assert {"step_sparse", "step_dense_serial", "step_parts", "lif_step_list", "scatter_events"} <= kernels.keys()
    assert {name: len(k.signatures) for name, k in kernels.items() if len(k.signatures) > 1} == {}


def test_drive_wider_than_its_order_drives_each_neuron_once() -> None:
    na = neuron_array(5)
    na.mp_accumulate[:] = True
    brain = Brain("d", [CorticalArea(0, "a", "a", (5, 1, 1), 1, 0)], na,
                  sort_synapses(*(np.zeros(0, t) for t in (np.uint32, np.uint32, np.float32, bool))),
                  power_neuron=None, drive=Drive(np.arange(5, dtype=np.uint32), 8, 0.4))
    e = Engine(brain, backend="cpu", warn=None)
    assert [r.fired.size for r in (e.process_burst() for _ in range(3))] == [0, 0, 5]  # 0.4 a burst


def test_kernel_cache_goes_where_it_can_be_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from feagi_burst.backends.compiled import cache_dir

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert cache_dir(tmp_path) is None  # writable: numba's own place, next to the module
    read_only = tmp_path / "site-packages-file"  # not a directory: nothing can be created under it
    read_only.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cache_dir(read_only) == str(tmp_path / "cache" / "feagi-burst" / "numba")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_dir(read_only) is None  # the user's choice, read by numba itself


def test_pinned_threads_do_not_probe() -> None:
    """pin_threads (the calibration's): one mode from then on, no probe of the other; every thread
    only where the brain is large enough to use them."""
    from feagi_burst.backends.cpu import PARALLEL_FROM
    from feagi_burst.synthetic import synthetic_brain

    brain = synthetic_brain(PARALLEL_FROM, 4, 0.3, seed=2)
    tables = compile_tables(brain)
    for mode in (False, True):
        cpu = CPUBackend()
        cpu.load(brain, tables)
        assert cpu.choice is not None or cpu.threads == 1
        cpu.pin_threads(mode)
        for b in range(1, 41):  # past the first probe (ThreadChoice.FIRST dense bursts)
            cpu.process_burst(BurstInput(b))
            assert cpu.parallel == (mode and cpu.threads > 1) and cpu.choice is None
    small = CPUBackend()
    tiny = tiny_brain(4, [(0, 1, 1, False)])
    small.load(tiny, compile_tables(tiny))
    small.pin_threads(True)
    assert not small.parallel


def test_thread_choice_follows_the_faster_mode_and_backs_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from feagi_burst.backends import cpu
    from feagi_burst.backends.cpu import ThreadChoice

    monkeypatch.setattr(cpu, "machine_busy", lambda: False)

    def run(choice: ThreadChoice, bursts: int, cost: dict[bool, float]) -> list[bool]:
        modes = []
        for _ in range(bursts):
            mode = choice.next()
            choice.record(mode, cost[mode])
            modes.append(mode)
        return modes

    busy = ThreadChoice()  # threads cost more (a busy machine): probes grow rare
    modes = run(busy, 2000, {True: 5.0, False: 1.0})
    assert not busy.parallel and sum(modes) < 40 and busy.period >= 512
    idle = ThreadChoice()  # threads pay: switch after the first probe, then stay
    modes = run(idle, 2000, {True: 0.6, False: 1.0})
    assert idle.parallel and modes[ThreadChoice.FIRST + ThreadChoice.PROBE:].count(False) < 40
    woken = ThreadChoice()  # the first burst on the threads after a stretch without them is slow
    last = [False]

    def waking(parallel: bool) -> float:
        cost = 5.0 if parallel and not last[0] else 0.6 if parallel else 1.0
        last[0] = parallel
        return cost
    for _ in range(2000):
        mode = woken.next()
        woken.record(mode, waking(mode))
    assert woken.parallel
    monkeypatch.setattr(cpu, "machine_busy", lambda: True)  # other work on the cores: no probe at all
    busy = ThreadChoice()
    assert not any(run(busy, 2000, {True: 0.6, False: 1.0})) and busy.period >= 512
