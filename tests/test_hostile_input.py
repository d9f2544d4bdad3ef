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

from conftest import checkpoint_arrays, write_checkpoint
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
        elif key == "bursts":  # 0 runs until stopped and 2^40 for days: valid, but not for a test
            value = draw(st.one_of(st.integers(-(2**40), -1), st.integers(1, 5), st.floats(allow_nan=True),
                                   st.text(max_size=12), st.booleans()))
            if not isinstance(cfg.get(section), dict):
                cfg[section] = {}
            cfg[section][key] = value
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


# -- issue 13: special files, sizes, nesting, numbers, NUL bytes, escapes ------------------------
import os  # noqa: E402

from feagi_burst import files  # noqa: E402
from feagi_burst.errors import InputError  # noqa: E402

TIMER = GENOMES / "test_timer.json"


def one_error(code: int, err: str, fragment: str = "") -> str:
    """The run failed with exactly one error line (holding `fragment`) and no traceback."""
    assert "Traceback" not in err, err
    assert code == 2, f"exit {code}: {err}"
    lines = [ln for ln in err.splitlines() if ln.startswith("feagi-burst: error:")]
    assert len(lines) == 1, err
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def special(tmp_path: Path) -> dict[str, Path]:
    """A character device, a FIFO with no writer (opening it for reading would block) and a directory."""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.json"
    folder.mkdir()
    return {"device": Path("/dev/zero"), "fifo": fifo, "directory": folder}


EXPECT = {"device": "character device", "fifo": "FIFO", "directory": "is a directory"}


@pytest.mark.parametrize("kind", sorted(EXPECT))
@pytest.mark.parametrize("slot", ["--genome", "genome.path", "--config", "--stimulus", "stimulus in config",
                                  "genome info", "plot", "--resume"])
def test_special_files_are_refused_in_one_line(tmp_path: Path, special: dict[str, Path], kind: str,
                                               slot: str) -> None:
    bad = special[kind]
    cfg = tmp_path / "brain.toml"
    if slot == "--genome":
        args: tuple[Any, ...] = ("run", "--genome", bad, "--bursts", 2, "--backend", "cpu")
    elif slot == "genome.path":
        cfg.write_text(f'[genome]\npath = "{bad}"\n')
        args = ("run", "--config", cfg, "--bursts", 2, "--backend", "cpu")
    elif slot == "--config":
        args = ("run", "--config", bad)
    elif slot == "--stimulus":
        args = ("run", "--genome", TIMER, "--stimulus", bad, "--bursts", 2, "--backend", "cpu")
    elif slot == "stimulus in config":
        cfg.write_text(f'[genome]\npath = "{TIMER}"\n[run]\nstimulus = "{bad}"\n')
        args = ("run", "--config", cfg, "--bursts", 2, "--backend", "cpu")
    elif slot == "genome info":
        args = ("genome", "info", bad)
    elif slot == "plot":
        pytest.importorskip("matplotlib")
        if kind != "directory":  # records are chosen by suffix: give the special file one
            link = tmp_path / "rec.npz"
            link.symlink_to(bad)
            bad = link
        args = ("plot", bad if kind != "directory" else special["directory"].rename(tmp_path / "d.npz"),
                "--out", tmp_path / "o.png")
    else:
        args = ("run", "--genome", TIMER, "--resume", bad, "--bursts", 2, "--backend", "cpu")
    code, err = run_cli(*args)
    line = one_error(code, err)
    assert EXPECT[kind] in line, line
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("what, slot", [("genome file", "--genome"), ("stimulus schedule", "--stimulus"),
                                         ("config file", "--config")])
def test_files_over_the_size_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str,
                                               slot: str) -> None:
    monkeypatch.setitem(files.LIMITS, what, 1000)
    big = tmp_path / ("big.toml" if slot == "--config" else "big.json")
    big.write_text(" " * 1001)
    args: tuple[Any, ...] = ("run", "--genome", TIMER, "--bursts", 1, "--backend", "cpu")
    code, err = run_cli(*args[:1], slot, big, *args[1:]) if slot != "--genome" else run_cli("run", slot, big)
    assert "limit" in one_error(code, err, "larger than")


def test_the_limits_are_generous_for_real_files() -> None:
    assert files.limit_for("genome file") >= 256 * files.MiB  # the 200 MB genome must load
    assert files.limit_for("spike record (.npz)") >= 4 * files.GiB


DEEP = st.sampled_from([101, 1_000, 100_000])
OPEN = st.sampled_from(["[", '{"a":'])


def nest(depth: int, opener: str, inner: str = "1") -> str:
    closer = "]" if opener == "[" else "}"
    return opener * depth + inner + closer * depth


@settings(max_examples=12, deadline=None)
@given(DEEP, OPEN, st.sampled_from(["genome", "schedule", "jsonl record", "genome value"]))
def test_deep_nesting_is_one_line_never_a_recursion_error(depth: int, opener: str, where: str) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        if where == "genome":
            path = folder / "g.json"
            path.write_text(nest(depth, opener))
            code, err = run_cli("genome", "info", path)
        elif where == "genome value":
            text = (GENOMES / "test_timer.json").read_text()
            path = folder / "g.json"
            path.write_text(text.replace('"genome_title": ', f'"deep": {nest(depth, opener)}, "genome_title": ', 1))
            code, err = run_cli("run", "--genome", path, "--bursts", 1, "--backend", "cpu")
        elif where == "schedule":
            path = folder / "s.json"
            path.write_text(nest(depth, opener))
            code, err = run_cli("run", "--genome", TIMER, "--stimulus", path, "--bursts", 1, "--backend", "cpu")
        else:
            pytest.importorskip("matplotlib")
            path = folder / "r.jsonl"
            path.write_text('{"burst": 1, "fired": ' + nest(depth, "[", "") + "}\n")
            code, err = run_cli("plot", path, "--out", folder / "o.png")
        one_error(code, err)
        assert "RecursionError" not in err


HUGE_LITERALS = st.sampled_from(["1" + "0" * 400, str(2**63), str(-(2**63)), "1e400", "-1e400", "NaN", "Infinity",
                                 "-Infinity", "1" + "0" * 5000])


@FAST
@given(HUGE_LITERALS, st.data())
def test_huge_and_non_finite_numbers_in_a_genome_are_one_line(literal: str, data: st.DataObject) -> None:
    g = BASE[data.draw(st.sampled_from(BASES))]
    key = data.draw(st.sampled_from(sorted(k for k, v in g["blueprint"].items()
                                           if isinstance(v, (int, float)) and not isinstance(v, bool))))
    text = json.dumps(g)
    needle = f"{json.dumps(key)}: {json.dumps(g['blueprint'][key])}"
    assert needle in text
    code, err = run_genome(None, raw=text.replace(needle, f"{json.dumps(key)}: {literal}", 1))
    line = one_error(code, err)
    assert "Overflow" not in err and ("number" in line or "integer" in line), line


@settings(max_examples=30, deadline=None)
@given(HUGE_LITERALS, st.sampled_from(["potential", "bursts", "voxels"]), st.sampled_from([".json", ".toml"]))
def test_huge_and_non_finite_numbers_in_a_schedule_are_one_line(literal: str, key: str, suffix: str) -> None:
    if suffix == ".toml":
        literal = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(literal, literal)
    value = {"potential": literal, "bursts": f"[{literal}]", "voxels": f"[[{literal}, 0, 0]]"}[key]
    entry = {"area": '"iv00CC"', "voxels": "[[0, 14, 0]]", "bursts": "[1]", "potential": "5.0", key: value}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"s{suffix}"
        if suffix == ".json":
            path.write_text("[{" + ", ".join(f'"{k}": {v}' for k, v in entry.items()) + "}]")
        else:
            path.write_text("[[stimulus]]\n" + "".join(f"{k} = {v}\n" for k, v in entry.items()))
        code, err = run_cli("run", "--genome", EXAMPLES / "pong_genome.json", "--stimulus", path, "--bursts", 2,
                            "--backend", "cpu")
        one_error(code, err)
        assert "Overflow" not in err


@pytest.mark.parametrize("key, literal", [("cpu_gflops", "nan"), ("min_speedup", "inf"),
                                          ("gpu_neuron_threshold", str(2**63)), ("bursts", "1" + "0" * 400)])
def test_non_finite_and_huge_config_values_are_one_line(tmp_path: Path, key: str, literal: str) -> None:
    section = "run" if key == "bursts" else "backend"
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'[genome]\npath = "{TIMER}"\n[{section}]\n{key} = {literal}\n')
    code, err = run_cli("select", "--config", cfg, "--dry-run", "--json")
    assert key in one_error(code, err)


def test_duplicate_json_keys_are_a_warning_naming_the_key(tmp_path: Path) -> None:
    text = (GENOMES / "test_timer.json").read_text()
    g = tmp_path / "g.json"
    g.write_text(text.replace('"genome_title": ', '"genome_title": "first", "genome_title": ', 1))
    code, err = run_cli("run", "--genome", g, "--bursts", 2, "--backend", "cpu")
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("feagi-burst: warning:")]
    assert len([w for w in warnings if "'genome_title'" in w and "more than once" in w]) == 1, err


@pytest.mark.parametrize("key", ["genome.path", "run.stimulus", "run.record"])
def test_a_nul_byte_in_a_path_is_one_line(tmp_path: Path, key: str) -> None:
    section, name = key.split(".")
    paths = {"genome.path": str(TIMER), key: "bad\\u0000name" + (".jsonl" if key == "run.record" else ".json")}
    text = f'[genome]\npath = "{paths["genome.path"]}"\n'
    if section == "run":
        text += f'[run]\n{name} = "{paths[key]}"\n'
    cfg = tmp_path / "b.toml"
    cfg.write_text(text)
    code, err = run_cli("run", "--config", cfg, "--bursts", 1, "--backend", "cpu")
    assert "NUL" in one_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.toml"]


def test_api_paths_with_a_nul_byte_are_input_errors(tmp_path: Path) -> None:
    from feagi_burst.engine import Engine
    from feagi_burst.spike_record import read_spikes

    for call in (lambda: Engine.from_genome("g\x00.json"), lambda: read_spikes(tmp_path / "r\x00.npz"),
                 lambda: files.read_json("a\x00b")):
        with pytest.raises(InputError, match="NUL"):
            call()


def test_escape_sequences_in_names_never_reach_the_terminal(tmp_path: Path) -> None:
    g = copy.deepcopy(BASE["test_timer.json"])
    g["genome_title"] = "evil\x1b[2J\x1b]0;owned\x07title\r\nsecond line"
    area = area_ids(g)[-1]
    g["blueprint"][f"_____10c-{area}-cx-__name-t"] = "area\x1b[31m$red$"
    path = tmp_path / "g.json"
    path.write_text(json.dumps(g))
    code, err = run_cli("run", "--genome", path, "--bursts", 3, "--backend", "cpu")
    assert code == 0, err
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    assert "evil\\x1b[2J" in err  # shown, escaped
    stim = tmp_path / "s.json"
    stim.write_text(json.dumps([{"area": "no\x1b[2Jpe", "voxels": [[0, 0, 0]], "bursts": [1]}]))
    code, err = run_cli("run", "--genome", path, "--stimulus", stim, "--bursts", 1, "--backend", "cpu")
    line = one_error(code, err)
    assert "\x1b" not in err, line


def test_printable_keeps_text_and_escapes_controls() -> None:
    assert files.printable("µs été 中文 $x$") == "µs été 中文 $x$"
    assert files.printable("a\x1b[2Jb\nc\x00\x9b") == "a\\x1b[2Jb\\nc\\x00\\x9b"


# -- memory ------------------------------------------------------------------------------------
def test_bench_too_big_for_this_machine_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from feagi_burst import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 23 * 2**30 * 8 // 10)  # a 23 GiB machine
    code, err = run_cli("bench", "--neurons", 20_000_000, "--backend", "cpu")
    line = one_error(code, err, "GiB")
    assert "20,000,000 neurons" in line and "available" in line


@pytest.mark.parametrize("neurons, per", [(2_147_483_648, 0), (2_147_483_648, 1), (50_000_000, 100)])
def test_synthetic_brains_too_big_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, neurons: int,
                                               per: int) -> None:
    from feagi_burst import memory

    monkeypatch.setattr(memory, "available_memory", lambda: 16 * 2**30)
    cfg = tmp_path / "b.toml"
    cfg.write_text(f"[genome.synthetic]\nneurons = {neurons}\nsynapses_per_neuron = {per}\n")
    for args in (("run", "--config", cfg, "--backend", "cpu"), ("select", "--config", cfg, "--dry-run")):
        code, err = run_cli(*args)
        one_error(code, err)


def test_one_memory_estimate() -> None:
    """synthetic.py and the genome loader share feagi_burst.memory (no second BYTES_PER_NEURON)."""
    from feagi_burst import memory, synthetic

    assert not hasattr(synthetic, "BYTES_PER_NEURON")
    assert synthetic.estimate_bytes(10**6, 100) == memory.SYNTHETIC.bytes(10**6, 10**8)


@pytest.mark.parametrize("neurons, per", [(300_000, 30), (1_000_000, 0)])
def test_the_memory_estimate_covers_the_real_peak(neurons: int, per: int) -> None:
    """Measured in a fresh process: build, quantise, load on the CPU and run a few bursts."""
    import subprocess

    code = ("import resource, sys\n"
            "from feagi_burst.engine import Engine\n"
            "from feagi_burst.synthetic import synthetic_brain\n"
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"e = Engine(synthetic_brain({neurons}, {per}), backend='cpu', warn=None)\n"
            "e.run(3)\n"
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    from feagi_burst.synthetic import estimate_bytes

    assert int(p.stdout.split()[-1]) <= estimate_bytes(neurons, per)


# -- the API -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_engine() -> Any:
    from feagi_burst.engine import Engine

    return Engine.from_genome(EXAMPLES / "pong_genome.json", backend="cpu", warn=None)


BAD_IDS = st.one_of(st.just([1.7]), st.just(["3"]), st.just([math.nan]), st.just([math.inf]), st.just([-1]),
                    st.just([10**12]), st.just([2**63]), st.just("7"), st.just(None), st.just([[1, "a"]]),
                    st.just({"a": 1}), st.lists(st.floats(allow_nan=True), min_size=1, max_size=3))
BAD_BURSTS = st.one_of(st.sampled_from([0, -1, -(2**63), 1.5, "2", True, math.nan, 2**32, 2**63]))
BAD_POTENTIALS = st.sampled_from(["x", None, math.nan, math.inf, -math.inf, 1e308, True, [1, 2], {"a": 1}])


@FAST
@given(st.sampled_from(["force_fire ids", "force_fire burst", "force_fire potential", "stage ids", "stage burst",
                        "stage potentials", "stimulate burst"]), BAD_IDS, BAD_BURSTS, BAD_POTENTIALS)
def test_bad_api_calls_fail_at_the_call_and_lose_nothing(api_engine: Any, call: str, ids: Any, burst: Any,
                                                        potential: Any) -> None:
    e = api_engine
    nxt = e.submitted + 1
    e.force_fire([5], burst=nxt)
    e.stage_potential([6], 2.5, burst=nxt)
    attempts = {
        "force_fire ids": lambda: e.force_fire(ids),
        "force_fire burst": lambda: e.force_fire([1], burst=burst),
        "force_fire potential": lambda: e.force_fire([1], potential=potential),
        "stage ids": lambda: e.stage_potential(ids, 1.0),
        "stage burst": lambda: e.stage_potential([1], 1.0, burst=burst),
        "stage potentials": lambda: e.stage_potential([1], potential),
        "stimulate burst": lambda: e.stimulate("iv00CC", [[0, 14, 0]], burst=burst),
    }
    with pytest.raises(InputError):
        attempts[call]()
    r = e.process_burst()  # what was staged before the bad call is all there
    assert r.burst == nxt and 5 in r.fired.tolist()


def test_a_closed_engine_refuses_to_run() -> None:
    from feagi_burst.engine import Engine

    e = Engine.from_genome(TIMER, backend="cpu", warn=None)
    e.process_burst()
    e.close()
    e.close()  # twice is fine
    for call in (e.process_burst, lambda: e.run(3), lambda: e.force_fire([1])):
        with pytest.raises(InputError, match="closed"):
            call()


@pytest.mark.parametrize("burst", [2**32 - 1, 2**32, 2**63, 2**64 - 1])
def test_a_checkpoint_at_a_huge_burst_is_refused_with_the_number_as_it_is(tmp_path: Path, burst: int) -> None:
    ck = tmp_path / "ck.npz"
    code, err = run_cli("run", "--genome", TIMER, "--bursts", 2, "--backend", "cpu", "--checkpoint", ck)
    assert code == 0, err
    arrays, meta = checkpoint_arrays(ck)
    meta["burst"] = burst
    write_checkpoint(ck, arrays, meta)
    code, err = run_cli("run", "--genome", TIMER, "--bursts", 2, "--backend", "cpu", "--resume", ck,
                        "--record", tmp_path / "r.jsonl")
    line = one_error(code, err)
    assert "-9,223" not in err and "-1," not in line  # never printed negative
    assert not (tmp_path / "r.jsonl").exists()


# -- neighbours found after the first pass ---------------------------------------------------------
def test_genome_info_tables_print_names_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An escape sequence or rich markup in an area name reaches the table escaped, as written."""
    from rich.console import Console

    from feagi_burst.cli import genome as genome_cli  # the console `genome info` prints to is looked up there

    monkeypatch.setattr(genome_cli, "out", Console(width=200))  # wide enough that no name wraps
    doc = json.loads((EXAMPLES / "essential_genome.json").read_text())
    text = json.dumps(doc).replace('"Brain_Power"', '"Br\\u001b[31mX [red]mk[/red]"')
    (tmp_path / "g.json").write_text(text)
    with pytest.raises(SystemExit) as e:
        cli.app(["genome", "info", str(tmp_path / "g.json")])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "Br\\x1b[31mX [red]mk[/red]" in out


def test_engine_run_zero_without_stop_and_warning_format(capsys: pytest.CaptureFixture[str]) -> None:
    from feagi_burst.engine import Engine, notice
    from feagi_burst.errors import InputError

    e = Engine.synthetic(200, 2, backend="cpu", warn=None)
    with pytest.raises(InputError, match="run\\(0\\) runs until stop"):
        e.run(0)
    with pytest.raises(InputError, match="whole number of bursts"):
        e.run(-3)
    assert e.run(0, stop=lambda: e.submitted >= 4) == 4
    notice("GPU lost")
    assert capsys.readouterr().err == "feagi-burst: warning: GPU lost\n"
