"""The model layer end to end: areas of real genomes on three neuron models, on both backends.

Each model's own step is tested in test_models.py (and against Brian2 in test_models_brian2.py);
here the CPU and the GPU must agree bit for bit on brains that mix models, through stimulation,
forced fires, state(), checkpoints across backends, and the CLI.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import assert_same_bursts, write_checkpoint
from feagi_burst.engine import Engine, load_brain
from feagi_burst.errors import InputError
from feagi_burst.models.assign import assign_model
from test_cli import assert_one_line_error, cli

ROOT = Path(__file__).parent.parent
THREE = ROOT / "configs" / "three_models.toml"
PONG = ROOT / "examples" / "pong_genome.json"


def run(engine: Engine, bursts: int) -> list[Any]:
    out: list[Any] = []
    engine.run(bursts, on_result=out.append)
    return out


def assert_same_state(a: Any, b: Any) -> None:
    assert sorted(a.values) == sorted(b.values)
    for k in a.values:
        np.testing.assert_array_equal(a.values[k].view(np.uint8), b.values[k].view(np.uint8), err_msg=k)
    assert a.burst == b.burst


def fired_per_area(engine: Engine, results: list[Any]) -> dict[str, int]:
    ids = np.concatenate([r.fired for r in results]).astype(np.int64)
    areas, counts = np.unique(engine.brain.neurons.cortical_area[ids], return_counts=True)
    return {engine.brain.areas[a].cortical_id: int(c) for a, c in zip(areas, counts)}


def test_three_models_on_a_real_genome_cpu_equals_gpu(gpu_backend: Any) -> None:
    cpu = Engine.from_config(THREE, backend="cpu", warn=None)
    gpu = Engine.from_config(THREE, backend=gpu_backend, warn=None)
    assert [p.model.name for p in cpu.brain.populations] == ["feagi_lif", "izhikevich", "adex"]
    rc, rg = run(cpu, 200), run(gpu, 200)
    assert_same_bursts(rc, rg)
    assert_same_state(cpu.state(), gpu.state())
    per_area = fired_per_area(cpu, rc)
    # every model really fires: Izhikevich from synapses, AdEx from staged potential, LIF forced
    assert per_area["iv00_C"] > 1000 and per_area["i__pro"] > 20 and per_area["iv00CC"] == 1800


def mixed_brain() -> Any:
    brain = load_brain(PONG, warn=None)
    brain = assign_model(brain, ["iv00_C"], "izhikevich", input_gain=400.0, d=np.linspace(2, 8, 49152))
    brain = assign_model(brain, ["i__pro", "o__mot"], "adex", input_gain=8000.0)
    return assign_model(brain, ["iv00CC"], "feagi_lif", refractory_period=2)


def stimulate(engine: Engine) -> None:
    engine.add_schedule(str(ROOT / "examples" / "pong_stimulus.toml"))
    # forced fires into every model, also inside the LIF refractory block (it gets one burst longer)
    for b in (3, 4, 5, 40):
        engine.force_fire([0, 56395, 56400, 6200, 6201], burst=b)  # power, o__mot (AdEx) x2, iv00_C x2
        engine.stimulate("iv00CC", [[5, 5, 0], [6, 6, 0]], burst=b)


def test_forced_fires_and_potentials_into_every_model_cpu_equals_gpu(gpu_backend: Any) -> None:
    brain = mixed_brain()
    cpu, gpu = Engine(brain, backend="cpu", warn=None), Engine(brain, backend=gpu_backend, warn=None)
    for e in (cpu, gpu):
        stimulate(e)
    rc, rg = run(cpu, 60), run(gpu, 60)
    assert_same_bursts(rc, rg)
    assert_same_state(cpu.state(), gpu.state())
    assert 56395 in rc[2].fired and 6200 in rc[2].fired  # forced fires join the fire set of their burst


def test_checkpoint_on_gpu_resumes_on_cpu_bit_for_bit(gpu_backend: Any, tmp_path: Path) -> None:
    brain = mixed_brain()
    whole = Engine(brain, backend="cpu", warn=None)
    stimulate(whole)
    expect = run(whole, 80)
    first = Engine(brain, backend=gpu_backend, warn=None)
    stimulate(first)
    head = run(first, 37)
    first.checkpoint(tmp_path / "ck.npz")
    second = Engine(brain, backend="cpu", warn=None)
    assert second.restore(tmp_path / "ck.npz") == 37
    assert_same_bursts(expect, head + run(second, 43))
    assert_same_state(whole.state(), second.state())
    with np.load(tmp_path / "ck.npz") as z:  # state stored by name, as the models declare it
        assert {"state:izhikevich.v", "state:izhikevich.u", "state:adex.V", "state:adex.w",
                "state:feagi_lif.mp", "state:feagi_lif.cfc_count", "state:feagi_lif.blocked_until"} <= set(z.files)


def test_state_is_named_by_model_and_variable() -> None:
    e = Engine(mixed_brain(), backend="cpu", warn=None)
    st = e.state()
    assert sorted(st.values) == ["adex.V", "adex.w", "feagi_lif.blocked_until", "feagi_lif.cfc_count",
                                 "feagi_lif.mp", "izhikevich.u", "izhikevich.v"]
    assert st.mp is st.values["feagi_lif.mp"] and st["v"] is st.values["izhikevich.v"]
    iz = slice(6176, 6176 + 49152)  # iv00_C: v starts at -65, u at b*v
    assert (st.values["izhikevich.v"][iz] == np.float32(-65)).all()
    assert (st.values["izhikevich.u"][iz] == np.float32(0.2) * np.float32(-65)).all()


def test_a_checkpoint_of_another_model_assignment_or_older_format_is_refused(tmp_path: Path) -> None:
    e = Engine(mixed_brain(), backend="cpu", warn=None)
    run(e, 5)
    e.checkpoint(tmp_path / "ck.npz")
    plain = Engine(load_brain(PONG, warn=None), backend="cpu", warn=None)
    with pytest.raises(InputError, match="another genome|neuron models"):
        plain.restore(tmp_path / "ck.npz")
    # a version-1 checkpoint (mp/cfc_count/blocked_until, before neuron models) is refused by name
    old = tmp_path / "old.npz"
    meta = {"format": "feagi-burst checkpoint 1", "burst": 5, "neurons": plain.brain.neuron_count}
    write_checkpoint(old, {"mp": np.zeros(3, np.float32)}, meta)
    with pytest.raises(InputError, match="older format"):
        plain.restore(old)
    # a crafted header declaring a huge state array is refused before any data is read
    big = tmp_path / "big.npz"
    with zipfile.ZipFile(tmp_path / "ck.npz") as src, zipfile.ZipFile(big, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "state:feagi_lif.mp.npy":
                data = data.replace(f"({plain.brain.neuron_count},)".encode(), b"(10000000000,)", 1)
            dst.writestr(info, data)
    with pytest.raises(InputError, match="damaged"):
        Engine(mixed_brain(), backend="cpu", warn=None).restore(big)


@pytest.mark.parametrize("toml, fragment", [
    ('[[model]]\nareas = ["iv00_C"]\ntype = "hodgkin_huxley"\n', "unknown neuron model 'hodgkin_huxley'"),
    ('[[model]]\nareas = ["iv00_C"]\ntype = "izhikevich"\nalpha = 1.0\n', "unknown parameter 'alpha'"),
    ('[[model]]\nareas = ["iv00_C"]\ntype = "izhikevich"\na = 5.0\n', "a = 5 is out of range"),
    ('[[model]]\nareas = ["nowhere"]\ntype = "adex"\n', "unknown cortical area 'nowhere'"),
    ('[[model]]\nareas = "iv00_C"\ntype = "adex"\n', "areas must be a non-empty list"),
    ('[[model]]\nareas = ["iv00_C"]\ntype = "adex"\nn_substeps = 2.5\n', "n_substeps must be a whole number"),
])
def test_model_tables_are_checked_with_one_line_errors(tmp_path: Path, toml: str, fragment: str) -> None:
    cfg = tmp_path / "brain.toml"
    cfg.write_text(f'[genome]\npath = "{PONG}"\n[run]\nbursts = 2\n' + toml)
    assert_one_line_error(cli("run", "--config", cfg, "--backend", "cpu"), fragment)


def test_run_names_the_model_of_each_area(tmp_path: Path) -> None:
    p = cli("run", "--config", THREE, "--backend", "cpu", "--bursts", "3")
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stderr.splitlines() if ln.startswith("models:"))
    assert "izhikevich iv00_C (49,152 neurons)" in line and "adex i__pro" in line and "feagi_lif" in line


def test_a_synthetic_brain_on_izhikevich() -> None:
    from feagi_burst.config import parse_config
    from feagi_burst.engine import brain_from_config

    cfg = parse_config({"genome": {"synthetic": {"neurons": 2000, "synapses_per_neuron": 10,
                                                 "model": "izhikevich", "input_gain": 20.0}}})
    brain = brain_from_config(cfg, None)
    assert [p.model.name for p in brain.populations] == ["izhikevich"]
    assert (brain.populations[0].params["input_gain"] == np.float32(20)).all()
    with pytest.raises(InputError, match="genome.synthetic.bogus"):
        parse_config({"genome": {"synthetic": {"model": "izhikevich", "bogus": 1}}})


def test_genome_info_shows_the_model_of_each_area() -> None:
    p = cli("genome", "info", PONG, "--config", THREE, "--json")
    assert p.returncode == 0, p.stderr
    models = {a["cortical_id"]: a["model"] for a in json.loads(p.stdout)["areas"]}
    assert (models["iv00_C"], models["i__pro"], models["iv00CC"], models["___pwr"]) == \
        ("izhikevich", "adex", "feagi_lif", "feagi_lif")
    plain = json.loads(cli("genome", "info", PONG, "--json").stdout)
    assert {a["model"] for a in plain["areas"]} == {"feagi_lif"}


def test_bench_measures_a_model(tmp_path: Path) -> None:
    p = cli("bench", "--neurons", "5000", "--synapses-per-neuron", "5", "--backend", "cpu", "--bursts", "5",
            "--warmup", "1", "--model", "adex", "--param", "input_gain=10000", "--json", tmp_path / "b.json")
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "b.json").read_text())["backends"]["cpu"]["firing_rate"] == pytest.approx(0.01)
    assert_one_line_error(cli("bench", "--neurons", "100", "--model", "adex", "--param", "gain"), "KEY=NUMBER")
