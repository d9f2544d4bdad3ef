"""Backends: one module each behind the small interface in `base`; `make_backend` picks one.

Adding a backend is one module with a `Backend` subclass plus one line in BACKEND_CLASSES.
"""
from __future__ import annotations

import importlib
from typing import Any

from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.brain import Brain
from feagi_burst.config import BackendConfig
from feagi_burst.errors import InputError
from feagi_burst.selection import Selection, choose

# name -> "module:class", imported only when that backend is used (wgpu is a heavy import)
BACKEND_CLASSES = {
    "cpu": "feagi_burst.backends.cpu:CPUBackend",
    "gpu": "feagi_burst.backends.wgpu:GPUBackend",
}
BACKENDS = ("auto", *BACKEND_CLASSES)
DEFAULT_FIRING_RATE = 0.01  # assumed for genomes, whose rate is only known once they run

__all__ = ["Backend", "BackendError", "BurstInput", "BurstResult", "create_backend", "make_backend",
           "probe_adapters", "expected_firing_rate"]


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass registered under `name` (ImportError when its package is missing)."""
    module, cls = BACKEND_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create_backend(name: str, **options: Any) -> Backend:
    """A new backend by registered name ('cpu', 'gpu', ...)."""
    return backend_class(name)(**options)


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
    try:
        cls = backend_class(name)
    except ImportError as e:
        raise InputError(f"the {name} backend needs a package that is missing ({e}); install it, "
                         "or use --backend cpu") from None
    try:
        return cls(), selection
    except BackendError as e:
        raise InputError(f"{name.upper()} backend unavailable: {e}; use --backend cpu") from None
