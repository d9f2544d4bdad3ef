"""Choosing the backend: explicit rules first, then a speedup model in the spirit of FEAGI's.

Per burst at firing rate r, with S synapses and N neurons:
  work      = S*r * FLOP_PER_EVENT + N*r_c * FLOP_PER_NEURON     (r_c: the candidate fraction)
  cpu_us    = cpu_overhead_us + work / cpu_gflops * 1e-3
  gpu_us    = gpu_overhead_us + bus_bytes / bus_bandwidth + work / gpu_tflops * 1e-6
  bus_bytes = N*r * 8 (fired ids and mp back to the host) + staged input
All constants live in brain.toml's [backend]; `feagi-burst bench --calibrate` fits them.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from feagi_burst.config import BackendConfig

FLOP_PER_EVENT = 4.0  # gather, quantised add, candidate marking
FLOP_PER_NEURON = 20.0  # one neuron's dynamics
BYTES_PER_SPIKE = 8.0


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

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"] = [asdict(r) for r in self.rules]
        return d


def candidate_fraction(synapses: int, neurons: int, rate: float) -> float:
    """Expected fraction of neurons receiving at least one synaptic event in a burst."""
    if neurons == 0:
        return 0.0
    k = synapses / neurons
    return min(1.0, 1.0 - (1.0 - min(rate, 1.0)) ** k + rate)


def work_flops(neurons: int, synapses: int, rate: float) -> float:
    """Operations one burst does at firing rate `rate` (the model's `work`)."""
    return synapses * rate * FLOP_PER_EVENT + neurons * candidate_fraction(synapses, neurons, rate) * FLOP_PER_NEURON


def estimate_us(neurons: int, synapses: int, rate: float, cfg: BackendConfig) -> tuple[float, float]:
    """(cpu_us, gpu_us) per burst by the model above."""
    work = work_flops(neurons, synapses, rate)
    cpu = cfg.cpu_overhead_us + work / (cfg.cpu_gflops * 1e3)
    bus = neurons * rate * BYTES_PER_SPIKE / (cfg.bus_bandwidth_gbps * 1e3)
    gpu = cfg.gpu_overhead_us + bus + work / (cfg.gpu_tflops * 1e6)
    return cpu, gpu


def choose(neurons: int, synapses: int, firing_rate: float, cfg: BackendConfig,
           adapters: list[dict[str, Any]]) -> Selection:
    """Decide cpu or gpu: force flags, size thresholds, an adapter, firing rate, then speedup."""
    cpu_us, gpu_us = estimate_us(neurons, synapses, firing_rate, cfg)
    speedup = cpu_us / gpu_us if gpu_us > 0 else float("inf")
    hardware = [a for a in adapters if not a.get("is_software")]
    software = [a for a in adapters if a.get("is_software")]
    adapter = hardware[0]["name"] if hardware else (software[0]["name"] if software else None)
    sel = Selection("cpu", "", neurons, synapses, firing_rate, adapter, cpu_us, gpu_us, speedup)
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
    big = neurons >= cfg.gpu_neuron_threshold or synapses >= cfg.gpu_synapse_threshold
    rules.append(Rule("brain size", f"{neurons:,} neurons, {synapses:,} synapses",
                      "large enough" if big else
                      f"below {cfg.gpu_neuron_threshold:,} neurons and {cfg.gpu_synapse_threshold:,} synapses"))
    if not big:
        return decide("cpu", f"the brain ({neurons:,} neurons, {synapses:,} synapses) is below both GPU "
                             "size thresholds, where the GPU's per-burst overhead outweighs its speed.")
    if not hardware:
        what = (f"only a software adapter ({software[0]['name']}), which does not count for auto" if software
                else "no GPU adapter found")
        rules.append(Rule("adapter", what, "none usable"))
        return decide("cpu", f"{what}.")
    rules.append(Rule("adapter", str(adapter), "available"))
    if firing_rate < cfg.gpu_min_firing_rate:
        rules.append(Rule("firing rate", f"{firing_rate:.4g}", f"below {cfg.gpu_min_firing_rate:.4g}"))
        return decide("cpu", f"the expected firing rate {firing_rate:.3%} is below gpu_min_firing_rate "
                             f"{cfg.gpu_min_firing_rate:.3%}: too little work per burst for the GPU.")
    rules.append(Rule("firing rate", f"{firing_rate:.4g}", "enough"))
    ok = speedup >= cfg.min_speedup
    rules.append(Rule("estimated speedup", f"{speedup:.2f}x", f"{'at least' if ok else 'below'} {cfg.min_speedup}x"))
    if ok:
        return decide("gpu", f"the GPU is estimated {speedup:.1f}x faster ({gpu_us:,.0f} vs {cpu_us:,.0f} µs "
                             f"per burst) on {adapter}.")
    return decide("cpu", f"the estimated GPU speedup {speedup:.2f}x is below min_speedup {cfg.min_speedup}x.")


RULE_NAMES = ["force flags", "brain size", "adapter", "firing rate", "estimated speedup"]
