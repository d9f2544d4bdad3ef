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


# -- issue 13: full disks, locks, stale temporary files, first_burst, genome identity ------------
import contextlib  # noqa: E402
import errno  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from feagi_burst import files  # noqa: E402

GENOMES = ROOT / "tests" / "data" / "genomes"


def run_cli(*args: Any) -> tuple[int, str]:
    """`feagi-burst ARGS` in this process (so monkeypatches apply): (exit code, stderr)."""
    from feagi_burst import cli

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    err = io.StringIO()
    argv = sys.argv
    sys.argv = ["feagi-burst", *map(str, args)]
    code: Any = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main()
            except SystemExit as e:
                code = e.code
    finally:
        sys.argv = argv
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return code, err.getvalue()


def error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.startswith("feagi-burst: error:")]
    assert len(lines) == 1, err
    return lines[0]


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` (root only); skips the test where mounting is not allowed."""
    folder.mkdir()
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.decode().strip()}); the monkeypatched tests cover it")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def synthetic_config(folder: Path, rate: float) -> Path:
    """20,000 neurons firing at `rate`: a known number of spikes per burst, fast to run."""
    cfg = folder / "b.toml"
    cfg.write_text(f"[genome.synthetic]\nneurons = 20000\nsynapses_per_neuron = 5\nfiring_rate = {rate}\n")
    return cfg


@pytest.mark.parametrize("suffix", [".npz", ".jsonl"])
def test_a_full_disk_while_recording_says_what_was_kept(tmp_path: Path, suffix: str) -> None:
    cfg = synthetic_config(tmp_path, 0.05)
    with tiny_disk(tmp_path / "disk", "32m") as disk:
        rec = disk / f"spikes{suffix}"
        code, err = run_cli("run", "--config", cfg, "--bursts", 100_000, "--backend", "cpu", "--record", rec)
        assert code == 2
        line = error_line(err)
        assert "No space left on device" in line and str(partial_path(rec)) in line and "kept" in line, line
        assert not rec.exists()
        promised = int(line.split("up to burst ")[1].split(" ")[0].replace(",", ""))
        kept = read_record(partial_path(rec))  # what the message promises is there (a torn chunk may add some)
        assert promised > 0 and set(range(1, promised + 1)) <= set(kept), line
        assert sorted(p.name for p in disk.iterdir()) == [partial_path(rec).name]  # no lock or temporary file


def test_a_full_disk_at_the_final_npz_keeps_the_whole_partial(tmp_path: Path) -> None:
    cfg = synthetic_config(tmp_path, 0.005)  # 100 spikes per burst: the stream ~400 KB, the .npz as much
    with tiny_disk(tmp_path / "disk", "600k") as disk:
        rec = disk / "spikes.npz"
        code, err = run_cli("run", "--config", cfg, "--bursts", 200, "--backend", "cpu", "--record", rec)
        line = error_line(err)
        assert code == 2 and "No space left" in line, err
        assert "every recorded spike is kept in" in line and "finish_partial" in line, line
        assert not rec.exists() and partial_path(rec).exists()
        assert max(read_record(partial_path(rec))) == 200
        assert [p.name for p in disk.iterdir()] == ["spikes.npz.partial"]  # no temporary file left


def test_a_full_disk_for_json_and_init_is_one_line(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "4k") as disk:
        (disk / "filler").write_bytes(b"x" * 4096)
        code, err = run_cli("run", "--genome", GENOMES / "test_timer.json", "--bursts", 5, "--backend", "cpu",
                            "--json", disk / "s.json")
        line = error_line(err)
        assert code == 2 and "No space left" in line and "the run itself completed" in line, line
        code, err = run_cli("init", disk / "brain.toml")
        assert code == 2 and "No space left" in error_line(err)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def failing_write(after: int) -> Any:
    """A write that fails with ENOSPC after `after` successful calls (a disk filling up)."""
    calls = {"n": 0}

    def write(self: Any, data: Any) -> int:
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, data)
    real_write = io.BufferedWriter.write
    return write


@pytest.mark.parametrize("suffix", [".npz", ".jsonl"])
def test_enospc_while_recording_is_one_line_monkeypatched(tmp_path: Path, pong_results, suffix: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine, results = pong_results
    path = tmp_path / f"spikes{suffix}"
    rec = open_recorder(path, engine.brain, chunk_bursts=10, chunk_seconds=1e9)
    for r in results[:50]:
        rec.add(r)
    monkeypatch.setattr(rec, "file", _Failing(rec.file))
    with pytest.raises(InputError) as info:
        for r in results[50:]:
            rec.add(r)
    msg = str(info.value)
    assert "No space left on device" in msg and "up to burst 50" in msg and str(partial_path(path)) in msg
    assert rec.abort() == partial_path(path)
    monkeypatch.undo()
    assert max(read_record(partial_path(path))) == 50


class _Failing:
    """A file whose writes fail as on a full disk."""

    def __init__(self, f: Any) -> None:
        self.f = f

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.f, name)


def test_enospc_at_the_final_npz_monkeypatched(tmp_path: Path, pong_results, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    rec = open_recorder(path, engine.brain)
    for r in results:
        rec.add(r)
    import feagi_burst.spike_record as sr

    def full(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(sr, "_write_member", full)
    with pytest.raises(InputError, match="every recorded spike is kept in .*spikes.npz.partial"):
        rec.close()
    assert rec.abort() == partial_path(path) and not path.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spikes.npz.partial"]  # temporary file removed
    monkeypatch.undo()
    assert read_record(partial_path(path)) == expected(results)


def test_atomic_write_enospc_is_a_write_error(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(files.WriteError, match="x.json is unchanged"):
        with files.atomic_write(target) as f:
            f.write("new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_two_runs_on_one_record_the_second_is_refused(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "spikes.npz"
    first = open_recorder(path, engine.brain, force=True)
    with pytest.raises(InputError, match="being written by another feagi-burst run"):
        open_recorder(path, engine.brain, force=True)
    code, err = run_cli("run", "--genome", EXAMPLES / "pong_genome.json", "--bursts", 5, "--backend", "cpu",
                        "--record", path, "--force")
    assert code == 2 and "being written by another" in error_line(err)
    for r in results:
        first.add(r)
    first.close()
    assert read_record(path) == expected(results)  # the first run's spikes are whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spikes.npz"]  # the lock file is gone
    again = open_recorder(path, engine.brain, force=True)  # free again once the first is done
    again.abort()


def test_stale_temporary_files_are_cleaned_on_the_next_write(tmp_path: Path) -> None:
    # a writer killed with kill -9 in the middle of an atomic write
    code = ("import os, signal, sys\n"
            "from feagi_burst.files import atomic_write\n"
            "with atomic_write(sys.argv[1]) as f:\n"
            "    f.write('half'); f.flush()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "summary.json")], capture_output=True)
    assert p.returncode == -signal.SIGKILL
    stale = [q.name for q in tmp_path.iterdir()]
    assert len(stale) == 1 and stale[0].startswith(".summary.json.")
    legacy = tmp_path / ".summary.json.abcd1234.tmp"  # the naming of earlier versions
    legacy.write_text("old")
    others = tmp_path / ".notes.txt.abcd1234.tmp"  # not ours to judge: another name, older naming
    others.write_text("keep")
    live = tmp_path / ".r.npz.zzzz9999.feagi-tmp"  # being written right now by a live writer
    live.write_text("busy")
    import fcntl

    with open(live) as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with files.atomic_write(tmp_path / "summary.json") as f:
            f.write("{}")
        assert sorted(q.name for q in tmp_path.iterdir()) == sorted([".notes.txt.abcd1234.tmp", live.name,
                                                                       "summary.json"])


def test_jsonl_first_and_last_burst_and_genome(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "resumed.jsonl"
    rec = open_recorder(path, engine.brain)
    quiet = [BurstResult(b, np.zeros(0, np.uint32), np.zeros(0, np.float32)) for b in range(501, 504)]
    tail = BurstResult(504, results[10].fired, results[10].mp)
    for r in quiet + [tail] + [BurstResult(505, np.zeros(0, np.uint32), np.zeros(0, np.float32))]:
        rec.add(r)
    rec.close()
    lines = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert [ln["burst"] for ln in lines] == [501, 504, 505]  # first and last always; quiet ones left out
    assert lines[0]["fired"] == [] and lines[0]["fingerprint"] == engine.brain.fingerprint
    assert lines[0]["brain"] == engine.brain.name
    t = read_spikes(path)
    assert (t.first_burst, t.last_burst) == (501, 505)
    assert t.fingerprint == engine.brain.fingerprint


def test_npz_records_carry_the_genome(tmp_path: Path, pong_results) -> None:
    engine, results = pong_results
    path = tmp_path / "r.npz"
    rec = open_recorder(path, engine.brain)
    for r in results[:5]:
        rec.add(r)
    rec.close()
    with np.load(path) as z:
        assert str(z["fingerprint"]) == engine.brain.fingerprint and str(z["brain"]) == engine.brain.name
    assert read_spikes(path).fingerprint == engine.brain.fingerprint


def test_npz_refuses_bursts_beyond_32_bits(tmp_path: Path, pong_results) -> None:
    engine, _ = pong_results
    rec = open_recorder(tmp_path / "r.npz", engine.brain)
    rec.add(BurstResult(2**32 - 1, np.zeros(0, np.uint32), np.zeros(0, np.float32)))
    with pytest.raises(InputError, match="4,294,967,295"):
        rec.add(BurstResult(2**32, np.zeros(0, np.uint32), np.zeros(0, np.float32)))
    rec.abort()


def test_records_are_read_only_from_regular_files(tmp_path: Path) -> None:
    fifo = tmp_path / "r.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        read_spikes(fifo)
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(InputError, match="directory"):
        read_spikes(tmp_path / "d.npz")
    (tmp_path / "e.npz").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        read_spikes(tmp_path / "e.npz")
