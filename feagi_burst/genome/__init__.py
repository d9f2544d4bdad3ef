"""The genome room: load a FEAGI flat genome (2.x or 3.0), expand it into a Brain, summarise it.

`Genome.plasticity` lists the plastic area pairs (`PlasticPair`) STDP runs on; `AreaLookup` finds
an area by id as written, decoded id, core alias or name.
"""
from __future__ import annotations

from feagi_burst.genome.expand import expand_genome
from feagi_burst.genome.ids import AreaLookup
from feagi_burst.genome.info import genome_info
from feagi_burst.genome.loader import Genome, load_genome
from feagi_burst.genome.plasticity import PlasticPair

__all__ = ["AreaLookup", "Genome", "PlasticPair", "expand_genome", "genome_info", "load_genome"]
