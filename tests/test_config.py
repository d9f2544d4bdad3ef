"""brain.toml validation: every key declared once, every mistake named."""
from __future__ import annotations

from pathlib import Path

import pytest

from feagi_burst.config import default_config_text, load_config, parse_config, write_config
from feagi_burst.errors import InputError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "brain.toml"
    p.write_text(text)
    return p


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[genome]\npath = "g/genome.json"\n[run]\nstimulus = "s.toml"\n'))
    assert cfg.genome == tmp_path / "g" / "genome.json"
    assert cfg.stimulus == tmp_path / "s.toml"
    assert (cfg.bursts, cfg.seed, cfg.record) == (100, 0, None)
    b = cfg.backend
    assert (b.gpu_neuron_threshold, b.gpu_synapse_threshold, b.gpu_min_firing_rate, b.min_speedup) == \
        (0, 0, 0.0, 1.0)  # no size rule, no firing-rate floor: the speedup model decides
    assert b.cpu_fixed_us is None  # the model's constants: measured on the machine unless given
    assert (b.force_cpu, b.force_gpu) == (False, False)


def test_synthetic_section(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "[genome.synthetic]\nneurons = 1000\nfiring_rate = 0.02\n"))
    assert cfg.synthetic is not None and (cfg.synthetic.neurons, cfg.synthetic.firing_rate,
                                          cfg.synthetic.synapses_per_neuron) == (1000, 0.02, 100)


@pytest.mark.parametrize("text, fragment", [
    ("[run]\nburst = 3\n", "unknown key 'run.burst'"),
    ("[run]\nbursts = \"ten\"\n", "run.bursts must be int"),
    ("[run]\nbursts = -1\n", "run.bursts must be 0 or more"),
    ("[backend]\nforce_cpu = 1\n", "backend.force_cpu must be bool"),
    ("[backend]\nforce_cpu = true\nforce_gpu = true\n", "both true"),
    ("[backend]\nmin_speedup = 0\n", "greater than 0"),
    ("[runner]\n", "unknown section [runner]"),
    ("[genome.synthetic]\nneurons = 10\nbogus = 1\n", "genome.synthetic.bogus"),
    ("[genome]\npath = \"a.json\"\n[genome.synthetic]\nneurons = 10\n", "not both"),
    ("[run\n", "invalid TOML"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=None) as e:
        load_config(write(tmp_path, text))
    assert fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="file not found"):
        load_config("/nonexistent/brain.toml")


def test_init_content_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "b.toml"
    write_config(p, default_config_text("x.json"))
    cfg = load_config(p)
    assert cfg.genome == tmp_path / "x.json" and cfg.backend.min_speedup == 1.0
    assert cfg.backend.cpu_fixed_us is None  # init writes the rules, not constants that would override the machine's
    assert parse_config({"genome": {"path": "x.json"}}).genome is not None
