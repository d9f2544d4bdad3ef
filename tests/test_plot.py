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
    recs = [open_recorder(folder / "r.npz", engine.brain), open_recorder(folder / "r.jsonl", engine.brain)]
    results: list[BurstResult] = []

    def keep(r: BurstResult) -> None:
        results.append(BurstResult(r.burst, r.fired.copy(), r.mp.copy()))
        for rec in recs:
            rec.add(r)
    engine.run(150, on_result=keep)
    for rec in recs:
        rec.close()
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
