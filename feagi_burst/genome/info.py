"""A JSON-ready summary of a genome and the brain built from it (`feagi-burst info`)."""
from __future__ import annotations

from typing import Any

from feagi_burst.brain import Brain
from feagi_burst.genome.expand import mapping_synapse_counts
from feagi_burst.genome.loader import Genome


def genome_info(genome: Genome, brain: Brain) -> dict[str, Any]:
    """Title, totals, areas (in the brain's neuron order), synapses per mapping rule and warnings.

    Per-rule counts are recomputed from the voxel pairs (cheap: no neuron-level arrays), so the
    Brain data model needs no extra field; they add up to `brain.synapse_count`.
    """
    return {
        "title": genome.title,
        "neurons": brain.neuron_count,
        "synapses": brain.synapse_count,
        "areas": [{"cortical_id": a.cortical_id, "name": a.name, "dimensions": list(a.dimensions),
                   "neurons_per_voxel": a.neurons_per_voxel, "neurons": a.neuron_count}
                  for a in brain.areas],
        "mappings": [{"source": m.source, "destination": m.destination, "morphology": m.morphology,
                      "synapses": m.synapses} for m in mapping_synapse_counts(genome)],
        "warnings": list(brain.warnings),
    }
