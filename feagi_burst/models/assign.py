"""Putting cortical areas on neuron models: brain.toml's [[model]] tables and the API behind them."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.models import DEFAULT_MODEL, MODELS, get_model
from feagi_burst.models.base import NeuronPopulation, merge_ranges


@dataclass
class ModelSpec:
    """One [[model]] table: these areas run this model with these parameters (scalars or per-neuron arrays)."""

    areas: list[str]
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    where: str = "[[model]]"


def parse_model_specs(tables: Any, where: str) -> list[ModelSpec]:
    """Validate brain.toml's [[model]] array of tables (types, names and ranges; areas are checked on the brain)."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise InputError(f"{where}: [[model]] must be an array of tables ([[model]] headers), e.g. "
                         '[[model]] areas = ["C76ges"] type = "izhikevich"')
    specs = []
    for i, t in enumerate(tables):
        at = f"{where}: model[{i}]"
        areas = t.get("areas")
        if not isinstance(areas, list) or not areas or not all(isinstance(a, str) for a in areas):
            raise InputError(f"{at}.areas must be a non-empty list of cortical ids or area names, got {areas!r:.60}")
        kind = t.get("type", DEFAULT_MODEL)
        if not isinstance(kind, str):
            raise InputError(f"{at}.type must be a string: one of {', '.join(MODELS)}")
        model = get_model(kind, f"{at}.type")
        params = {k: v for k, v in t.items() if k not in ("areas", "type")}
        known = {p.name for p in model.params}
        for k, v in params.items():
            if k not in known:
                raise InputError(f"{at}: unknown parameter {k!r} for model {kind}; its parameters: {', '.join(sorted(known))}")
            if isinstance(v, (list, dict)):
                raise InputError(f"{at}.{k} must be one number for every neuron of the areas, got {type(v).__name__}")
            try:
                model.param(k).check(v, f"{at}.{k}")
            except ValueError as e:
                raise InputError(str(e)) from None
        specs.append(ModelSpec(list(areas), kind, params, at))
    return specs


def assign_model(brain: Any, areas: list[str], model_name: str, where: str = "assign_model",
                 **params: Any) -> Any:
    """The brain with `areas` (cortical ids or names) on `model_name`, its parameters from `params`
    (a number, or an array with one value per neuron of the areas in id order) and the model's defaults.

    Returns a new Brain sharing the arrays of `brain`. Areas already on another model move.
    """
    from feagi_burst.brain import Brain  # noqa: PLC0415 (brain imports this package)

    model = get_model(model_name, where)
    try:
        picked = sorted({brain.area(a).index for a in areas})
    except KeyError as e:
        known = ", ".join(f"{a.cortical_id} ({a.name})" for a in brain.areas[:12])
        raise InputError(f"{where}: {e.args[0].split(' (')[0]}; areas of this brain: {known}") from None
    n = brain.neuron_count
    ranges = merge_ranges([(brain.areas[i].first_neuron, brain.areas[i].neuron_stop) for i in picked])
    ids = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges]) if ranges else np.zeros(0, np.int64)
    existing = next((p for p in brain.populations if p.model.name == model.name), None)
    values = {k: v.copy() for k, v in existing.params.items()} if existing else model.defaults(n)
    for k, v in params.items():
        try:
            p = model.param(k)
        except KeyError:
            raise InputError(f"{where}: unknown parameter {k!r} for model {model.name}; its parameters: "
                             f"{', '.join(p.name for p in model.params)}") from None
        try:
            arr = p.check(v, f"{where}.{k}")
        except ValueError as e:
            raise InputError(str(e)) from None
        if arr.ndim and arr.shape != ids.shape:
            raise InputError(f"{where}.{k}: {arr.size} values for {ids.size} neurons; give one number or one per neuron")
        values[k][ids] = arr
    pops = []
    for p in brain.populations:
        keep = tuple(a for a in p.areas if a not in picked)
        if p.model.name == model.name:
            continue
        if keep:
            rs = merge_ranges([(brain.areas[a].first_neuron, brain.areas[a].neuron_stop) for a in keep])
            pops.append(replace(p, areas=keep, ranges=rs))
    mine = tuple(sorted(set(picked) | set(existing.areas if existing else ())))
    pops.append(NeuronPopulation(model, mine, values,
                           merge_ranges([(brain.areas[a].first_neuron, brain.areas[a].neuron_stop) for a in mine])))
    order = list(MODELS)
    pops.sort(key=lambda p: order.index(p.model.name))
    # the model assignment is part of what the brain is: checkpoints of another one are refused
    h = hashlib.sha256(brain.fingerprint.encode())
    h.update(repr((model.name, picked)).encode())
    for k in sorted(values):
        h.update(k.encode())
        h.update(np.ascontiguousarray(values[k][ids]).tobytes())
    return Brain(name=brain.name, areas=brain.areas, neurons=brain.neurons, synapses=brain.synapses,
                 power_neuron=brain.power_neuron, drive=brain.drive, warnings=brain.warnings,
                 fingerprint=h.hexdigest(), populations=pops, plasticity=brain.plasticity)


def apply_model_specs(brain: Any, specs: list[ModelSpec]) -> Any:
    """The brain with every [[model]] table applied in order (a later table wins for an area)."""
    for s in specs:
        brain = assign_model(brain, s.areas, s.type, where=s.where, **s.params)
    return brain


def model_summary(brain: Any, max_areas: int = 6) -> str:
    """One line: which model each area runs, e.g. 'models: feagi_lif 14 areas (55,357 neurons); izhikevich C76ges (400)'."""
    parts = []
    for p in brain.populations:
        ids = [brain.areas[a].cortical_id for a in p.areas]
        where = ", ".join(ids) if len(ids) <= max_areas else f"{len(ids)} areas"
        parts.append(f"{p.model.name} {where} ({p.size:,} neurons)")
    return "models: " + "; ".join(parts)
