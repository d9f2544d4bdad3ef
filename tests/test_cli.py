"""The command line as a user drives it: real processes, real files, exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import GENOMES

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "feagi_burst.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def assert_one_line_error(p: subprocess.CompletedProcess, fragment: str) -> None:
    assert p.returncode == 2, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("feagi-burst: error:")]
    assert len(lines) == 1 and fragment in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_run_bundled_config_writes_record_and_summary(tmp_path: Path) -> None:
    cfg = tmp_path / "brain.toml"
    cfg.write_text(f'[genome]\npath = "{EXAMPLES / "pong_genome.json"}"\n[run]\nbursts = 30\n'
                   f'stimulus = "{EXAMPLES / "pong_stimulus.toml"}"\nrecord = "spikes.jsonl"\n')
    p = cli("run", "--config", cfg, "--backend", "cpu", "--json", tmp_path / "summary.json")
    assert p.returncode == 0, p.stderr
    assert "backend: CPU (numba) (--backend cpu)" in p.stderr
    assert "synaptic propagation" in p.stderr and "30/30" in p.stderr
    lines = [json.loads(ln) for ln in (tmp_path / "spikes.jsonl").read_text().splitlines()]
    first = lines[0]
    assert first["burst"] == 1 and first["fired"][0][:5] == [0, "___pwr", 0, 0, 0]
    # the ball's 3x3 voxels in iv00CC are forced with mp 100 in burst 1
    assert sum(1 for f in first["fired"] if f[1] == "iv00CC" and f[5] == 100.0) == 9
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["bursts"] == 30 and s["backend"] == "CPU (numba)" and s["spikes"] == sum(len(x["fired"]) for x in lines)
    assert {"input", "synaptic_propagation", "neural_dynamics", "output"} <= set(s["phases"])
    assert s["phases"]["synaptic_propagation"]["p99_us"] >= s["phases"]["synaptic_propagation"]["p50_us"] > 0


def test_run_refuses_to_overwrite_a_record(tmp_path: Path) -> None:
    rec = tmp_path / "r.jsonl"
    rec.write_text("keep")
    p = cli("run", "--genome", GENOMES / "test_timer.json", "--bursts", "3", "--record", rec, "--backend", "cpu")
    assert_one_line_error(p, "already exists")
    assert rec.read_text() == "keep"


@pytest.mark.parametrize("args, fragment", [
    (("run", "--genome", "/nonexistent.json"), "file not found"),
    (("run", "--genome", GENOMES / "leak_test_1_23.json"), "Pattern must have 2 elements"),
    (("run", "--genome", GENOMES / "example_fp32_genome.json"), "schema"),
    (("run",), "no brain to run"),
    (("run", "--genome", GENOMES / "test_timer.json", "--backend", "tpu"), "unknown backend 'tpu'"),
    (("run", "--genome", GENOMES / "test_timer.json", "--record", "/tmp/x.csv"), "unknown format .csv"),
    (("run", "--bursts", "-3"), "--bursts"),
    (("genome", "info", GENOMES / "circuits__brightness_change_detection.json"), "__back"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple, fragment: str) -> None:
    assert_one_line_error(cli(*args), fragment)


def test_bad_stimulus_leaves_no_record(tmp_path: Path) -> None:
    stim = tmp_path / "s.json"
    stim.write_text(json.dumps([{"area": "nope01", "voxels": [[0, 0, 0]], "bursts": [1]}]))
    p = cli("run", "--genome", GENOMES / "test_timer.json", "--stimulus", stim, "--record", tmp_path / "r.jsonl",
            "--backend", "cpu")
    assert_one_line_error(p, "unknown cortical area 'nope01'")
    assert list(tmp_path.iterdir()) == [stim]


def test_genome_info_json() -> None:
    p = cli("genome", "info", GENOMES / "Huma_feagi_genome_pong.json", "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert (info["neurons"], info["synapses"]) == (56_560, 442_380)
    assert any(a["cortical_id"] == "iv00_C" and a["neurons"] == 49_152 for a in info["areas"])
    assert sum(m["synapses"] for m in info["mappings"]) == 442_380


def test_init_writes_a_config_that_runs(tmp_path: Path) -> None:
    p = cli("init", tmp_path / "brain.toml", "--genome", str(GENOMES / "test_timer.json"))
    assert p.returncode == 0
    assert_one_line_error(cli("init", tmp_path / "brain.toml"), "already exists")
    r = cli("run", "--config", tmp_path / "brain.toml", "--bursts", "5", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s.json").read_text())["bursts"] == 5


def test_select_dry_run_json(tmp_path: Path) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text("[genome.synthetic]\nneurons = 2000\nsynapses_per_neuron = 10\n"
                   "[backend]\ngpu_neuron_threshold = 500000\ngpu_synapse_threshold = 50000000\n")
    p = cli("select", "--config", cfg, "--dry-run", "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert d["backend"] == "cpu" and d["neurons"] == 2000 and d["synapses"] == 20_000
    assert "below both size thresholds" in d["reason"]
    assert [r["name"] for r in d["rules"]][:2] == ["force flags", "brain size"]
    for key in ("adapter", "estimated_cpu_us", "estimated_gpu_us", "estimated_speedup", "constants_source"):
        assert key in d
    both = tmp_path / "both.toml"
    both.write_text("[genome.synthetic]\nneurons = 10\n[backend]\nforce_cpu = true\nforce_gpu = true\n")
    assert_one_line_error(cli("select", "--config", both, "--dry-run"), "both true")


def test_select_confirms_with_a_few_bursts(tmp_path: Path) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'[genome]\npath = "{GENOMES / "test_timer.json"}"\n')
    p = cli("select", "--config", cfg, "--json", "--bursts", "4")
    d = json.loads(p.stdout)
    assert d["confirmed"]["bursts"] == 4 and d["confirmed"]["backend"] == "CPU (numba)"


def test_bench_json_shape(tmp_path: Path) -> None:
    p = cli("bench", "--neurons", "5000", "--synapses-per-neuron", "20", "--bursts", "20", "--warmup", "2",
            "--backend", "cpu", "--json", tmp_path / "b.json")
    assert p.returncode == 0, p.stderr
    d = json.loads((tmp_path / "b.json").read_text())
    assert (d["neurons"], d["synapses"], d["firing_rate"]) == (5000, 100_000, 0.01)
    cpu = d["backends"]["cpu"]
    for key in ("us_per_burst", "p50_us", "p99_us", "events_per_s", "phases"):
        assert key in cpu
    assert abs(cpu["firing_rate"] - 0.01) < 0.002
    # 50 spikes per burst, 20 synapses each: about 1,000 synaptic events per burst
    assert 0.8e3 < cpu["events_per_s"] * cpu["us_per_burst"] / 1e6 < 1.2e3
    assert d["build_s"] > 0 and d["speedup"] is None and d["predicted_speedup"] > 0


def test_bench_calibrate_rewrites_only_the_constants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "b.toml"
    original = "# my brain\n[genome]\npath = \"g.json\"  # keep me\n\n[backend]\nmin_speedup = 2.0\ncpu_gflops = 100.0\n"
    cfg.write_text(original)
    from feagi_burst import bench, calibration

    small = (("tiny", 500, 10, 0.02), ("a", 2_000, 10, 0.05), ("b", 3_000, 20, 0.01), ("c", 3_000, 20, 0.1),
             (calibration.STIMULATED, 3_000, 20, 0.002))
    monkeypatch.setattr(calibration, "POINTS", small)
    monkeypatch.setattr(bench, "CALIBRATION_SECONDS_PER_POINT", 0.02)
    from typer.testing import CliRunner

    from feagi_burst.cli import app

    r = CliRunner().invoke(app, ["bench", "--calibrate", "--config", str(cfg), "--backend", "cpu",
                                 "--json", str(tmp_path / "c.json")])
    assert r.exit_code == 0, r.output
    text = cfg.read_text()
    assert text.startswith("# my brain\n[genome]\npath = \"g.json\"  # keep me\n") and "min_speedup = 2.0" in text
    assert "cpu_gflops" not in text  # the older model's key, which nothing reads any more, is gone
    from feagi_burst.config import CONSTANT_KEYS, load_config

    c = load_config(cfg)
    assert c.backend.min_speedup == 2.0 and c.backend.legacy_keys == ()
    assert all(getattr(c.backend, k) is not None and getattr(c.backend, k) >= 0
               for k in CONSTANT_KEYS if k.startswith("cpu_"))
    assert c.backend.gpu_host_us is None  # --backend cpu: the GPU's constants are left to the machine
    measured = json.loads((tmp_path / "c.json").read_text())
    assert [p["label"] for p in measured["points"]] == [p[0] for p in small]
    assert all(p["cpu_us"] > 0 and p["model_cpu_us"] > 0 for p in measured["points"])


def test_run_on_the_gpu_gives_the_cpu_record(tmp_path: Path, gpu_backend: object) -> None:
    records = {}
    for backend in ("cpu", "gpu"):
        rec = tmp_path / f"{backend}.jsonl"
        p = cli("run", "--genome", EXAMPLES / "pong_genome.json", "--stimulus", EXAMPLES / "pong_stimulus.toml",
                "--bursts", "40", "--backend", backend, "--record", rec)
        assert p.returncode == 0, p.stderr
        records[backend] = rec.read_text()
        if backend == "gpu":
            assert "backend: WGPU (" in p.stderr
    assert records["gpu"] == records["cpu"] and records["cpu"].count("\n") == 40


# -- issue 13 --------------------------------------------------------------------------------------
def test_bench_without_warmup_returns() -> None:
    p = cli("bench", "--neurons", "1000", "--bursts", "5", "--warmup", "0", "--backend", "cpu")  # hung forever
    assert p.returncode == 0, p.stderr
    assert "per burst (pipelined)" in p.stdout
    p = cli("bench", "--neurons", "1000", "--bursts", "5", "--warmup", "0", "--backend", "cpu", "--blocking")
    assert p.returncode == 0, p.stderr


def test_bench_api_refuses_zero_timed_bursts() -> None:
    from feagi_burst.bench import bench_backend
    from feagi_burst.errors import InputError
    from feagi_burst.synthetic import synthetic_brain

    with pytest.raises(InputError, match="at least 1"):
        bench_backend(synthetic_brain(100, 2), "cpu", 0, 0)


def test_version_and_short_help() -> None:
    from feagi_burst import __version__

    p = cli("--version")
    assert p.returncode == 0 and p.stdout.strip() == f"feagi-burst {__version__}"
    for args in (("-h",), ("run", "-h"), ("genome", "-h"), ("plot", "-h")):
        p = cli(*args)
        assert p.returncode == 0 and "Usage" in p.stdout, (args, p.stderr)


def test_run_help_shows_the_defaults_of_bursts_and_seed() -> None:
    text = " ".join(cli("run", "--help").stdout.replace("│", " ").split())
    assert "[default: (the config's [run] bursts, else 100)]" in text
    assert "[default: (the config's [run] seed, else 0)]" in text


def test_select_accepts_genome_like_run() -> None:
    p = cli("select", "--genome", GENOMES / "test_timer.json", "--dry-run", "--json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["neurons"] == 109
    assert_one_line_error(cli("select", "--dry-run"), "no brain to run")


def test_init_synthetic_writes_a_config_that_runs(tmp_path: Path) -> None:
    p = cli("init", tmp_path / "s.toml", "--synthetic", "2000")
    assert p.returncode == 0, p.stderr
    from feagi_burst.config import load_config

    cfg = load_config(tmp_path / "s.toml")
    assert cfg.synthetic is not None and cfg.synthetic.neurons == 2000 and cfg.genome is None
    r = cli("run", "--config", tmp_path / "s.toml", "--bursts", "5", "--backend", "cpu", "--json", tmp_path / "j.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "j.json").read_text())["neurons"] == 2000


def test_warnings_have_one_format(tmp_path: Path) -> None:
    g = json.loads((GENOMES / "test_timer.json").read_text())
    g["blueprint"]["_____10c-___pwr-nx-snooze-i"] = 3  # a spelling FEAGI ignores: a warning
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g).replace('"genome_title": ', '"genome_title": "x", "genome_title": ', 1))
    p = cli("run", "--genome", path, "--bursts", "2", "--backend", "cpu")
    assert p.returncode == 0, p.stderr
    warned = [ln for ln in p.stderr.splitlines() if "warning" in ln.lower() or "ignored" in ln]
    assert len(warned) >= 2 and all(ln.startswith("feagi-burst: warning: ") for ln in warned), warned


@pytest.mark.parametrize("option, value, fragment", [
    ("--json", "missing/s.json", "folder"), ("--json", ".", "is a directory"),
    ("--record", "missing/r.npz", "folder"), ("--record", "dir.npz", "is a directory"),
    ("--resume", ".", "is a directory"), ("--checkpoint", "dir.npz", "is a directory"),
])
def test_outputs_and_resume_are_checked_before_the_first_burst(tmp_path: Path, option: str, value: str,
                                                               fragment: str) -> None:
    (tmp_path / "dir.npz").mkdir()
    p = cli("run", "--genome", EXAMPLES / "pong_genome.json", "--bursts", "3", "--backend", "cpu", option, value,
            "--force", cwd=tmp_path)
    assert_one_line_error(p, fragment)
    assert "backend:" not in p.stderr  # refused before the brain was built and run
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir.npz"]


def test_the_summary_and_the_table_show_the_same_rate(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    # the raster is drawn after the run: it must not count in the bursts per second
    p = cli("run", "--genome", EXAMPLES / "pong_genome.json", "--bursts", "100", "--backend", "cpu",
            "--raster", tmp_path / "r.png", "--json", tmp_path / "s.json")
    assert p.returncode == 0, p.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    shown = [ln for ln in p.stderr.splitlines() if "bursts/s" in ln][-1]
    assert f"{s['bursts_per_s']:,.1f} bursts/s" in shown, (shown, s["bursts_per_s"])
    assert all(k.endswith(("_us", "_s")) for k in s["phases"]["input"])  # units in every timing's name
    assert "wall_s" in s and "bursts_per_s" in s


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_second_sigterm_after_a_clean_stop_still_exits_0(tmp_path: Path) -> None:
    import signal
    import time

    for _ in range(3):  # the second signal lands at different moments of the shutdown
        proc = subprocess.Popen([sys.executable, "-m", "feagi_burst.cli", "run", "--genome", GENOMES / "test_timer.json",
                                 "--backend", "cpu", "--bursts", "0", "--json", tmp_path / "s.json"],
                                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("backend:"):
                break
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.02)
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
        proc.stderr.read()
        assert proc.wait(60) == 0


def test_error_lines_escape_control_characters(tmp_path: Path) -> None:
    stim = tmp_path / "s.json"
    stim.write_text(json.dumps([{"area": "a\nb\x1b[2J", "voxels": [[0, 0, 0]], "bursts": [1]}]))
    p = cli("run", "--genome", GENOMES / "test_timer.json", "--stimulus", stim, "--backend", "cpu")
    assert_one_line_error(p, "unknown cortical area")
    assert "\x1b" not in p.stderr
