"""Populations: many brains (genomes x variants x replicas) run as one job, on this machine or on Ray.

`Population.from_config("pop.toml").run()` gives a PopulationResult (a summary row per brain);
`feagi-burst population --config pop.toml` is the same with a live table and --json/--csv files.
feagi_burst.population.spec reads pop.toml, .mutate applies variants, .runner runs a batch of brains
in one process, .ray_runner spreads batches over a Ray cluster.
"""
from __future__ import annotations

from feagi_burst.population.core import Population, PopulationResult, RayOptions
from feagi_burst.population.runner import Batch, BrainJob, BrainResult, run_batch
from feagi_burst.population.spec import Mutation, PopulationConfig, load_population_config

__all__ = ["Batch", "BrainJob", "BrainResult", "Mutation", "Population", "PopulationConfig", "PopulationResult",
           "RayOptions", "load_population_config", "run_batch"]
