"""The engine loop: ordering, pipelining, stimulation staging, and falling back on a backend fault."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import GENOMES, FaultyBackend, assert_same_bursts
from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.synthetic import synthetic_brain


def pong_engine(backend: str | Backend, **kw) -> Engine:
    e = Engine.from_genome(GENOMES / "Huma_feagi_genome_pong.json", backend=backend, warn=kw.pop("warn", None), **kw)
    e.add_schedule("examples/pong_stimulus.toml")
    return e


def collect(engine: Engine, bursts: int) -> list[BurstResult]:
    out: list[BurstResult] = []
    engine.run(bursts, on_result=out.append)
    return out


def test_results_arrive_in_order_and_pipelined_equals_blocking() -> None:
    a = collect(pong_engine("cpu"), 40)
    b_engine = pong_engine("cpu")
    b = [b_engine.process_burst() for _ in range(40)]
    assert [r.burst for r in a] == list(range(1, 41))
    assert sum(r.spike_count for r in a) > 40
    assert_same_bursts(a, b)


@pytest.mark.parametrize("fail_at, resumed_from", [(5, 0), (300, 256), (301, 256)])
def test_backend_fault_moves_to_cpu_with_identical_results(fail_at: int, resumed_from: int,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import feagi_burst.engine as engine_mod

    monkeypatch.setattr(engine_mod, "SYNC_EVERY", 64)

    monkeypatch.setattr(engine_mod, "SYNC_COST_RATIO", 0)
    messages: list[str] = []
    faulty = FaultyBackend(fail_at)
    got = collect(pong_engine(faulty, warn=messages.append), 400)
    want = collect(pong_engine("cpu"), 400)
    assert_same_bursts(got, want)
    assert faulty.closed and len(messages) == 1
    assert f"failed at burst {fail_at}" in messages[0] and "device lost (injected)" in messages[0]
    assert f"from burst {resumed_from} " in messages[0]


def test_a_slow_state_copy_spaces_the_sync_points_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sync point whose copy takes long (a large plastic brain's weights) is not repeated before
    SYNC_COST_RATIO times its time has passed, and results stay those of the CPU."""
    import time

    import feagi_burst.engine as engine_mod

    monkeypatch.setattr(engine_mod, "SYNC_EVERY", 16)
    syncs: list[int] = []

    class SlowCopy(FaultyBackend):
        def state(self):  # type: ignore[no-untyped-def]
            st = self.inner.state()
            syncs.append(st.burst)
            time.sleep(0.2)  # the next sync is due 20 x 0.2 s = 4 s later: not within this run
            return st

    got = collect(pong_engine(SlowCopy(10**6)), 200)
    assert_same_bursts(got, collect(pong_engine("cpu"), 200))
    assert len(syncs) == 1 and 16 <= syncs[0] < 32  # the first one is due after SYNC_EVERY bursts
    monkeypatch.setattr(engine_mod, "SYNC_COST_RATIO", 0)
    syncs.clear()
    collect(pong_engine(SlowCopy(10**6)), 100)
    assert len(syncs) >= 5  # without the ratio: every 16 bursts


def test_fault_without_fallback_raises() -> None:
    e = pong_engine(FaultyBackend(3), fallback=False)
    with pytest.raises(BackendError, match="injected"):
        e.run(10)


def test_stimulation_api_validates() -> None:
    e = Engine(synthetic_brain(100, 5, 0.0), backend="cpu", warn=None)
    with pytest.raises(InputError, match="out of range"):
        e.force_fire([100])
    e.run(2)
    with pytest.raises(InputError, match="already run"):
        e.stimulate("synth", [[0, 0, 0]], burst=1)
    e.force_fire([3, 4], potential=7.0)
    r = e.process_burst()
    assert r.burst == 3 and r.fired.tolist() == [3, 4] and r.mp.tolist() == [7.0, 7.0]
    assert e.describe([4]) == [("synth", 4, 0, 0)]


def test_state_reflects_the_last_burst() -> None:
    e = pong_engine("cpu")
    e.run(10)
    st = e.state()
    assert st.burst == 10 and st.mp.dtype == np.float32 and st.mp.shape == (e.brain.neuron_count,)
    assert e.backend_name() == "CPU (numba)"


def syncing_every_32(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sync points every 32 bursts (a fault at burst 75 then replays from 64)."""
    import feagi_burst.engine as engine_mod

    monkeypatch.setattr(engine_mod, "SYNC_EVERY", 32)
    monkeypatch.setattr(engine_mod, "SYNC_COST_RATIO", 0)


def own_gpu() -> Backend:
    """A GPU backend of the test's own (the fallback closes it), batches of 4 bursts."""
    from feagi_burst.backends import wgpu as gpu_mod

    try:
        return gpu_mod.GPUBackend(batch=4)
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise


def fallback_message(gpu: Backend) -> str:
    """Run 120 pong bursts on `gpu`, which fails at burst 75: the bursts equal the CPU's, the run
    ends on the CPU, and the engine said so in exactly one line (returned)."""
    messages: list[str] = []
    engine = pong_engine(gpu, warn=messages.append)
    got = collect(engine, 120)
    assert_same_bursts(got, collect(pong_engine("cpu"), 120))
    assert engine.backend_name() == "CPU (numba)"
    assert len(messages) == 1, messages
    assert "from burst 64 " in messages[0], messages[0]
    return messages[0]


def test_real_gpu_fault_moves_to_cpu_with_identical_results(gpu_backend: Backend,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A validation error injected into the GPU backend mid-run: one line, then identical bursts."""
    syncing_every_32(monkeypatch)
    submit = gpu_backend.submit

    def failing_submit(inp: BurstInput) -> None:
        if inp.burst == 75:
            raise BackendError("validation error: injected into burst 75")
        submit(inp)
    monkeypatch.setattr(gpu_backend, "submit", failing_submit)
    monkeypatch.setattr(gpu_backend, "close", lambda: None)  # the session shares this device
    assert "failed at burst 75" in fallback_message(gpu_backend)


def test_a_real_wgpu_validation_error_moves_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """wgpu-native itself rejects a batch mid-run (a dispatch larger than the device allows, from
    burst 75 on): its validation message reaches the user in one line, and the run goes on on the
    CPU with identical bursts. (An error inside queue.submit would abort the process instead:
    wgpu-native makes those fatal, gfx-rs/wgpu-native#588.)"""
    from feagi_burst.backends.wgpu import layout, scheduler

    syncing_every_32(monkeypatch)
    gpu = own_gpu()
    submit, grid = gpu.submit, scheduler.grid
    broken = False

    def sabotaging_submit(inp: BurstInput) -> None:
        nonlocal broken
        broken = broken or inp.burst == 75
        submit(inp)
    monkeypatch.setattr(gpu, "submit", sabotaging_submit)
    monkeypatch.setattr(scheduler, "grid", lambda n: (layout.MAX_DIM + 1, 1, 1) if broken else grid(n))
    message = fallback_message(gpu)
    assert "validation error" in message and "65535" in message


def test_a_gpu_that_stops_answering_moves_to_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """From burst 75 on every wait for the GPU outlasts its time limit (a hung device, as far as
    the host can tell): one line naming the limit and how to raise it, then identical bursts on the
    CPU from the last sync."""
    from feagi_burst.backends.wgpu import runtime

    syncing_every_32(monkeypatch)
    gpu = own_gpu()
    if gpu.dev.native is None:
        pytest.skip("the time limit is on wgpu-native's polling path")
    submit = gpu.submit

    def stalling_submit(inp: BurstInput) -> None:
        if inp.burst == 75:  # from here no wait may last: every unfinished one counts as hung
            monkeypatch.setattr(runtime, "SPIN_S", 0.0)
            monkeypatch.setattr(gpu.dev.native, "timeout_s", 1e-9)
        submit(inp)
    monkeypatch.setattr(gpu, "submit", stalling_submit)
    message = fallback_message(gpu)
    assert "did not finish" in message and "FEAGI_BURST_GPU_TIMEOUT" in message


def test_gpu_timeout_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from feagi_burst.backends.wgpu import runtime

    monkeypatch.delenv(runtime.ENV_TIMEOUT, raising=False)
    assert runtime.gpu_timeout_s() == runtime.DEFAULT_TIMEOUT_S
    monkeypatch.setenv(runtime.ENV_TIMEOUT, "2.5")
    assert runtime.gpu_timeout_s() == 2.5
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(runtime.ENV_TIMEOUT, bad)
        with pytest.raises(InputError, match="FEAGI_BURST_GPU_TIMEOUT"):
            runtime.gpu_timeout_s()


def test_a_brain_the_gpu_cannot_hold(gpu_backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named explicitly, the GPU's refusal is an error naming the limit; chosen by auto, the CPU runs it."""
    import feagi_burst.backends as backends_mod
    from feagi_burst.backends import wgpu as gpu_mod
    from feagi_burst.selection import Selection

    brain = synthetic_brain(20_000, 10, 0.01)
    real = gpu_mod.GPUBackend
    tiny = lambda: real(max_binding_bytes=4096)  # noqa: E731 (a device whose bindings hold 4 KiB)
    with pytest.raises(BackendError, match="max-storage-buffer-binding-size"):
        Engine(brain, backend=tiny(), warn=None)
    monkeypatch.setattr(gpu_mod, "GPUBackend", tiny)
    monkeypatch.setattr(backends_mod, "choose",
                        lambda *a, **k: Selection("gpu", "forced for the test", 0, 0, 0.0, None, 0.0, 0.0, 0.0))
    messages: list[str] = []
    engine = Engine(brain, backend="auto", warn=messages.append)
    assert engine.backend_name() == "CPU (numba)"
    assert len(messages) == 1 and "cannot hold this brain" in messages[0] and "running on the CPU" in messages[0]
    assert engine.process_burst().spike_count == 200
