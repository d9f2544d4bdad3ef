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
from typing import Any

import numpy as np

from feagi_burst.brain import COORD_DTYPE, Brain, CorticalArea, SynapseArray, neuron_array
from feagi_burst.errors import InputError
from feagi_burst.genome.ids import AreaLookup, parse_cortical_id
from feagi_burst.genome.loader import CORE_DEFAULT_IDS, CORE_KINDS, CORE_NAMES, AreaGene, Genome, MappingRule
from feagi_burst.memory import GENOME, available_memory
from feagi_burst.genome.morphology import (dedupe_pairs, morphology_pairs, pair_upper_bound, unique_pairs,
                                           voxel_count)

@dataclass(frozen=True)
class MappingCount:
    """Synapses one mapping rule created (after the duplicate rules); `dropped` says why a rule
    made none by FEAGI's rules ("" otherwise): see MappingRule.dropped."""

    source: str
    destination: str
    morphology: str
    rule_index: int
    synapses: int
    dropped: str = ""
    target: str = ""  # cortical id of the destination area (a core alias resolved)


def rule_weight(multiplier: float) -> tuple[float, bool]:
    """(weight, inhibitory) of a rule's psc multiplier: |m| as f32, negative means inhibitory.

    No rounding and no clamp (FEAGI 2.6.10, feagi-reference/stdp/fracw: 0.5, 0.3, 1.7 and 300 are
    used as is). 0 gives weight 0: the synapses exist (they count in the source's fan-out) but
    carry no current.
    """
    m = float(multiplier)
    return float(np.float32(abs(m))), m < 0


def _core_area(kind: str, cortical_id: str) -> AreaGene:
    """The one-neuron core area FEAGI adds when a genome lacks it (threshold 1, leak 0.1, refractory 5)."""
    info = parse_cortical_id(cortical_id)
    return AreaGene(cortical_id=cortical_id, name=CORE_NAMES[kind], group="CORE", threshold=1.0,
                    leak=0.1, refractory_period=5, psp_uniform=(kind == "power"), core=kind, auto_added=True,
                    decoded_id=info.decoded if info else cortical_id, sort_key=info.sort_key if info else "")


def all_areas(genome: Genome) -> list[AreaGene]:
    """The genome's areas followed by the core areas it lacks, in FEAGI's core order."""
    present = {a.core for a in genome.areas if a.core}
    return list(genome.areas) + [_core_area(k, genome.core_ids.get(k, CORE_DEFAULT_IDS[k]))
                                 for k in CORE_KINDS if k not in present]


def _ordered(genome: Genome, areas: list[AreaGene], area_order: Sequence[str] | None) -> list[AreaGene]:
    if not area_order:
        return areas
    lookup = AreaLookup([a.cortical_id for a in areas], [a.name for a in areas])
    first: list[int] = []
    seen: set[int] = set()
    for cid in area_order:
        i = lookup.get(cid)
        if i is None:
            raise InputError(f"{genome.path}: area_order names {cid!r}, which is not an area of the genome; "
                             "use cortical ids as written in the genome")
        if i in seen:
            raise InputError(f"{genome.path}: area_order names area {cid!r} twice; list each area once")
        first.append(i)
        seen.add(i)
    return [areas[i] for i in first] + [a for i, a in enumerate(areas) if i not in seen]


def _rule_pairs(genome: Genome, areas: Sequence[AreaGene]
                ) -> Iterator[tuple[AreaGene, AreaGene | None, MappingRule, np.ndarray]]:
    """Every rule with its final voxel pairs, duplicate rules applied (SPEC.md section 3).

    vectors (and block_to_block): a pair this rule or an earlier rule of the same source ->
    destination already made is skipped. patterns and projector: each pair once per rule, but a pair
    an earlier rule made is made again (FEAGI's spikes show the summed input). A rule the loader
    dropped (window-0 abort, invalid destination id) makes none.
    """
    by_id = {a.cortical_id: a for a in areas}
    none = np.zeros((0, 2), np.int64)
    none.flags.writeable = False
    # Pairs depend only on (morphology, sizes, scalar) when no earlier rule of the pair must be
    # skipped: shared between rules (a genome of many same-sized areas builds each shape once).
    cache: dict[tuple[Any, ...], np.ndarray] = {}
    for src in areas:
        made: dict[str, list[tuple[np.ndarray, int]]] = {}  # destination -> pairs of earlier rules
        for rule in src.mappings:
            if rule.dropped:
                yield src, by_id.get(rule.target), rule, none
                continue
            dst = by_id[rule.target]  # the loader resolved every destination
            morph = genome.morphologies.get(rule.morphology_id)
            if morph is None:  # an unusable pre-2.0 definition: no synapses (the loader warned)
                yield src, dst, rule, none
                continue
            n_dst = voxel_count(dst.dimensions)
            earlier = made.get(dst.cortical_id)
            skip_existing = morph.kind == "vectors" or morph.morphology_id == "block_to_block"
            if skip_existing and earlier:
                existing = np.concatenate([p[:, 0] * n + p[:, 1] for p, n in earlier])
                pairs = dedupe_pairs(morphology_pairs(morph, src.dimensions, dst.dimensions, rule.scalar),
                                     n_dst, existing)
            else:
                key = (rule.morphology_id, src.dimensions, dst.dimensions, rule.scalar)
                pairs = cache.get(key)  # type: ignore[assignment]
                if pairs is None:
                    pairs = morphology_pairs(morph, src.dimensions, dst.dimensions, rule.scalar)
                    if not unique_pairs(morph):  # a sort of every pair: only where a pair can repeat
                        pairs = dedupe_pairs(pairs, n_dst)
                    cache[key] = pairs  # shared, never written
            if pairs.shape[0]:
                made.setdefault(dst.cortical_id, []).append((pairs, n_dst))
            yield src, dst, rule, pairs


def mapping_synapse_counts(genome: Genome) -> list[MappingCount]:
    """Synapses per mapping rule, in genome order (recomputes voxel pairs only: no neuron arrays)."""
    areas = all_areas(genome)
    return [MappingCount(src.cortical_id, rule.destination, rule.morphology_id, rule.index,
                         int(pairs.shape[0]) * src.neurons_per_voxel, rule.dropped, rule.target)
            for src, _dst, rule, pairs in _rule_pairs(genome, areas)]


def estimate_bytes(genome: Genome) -> tuple[int, int, int]:
    """(neurons, upper bound on synapses, bytes) of the brain, computed without building it."""
    areas = all_areas(genome)
    by_id = {a.cortical_id: a for a in areas}
    neurons = sum(a.neuron_count for a in areas)
    synapses = 0
    for src in areas:
        for rule in src.mappings:
            dst = None if rule.dropped else by_id.get(rule.target)
            morph = genome.morphologies.get(rule.morphology_id)
            if dst is not None and morph is not None:
                synapses += pair_upper_bound(morph, src.dimensions, dst.dimensions) * src.neurons_per_voxel
    # measured peaks, build temporaries included (feagi_burst.memory)
    return neurons, synapses, GENOME.bytes(neurons, synapses)


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
        cortical.append(CorticalArea(index=index, cortical_id=a.cortical_id, name=a.name,
                                     dimensions=a.dimensions, neurons_per_voxel=a.neurons_per_voxel,
                                     first_neuron=first, psp=a.psp, psp_uniform=a.psp_uniform,
                                     mp_driven_psp=a.mp_driven_psp))
        first += a.neuron_count
    _fill_neurons(na, areas, cortical, honour_snooze_i)
    first_of = {id(a): c.first_neuron for a, c in zip(areas, cortical)}

    # --- synapses ---
    warnings = list(genome.warnings)
    # Per rule: its voxel pairs and six numbers; the neuron ids are computed for all rules at once.
    pair_parts: list[np.ndarray] = []
    per_rule: list[tuple[int, int, int, int, float, bool]] = []
    zero_rules = 0
    for src, dst, rule, pairs in _rule_pairs(genome, areas):
        if pairs.shape[0] == 0:
            continue
        assert dst is not None
        weight, inhibitory = rule_weight(rule.multiplier)
        zero_rules += weight == 0
        pair_parts.append(pairs)
        per_rule.append((first_of[id(src)], src.neurons_per_voxel, first_of[id(dst)], dst.neurons_per_voxel,
                         weight, inhibitory))
    if zero_rules:
        warnings.append(f"{zero_rules} mapping rule(s) have psc multiplier 0: their synapses carry no current")
    synapses = _place_synapses(pair_parts, per_rule, neurons_total)
    power = next((c for a, c in zip(areas, cortical) if a.core == "power"), None)
    # the plastic area pairs travel with the brain once Brain has a field for them
    extra = {"plasticity": list(genome.plasticity)} if "plasticity" in getattr(Brain, "__dataclass_fields__", {}) \
        else {}
    return Brain(name=genome.title, areas=cortical, neurons=na, synapses=synapses,
                 power_neuron=None if power is None else power.first_neuron,
                 warnings=warnings, fingerprint=genome.fingerprint, **extra)


def _place_synapses(pair_parts: list[np.ndarray], per_rule: list[tuple[int, int, int, int, float, bool]],
                    n: int) -> SynapseArray:
    """Every rule's voxel pairs as synapses sorted by source neuron, each row in rule order, then
    pair order: every neuron of a pair's source voxel sends, the destination voxel's last neuron
    receives. Placed by counting (build_kernels.count_rows, place_rows): one pass to size the rows,
    one to fill them, where a sort of 10^8 synapses took seconds."""
    from feagi_burst.build_kernels import count_rows, place_rows

    offsets = np.zeros(n + 1, np.int64)
    for pairs, (first_src, k_src, _fd, _kd, _w, _inh) in zip(pair_parts, per_rule):
        count_rows(pairs, first_src, k_src, offsets)
    np.cumsum(offsets, out=offsets)
    total = int(offsets[-1])
    syn = SynapseArray(source=np.empty(total, np.uint32), target=np.empty(total, np.uint32),
                       weight=np.empty(total, np.float32), inhibitory=np.empty(total, bool))
    cursor = offsets[:-1].copy()
    for pairs, (first_src, k_src, first_dst, k_dst, w, inh) in zip(pair_parts, per_rule):
        place_rows(pairs, first_src, k_src, first_dst, k_dst, np.float32(w), np.bool_(inh), cursor, syn.source,
                   syn.target, syn.weight, syn.inhibitory)
    return syn


CHUNK_NEURONS = 1 << 22  # neurons filled per vectorised step (bounds the temporaries)


def _fill_neurons(na: Any, areas: Sequence[AreaGene], cortical: Sequence[CorticalArea], honour_snooze_i: bool) -> None:
    """Per-neuron parameters and coordinates, `for x, for y, for z, for k` within each area.

    Vectorised over runs of areas holding up to CHUNK_NEURONS neurons together (or one larger
    area), so a genome of 150,000 tiny areas costs a few numpy calls per chunk, not per area.
    """
    start = 0
    while start < len(areas):
        stop, n = start, 0
        while stop < len(areas) and (stop == start or n + areas[stop].neuron_count <= CHUNK_NEURONS):
            n += areas[stop].neuron_count
            stop += 1
        _fill_chunk(na, areas[start:stop], cortical[start:stop], honour_snooze_i)
        start = stop


def _fill_chunk(na: Any, areas: Sequence[AreaGene], cortical: Sequence[CorticalArea], honour_snooze_i: bool) -> None:
    counts = np.array([a.neuron_count for a in areas], np.int64)
    total = int(counts.sum())
    if total == 0:
        return
    lo = cortical[0].first_neuron
    sl = slice(lo, lo + total)
    which = np.repeat(np.arange(len(areas), dtype=np.int64), counts)  # chunk-local area of each neuron

    def per_area(values: list[Any], dtype: Any) -> np.ndarray:
        return np.asarray(values, dtype)[which]

    local = np.arange(total, dtype=np.int64) - (np.cumsum(counts) - counts)[which]
    voxel = local // per_area([a.neurons_per_voxel for a in areas], np.int64)  # k innermost
    dy = per_area([a.dimensions[1] for a in areas], np.int64)
    dz = per_area([a.dimensions[2] for a in areas], np.int64)
    z = voxel % dz
    y = (voxel // dz) % dy
    x = voxel // (dy * dz)
    del voxel, local, dy, dz
    inc = np.asarray([a.threshold_increment for a in areas], np.float64).reshape(-1, 3)
    thr = per_area([a.threshold for a in areas], np.float64)
    if inc.any():
        thr = thr + x * inc[which, 0] + y * inc[which, 1] + z * inc[which, 2]  # f64 sum, one rounding to f32
    na.threshold[sl] = thr
    na.threshold_limit[sl] = per_area([a.threshold_limit for a in areas], np.float64)
    na.leak[sl] = per_area([a.leak for a in areas], np.float64)
    na.refractory_period[sl] = per_area([a.refractory_period for a in areas], np.int64)
    na.excitability[sl] = per_area([a.excitability for a in areas], np.float64)
    na.cfc_limit[sl] = per_area([a.cfc_limit for a in areas], np.int64)
    na.snooze[sl] = per_area([a.effective_snooze(honour_snooze_i) for a in areas], np.int64)
    na.mp_accumulate[sl] = per_area([a.mp_accumulate for a in areas], bool)
    na.cortical_area[sl] = per_area([c.index for c in cortical], np.int64)
    na.x[sl], na.y[sl], na.z[sl] = (c.astype(COORD_DTYPE) for c in (x, y, z))


__all__ = ["CHUNK_NEURONS", "MappingCount", "all_areas", "estimate_bytes", "expand_genome", "mapping_synapse_counts",
           "rule_weight"]
