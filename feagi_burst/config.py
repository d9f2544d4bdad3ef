"""brain.toml: what to load, how long to run, and how to choose the backend.

Every key is declared once in SCHEMA with its type and default; anything else is an error that
names the key. Paths are resolved relative to the config file's folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import tomli_w

from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write, read_toml
from feagi_burst.models import get_model
from feagi_burst.models.assign import ModelSpec, parse_model_specs

@dataclass
class SyntheticSpec:
    """[genome.synthetic]: a synthetic benchmark brain (see feagi_burst.synthetic)."""

    neurons: int = 100_000
    synapses_per_neuron: int = 100
    firing_rate: float = 0.01
    seed: int = 0
    model: str = "feagi_lif"  # the neuron model of every neuron; other keys of the table are its parameters


@dataclass
class BackendConfig:
    """[backend]: how `--backend auto` chooses (see feagi_burst.selection and README "Backend selection").

    The rules: the force flags, then an optional size rule and firing-rate floor (off by default:
    0), then a usable hardware GPU adapter, then the estimated speedup against `min_speedup`
    (1.0: whichever backend the model says is faster).

    The speedup model's constants are None unless given: a constant set here (or by `feagi-burst
    bench --calibrate`) wins; the others come from this machine's calibration cache (measured
    once, on first use: feagi_burst.calibration), else from feagi_burst.selection.DEFAULT_CONSTANTS.
    """

    gpu_neuron_threshold: int = 0  # >0: brains below this and gpu_synapse_threshold stay on the CPU
    gpu_synapse_threshold: int = 0
    gpu_min_firing_rate: float = 0.0  # >0: expected firing rates below this stay on the CPU
    min_speedup: float = 1.0  # the GPU when its estimated speedup is at least this
    force_cpu: bool = False
    force_gpu: bool = False
    # the speedup model's constants (feagi_burst.selection); None: the cache's, else the defaults
    cpu_fixed_us: float | None = None  # CPU: per burst, whatever the brain
    cpu_input_us: float | None = None  # CPU: per burst with outside stimulation (a genome's sensory input)
    cpu_ns_per_event: float | None = None  # CPU: per synaptic event
    cpu_ns_per_neuron: float | None = None  # CPU: per neuron visited (the candidates, or all in a dense burst)
    cpu_ns_per_spike: float | None = None  # CPU: per neuron that fires
    cpu_slowdown_per_mneuron: float | None = None  # CPU: per-event/neuron costs grow by this per 1M neurons
    cpu_parallel_speedup: float | None = None  # CPU: brains from 50K neurons run on all cores: this much faster
    gpu_host_us: float | None = None  # GPU: the host's work per burst (encoding, submission, results)
    gpu_input_us: float | None = None  # GPU: the host's extra work per burst with outside stimulation
    gpu_fixed_us: float | None = None  # GPU: the device's time per burst, whatever the brain
    gpu_ns_per_event: float | None = None  # GPU: device time per synaptic event
    gpu_ns_per_neuron: float | None = None  # GPU: device time per neuron visited
    gpu_ns_per_spike: float | None = None  # GPU: device time per neuron that fires
    # keys of the older FLOP-rate model found in the config: accepted, ignored, and named in a warning
    legacy_keys: tuple[str, ...] = field(default=(), metadata={"schema": False})


CONSTANT_KEYS = ("cpu_fixed_us", "cpu_input_us", "cpu_ns_per_event", "cpu_ns_per_neuron", "cpu_ns_per_spike",
                 "cpu_slowdown_per_mneuron", "cpu_parallel_speedup", "gpu_host_us", "gpu_input_us", "gpu_fixed_us",
                 "gpu_ns_per_event", "gpu_ns_per_neuron", "gpu_ns_per_spike")
# Where none of these is given, nor cached, the built-in ones apply: selection.DEFAULT_CONSTANTS
# (measured, with their provenance beside them). The older model's keys, accepted and ignored:
LEGACY_KEYS = ("bus_bandwidth_gbps", "cpu_gflops", "gpu_tflops", "gpu_overhead_us", "cpu_overhead_us")


TYPES: dict[str, tuple[type, ...]] = {"int": (int,), "float": (float, int), "bool": (bool,), "str": (str,)}


def _schema_of(cls: type) -> dict[str, tuple[tuple[type, ...], Any]]:
    return {f.name: (TYPES[str(f.type).removesuffix(" | None")], f.default) for f in fields(cls)
            if f.metadata.get("schema", True)}


# section -> key -> (types, default); None as default: optional, absent unless given.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "genome": {"path": ((str,), None), "honour_snooze_i": ((bool,), False)},
    "genome.synthetic": _schema_of(SyntheticSpec),
    "run": {"bursts": ((int,), 100), "seed": ((int,), 0), "stimulus": ((str,), None), "record": ((str,), None)},
    "backend": _schema_of(BackendConfig),
}
POSITIVE = {"min_speedup", "neurons", "cpu_parallel_speedup"}
NON_NEGATIVE = {"gpu_neuron_threshold", "gpu_synapse_threshold", "gpu_min_firing_rate", "bursts",
                "synapses_per_neuron", "seed", *CONSTANT_KEYS}


@dataclass
class Config:
    """A validated brain.toml."""

    path: Path | None = None
    genome: Path | None = None
    honour_snooze_i: bool = False
    synthetic: SyntheticSpec | None = None
    bursts: int = 100
    seed: int = 0
    stimulus: Path | None = None
    record: Path | None = None
    backend: BackendConfig = field(default_factory=BackendConfig)
    models: list[ModelSpec] = field(default_factory=list)  # [[model]] tables, in order
    synthetic_params: dict[str, Any] = field(default_factory=dict)  # [genome.synthetic] model parameters
    raw: dict[str, Any] = field(default_factory=dict)


def _check(section: str, table: Any, where: str, extra: set[str] = frozenset()) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise InputError(f"{where}: [{section}] must be a table")
    schema = SCHEMA[section]
    out = {}
    for key, value in table.items():
        full = f"{section}.{key}"
        if (section == "genome" and key == "synthetic") or key in extra:
            continue
        if key not in schema:
            raise InputError(f"{where}: unknown key {full!r}; known keys in [{section}]: {', '.join(schema)}")
        types, _ = schema[key]
        if isinstance(value, bool) != (bool in types) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise InputError(f"{where}: {full} must be {want}, got {type(value).__name__} {value!r:.40}")
        if key in POSITIVE and value <= 0:
            raise InputError(f"{where}: {full} must be greater than 0, got {value}")
        if key in NON_NEGATIVE and value < 0:
            raise InputError(f"{where}: {full} must be 0 or more, got {value}")
        out[key] = value
    return out


def resolve_path(base: Path, value: str) -> Path:
    """A path from a config, relative to the config's folder ('../out' stays readable, not resolved)."""
    return Path(os.path.normpath(base / Path(value).expanduser()))


def parse_config(data: dict[str, Any], path: Path | None = None) -> Config:
    """Validate a parsed brain.toml; relative paths are taken from `path`'s folder."""
    where = str(path) if path else "config"
    base = path.parent if path else Path.cwd()
    unknown = set(data) - {"genome", "run", "backend", "model"}
    if unknown:
        raise InputError(f"{where}: unknown section [{sorted(unknown)[0]}]; known: [genome], [run], [backend], "
                         "[[model]]")
    cfg = Config(path=path, raw=data)
    genome = data.get("genome", {})
    g = _check("genome", genome, where)
    if "path" in g:
        cfg.genome = resolve_path(base, g["path"])
    cfg.honour_snooze_i = g.get("honour_snooze_i", False)
    if isinstance(genome, dict) and "synthetic" in genome:
        table = genome["synthetic"]
        model_keys = set(table) - set(SCHEMA["genome.synthetic"]) if isinstance(table, dict) else set()
        cfg.synthetic = SyntheticSpec(**_check("genome.synthetic", table, where, model_keys))
        if not 0 <= cfg.synthetic.firing_rate <= 1:
            raise InputError(f"{where}: genome.synthetic.firing_rate must be between 0 and 1")
        if cfg.synthetic.model != "feagi_lif" or model_keys:
            model = get_model(cfg.synthetic.model, f"{where}: genome.synthetic.model")
            for k in sorted(model_keys):
                if k not in {p.name for p in model.params}:
                    raise InputError(f"{where}: unknown key 'genome.synthetic.{k}'; known keys: "
                                     f"{', '.join(SCHEMA['genome.synthetic'])} and the parameters of model "
                                     f"{model.name}: {', '.join(p.name for p in model.params)}")
            spec = parse_model_specs([{"areas": ["synth"], "type": model.name,
                                       **{k: table[k] for k in model_keys}}], f"{where}: genome.synthetic")[0]
            cfg.synthetic_params = spec.params
    if "model" in data:
        cfg.models = parse_model_specs(data["model"], where)
    if cfg.genome and cfg.synthetic:
        raise InputError(f"{where}: give either genome.path or [genome.synthetic], not both")
    r = _check("run", data.get("run", {}), where)
    cfg.bursts, cfg.seed = r.get("bursts", 100), r.get("seed", 0)
    cfg.stimulus = resolve_path(base, r["stimulus"]) if "stimulus" in r else None
    cfg.record = resolve_path(base, r["record"]) if "record" in r else None
    backend = data.get("backend", {})
    legacy = tuple(k for k in LEGACY_KEYS if isinstance(backend, dict) and k in backend)
    cfg.backend = BackendConfig(**_check("backend", backend, where, set(legacy)), legacy_keys=legacy)
    if cfg.backend.force_cpu and cfg.backend.force_gpu:
        raise InputError(f"{where}: backend.force_cpu and backend.force_gpu are both true; set at most one")
    return cfg


def load_config(path: str | Path) -> Config:
    """Read and validate a brain.toml."""
    p = Path(path)
    return parse_config(read_toml(p), p)


def default_config_text(genome: str = "genome.json") -> dict[str, Any]:
    """The content `feagi-burst init` writes."""
    return {
        "genome": {"path": genome},
        "run": {"bursts": 100, "seed": 0},
        # the rules only: the model's constants are measured on each machine (a constant written
        # here would override that measurement)
        "backend": {k: d for k, (_, d) in SCHEMA["backend"].items() if k not in CONSTANT_KEYS},
    }


def write_config(path: str | Path, data: dict[str, Any]) -> None:
    """Write a brain.toml atomically."""
    with atomic_write(path, "wb") as f:
        tomli_w.dump(data, f)
