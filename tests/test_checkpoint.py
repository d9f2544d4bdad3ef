"""Checkpoints: saved atomically, refused when they do not match, and resumed bit for bit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import assert_same_bursts
from feagi_burst import checkpoint as ckmod
from feagi_burst.backends.base import BurstResult
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.spike_record import read_record
from feagi_burst.stimulus import read_schedule

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
GENOME = EXAMPLES / "pong_genome.json"


def long_schedule() -> list[dict[str, Any]]:
    """The pong ball crossing three times (bursts 1-100, 301-400, 601-700): input staged across the split."""
    entries = read_schedule(EXAMPLES / "pong_stimulus.toml")
    return [{**e, "bursts": [b + shift for b in e["bursts"]]} for shift in (0, 300, 600) for e in entries]


def engine(schedule: list[dict[str, Any]] | None = None, seed: int = 0, backend: Any = "cpu") -> Engine:
    e = Engine.from_genome(GENOME, backend=backend, seed=seed, warn=None)
    e.add_schedule(schedule if schedule is not None else long_schedule())
    return e


def collect(e: Engine, bursts: int) -> list[BurstResult]:
    out: list[BurstResult] = []
    e.run(bursts, on_result=lambda r: out.append(BurstResult(r.burst, r.fired.copy(), r.mp.copy())))
    return out


def test_1000_bursts_equal_500_resume_500(tmp_path: Path) -> None:
    full = collect(engine(), 1000)
    first = engine()
    a = collect(first, 500)
    first.checkpoint(tmp_path / "ck.npz")
    second = engine(schedule=[])  # the staged input comes from the checkpoint, not from here
    assert second.restore(tmp_path / "ck.npz") == 500
    b = collect(second, 500)
    assert_same_bursts(full, a + b)
    # not vacuous: both halves hold stimulus-driven spikes beyond the power neuron's
    assert sum(r.spike_count for r in b) > 2000 and sum(r.spike_count for r in a) > 2000


def test_gpu_run_resumes_exactly_on_gpu_and_on_cpu(tmp_path: Path, gpu_backend: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A GPU checkpoint resumes bit for bit on the GPU, and on the CPU (the backend is not in it)."""
    monkeypatch.setattr(gpu_backend, "close", lambda: None)  # the session shares this device
    full = collect(engine(backend="cpu"), 400)
    first = engine(backend=gpu_backend)
    a = collect(first, 200)
    first.checkpoint(tmp_path / "ck.npz")
    for backend in (gpu_backend, "cpu"):
        second = engine(schedule=[], backend=backend)
        assert second.restore(tmp_path / "ck.npz") == 200
        assert_same_bursts(full, a + collect(second, 200))


def test_resume_mid_stimulus_with_staged_potential_and_forced_fires(tmp_path: Path) -> None:
    """Split where forced fires and staged potentials for the next bursts are pending."""
    schedule = long_schedule() + [{"area": "i__pro", "voxels": [[0, 0, 0]], "bursts": [331, 332, 333],
                                   "mode": "potential", "potential": 0.4}]
    full = collect(engine(schedule), 400)
    first = engine(schedule)
    a = collect(first, 330)
    assert any(b > 330 for b in first.plan.by_burst)
    first.checkpoint(tmp_path / "ck.npz")
    second = engine(schedule=[])
    second.restore(tmp_path / "ck.npz")
    for b in (331, 332, 350):
        assert b in second.plan.by_burst
    assert_same_bursts(full, a + collect(second, 70))


def test_plan_round_trip_gives_identical_inputs() -> None:
    e = engine()
    e.stage_potential([5, 7, 5], [0.25, 1e-7, 3.5], burst=40)
    e.force_fire([9, 11], potential=42.0, burst=40)
    e.force_fire([9], potential=7.0, burst=40)  # the latest forced fire wins
    z = ckmod.plan_arrays(e.plan)
    again = ckmod.plan_from_arrays(z)
    assert sorted(again.by_burst) == sorted(e.plan.by_burst)
    for b in sorted(e.plan.by_burst):
        x, y = e.plan.pop(b), again.pop(b)
        for f in ("potential_ids", "potential", "forced_ids", "forced_mp"):
            np.testing.assert_array_equal(getattr(x, f), getattr(y, f), err_msg=f"burst {b} {f}")


def test_checkpoint_holds_the_full_dynamic_state(tmp_path: Path) -> None:
    e = engine()
    collect(e, 123)
    e.checkpoint(tmp_path / "ck.npz")
    ck = ckmod.load_checkpoint(tmp_path / "ck.npz")
    st = e.state()
    assert ck.burst == 123 == st.burst
    np.testing.assert_array_equal(ck.state.mp.view(np.uint32), st.mp.view(np.uint32))
    np.testing.assert_array_equal(ck.state.cfc_count, st.cfc_count)
    np.testing.assert_array_equal(ck.state.blocked_until, st.blocked_until)
    fired, mp = e.backend.last_fire_set()
    np.testing.assert_array_equal(ck.last_fired, fired)
    assert ck.meta["genome_fingerprint"] == e.brain.fingerprint and ck.meta["seed"] == 0
    assert ck.state.cfc_count.any()  # consecutive-fire state is really in play here


def test_another_genome_or_seed_is_refused(tmp_path: Path) -> None:
    e = engine()
    collect(e, 10)
    e.checkpoint(tmp_path / "ck.npz")
    other = Engine.from_genome(EXAMPLES / "essential_genome.json", backend="cpu", warn=None)
    with pytest.raises(InputError, match="another genome"):
        other.restore(tmp_path / "ck.npz")
    with pytest.raises(InputError, match="seed"):
        engine(seed=3).restore(tmp_path / "ck.npz")
    settings = ckmod.run_settings(0, stimulus=[{"area": "x"}])
    with pytest.raises(InputError, match="stimulus_sha256"):
        engine().restore(tmp_path / "ck.npz", settings)


def test_a_failed_save_leaves_the_previous_checkpoint_intact(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "ck.npz"
    e = engine()
    collect(e, 50)
    e.checkpoint(path)
    before = path.read_bytes()
    collect(e, 50)

    def dying_savez(f: Any, **arrays: Any) -> None:
        f.write(b"PK\x03\x04 half a zip")  # the kill lands in the middle of the write
        raise KeyboardInterrupt

    monkeypatch.setattr(ckmod.np, "savez", dying_savez)
    with pytest.raises(KeyboardInterrupt):
        e.checkpoint(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz"]  # the temporary file is gone
    monkeypatch.undo()
    assert ckmod.load_checkpoint(path).burst == 50

    def full_disk(*_a: Any, **_k: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckmod.np, "savez", full_disk)
    with pytest.raises(InputError, match="previous one is unchanged"):
        e.checkpoint(path)
    assert path.read_bytes() == before


def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    e = engine()
    collect(e, 10)
    e.checkpoint(tmp_path / "ck.npz")
    data = (tmp_path / "ck.npz").read_bytes()
    (tmp_path / "torn.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "other.npz").write_bytes(b"not a zip")
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    for name in ("torn.npz", "other.npz", "plain.npz", "missing.npz"):
        with pytest.raises(InputError) as info:
            engine().restore(tmp_path / name)
        assert "\n" not in str(info.value) and name in str(info.value)


# -- through the command line ------------------------------------------------------------------
def cli(*args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "feagi_burst.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def one_error_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("feagi-burst: error:")]
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.fixture
def stim(tmp_path: Path) -> Path:
    path = tmp_path / "stimulus.json"
    path.write_text(json.dumps(long_schedule()))
    return path


def test_cli_1000_equals_500_resume_500(tmp_path: Path, stim: Path) -> None:
    common = ("--genome", GENOME, "--stimulus", stim, "--backend", "cpu")
    p = cli("run", *common, "--bursts", 1000, "--record", tmp_path / "full.npz")
    assert p.returncode == 0, p.stderr
    p = cli("run", *common, "--bursts", 500, "--record", tmp_path / "a.jsonl", "--checkpoint", tmp_path / "ck.npz")
    assert p.returncode == 0, p.stderr
    assert "checkpoint: " in p.stderr and "(burst 500)" in p.stderr
    p = cli("run", *common, "--bursts", 500, "--record", tmp_path / "b.npz", "--resume", tmp_path / "ck.npz",
            "--checkpoint", tmp_path / "ck.npz", "--checkpoint-every", 200)
    assert p.returncode == 0, p.stderr
    assert "resumed from" in p.stderr and "at burst 500" in p.stderr
    full = read_record(tmp_path / "full.npz")
    a, b = read_record(tmp_path / "a.jsonl"), read_record(tmp_path / "b.npz")
    assert max(a) <= 500 < min(b) and max(b) == max(full) > 990
    assert {**a, **b} == full
    assert ckmod.load_checkpoint(tmp_path / "ck.npz").burst == 1000


def test_cli_checkpoint_every_saves_along_the_way(tmp_path: Path, stim: Path, monkeypatch, capsys) -> None:
    from feagi_burst import cli as cli_mod

    saved: list[int] = []
    real = Engine.checkpoint

    def spy(self: Engine, path: Any, settings: Any = None) -> None:
        real(self, path, settings)
        saved.append(ckmod.load_checkpoint(path).burst)

    monkeypatch.setattr(Engine, "checkpoint", spy)
    monkeypatch.setattr(sys, "argv", ["feagi-burst", "run", "--genome", str(GENOME), "--stimulus", str(stim),
                                      "--backend", "cpu", "--bursts", "250", "--checkpoint", str(tmp_path / "c.npz"),
                                      "--checkpoint-every", "100"])
    import signal
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as ex:
            cli_mod.main()
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    assert ex.value.code == 0
    assert saved == [100, 200, 250]


def test_cli_refuses_a_mismatched_checkpoint(tmp_path: Path, stim: Path) -> None:
    p = cli("run", "--genome", GENOME, "--stimulus", stim, "--backend", "cpu", "--bursts", 20,
            "--checkpoint", tmp_path / "ck.npz")
    assert p.returncode == 0, p.stderr
    p = cli("run", "--genome", EXAMPLES / "essential_genome.json", "--backend", "cpu", "--bursts", 5,
            "--resume", tmp_path / "ck.npz", "--record", tmp_path / "r.npz")
    assert "another genome" in one_error_line(p)
    p = cli("run", "--genome", GENOME, "--stimulus", stim, "--backend", "cpu", "--bursts", 5, "--seed", 9,
            "--resume", tmp_path / "ck.npz")
    assert "seed 0 -> 9" in one_error_line(p)
    p = cli("run", "--genome", GENOME, "--backend", "cpu", "--bursts", 5, "--resume", tmp_path / "ck.npz")
    assert "stimulus" in one_error_line(p)
    assert not (tmp_path / "r.npz").exists() and not (tmp_path / "r.npz.partial").exists()


def test_cli_checkpoint_options_are_checked_before_running(tmp_path: Path) -> None:
    g = ("--genome", GENOME, "--backend", "cpu", "--bursts", 5)
    assert "--checkpoint PATH" in one_error_line(cli("run", *g, "--checkpoint-every", 10))
    assert "*.npz" in one_error_line(cli("run", *g, "--checkpoint", tmp_path / "ck.bin"))
    (tmp_path / "old.npz").write_bytes(b"keep")
    assert "already exists" in one_error_line(cli("run", *g, "--checkpoint", tmp_path / "old.npz"))
    assert (tmp_path / "old.npz").read_bytes() == b"keep"
    assert "does not exist" in one_error_line(cli("run", *g, "--resume", tmp_path / "none.npz"))


@pytest.mark.parametrize("split", [1, 37, 101, 199])
def test_refractory_snooze_and_draws_resume_exactly(tmp_path: Path, split: int) -> None:
    """Every piece of dynamic state in play: refractory blocks, consecutive-fire limits with snooze,
    accumulating leaky mp, excitability draws with a seed, and random input staged ahead."""
    from conftest import tiny_brain

    rng = np.random.default_rng(7)
    n = 300
    syn = [(int(s), int(t), int(w), bool(i)) for s, t, w, i in
           zip(rng.integers(0, n, 3000), rng.integers(0, n, 3000), rng.integers(1, 4, 3000), rng.random(3000) < 0.2)]
    brain = tiny_brain(n, syn, power=0, threshold=1.5, refractory_period=3, cfc_limit=2, snooze=2, leak=0.1,
                       mp_accumulate=True, excitability=0.7)
    brain.fingerprint = "tiny-test-brain"

    def make() -> Engine:
        e = Engine(brain, backend="cpu", seed=5, warn=None)
        for b in range(1, 201):
            ids = rng_for(b).choice(n, 20, replace=False)
            e.stage_potential(ids, rng_for(b).random(20) * 2, burst=b)
        return e

    def rng_for(b: int) -> np.random.Generator:
        return np.random.default_rng(b)

    full = collect(make(), 200)
    first = make()
    a = collect(first, split)
    first.checkpoint(tmp_path / "ck.npz")
    st = first.state()
    assert st.blocked_until.any() or split == 1
    second = Engine(brain, backend="cpu", seed=5, warn=None)
    second.restore(tmp_path / "ck.npz")
    assert_same_bursts(full, a + collect(second, 200 - split))
    assert sum(r.spike_count for r in full) > 1000
