"""The genome room: load a FEAGI flat 2.x genome, expand it into a Brain, summarise it."""
from __future__ import annotations

from feagi_burst.genome.expand import expand_genome
from feagi_burst.genome.info import genome_info
from feagi_burst.genome.loader import Genome, load_genome

__all__ = ["Genome", "expand_genome", "genome_info", "load_genome"]
