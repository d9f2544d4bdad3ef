"""feagi-burst: a fast, exact burst engine for FEAGI spiking neural networks.

    from feagi_burst import Engine
    engine = Engine.from_genome("genome.json")      # or Engine.synthetic(100_000), Engine.from_config(...)
    engine.stimulate("i__inf", [[0, 0, 0]])         # forced fire at the next burst
    result = engine.process_burst()                 # fired ids, firing mp, per-phase timings
"""
from __future__ import annotations

from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.brain import Brain, CorticalArea, Drive, NeuronArray, NeuronState, SynapseArray
from feagi_burst.engine import Engine, load_brain
from feagi_burst.errors import InputError
from feagi_burst.synthetic import synthetic_brain

__version__ = "0.1.0"
__all__ = ["Backend", "BackendError", "Brain", "BurstInput", "BurstResult", "CorticalArea", "Drive", "Engine",
           "InputError", "NeuronArray", "NeuronState", "SynapseArray", "load_brain", "synthetic_brain"]
