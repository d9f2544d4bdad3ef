"""Genome -> Brain: neurons and synapses as flat arrays (SPEC.md section 3).

Neurons: areas in genome order (or `area_order` first), each area's neurons contiguous and ordered
`for x, for y, for z, for k`. Core areas FEAGI 2.6.10 adds when missing (death, power, fatigue, pain,
pleasure, fear, hope) are appended with one neuron each.

Synapses: for each source area and each of its rules, the morphology gives voxel pairs; every
neuron of the source voxel sends to the LAST neuron of the destination voxel. Everything is numpy
over whole rules; Python loops run over areas and rules only.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from feagi_burst.brain import COORD_DTYPE, Brain, CorticalArea, neuron_array, sort_synapses
from feagi_burst.errors import InputError
from feagi_burst.genome.loader import (BYTES_PER_NEURON, BYTES_PER_SYNAPSE, CORE_ALIASES, CORE_DEFAULT_IDS,
                                       CORE_KINDS, CORE_NAMES, AreaGene, Genome, MappingRule,
                                       available_memory)
from feagi_burst.genome.morphology import dedupe_pairs, morphology_pairs, pair_upper_bound, voxel_count

MAX_WEIGHT = 255


@dataclass(frozen=True)
class MappingCount:
    """Synapses one mapping rule created (after the duplicate rules)."""

    source: str
    destination: str
    morphology: str
    rule_index: int
    synapses: int


def rule_weight(multiplier: float) -> tuple[int, bool]:
    """(weight, inhibitory) of a rule's psc multiplier.

    A whole multiplier gives |m| clamped to 255 (2.0 counts as whole); a fractional one gives 1, as
    FEAGI reads the multiplier as an integer and falls back to 1. Negative means inhibitory. 0 gives
    weight 0: the synapses exist (they count in the source's fan-out) but carry no current.
    """
    m = float(multiplier)
    weight = min(int(abs(m)), MAX_WEIGHT) if m.is_integer() else 1
    return weight, m < 0


def _core_area(kind: str) -> AreaGene:
    """The one-neuron core area FEAGI adds when a genome lacks it (threshold 1, leak 0.1, refractory 5)."""
    return AreaGene(cortical_id=CORE_DEFAULT_IDS[kind], name=CORE_NAMES[kind], group="CORE", threshold=1.0,
                    leak=0.1, refractory_period=5, psp_uniform=(kind == "power"), core=kind, auto_added=True)


def all_areas(genome: Genome) -> list[AreaGene]:
    """The genome's areas followed by the core areas it lacks, in FEAGI's core order."""
    present = {a.core for a in genome.areas if a.core}
    return list(genome.areas) + [_core_area(k) for k in CORE_KINDS if k not in present]


def _resolve(areas: Sequence[AreaGene], cortical_id: str) -> AreaGene | None:
    """The area an id names; a core alias (`_power`, `___pwr`, ...) names that core area."""
    for a in areas:
        if a.cortical_id == cortical_id:
            return a
    kind = CORE_ALIASES.get(cortical_id)
    if kind is not None:
        for a in areas:
            if a.core == kind:
                return a
    return None


def _ordered(genome: Genome, areas: list[AreaGene], area_order: Sequence[str] | None) -> list[AreaGene]:
    if not area_order:
        return areas
    first: list[AreaGene] = []
    for cid in area_order:
        a = _resolve(areas, cid)
        if a is None:
            raise InputError(f"{genome.path}: area_order names {cid!r}, which is not an area of the genome; "
                             "use cortical ids as written in the genome")
        if any(a is b for b in first):
            raise InputError(f"{genome.path}: area_order names area {cid!r} twice; list each area once")
        first.append(a)
    return first + [a for a in areas if not any(a is b for b in first)]


def _rule_pairs(genome: Genome, areas: Sequence[AreaGene]
                ) -> Iterator[tuple[AreaGene, AreaGene, MappingRule, np.ndarray]]:
    """Every rule with its final voxel pairs, duplicate rules applied (SPEC.md section 3).

    vectors (and block_to_block): a pair this rule or an earlier rule of the same source ->
    destination already made is skipped. patterns and projector: each pair once per rule, but a pair
    an earlier rule made is made again (FEAGI's spikes show the summed input).
    """
    for src in areas:
        made: dict[str, list[np.ndarray]] = {}
        for rule in src.mappings:
            dst = _resolve(areas, rule.destination)
            assert dst is not None  # the loader checked every destination
            morph = genome.morphologies.get(rule.morphology_id)
            n_dst = voxel_count(dst.dimensions)
            if morph is None:  # an unusable pre-2.0 definition: no synapses (the loader warned)
                pairs = np.zeros((0, 2), np.int64)
            else:
                pairs = morphology_pairs(morph, src.dimensions, dst.dimensions, rule.scalar)
                earlier = made.get(dst.cortical_id, [])
                skip_existing = morph.kind == "vectors" or morph.morphology_id == "block_to_block"
                existing = np.concatenate(earlier) if (skip_existing and earlier) else None
                pairs = dedupe_pairs(pairs, n_dst, existing)
                if pairs.shape[0]:
                    made.setdefault(dst.cortical_id, []).append(pairs[:, 0] * n_dst + pairs[:, 1])
            yield src, dst, rule, pairs


def mapping_synapse_counts(genome: Genome) -> list[MappingCount]:
    """Synapses per mapping rule, in genome order (recomputes voxel pairs only: no neuron arrays)."""
    areas = all_areas(genome)
    return [MappingCount(src.cortical_id, rule.destination, rule.morphology_id, rule.index,
                         int(pairs.shape[0]) * src.neurons_per_voxel)
            for src, _dst, rule, pairs in _rule_pairs(genome, areas)]


def estimate_bytes(genome: Genome) -> tuple[int, int, int]:
    """(neurons, upper bound on synapses, bytes) of the brain, computed without building it."""
    areas = all_areas(genome)
    neurons = sum(a.neuron_count for a in areas)
    synapses = 0
    for src in areas:
        for rule in src.mappings:
            dst = _resolve(areas, rule.destination)
            morph = genome.morphologies.get(rule.morphology_id)
            if dst is not None and morph is not None:
                synapses += pair_upper_bound(morph, src.dimensions, dst.dimensions) * src.neurons_per_voxel
    # Expansion briefly holds ~3x the final synapse arrays (pairs, ids, sorted copy).
    return neurons, synapses, neurons * BYTES_PER_NEURON + synapses * BYTES_PER_SYNAPSE * 3


def expand_genome(genome: Genome, area_order: Sequence[str] | None = None, honour_snooze_i: bool = False,
                  memory_limit: int | None = None) -> Brain:
    """Build the Brain a genome describes.

    area_order: cortical ids whose areas come first (in that order), the rest following in genome
    order; tests use it to reproduce FEAGI's neuron ids. honour_snooze_i: use `nx-snooze-i` where
    `nx-snooze-f` is absent (FEAGI does not). memory_limit: bytes the brain may take (default 80% of
    available memory); a larger brain is refused before anything is allocated.
    """
    neurons_total, syn_bound, need = estimate_bytes(genome)
    limit = available_memory() if memory_limit is None else memory_limit
    if need > limit:
        raise InputError(f"{genome.path}: the brain would have {neurons_total:,} neurons and up to {syn_bound:,} "
                         f"synapses, about {need / 2**30:.2f} GiB, more than the {limit / 2**30:.2f} GiB available; "
                         "make areas or mappings smaller, or use a machine with more memory")
    areas = _ordered(genome, all_areas(genome), area_order)

    # --- neurons ---
    na = neuron_array(neurons_total)
    cortical: list[CorticalArea] = []
    first = 0
    for index, a in enumerate(areas):
        n = a.neuron_count
        sl = slice(first, first + n)
        x, y, z = np.indices(a.dimensions, dtype=np.int64).reshape(3, -1)
        x, y, z = (np.repeat(c, a.neurons_per_voxel) for c in (x, y, z))  # k innermost
        ix, iy, iz = a.threshold_increment
        na.threshold[sl] = a.threshold + x * ix + y * iy + z * iz  # f64 sum, one rounding to f32
        na.threshold_limit[sl] = a.threshold_limit
        na.leak[sl] = a.leak
        na.refractory_period[sl] = a.refractory_period
        na.excitability[sl] = a.excitability
        na.cfc_limit[sl] = a.cfc_limit
        na.snooze[sl] = a.effective_snooze(honour_snooze_i)
        na.mp_accumulate[sl] = a.mp_accumulate
        na.cortical_area[sl] = index
        na.x[sl], na.y[sl], na.z[sl] = (c.astype(COORD_DTYPE) for c in (x, y, z))
        cortical.append(CorticalArea(index=index, cortical_id=a.cortical_id, name=a.name,
                                     dimensions=a.dimensions, neurons_per_voxel=a.neurons_per_voxel,
                                     first_neuron=first, psp=a.psp, psp_uniform=a.psp_uniform,
                                     mp_driven_psp=a.mp_driven_psp))
        first += n
    first_of = {id(a): c.first_neuron for a, c in zip(areas, cortical)}

    # --- synapses ---
    warnings = list(genome.warnings)
    src_parts: list[np.ndarray] = []
    dst_parts: list[np.ndarray] = []
    w_parts: list[np.ndarray] = []
    inh_parts: list[np.ndarray] = []
    zero_rules = 0
    for src, dst, rule, pairs in _rule_pairs(genome, areas):
        if pairs.shape[0] == 0:
            continue
        k_src, k_dst = src.neurons_per_voxel, dst.neurons_per_voxel
        # every neuron of the source voxel sends; the destination voxel's last neuron receives
        s = (first_of[id(src)] + pairs[:, 0:1] * k_src + np.arange(k_src, dtype=np.int64)).ravel()
        d = np.repeat(first_of[id(dst)] + pairs[:, 1] * k_dst + (k_dst - 1), k_src)
        weight, inhibitory = rule_weight(rule.multiplier)
        zero_rules += weight == 0
        src_parts.append(s)
        dst_parts.append(d)
        w_parts.append(np.full(s.shape[0], weight, np.uint8))
        inh_parts.append(np.full(s.shape[0], inhibitory, bool))
    if zero_rules:
        warnings.append(f"{zero_rules} mapping rule(s) have psc multiplier 0: their synapses carry no current")

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)

    synapses = sort_synapses(cat(src_parts, np.int64), cat(dst_parts, np.int64),
                             cat(w_parts, np.uint8), cat(inh_parts, bool))
    power = next((c for a, c in zip(areas, cortical) if a.core == "power"), None)
    return Brain(name=genome.title, areas=cortical, neurons=na, synapses=synapses,
                 power_neuron=None if power is None else power.first_neuron,
                 warnings=warnings, fingerprint=genome.fingerprint)


__all__ = ["MappingCount", "all_areas", "estimate_bytes", "expand_genome", "mapping_synapse_counts",
           "rule_weight"]
