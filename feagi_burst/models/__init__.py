"""Neuron models, one file each, and the registry that names them (as brain.toml does).

Registry order is also each model's index on the GPU (a word of its parameter rows), so it is
fixed: built-in models first, then models registered by users, in registration order.
"""
from __future__ import annotations

from feagi_burst.errors import InputError
from feagi_burst.models.base import NeuronModel, NeuronPopulation, Param, ParamTable, StateVar, StepContext, state_key
from feagi_burst.models.adex import AdEx
from feagi_burst.models.feagi_lif import FeagiLIF
from feagi_burst.models.izhikevich import Izhikevich

DEFAULT_MODEL = "feagi_lif"
# one 32-bit word each on the GPU; the fourth word of a neuron's state row is the backend's
MAX_STATE_VARS = 3
MODELS: dict[str, NeuronModel] = {}


def register_model(model: NeuronModel) -> NeuronModel:
    """Make a model available by its name (brain.toml `[[model]] type`, the API, the GPU)."""
    if not getattr(model, "name", "") or not model.name.isidentifier():
        raise ValueError(f"a model needs a name that is an identifier, got {getattr(model, 'name', None)!r}")
    if len(model.state) > MAX_STATE_VARS:
        raise ValueError(f"model {model.name}: at most {MAX_STATE_VARS} state variables (one GPU word each), "
                         f"got {len(model.state)}")
    existing = MODELS.get(model.name)
    if existing is not None and type(existing) is not type(model):
        raise ValueError(f"a different model named {model.name!r} is already registered")
    MODELS.setdefault(model.name, model)
    return MODELS[model.name]


def get_model(name: str, where: str = "model") -> NeuronModel:
    """The registered model called `name`; InputError lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise InputError(f"{where}: unknown neuron model {name!r}; known models: {', '.join(MODELS)}") from None


def model_index(model: NeuronModel) -> int:
    """The model's fixed index (its registry position)."""
    return list(MODELS).index(model.name)


register_model(FeagiLIF())
register_model(Izhikevich())
register_model(AdEx())

__all__ = ["DEFAULT_MODEL", "MODELS", "NeuronModel", "NeuronPopulation", "Param", "ParamTable", "StateVar",
           "StepContext", "get_model", "model_index", "register_model", "state_key"]
