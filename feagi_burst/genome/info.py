"""A JSON-ready summary of a genome and the brain built from it (`feagi-burst genome info`)."""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from feagi_burst.brain import Brain
from feagi_burst.genome.expand import mapping_synapse_counts
from feagi_burst.genome.ids import AreaLookup, decoded_id
from feagi_burst.genome.loader import Genome


def genome_info(genome: Genome, brain: Brain, area: str | None = None) -> dict[str, Any]:
    """Format, title, totals, areas (in the brain's neuron order), synapses per mapping rule, the
    plastic area pairs and warnings.

    `format` is "2.x" or "3.0" (what was read). Each area has its id as written (`cortical_id`),
    its `decoded_id` (the 8 bytes of a 3.0 base64 id as text; a 2.x id as is) and its `name`.
    `area` (an id as written, a decoded id, a core alias or a name) keeps only that area and the
    mappings from or to it; KeyError names the known areas. Per-rule counts are recomputed from
    the voxel pairs (cheap: no neuron-level arrays); over all areas they add up to
    `brain.synapse_count`. A rule FEAGI's rules leave without synapses says why in `dropped`.
    Each area says which neuron `model` it runs (brain.toml's [[model]] tables, applied to `brain`).
    """
    areas = list(brain.areas)
    mappings = mapping_synapse_counts(genome)
    plastic = list(genome.plasticity)
    if area is not None:
        lookup = AreaLookup([a.cortical_id for a in areas], [a.name for a in areas])
        cid = areas[lookup.index(area)].cortical_id
        areas = [a for a in areas if a.cortical_id == cid]
        mappings = [m for m in mappings if cid in (m.source, m.target)]
        plastic = [p for p in plastic if cid in (p.src_area, p.dst_area)]
    return {
        "format": genome.format,
        "version": genome.version,
        "title": genome.title,
        "neurons": brain.neuron_count,
        "synapses": brain.synapse_count,
        "areas": [{"cortical_id": a.cortical_id, "decoded_id": decoded_id(a.cortical_id), "name": a.name,
                   "dimensions": list(a.dimensions), "neurons_per_voxel": a.neurons_per_voxel,
                   "neurons": a.neuron_count, "model": brain.model_of(a.index)} for a in areas],
        "mappings": [{"source": m.source, "destination": m.destination, "morphology": m.morphology,
                      "synapses": m.synapses, "dropped": m.dropped} for m in mappings],
        "plasticity": [asdict(p) for p in plastic],
        "warnings": list(brain.warnings),
    }
