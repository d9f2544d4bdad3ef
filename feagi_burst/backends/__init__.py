"""Backends: one module each behind the small interface in `base`; `make_backend` picks one."""
from __future__ import annotations

from typing import Any

from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.brain import Brain
from feagi_burst.config import BackendConfig
from feagi_burst.errors import InputError
from feagi_burst.selection import Selection, choose

BACKENDS = ("auto", "cpu", "gpu")
DEFAULT_FIRING_RATE = 0.01  # assumed for genomes, whose rate is only known once they run

__all__ = ["Backend", "BackendError", "BurstInput", "BurstResult", "make_backend", "probe_adapters",
           "expected_firing_rate"]


def probe_adapters() -> list[dict[str, Any]]:
    """The GPU adapters wgpu can reach, as dicts (name, backend, adapter_type, is_software, label).

    [] when wgpu is missing or the driver stack cannot be enumerated.
    """
    try:
        from feagi_burst.backends.wgpu import probe_adapters as probe
    except ImportError:
        return []
    try:
        found = probe()
    except BackendError:
        return []
    return [{"name": a.name, "backend": a.backend, "adapter_type": a.adapter_type, "is_software": a.is_software,
             "label": a.label} for a in found]


def expected_firing_rate(brain: Brain) -> float:
    """The firing rate a brain is expected to run at: its drive's, else a typical FEAGI rate."""
    if brain.drive is not None and brain.neuron_count:
        return brain.drive.per_burst / brain.neuron_count
    return DEFAULT_FIRING_RATE


def make_backend(name: str, brain: Brain, cfg: BackendConfig) -> tuple[Backend, Selection | None]:
    """A backend by name ('auto' decides with feagi_burst.selection and returns the decision)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
    selection = None
    if name == "auto":
        selection = choose(brain.neuron_count, brain.synapse_count, expected_firing_rate(brain), cfg,
                           probe_adapters())
        name = selection.backend
    if name == "cpu":
        from feagi_burst.backends.cpu import CPUBackend

        return CPUBackend(), selection
    try:
        from feagi_burst.backends.wgpu import GPUBackend
    except ImportError as e:
        raise InputError(f"the GPU backend needs the wgpu package ({e}); pip install wgpu, or use --backend cpu") from None
    try:
        return GPUBackend(), selection
    except BackendError as e:
        raise InputError(f"GPU backend unavailable: {e}; use --backend cpu") from None
