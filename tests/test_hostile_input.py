"""Hostile input: mutated genomes, configs and stimulus schedules end in a run or in one error line.

Each case runs the real command line in-process (feagi_burst.cli.main with sys.argv set) and must
exit 0 or 2; with 2, stderr holds exactly one `feagi-burst: error:` line, no traceback, and no output
file (record, partial record, checkpoint, temporary file) is left behind. Anything else (another
exception escaping main, a hang) fails the test with the mutated input shown by hypothesis.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feagi_burst import cli

ROOT = Path(__file__).parent.parent
GENOMES = ROOT / "tests" / "data" / "genomes"
EXAMPLES = ROOT / "examples"
BASES = ["test_timer.json", "motor_pathway_m1.json", "feagi-py__essential_genome.json", "static_genome.json"]
BASE = {name: json.loads((GENOMES / name).read_text()) for name in BASES}
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HOSTILE = st.one_of(
    st.none(), st.booleans(), st.just(""), st.text(max_size=8),
    st.integers(min_value=-(2**40), max_value=2**40), st.sampled_from([2**63, -(2**63), 10**30]),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, -1e-300, 0.5]),
    st.just([]), st.just({}), st.lists(st.integers(-3, 3), max_size=4), st.just({"a": [1, None]}),
)
HUGE = st.sampled_from([10**5, 10**6, 10**9, 2**31, 2**32 + 1, 10**15])


def run_cli(*args: Any) -> tuple[int, str]:
    """Run `feagi-burst ARGS` in this process; (exit code, stderr). Signal handlers are put back."""
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    err, out = io.StringIO(), io.StringIO()
    argv = sys.argv
    sys.argv = ["feagi-burst", *map(str, args)]
    code: Any = None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                cli.main()
            except SystemExit as e:
                code = e.code
    finally:
        sys.argv = argv
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    return (code if isinstance(code, int) else (0 if code is None else 1)), err.getvalue()


def check_outcome(folder: Path, code: int, stderr: str, inputs: set[str], outputs: list[str]) -> None:
    assert "Traceback" not in stderr, stderr
    assert code in (0, 2), f"exit {code}: {stderr}"
    left = {p.name for p in folder.iterdir()} - inputs
    if code == 2:
        errors = [ln for ln in stderr.splitlines() if ln.startswith("feagi-burst: error:")]
        assert len(errors) == 1, stderr
        assert len(errors[0]) < 1500, errors[0]
        assert not left, f"left behind after a refused input: {sorted(left)}"
    else:
        assert left == set(outputs), f"{sorted(left)} != {outputs}\n{stderr}"


def run_genome(genome: Any, raw: str | None = None) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        g = folder / "g.json"
        g.write_text(raw if raw is not None else json.dumps(genome))  # NaN/Infinity as Python writes them
        code, err = run_cli("run", "--genome", g, "--bursts", 3, "--backend", "cpu",
                            "--record", folder / "r.npz", "--checkpoint", folder / "ck.npz")
        check_outcome(folder, code, err, {"g.json"}, ["r.npz", "ck.npz"])
        return code, err


def area_ids(g: dict[str, Any]) -> list[str]:
    return sorted({k.split("-")[1] for k in g["blueprint"] if k.startswith("_____10c-")})


@st.composite
def mutated_genome(draw: st.DrawFn) -> dict[str, Any]:
    g = copy.deepcopy(BASE[draw(st.sampled_from(BASES))])
    bp = g["blueprint"]
    keys = sorted(bp)
    kind = draw(st.sampled_from(["gene", "delete_gene", "size", "top", "dstmap", "rule", "morphology"]))
    if kind == "gene":
        bp[draw(st.sampled_from(keys))] = draw(HOSTILE)
    elif kind == "delete_gene":
        for k in draw(st.lists(st.sampled_from(keys), min_size=1, max_size=5)):
            bp.pop(k, None)
    elif kind == "size":
        area = draw(st.sampled_from(area_ids(g)))
        gene = draw(st.sampled_from(["cx-___bbx-i", "cx-___bby-i", "cx-___bbz-i", "cx-_n_cnt-i"]))
        bp[f"_____10c-{area}-{gene}"] = draw(st.one_of(HUGE, st.integers(-5, 0), HOSTILE))
    elif kind == "top":
        key = draw(st.sampled_from(["blueprint", "neuron_morphologies", "version", "genome_title"]))
        if draw(st.booleans()):
            g.pop(key, None)
        else:
            g[key] = draw(HOSTILE)
    elif kind in ("dstmap", "rule"):
        maps = [k for k in keys if k.endswith("-cx-dstmap-d")]
        key = draw(st.sampled_from(maps))
        dst = bp[key] if isinstance(bp[key], dict) else {}
        if kind == "dstmap" or not dst:
            target = draw(st.one_of(st.sampled_from(["nope00", "//iv00C", "", "___pwr"]), st.text(max_size=6)))
            bp[key] = {**dst, target: draw(st.one_of(HOSTILE, st.just([["projector", [1, 1, 1], 1, False]])))}
        else:
            d = draw(st.sampled_from(sorted(dst)))
            morph = draw(st.one_of(st.sampled_from(["no_such_morphology", "projector", ""]), HOSTILE))
            bp[key] = {**dst, d: [[morph, draw(HOSTILE), draw(HOSTILE), draw(HOSTILE)]]}
    else:
        morphs = g.get("neuron_morphologies") or {}
        if morphs:
            m = draw(st.sampled_from(sorted(morphs)))
            morphs[m] = draw(st.one_of(HOSTILE, st.fixed_dictionaries(
                {"type": st.sampled_from(["vectors", "patterns", "functions", "composite", "bogus"]),
                 "parameters": st.one_of(HOSTILE, st.fixed_dictionaries(
                     {"vectors": HOSTILE, "patterns": HOSTILE}))})))
    return g


@FAST
@given(mutated_genome())
def test_mutated_genomes_run_or_fail_in_one_line(genome: dict[str, Any]) -> None:
    run_genome(genome)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(BASES), st.floats(0.0, 1.0))
def test_truncated_genome_files(name: str, frac: float) -> None:
    text = (GENOMES / name).read_text()
    run_genome(None, raw=text[: int(len(text) * frac)])


@pytest.mark.parametrize("dims, npv", [((60_000, 60_000, 1_000), 1), ((4096, 4096, 4096), 1), ((10, 10, 1), 10**12),
                                       ((65_000, 65_000, 1), 1)])
def test_sizes_that_do_not_fit_are_refused_with_the_estimate(dims: tuple[int, int, int], npv: int) -> None:
    g = copy.deepcopy(BASE["test_timer.json"])
    area = area_ids(g)[-1]
    for axis, v in zip("xyz", dims):
        g["blueprint"][f"_____10c-{area}-cx-___bb{axis}-i"] = v
    g["blueprint"][f"_____10c-{area}-cx-_n_cnt-i"] = npv
    code, err = run_genome(g)
    assert code == 2
    line = err.strip().splitlines()[-1]
    # refused before allocating: either a hard limit (u16 coordinates, u32 neuron ids) with the
    # count that breaks it, or the memory estimate in bytes against what is available
    if dims == (65_000, 65_000, 1):
        assert any(unit in line for unit in ("GiB", "TiB", "PiB", "GB", "TB")), line
    assert any(word in line for word in ("neurons", "GiB", "TiB", "PiB", "GB", "TB", "limit")), line
    assert any(ch.isdigit() for ch in line), line


# -- configs -------------------------------------------------------------------------------------
TOML_VALUE = st.one_of(st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True),
                       st.text(max_size=12), st.lists(st.integers(-2, 2), max_size=3), st.just({"k": 1}))
SECTIONS = {"genome": ["path", "honour_snooze_i", "synthetic"],
            "run": ["bursts", "seed", "stimulus", "record", "nope"],
            "backend": ["force_cpu", "force_gpu", "gpu_neuron_threshold", "min_speedup", "cpu_gflops", "bogus"],
            "extra": ["x"]}


@st.composite
def mutated_config(draw: st.DrawFn) -> dict[str, Any]:
    cfg: dict[str, Any] = {"genome": {"path": str(GENOMES / "test_timer.json")},
                           "run": {"bursts": 3, "record": "r.jsonl"}, "backend": {"force_cpu": True}}
    for _ in range(draw(st.integers(1, 3))):
        section = draw(st.sampled_from(sorted(SECTIONS)))
        key = draw(st.sampled_from(SECTIONS[section]))
        if draw(st.integers(0, 4)) == 0:
            cfg.pop(section, None)
        elif key == "synthetic":
            cfg.setdefault("genome", {})["synthetic"] = {"neurons": draw(st.one_of(HUGE, st.integers(-3, 3000))),
                                                         "synapses_per_neuron": draw(st.integers(-1, 50))}
        else:
            value = draw(st.one_of(TOML_VALUE, st.sampled_from(["missing.json", "../nowhere/r.jsonl", "r.csv"])))
            if not isinstance(cfg.get(section), dict):
                cfg[section] = {}
            cfg[section][key] = value
    return cfg


@FAST
@given(mutated_config(), st.booleans())
def test_mutated_configs_run_or_fail_in_one_line(cfg: dict[str, Any], garble: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        text = tomli_w.dumps(cfg)
        if garble:
            text = text.replace("=", "", 1)
        (folder / "brain.toml").write_text(text)
        code, err = run_cli("run", "--config", folder / "brain.toml", "--backend", "cpu")
        record = cfg.get("run", {}).get("record") if isinstance(cfg.get("run"), dict) else None
        outputs = [record] if isinstance(record, str) and record and "/" not in record and code == 0 else []
        check_outcome(folder, code, err, {"brain.toml"}, outputs)


def test_config_paths_are_relative_to_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "configs"
    sub.mkdir()
    (tmp_path / "g.json").write_text((GENOMES / "test_timer.json").read_text())
    (sub / "brain.toml").write_text('[genome]\npath = "../g.json"\n[run]\nbursts = 2\nrecord = "out.jsonl"\n')
    code, err = run_cli("run", "--config", sub / "brain.toml", "--backend", "cpu")
    assert code == 0, err
    assert (sub / "out.jsonl").exists()  # beside the config, not in the working directory
    code, err = run_cli("run", "--config", sub / "brain.toml", "--backend", "cpu")
    assert code == 2 and "already exists" in err and "--force" in err  # never silently overwritten


# -- stimulus schedules --------------------------------------------------------------------------
@st.composite
def mutated_stimulus(draw: st.DrawFn) -> list[Any]:
    entry: dict[str, Any] = {"area": "iv00CC", "voxels": [[0, 14, 0], [1, 15, 0]], "bursts": [1, 2],
                             "mode": "fire", "potential": 100.0}
    key = draw(st.sampled_from(sorted(entry) + ["extra", "__delete__"]))
    if key == "__delete__":
        entry.pop(draw(st.sampled_from(sorted(entry))))
    else:
        entry[key] = draw(st.one_of(HOSTILE, st.sampled_from(
            [[[0, 0]], [[-1, 0, 0]], [[10**6, 0, 0]], [[0.5, 0, 0]], [0], [-3], ["1"], "potential", "nope00"])))
    return draw(st.sampled_from([[entry], [entry, "junk"], entry, [[entry]]]))


@FAST
@given(mutated_stimulus(), st.sampled_from([".json", ".toml"]))
def test_mutated_stimulus_runs_or_fails_in_one_line(stim: Any, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        path = folder / f"s{suffix}"
        if suffix == ".json":
            path.write_text(json.dumps(stim))
        else:
            try:
                path.write_text(tomli_w.dumps({"stimulus": stim if isinstance(stim, list) else [stim]}))
            except (TypeError, ValueError):  # TOML cannot hold it (None, mixed arrays): write it raw
                path.write_text(f"stimulus = {json.dumps(stim)}\n")
        code, err = run_cli("run", "--genome", EXAMPLES / "pong_genome.json", "--stimulus", path, "--bursts", 3,
                            "--backend", "cpu", "--record", folder / "r.jsonl")
        check_outcome(folder, code, err, {path.name}, ["r.jsonl"])
