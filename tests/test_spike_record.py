"""Spike records streamed in chunks: complete after a normal end, readable up to the last chunk after a crash."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from feagi_burst.backends.base import BurstResult
from feagi_burst.engine import Engine
from feagi_burst.errors import InputError
from feagi_burst.spike_record import (finish_partial, open_recorder, partial_path, read_record, read_spikes)

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def pong_results() -> tuple[Engine, list[BurstResult]]:
    """200 bursts of the pong genome with the moving-ball stimulus (spikes in many areas)."""
    engine = Engine.from_genome(EXAMPLES / "pong_genome.json", backend="cpu", warn=None)
    engine.add_schedule(EXAMPLES / "pong_stimulus.toml")
    results: list[BurstResult] = []
    engine.run(200, on_result=lambda r: results.append(BurstResult(r.burst, r.fired.copy(), r.mp.copy())))
    assert sum(r.spike_count for r in results) > 1000
    return engine, results


def expected(results: list[BurstResult], upto: int | None = None) -> dict[int, list[tuple[int, float]]]:
    return {r.burst: list(zip(r.fired.tolist(), r.mp.astype(np.float64).tolist()))
            for r in results if r.fired.size and (upto is None or r.burst <= upto)}


def crash_copy(partial: Path, folder: Path) -> Path:
    """A copy of the `.partial` file as it is on disk now: what a crash at this moment leaves."""
    out = folder / "crashed" / partial.name
    out.parent.mkdir(exist_ok=True)
    shutil.copyfile(partial, out)
    return out


@pytest.mark.parametrize("suffix", [".npz", ".jsonl"])
def test_streamed_record_is_complete_after_close(tmp_path: Path, pong_results, suffix: str) -> None:
    engine, results = pong_results
    path = tmp_path / f"spikes{suffix}"
    rec = open_recorder(path, engine.brain, chunk_bursts=7, chunk_seconds=1e9)
    for r in results:
        rec.add(r)
    rec.close()
    assert read_record(path) == expected(results)
    assert not partial_path(path).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left
    assert rec.spikes == sum(r.spike_count for r in results)


def test_npz_record_has_the_spec_arrays(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    rec = open_recorder(path, engine.brain, chunk_spikes=100)
    for r in results:
        rec.add(r)
    rec.close()
    with np.load(path, allow_pickle=False) as z:  # plain numpy, no pickle
        n = engine.brain.neurons
        assert z["burst"].dtype == np.uint32 and z["neuron"].dtype == np.uint32 and z["mp"].dtype == np.float32
        np.testing.assert_array_equal(z["neuron"], np.concatenate([r.fired for r in results]))
        np.testing.assert_array_equal(z["mp"].view(np.uint32), np.concatenate([r.mp for r in results]).view(np.uint32))
        np.testing.assert_array_equal(z["burst"], np.concatenate([np.full(r.fired.size, r.burst) for r in results]))
        for col in ("x", "y", "z"):
            np.testing.assert_array_equal(z[col], getattr(n, col))
        np.testing.assert_array_equal(z["area"], n.cortical_area)
        assert z["area_ids"].tolist() == [a.cortical_id for a in engine.brain.areas]
        assert z["area_names"].tolist() == [a.name for a in engine.brain.areas]
        assert int(z["first_burst"]) == 1 and int(z["last_burst"]) == 200
    t = read_spikes(path)
    power = engine.brain.areas[int(engine.brain.neurons.cortical_area[engine.brain.power_neuron])].cortical_id
    assert t.area_ids[t.spike_area[0]] == power and t.area_sizes is not None and t.area_sizes.sum() == len(n)


def test_jsonl_lines_follow_the_spec(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.jsonl"
    rec = open_recorder(path, engine.brain)
    for r in results:
        rec.add(r)
    rec.close()
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert [ln["burst"] for ln in lines] == [r.burst for r in results if r.fired.size]
    for ln in lines:
        ids = [f[0] for f in ln["fired"]]
        assert ids == sorted(ids)
        for nid, area, x, y, z, _mp in ln["fired"][:5]:
            assert engine.brain.describe([nid])[0] == (area, x, y, z)


@pytest.mark.parametrize("suffix", [".npz", ".jsonl"])
def test_a_crash_leaves_everything_up_to_the_last_flushed_chunk(tmp_path: Path, pong_results, suffix: str) -> None:
    engine, results = pong_results
    path = tmp_path / f"spikes{suffix}"
    rec = open_recorder(path, engine.brain, chunk_bursts=1000, chunk_seconds=1e9)
    for r in results[:120]:
        rec.add(r)
    rec.flush()
    for r in results[120:150]:  # buffered, never flushed: the crash loses these
        rec.add(r)
    # the process dies here: what is on disk is what it leaves (no close, no final rename)
    partial = crash_copy(rec.partial, tmp_path)
    rec.abort()
    assert not path.exists()
    assert read_record(partial) == expected(results, upto=120)
    if suffix == ".npz":
        out = tmp_path / "recovered.npz"
        assert finish_partial(partial, out) == sum(r.spike_count for r in results[:120])
        assert read_record(out) == expected(results, upto=120)
        with np.load(out) as z:
            assert int(z["last_burst"]) == 120


def test_npz_partial_is_a_stream_of_npy_arrays(tmp_path: Path, pong_results) -> None:
    """np.load, called repeatedly on one open file, reads a crashed run's chunks."""
    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    rec = open_recorder(path, engine.brain, chunk_bursts=50, chunk_seconds=1e9)
    for r in results[:100]:
        rec.add(r)
    rec.file.flush()
    with open(partial_path(path), "rb") as f:
        header = json.loads(np.load(f).tobytes())
        table = np.load(f)
        chunks = [(np.load(f), np.load(f)) for _ in range(2)]
    assert header["area_ids"][0] == engine.brain.areas[0].cortical_id and table.shape == (engine.brain.neuron_count,)
    assert [c[0].tolist() for c in chunks] == [[1, 50], [51, 100]]
    assert sum(c[1].size for c in chunks) == sum(r.spike_count for r in results[:100])
    rec.abort()


def test_a_torn_last_chunk_is_dropped(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    rec = open_recorder(path, engine.brain, chunk_bursts=100, chunk_seconds=1e9)
    for r in results:
        rec.add(r)
    rec.file.flush()
    partial = crash_copy(rec.partial, tmp_path)
    rec.abort()
    size = partial.stat().st_size
    last_chunk_bytes = 12 * sum(r.spike_count for r in results[100:])
    with open(partial, "r+b") as f:  # the crash hit the middle of the second chunk's write
        f.truncate(size - last_chunk_bytes // 2)
    assert read_record(partial) == expected(results, upto=100)


def test_a_torn_jsonl_line_is_dropped(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.jsonl"
    rec = open_recorder(path, engine.brain)
    for r in results[:30]:
        rec.add(r)
    rec.flush()
    rec.file.write(b'{"burst": 31, "fired": [[0, "___p')  # half a line
    rec.file.flush()
    assert read_record(partial_path(path)) == expected(results, upto=30)
    rec.abort()


def test_memory_stays_flat_while_recording(tmp_path: Path, pong_results) -> None:
    """The recorder holds at most one chunk; the rest is on disk."""
    engine, results = pong_results
    rec = open_recorder(tmp_path / "spikes.npz", engine.brain, chunk_bursts=16, chunk_seconds=1e9)
    sizes = []
    for _ in range(5):
        for r in results:
            rec.add(r)
            assert len(rec.chunk) < 16
        sizes.append(rec.partial.stat().st_size)
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]
    rec.abort()


def test_existing_record_or_partial_is_never_overwritten(tmp_path: Path, pong_results) -> None:
    engine, _ = pong_results
    path = tmp_path / "spikes.npz"
    path.write_bytes(b"keep")
    with pytest.raises(InputError, match="already exists.*--force"):
        open_recorder(path, engine.brain)
    assert path.read_bytes() == b"keep"
    path.unlink()
    partial_path(path).write_bytes(b"crashed run")
    with pytest.raises(InputError, match="interrupted run"):
        open_recorder(path, engine.brain)
    assert partial_path(path).read_bytes() == b"crashed run"
    open_recorder(path, engine.brain, force=True).close()
    assert read_record(path) == {} and not partial_path(path).exists()


def test_abort_keeps_recorded_spikes_and_drops_an_empty_partial(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    empty = open_recorder(tmp_path / "a.npz", engine.brain)
    assert empty.abort() is None and not any(tmp_path.iterdir())
    rec = open_recorder(tmp_path / "b.npz", engine.brain, chunk_seconds=1e9)
    for r in results[:10]:
        rec.add(r)
    kept = rec.abort()  # flushes what was buffered
    assert kept == partial_path(tmp_path / "b.npz") and read_record(kept) == expected(results, upto=10)


def test_unknown_format_and_missing_folder_are_refused(tmp_path: Path, pong_results) -> None:
    engine, _ = pong_results
    with pytest.raises(InputError, match="unknown format"):
        open_recorder(tmp_path / "spikes.csv", engine.brain)
    with pytest.raises(InputError, match="does not exist"):
        open_recorder(tmp_path / "nowhere" / "spikes.npz", engine.brain)
    assert not any(tmp_path.iterdir())


def test_an_interrupted_completion_keeps_the_partial(tmp_path: Path, pong_results, monkeypatch) -> None:
    """A second Ctrl-C while the final .npz is assembled: no final file, the .partial stays whole."""
    import feagi_burst.spike_record as sr

    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    rec = open_recorder(path, engine.brain)
    for r in results:
        rec.add(r)

    def interrupted(*_a: object, **_k: object) -> int:
        raise SystemExit(130)

    monkeypatch.setattr(sr, "finish_partial", interrupted)
    with pytest.raises(SystemExit):
        rec.close()
    assert rec.abort() == partial_path(path) and not path.exists()
    assert read_record(partial_path(path)) == expected(results)
