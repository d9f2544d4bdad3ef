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
# assumed for genomes, whose rate is only known once they run: measured with their stimulus
# schedules, the pong genome fires 0.14% of its neurons per burst, the essential genome 0.12%
DEFAULT_FIRING_RATE = 0.0015

__all__ = ["Backend", "BackendError", "BurstInput", "BurstResult", "create_backend", "make_backend",
           "probe_adapters", "expected_firing_rate", "select_backend"]


def backend_class(name: str) -> type[Backend]:
    """The Backend subclass registered under `name` (ImportError when its package is missing)."""
    module, cls = BACKEND_CLASSES[name].split(":")
    return getattr(importlib.import_module(module), cls)


def create_backend(name: str, **options: Any) -> Backend:
    """A new backend by registered name ('cpu', 'gpu', ...)."""
    return backend_class(name)(**options)


def probe_adapters() -> list[dict[str, Any]]:
    """The GPU adapters wgpu can reach, as dicts (name, backend, adapter_type, is_software, label, driver).

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
             "label": a.label, "driver": a.description} for a in found]


def expected_firing_rate(brain: Brain) -> float:
    """The firing rate a brain is expected to run at: its drive's, else a typical FEAGI rate."""
    if brain.drive is not None and brain.neuron_count:
        return brain.drive.per_burst / brain.neuron_count
    return DEFAULT_FIRING_RATE


def select_backend(brain: Brain, cfg: BackendConfig, adapters: list[dict[str, Any]] | None = None,
                   estimate: bool = False) -> Selection:
    """What `--backend auto` chooses for `brain`: the model's constants from the config, this machine's
    calibration (measured once, on first use, when there is a GPU to decide for, or the CPU alone
    when `estimate`: the caller shows the estimates) or the defaults."""
    from feagi_burst.calibration import resolve

    adapters = probe_adapters() if adapters is None else adapters
    used = resolve(cfg, adapters, decide=not (cfg.force_cpu or cfg.force_gpu), estimate=estimate)
    # a genome is driven from outside (sensory input staged every burst); a synthetic brain by its drive
    sel = choose(brain.neuron_count, brain.synapse_count, expected_firing_rate(brain), cfg, adapters,
                 used.constants, used.source, used.gpu_error, stimulated=brain.drive is None)
    sel.constants_from = used.sources
    return sel


def make_backend(name: str, brain: Brain, cfg: BackendConfig) -> tuple[Backend, Selection | None]:
    """A backend by name ('auto' decides with feagi_burst.selection and returns the decision)."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
    selection = None
    if name == "auto":
        selection = select_backend(brain, cfg)
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
