"""Choosing the backend: explicit rules first, then a speedup model measured on the machine.

Per burst, with N neurons, S synapses and an expected firing rate r:
  F      = N * r                                spikes (neurons that fire)
  E      = S * r                                synaptic events
  C      = N * candidate_fraction(S, N, r)      fire candidates (neurons that get input, or fire)
  V      = N when the burst is dense, else C    neurons visited (each backend's own rule, below)
  cpu_us = cpu_fixed_us [+ cpu_input_us]
           + (E * cpu_ns_per_event + V * cpu_ns_per_neuron + F * cpu_ns_per_spike)
             * (1 + cpu_slowdown_per_mneuron * N / 1e6)
             [/ cpu_parallel_speedup from CPU_PARALLEL_FROM neurons, where the CPU backend uses every core]
  device = gpu_fixed_us + E * gpu_ns_per_event + V * gpu_ns_per_neuron + F * gpu_ns_per_spike
  gpu_us = max(gpu_host_us [+ gpu_input_us], device)
The bracketed terms count for a brain stimulated from outside every burst (a genome with its
sensory input), not for a synthetic brain's built-in drive. The GPU runs pipelined (`run`,
`bench`): the host encodes and submits the next bursts while the device runs this one, so a burst
takes the longer of the two, not their sum; small brains are bound by the host. On the CPU the
cost of an event or a neuron grows with the brain, whose state outgrows the caches (the slowdown
term), and from CPU_PARALLEL_FROM neurons it is shared by the cores (by as much as they give on
this machine: on a busy one, threads can cost more than they save). Fixed per-burst costs
dominate small brains on both backends, which is why "small brains belong on the CPU" is no
rule: on an H200 machine the GPU runs the pong genome faster.

The constants come from, in order: the config's [backend] (any given there), this machine's
calibration cache (feagi_burst.calibration measures it once, on first use), DEFAULT_CONSTANTS.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from feagi_burst.config import CONSTANT_KEYS, BackendConfig

# when a burst visits every neuron instead of a candidate list (mirrors the backends' own rules;
# tests/test_selection.py checks they agree): the CPU when events * CPU_DENSE_EVENTS >= neurons
# (backends/cpu.py DENSE_EVENTS), the GPU when events exceed GPU_FULL_FRACTION of the neurons
# (GPUBackend(full_fraction=...))
CPU_DENSE_EVENTS = 4
GPU_FULL_FRACTION = 0.125
CPU_PARALLEL_FROM = 50_000  # backends/cpu.py PARALLEL_FROM: below it a burst runs on one thread


@dataclass(frozen=True)
class Constants:
    """The speedup model's constants (µs per burst; ns per event, neuron or spike; see the module's text)."""

    cpu_fixed_us: float
    cpu_input_us: float
    cpu_ns_per_event: float
    cpu_ns_per_neuron: float
    cpu_ns_per_spike: float
    cpu_slowdown_per_mneuron: float
    cpu_parallel_speedup: float
    gpu_host_us: float
    gpu_input_us: float
    gpu_fixed_us: float
    gpu_ns_per_event: float
    gpu_ns_per_neuron: float
    gpu_ns_per_spike: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


assert tuple(f.name for f in fields(Constants)) == CONSTANT_KEYS

# The built-in constants: what the model uses with FEAGI_BURST_NO_CALIBRATION=1, and on a machine
# without a usable GPU that has no cache yet (there the CPU is chosen whatever they say, and they
# only size the estimate). Measured, not guessed.
DEFAULT_CONSTANTS = Constants(
    # the 2-core development machine (AMD EPYC, a shared VM), numba CPU backend, quiet: `bench
    # --calibrate` (the first-use measurement at 1 s per brain) three times, fitted to each brain's
    # median time: docs/bench/calibration-dev-cpu.json (the previous session's, on busy cores:
    # calibration-dev-cpu-session3.json, whose constants estimated 1M at 2x what it now takes)
    cpu_fixed_us=11.01,
    cpu_input_us=86.59,
    cpu_ns_per_event=0.770,
    cpu_ns_per_neuron=3.798,
    cpu_ns_per_spike=62.28,
    cpu_slowdown_per_mneuron=0.646,
    cpu_parallel_speedup=1.262,
    # an H200 (Vulkan): the device's share from GPU timestamps per phase, docs/bench/h200-lif-after-1.json
    # at 1M neurons / 100M synapses / 1% (92 µs: input 1.9, propagation 48.4, dynamics 29.8, output 11.7)
    # with each phase's fixed part from docs/bench/h100-calibrate.json (50K-1M neurons: 15.3 µs of
    # propagation, 9.3 of dynamics, 11.2 of output do not grow with the brain); the host's share from
    # the pong genome with its stimulus, 41 µs per pipelined burst on that H200 (issue 12)
    gpu_host_us=38.0,
    gpu_input_us=3.0,
    gpu_fixed_us=37.7,
    gpu_ns_per_event=0.033,
    gpu_ns_per_neuron=0.021,
    gpu_ns_per_spike=0.0,
)


def constants_of(cfg: BackendConfig, base: Constants | dict[str, float] | None = None) -> Constants:
    """The constants in use: each one the config gives, the others from `base` (default: the built-in)."""
    fallback = base.as_dict() if isinstance(base, Constants) else dict(base or DEFAULT_CONSTANTS.as_dict())
    return Constants(**{k: float(getattr(cfg, k)) if getattr(cfg, k) is not None
                        else float(fallback.get(k, getattr(DEFAULT_CONSTANTS, k))) for k in CONSTANT_KEYS})


@dataclass
class Rule:
    """One step of the decision: what was checked, its value, and what it said."""

    name: str
    value: str
    verdict: str
    decided: bool = False


@dataclass
class Selection:
    """The backend chosen for a brain, and why."""

    backend: str
    reason: str
    neurons: int
    synapses: int
    firing_rate: float
    adapter: str | None
    estimated_cpu_us: float
    estimated_gpu_us: float
    estimated_speedup: float
    rules: list[Rule] = field(default_factory=list)
    constants: dict[str, float] = field(default_factory=dict)
    constants_source: str = "defaults"  # one line: where the constants came from (config, cache, defaults)
    constants_from: dict[str, str] = field(default_factory=dict)  # each constant: "config", "cache" or "defaults"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"] = [asdict(r) for r in self.rules]
        return d


def candidate_fraction(synapses: int, neurons: int, rate: float) -> float:
    """Expected fraction of neurons receiving at least one synaptic event in a burst (or firing)."""
    if neurons == 0:
        return 0.0
    k = synapses / neurons
    return min(1.0, 1.0 - (1.0 - min(rate, 1.0)) ** k + rate)


@dataclass(frozen=True)
class Work:
    """What one burst does: neurons (N), synaptic events (E), fire candidates (C), spikes (F)."""

    neurons: float
    events: float
    candidates: float
    spikes: float


def burst_work(neurons: int, synapses: int, rate: float) -> Work:
    """The model's N, E, C and F for one burst at firing rate `rate`."""
    return Work(neurons, synapses * rate, neurons * candidate_fraction(synapses, neurons, rate), neurons * rate)


def cpu_us(w: Work, c: Constants, stimulated: bool = False) -> float:
    """The CPU's µs per burst (see the module's text)."""
    visited = w.neurons if w.events * CPU_DENSE_EVENTS >= w.neurons else w.candidates
    scale = (1.0 + c.cpu_slowdown_per_mneuron * w.neurons * 1e-6) * 1e-3
    if w.neurons >= CPU_PARALLEL_FROM and c.cpu_parallel_speedup > 0:
        scale /= c.cpu_parallel_speedup
    work = (w.events * c.cpu_ns_per_event + visited * c.cpu_ns_per_neuron + w.spikes * c.cpu_ns_per_spike) * scale
    return c.cpu_fixed_us + (c.cpu_input_us if stimulated else 0.0) + work


def gpu_device_us(w: Work, c: Constants) -> float:
    """The GPU device's own µs per burst."""
    visited = w.neurons if w.events > GPU_FULL_FRACTION * w.neurons else w.candidates
    return c.gpu_fixed_us + (w.events * c.gpu_ns_per_event + visited * c.gpu_ns_per_neuron
                             + w.spikes * c.gpu_ns_per_spike) * 1e-3


def gpu_us(w: Work, c: Constants, stimulated: bool = False) -> float:
    """µs per pipelined GPU burst: the longer of the host's work and the device's."""
    return max(c.gpu_host_us + (c.gpu_input_us if stimulated else 0.0), gpu_device_us(w, c))


def estimate_us(neurons: int, synapses: int, rate: float, constants: Constants | BackendConfig,
                stimulated: bool = False) -> tuple[float, float]:
    """(cpu_us, gpu_us) per burst by the model above (a BackendConfig: its constants over the defaults)."""
    c = constants if isinstance(constants, Constants) else constants_of(constants)
    w = burst_work(neurons, synapses, rate)
    return cpu_us(w, c, stimulated), gpu_us(w, c, stimulated)


def choose(neurons: int, synapses: int, firing_rate: float, cfg: BackendConfig, adapters: list[dict[str, Any]],
           constants: Constants | None = None, source: str = "defaults", gpu_error: str | None = None,
           stimulated: bool = False) -> Selection:
    """Decide cpu or gpu: force flags, the optional size rule, a usable adapter, the optional firing-rate
    floor, then the estimated speedup. `constants`: the model's (default: the config's over the
    built-in ones), `source` says where they came from; `gpu_error`: why the GPU could not be measured;
    `stimulated`: the brain gets outside input every burst (a genome), not a synthetic drive."""
    c = constants if constants is not None else constants_of(cfg)
    cpu, gpu = estimate_us(neurons, synapses, firing_rate, c, stimulated)
    speedup = cpu / gpu if gpu > 0 else float("inf")
    hardware = [a for a in adapters if not a.get("is_software")]
    software = [a for a in adapters if a.get("is_software")]
    adapter = hardware[0]["name"] if hardware else (software[0]["name"] if software else None)
    sel = Selection("cpu", "", neurons, synapses, firing_rate, adapter, cpu, gpu, speedup,
                    constants=c.as_dict(), constants_source=source)
    rules = sel.rules

    def decide(backend: str, reason: str) -> Selection:
        rules[-1].decided = True
        sel.backend, sel.reason = backend, reason
        for later in RULE_NAMES[len(rules):]:
            rules.append(Rule(later, "-", "not reached"))
        return sel

    if cfg.force_cpu:
        rules.append(Rule("force flags", "force_cpu", "CPU forced"))
        return decide("cpu", "backend.force_cpu is set in the config.")
    if cfg.force_gpu:
        rules.append(Rule("force flags", "force_gpu", "GPU forced"))
        return decide("gpu", "backend.force_gpu is set in the config.")
    rules.append(Rule("force flags", "none", "pass"))
    size = f"{neurons:,} neurons, {synapses:,} synapses"
    if cfg.gpu_neuron_threshold or cfg.gpu_synapse_threshold:
        small = neurons < cfg.gpu_neuron_threshold and synapses < cfg.gpu_synapse_threshold
        rules.append(Rule("brain size", size, f"below {cfg.gpu_neuron_threshold:,} neurons and "
                          f"{cfg.gpu_synapse_threshold:,} synapses" if small else "large enough"))
        if small:
            return decide("cpu", f"the brain ({size}) is below both size thresholds of the config "
                                 "(gpu_neuron_threshold, gpu_synapse_threshold).")
    else:
        rules.append(Rule("brain size", size, "no size rule (thresholds 0)"))
    if not hardware:
        what = (f"no usable hardware GPU adapter: {software[0]['name']} is a software adapter, never chosen "
                "automatically" if software else "no GPU adapter found")
        rules.append(Rule("adapter", software[0]["name"] if software else "none", "none usable"))
        return decide("cpu", f"{what}.")
    if gpu_error:
        rules.append(Rule("adapter", str(adapter), "failed its calibration"))
        return decide("cpu", f"the GPU ({adapter}) failed to run the calibration brains: {gpu_error}")
    rules.append(Rule("adapter", str(adapter), "available"))
    if firing_rate < cfg.gpu_min_firing_rate:
        rules.append(Rule("firing rate", f"{firing_rate:.4g}", f"below {cfg.gpu_min_firing_rate:.4g}"))
        return decide("cpu", f"the expected firing rate {firing_rate:.3%} is below gpu_min_firing_rate "
                             f"{cfg.gpu_min_firing_rate:.3%} set in the config.")
    rules.append(Rule("firing rate", f"{firing_rate:.4g}", "no floor" if not cfg.gpu_min_firing_rate else "enough"))
    ok = speedup >= cfg.min_speedup
    rules.append(Rule("estimated speedup", f"{speedup:.2f}x", f"{'at least' if ok else 'below'} {cfg.min_speedup:g}x"))
    if ok:
        return decide("gpu", f"the GPU is estimated {speedup:.1f}x faster ({gpu:,.0f} vs {cpu:,.0f} µs "
                             f"per burst) on {adapter}.")
    if speedup < 1:
        return decide("cpu", f"the CPU is estimated faster ({cpu:,.0f} vs {gpu:,.0f} µs per burst on the GPU, "
                             f"{adapter}).")
    return decide("cpu", f"the GPU's estimated speedup {speedup:.2f}x ({gpu:,.0f} vs {cpu:,.0f} µs per burst) is "
                         f"below min_speedup {cfg.min_speedup:g}x.")


RULE_NAMES = ["force flags", "brain size", "adapter", "firing rate", "estimated speedup"]
