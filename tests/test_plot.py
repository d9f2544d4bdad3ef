"""Raster plots: areas with spikes drawn and labelled in order, empty ones left out, files never clobbered."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from feagi_burst.backends.base import BurstResult  # noqa: E402
from feagi_burst.engine import Engine  # noqa: E402
from feagi_burst.errors import InputError  # noqa: E402
from feagi_burst.plot import plot_raster, require_matplotlib  # noqa: E402
from feagi_burst.spike_record import open_recorder  # noqa: E402

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def records(tmp_path_factory: Any) -> tuple[Engine, Path, Path, list[BurstResult]]:
    """The same 150 pong bursts recorded as .npz and .jsonl."""
    folder = tmp_path_factory.mktemp("records")
    engine = Engine.from_genome(EXAMPLES / "pong_genome.json", backend="cpu", warn=None)
    engine.add_schedule(EXAMPLES / "pong_stimulus.toml")
    recs = [open_recorder(folder / "r.npz", engine.brain), open_recorder(folder / "r.jsonl", engine.brain),
            open_recorder(folder / "stream.npz", engine.brain, chunk_bursts=10)]
    results: list[BurstResult] = []

    def keep(r: BurstResult) -> None:
        results.append(BurstResult(r.burst, r.fired.copy(), r.mp.copy()))
        for rec in recs:
            rec.add(r)
    engine.run(150, on_result=keep)
    for rec in recs[:2]:
        rec.close()
    recs[2].abort()  # what a crash leaves: stream.npz.partial
    return engine, folder / "r.npz", folder / "r.jsonl", results


def areas_with_spikes(engine: Engine, results: list[BurstResult], lo: int = 1, hi: int = 10**9) -> list[str]:
    ids = np.unique(np.concatenate([r.fired for r in results if lo <= r.burst <= hi]))
    area = np.unique(engine.brain.neurons.cortical_area[ids])
    return [engine.brain.areas[a].cortical_id for a in area]


def test_raster_draws_every_area_with_spikes_and_no_other(tmp_path: Path, records) -> None:
    engine, npz, _jsonl, results = records
    info = plot_raster([npz], tmp_path / "r.png")
    assert (tmp_path / "r.png").read_bytes()[:8] == PNG
    want = areas_with_spikes(engine, results)
    assert len(want) >= 3 and len(want) < len(engine.brain.areas)  # some areas stay silent
    assert info["areas"] == len(want) and info["area_ids"] == want
    assert all(f"({a})" in lbl for a, lbl in zip(want, info["labels"]) if a != lbl)
    assert info["spikes"] == sum(r.spike_count for r in results)
    assert (info["first_burst"], info["last_burst"]) == (1, 150)


def test_the_picture_is_not_blank(tmp_path: Path, records) -> None:
    from matplotlib.image import imread

    _engine, npz, _jsonl, _results = records
    plot_raster([npz], tmp_path / "r.png")
    img = imread(tmp_path / "r.png")[..., :3]
    colours = np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0)
    assert img.shape[0] > 500 and img.shape[1] > 1000
    assert len(colours) > 50  # area colours, labels and lines, not an empty canvas
    saturated = (img.max(axis=2) - img.min(axis=2)) > 0.4
    assert saturated.mean() > 0.002  # coloured spike marks cover a visible share


def test_area_and_burst_filters(tmp_path: Path, records) -> None:
    engine, npz, _jsonl, results = records
    info = plot_raster([npz], tmp_path / "w.png", bursts=(20, 40))
    assert info["areas"] == len(areas_with_spikes(engine, results, 20, 40))
    assert info["spikes"] == sum(r.spike_count for r in results if 20 <= r.burst <= 40)
    info = plot_raster([npz], tmp_path / "a.png", areas=["iv00CC"])
    cc = engine.brain.area("iv00CC")
    assert info["area_ids"] == ["iv00CC"] and info["labels"][0].endswith("(iv00CC)")
    assert info["spikes"] == sum(int(((r.fired >= cc.first_neuron) & (r.fired < cc.neuron_stop)).sum())
                                 for r in results)
    with pytest.raises(InputError, match="not in the record"):
        plot_raster([npz], tmp_path / "b.png", areas=["nope00"])
    info = plot_raster([npz], tmp_path / "empty.png", bursts=(10_000, 10_010))
    assert info["areas"] == 0 and (tmp_path / "empty.png").read_bytes()[:8] == PNG


def test_jsonl_record_draws_the_same_areas(tmp_path: Path, records) -> None:
    _engine, npz, jsonl, _results = records
    a = plot_raster([npz], tmp_path / "a.svg")
    b = plot_raster([jsonl], tmp_path / "b.svg")
    assert a["area_ids"] == b["area_ids"]  # a .jsonl has no area table: bands come from the spikes
    assert a["spikes"] == b["spikes"] and (tmp_path / "b.svg").read_text().lstrip().startswith("<?xml")


def test_never_overwrites_without_force(tmp_path: Path, records) -> None:
    _engine, npz, _jsonl, _results = records
    out = tmp_path / "r.png"
    out.write_bytes(b"keep")
    with pytest.raises(InputError, match="already exists"):
        plot_raster([npz], out)
    assert out.read_bytes() == b"keep"
    plot_raster([npz], out, force=True)
    assert out.read_bytes()[:8] == PNG
    with pytest.raises(InputError, match="unknown image format"):
        plot_raster([npz], tmp_path / "r.bmpx")


def test_missing_matplotlib_is_one_clear_message(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    with pytest.raises(InputError, match=r"pip install 'feagi-burst\[plot\]'"):
        require_matplotlib()


def cli(*args: Any) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "feagi_burst.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def test_cli_plot_and_run_raster(tmp_path: Path, records) -> None:
    _engine, npz, _jsonl, _results = records
    p = cli("plot", npz, "--out", tmp_path / "p.png", "--areas", "iv00CC,___pwr", "--bursts", "5:60")
    assert p.returncode == 0, p.stderr
    assert "2 areas, bursts 5..60" in p.stdout and (tmp_path / "p.png").read_bytes()[:8] == PNG
    for args, fragment in [(("--bursts", "9-3"), "expected A:B"), (("--bursts", "9:3"), "after the last"),
                           (("--areas", "zz"), "not in the record")]:
        p = cli("plot", npz, "--out", tmp_path / "q.png", *args)
        assert p.returncode == 2 and fragment in p.stderr and "Traceback" not in p.stderr, p.stderr
        assert not (tmp_path / "q.png").exists()
    p = cli("run", "--genome", EXAMPLES / "pong_genome.json", "--stimulus", EXAMPLES / "pong_stimulus.toml",
            "--backend", "cpu", "--bursts", 80, "--raster", tmp_path / "run.png")
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "run.png").read_bytes()[:8] == PNG
    assert sorted(x.name for x in tmp_path.iterdir()) == ["p.png", "run.png"]  # the scratch record is gone
    p = cli("run", "--genome", EXAMPLES / "pong_genome.json", "--backend", "cpu", "--bursts", 5,
            "--raster", tmp_path / "run.png")
    assert p.returncode == 2 and "already exists" in p.stderr


def test_a_run_and_its_resume_plot_as_one(tmp_path: Path, records) -> None:
    engine, npz, _jsonl, results = records
    parts = [open_recorder(tmp_path / "a.npz", engine.brain), open_recorder(tmp_path / "b.jsonl", engine.brain)]
    for r in results:
        parts[r.burst > 75].add(r)
    for p in parts:
        p.close()
    whole = plot_raster([npz], tmp_path / "whole.png")
    split = plot_raster([tmp_path / "a.npz", tmp_path / "b.jsonl"], tmp_path / "split.png")
    for key in ("spikes", "area_ids", "first_burst", "last_burst"):
        assert whole[key] == split[key], key


def test_unreadable_records_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    (tmp_path / "bad.jsonl").write_text('{"burst": 1, "fired": 7}\n')
    (tmp_path / "bad.npz.partial").write_bytes(b"\x93NUMPY garbage")
    for name in ("bad.npz", "bad.jsonl", "bad.npz.partial", "missing.npz", "x.csv"):
        with pytest.raises(InputError) as info:
            plot_raster([tmp_path / name], tmp_path / "out.png")
        assert "\n" not in str(info.value)
    assert not (tmp_path / "out.png").exists()


# -- issue 13: crafted records, `$` in names, mixed genomes ----------------------------------------
import contextlib  # noqa: E402
import io  # noqa: E402
import signal  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from feagi_burst.brain import Brain  # noqa: E402


def run_cli(*args: Any) -> tuple[int, str, str]:
    """`feagi-burst ARGS` in this process: (exit code, stdout, stderr)."""
    from feagi_burst import cli as cli_module

    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["feagi-burst", *map(str, args)]
    code: Any = 0
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                cli_module.main()
            except SystemExit as e:
                code = e.code
    finally:
        sys.argv = argv
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return code, out.getvalue(), err.getvalue()


def plot_ends_cleanly(*records: Path, out: Path) -> tuple[int, str]:
    """plot exits 0 (an image) or 2 (one error line, no image); never a traceback or another code."""
    code, _out, err = run_cli("plot", *records, "--out", out)
    assert "Traceback" not in err, err
    assert code in (0, 2), f"exit {code}: {err}"
    if code == 2:
        assert len([ln for ln in err.splitlines() if ln.startswith("feagi-burst: error:")]) == 1, err
        assert not out.exists()
    else:
        assert out.read_bytes()[:4] in (PNG[:4],)
    return code, err


ARRAYS = st.one_of(
    st.builds(lambda n, dt: np.arange(n).astype(dt), st.integers(0, 5), st.sampled_from(["<u4", "<i8", "<f4", "<u2", "?"])),
    st.sampled_from([np.array(7), np.array([-1, 2**31]), np.array([[1, 2], [3, 4]]), np.array(["a", "b"]),
                     np.array([], "<U1"), np.array([np.nan, np.inf]), np.array([10**9], "<u4"),
                     np.array([2**63], "<u8"), np.zeros((0, 3))]),
)
KEYS = ["burst", "neuron", "mp", "area", "x", "y", "z", "area_ids", "area_names", "first_burst", "last_burst",
        "brain", "fingerprint"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), ARRAYS, max_size=6), st.booleans())
def test_crafted_npz_records_end_cleanly(changes: dict[str, np.ndarray], start_good: bool) -> None:
    good = {"burst": np.array([1, 1, 2], "<u4"), "neuron": np.array([0, 2, 1], "<u4"), "mp": np.ones(3, "<f4"),
            "area": np.array([0, 0, 1], "<u2"), "x": np.zeros(3, "<u2"), "y": np.zeros(3, "<u2"),
            "z": np.zeros(3, "<u2"), "area_ids": np.array(["aaaaaa", "bbbbbb"]),
            "area_names": np.array(["a", "b"]), "first_burst": np.array(1, "<u8"), "last_burst": np.array(2, "<u8")}
    arrays = {**(good if start_good else {}), **changes}
    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "r.npz"
        np.savez(rec, **arrays)
        plot_ends_cleanly(rec, out=Path(d) / "o.png")


@pytest.fixture(scope="module")
def record_files(records: Any) -> tuple[Path, Path]:
    """The .npz and .jsonl of `records` (paths only: hypothesis shows them in a failing example)."""
    return records[1], records[2]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["npz", "partial", "jsonl"]), st.integers(0, 10**6), st.binary(min_size=1, max_size=8),
       st.booleans())
def test_damaged_records_end_cleanly(record_files: tuple[Path, Path], kind: str, at: int, junk: bytes,
                                    truncate: bool) -> None:
    npz, jsonl = record_files
    src = {"npz": npz, "jsonl": jsonl, "partial": npz}[kind]
    with tempfile.TemporaryDirectory() as d:
        if kind == "partial":  # a stream as a crashed run leaves it
            data = (npz.parent / "stream.npz.partial").read_bytes()
            rec = Path(d) / "r.npz.partial"
        else:
            data = src.read_bytes()
            rec = Path(d) / src.name
        at %= len(data)
        data = data[:at] if truncate else data[:at] + junk + data[at + len(junk):]
        rec.write_bytes(data)
        plot_ends_cleanly(rec, out=Path(d) / "o.png")


HOSTILE_JSON = st.sampled_from(['"x"', "null", "-1", "1.5", "[]", "{}", str(2**64), "1e400", "true", '[1, "a"]',
                                '[[1, "a", 0, 0, 0]]', '[[-5, "a", 0, 0, 0, 1]]', '[[1, 2, 0, 0, 0, 1]]',
                                '[[4294967296, "a", 0, 0, 0, 1]]', '[[1, "a", 0, 0, 0, "mp"]]', "NaN"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["burst", "fired", "line"]), HOSTILE_JSON)
def test_crafted_jsonl_records_end_cleanly(key: str, value: str) -> None:
    line = {"burst": "1", "fired": '[[0, "___pwr", 0, 0, 0, 1.0]]'}
    if key == "line":
        text = value + "\n"
    else:
        line[key] = value
        text = "{" + ", ".join(f'"{k}": {v}' for k, v in line.items()) + "}\n"
    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "r.jsonl"
        rec.write_text(text)
        plot_ends_cleanly(rec, out=Path(d) / "o.png")


def test_an_empty_npz_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "e.npz").write_bytes(b"")
    code, err = plot_ends_cleanly(tmp_path / "e.npz", out=tmp_path / "o.png")
    assert code == 2 and "empty" in err


def renamed(engine: Engine, results: list[BurstResult], folder: Path, suffix: str, name: str,
            title: str | None = None) -> Path:
    """`results` recorded from a brain whose first area is renamed `name` (and the genome titled `title`)."""
    import dataclasses

    b = engine.brain
    areas = [dataclasses.replace(b.areas[0], name=name)] + list(b.areas[1:])
    brain = dataclasses.replace(b, areas=areas, name=title or b.name,
                                fingerprint=b.fingerprint if title is None else "f" * 64)
    assert isinstance(brain, Brain)
    path = folder / f"{'x' if title else 'n'}{suffix}"
    rec = open_recorder(path, brain)
    for r in results:
        rec.add(r)
    rec.close()
    return path


@pytest.mark.parametrize("name", ["cost$", "$x$", "a $\\frac{1}{0}$ b", "$", "\\$$", "$\\nosuch{$", "esc\x1b[31m"])
def test_dollar_signs_in_names_and_titles_are_drawn_literally(tmp_path: Path, records, name: str) -> None:
    engine, _npz, _jsonl, results = records
    path = renamed(engine, results[:20], tmp_path, ".npz", name)
    code, out, err = run_cli("plot", path, "--out", tmp_path / "o.svg", "--title", f"money {name}")
    assert code == 0, err
    svg = (tmp_path / "o.svg").read_text()
    assert "\x1b" not in svg


def test_records_of_different_genomes_are_refused_naming_both(tmp_path: Path, records) -> None:
    engine, npz, jsonl, results = records
    other_npz = renamed(engine, results[:20], tmp_path, ".npz", "other", title="Another genome")
    other_jsonl = renamed(engine, results[:20], tmp_path, ".jsonl", "other", title="Another genome")
    for a, b in ((npz, other_npz), (jsonl, other_jsonl), (npz, other_jsonl)):
        code, _out, err = run_cli("plot", a, b, "--out", tmp_path / "o.png")
        assert code == 2 and "different genomes" in err, err
        assert engine.brain.name in err and "Another genome" in err and str(a) in err and str(b) in err
        assert not (tmp_path / "o.png").exists()


def test_burst_windows_beyond_the_range_are_one_line(tmp_path: Path, records) -> None:
    _engine, npz, _jsonl, _results = records
    for window in (f"{2**63}:", f":{2**63}", f"{-1}:5", "1" + "0" * 400 + ":"):
        code, _out, err = run_cli("plot", npz, "--out", tmp_path / "o.png", "--bursts", window)
        assert code == 2 and "Traceback" not in err, err
    with pytest.raises(InputError):
        plot_raster([npz], tmp_path / "o.png", bursts=(2**63, None))
    code, out, err = run_cli("plot", npz, "--out", tmp_path / "o.png", "--bursts", f"1:{2**53}")
    assert code == 0 and f"bursts 1..{2**53:,}" in out, err  # printed as it is, never negative


def test_out_path_that_is_a_directory_is_one_line(tmp_path: Path, records) -> None:
    _engine, npz, _jsonl, _results = records
    (tmp_path / "d.png").mkdir()
    code, _out, err = run_cli("plot", npz, "--out", tmp_path / "d.png", "--force")
    assert code == 2 and "is a directory" in err
