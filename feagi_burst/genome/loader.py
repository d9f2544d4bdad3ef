"""Read and validate a FEAGI flat genome, 2.x or 3.0 (SPEC.md section 3), into plain dataclasses.

Every problem a user can fix is an `InputError` whose message is one line: the file, where in it
(cortical id, gene key, morphology), what is wrong and how to fix it. Things FEAGI tolerates but this
engine does not model (memory formation, delays, modulators, classifiers, some morphology functions)
load fine and leave one warning per gene or rule in `Genome.warnings`.

Formats: 2.x (`version` "2.0"/"2.1") writes legacy ids of 6 characters; 3.0 (`version` "3.0",
`genome_schema_version` 7, what FEAGI 2.6.10 writes when it saves a genome) writes every cortical
id as the base64 of FEAGI's 8-byte id, mapping rules as 9-key objects, `physiology.simulation_timestep`
instead of `burst_delay`, and adds `brain_regions`, `brain_regions_root`, `classifiers` and
`modulators` (`Genome.format` says which one was read; feagi_burst.genome.ids has the id rules).
Both are flat: blueprint keys `_____10c-<cortical_id>-<cx|nx>-<gene>-<type>`.

What FEAGI 2.6.10 does, where this module copies it (sources: feagi-core's flat converter and
genome parser, the strings of the 2.6.10 server binary, FEAGI's recordings in feagi-reference/ and
the genome counts in the shared genomes' SOURCES.md, which all match):
- genes are looked up by `<gene>-<type>` whatever the `cx`/`nx` prefix (early genomes write
  `nx-___bbx-i`, `cx-pstcr_-f`), the `nx-` key winning when both exist; a type suffix it has no
  entry for is ignored (`nx-snooze-i`, `nx-excite-i`, `nx-fthlim-i`), as recorded in
  docs/feagi-findings.md section 2 and feagi-reference/stdp/genespell;
- a cortical id that is neither 6 nor 8 characters nor the base64 of an 8-byte id (`c_avoid`) is
  skipped with a warning, with every mapping to or from it; a legacy id starting with `_` must be
  a known core area (`__back` fails the whole load);
- weights are |psc multiplier| as f32, no rounding and no clamp (feagi-reference/stdp/fracw);
- the power area's psp_uniform defaults to true when the genome does not set it.
Morphologies are read by feagi_burst.genome.morphology (`parse_morphologies`: the core ones a
genome lacks are added); FEAGI's window-0 abort and the plastic pairs are feagi_burst.genome.rules.

Loading is linear in the size of the file: areas and destinations are found through dicts.
"""
from __future__ import annotations

import base64
import gc
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

from feagi_burst.errors import FileContext, Where
from feagi_burst.memory import GENOME, available_memory
from feagi_burst.files import read_json
from feagi_burst.genome.ids import (CORE_ALIASES, CORE_BYTES, CORE_KINDS, AreaLookup, CorticalId, label,
                                    parse_cortical_id)
from feagi_burst.genome.morphology import Morphology, parse_morphologies
from feagi_burst.genome.plasticity import PlasticPair
from feagi_burst.genome.rules import abort_windows, plastic_pairs

FLAT_PREFIX = "_____10c-"
FORMAT_2 = "2.x"
FORMAT_3 = "3.0"
SCHEMA_VERSION_3 = 7  # genome_schema_version of FEAGI 2.6.10's 3.0 files

# Accepted gene spellings, keyed by `<gene>-<type>` (FEAGI ignores the cx/nx prefix): the AreaGene
# field each one sets, or None where FEAGI 2.6.10 ignores that spelling. Edit here to change what
# is read.
GENE_SPELLINGS: dict[str, str | None] = {
    "__name-t": "name",
    "_group-t": "group",
    "___bbx-i": "size_x",
    "___bby-i": "size_y",
    "___bbz-i": "size_z",
    "_n_cnt-i": "neurons_per_voxel",
    "dstmap-d": "mappings",
    "pspuni-b": "psp_uniform",
    "fire_t-f": "threshold",
    "ftincx-f": "threshold_inc_x",
    "ftincy-f": "threshold_inc_y",
    "ftincz-f": "threshold_inc_z",
    "fthlim-f": "threshold_limit",
    "refrac-i": "refractory_period",
    "leak_c-f": "leak",
    "c_fr_c-i": "cfc_limit",
    "snooze-f": "snooze",
    "mp_acc-b": "mp_accumulate",
    "mp_psp-b": "mp_driven_psp",
    "pstcr_-f": "psp",
    "excite-f": "excitability",
    "memory-b": "memory",
    # Spellings real genomes use that FEAGI 2.6.10 does not read (feagi-reference/stdp/genespell,
    # probe1/probe2: the default applies; FEAGI's own 3.0 export writes `nx-snooze-i: 0`).
    "snooze-i": None,
    "excite-i": None,
    "fthlim-i": None,
}
# The field each ignored spelling would have set, to say what ignoring it changes.
IGNORED_SPELLINGS: dict[str, str] = {"snooze-i": "snooze", "excite-i": "excitability", "fthlim-i": "threshold_limit"}
# Read only when the caller asks for it (`honour_snooze_i=True`), and only where `-f` is absent.
OPTIONAL_SPELLINGS: dict[str, str] = {"snooze-i": "snooze_i"}

# Genes FEAGI reads that do not change the spiking model: accepted silently.
UNUSED_GENES = frozenset({
    "rcordx-i", "rcordy-i", "rcordz-i", "2dcorx-i", "2dcory-i", "gd_vis-b", "subgrp-t", "synatt-f",
    "synatt-i", "de_gen-f", "pstcrm-f", "leak_v-f", "mem__t-i", "mem_gr-i", "mem_ls-i", "tmpdpt-i",
    "devcnt-i", "__rand-b", "plst_c-f", "hmlk-d", "mplrn-b", "mnwin-i", "scnsk-f", "twinrf-t",
    "init_s-b", "locr__-t", "locrp_-t",
})

# Gene -> (kind, default). Kinds: int (>= 0 unless noted), pos (>= 1), float, bool, text.
GENE_KINDS: dict[str, tuple[str, Any]] = {
    "name": ("text", ""), "group": ("text", ""),
    "size_x": ("pos", 1), "size_y": ("pos", 1), "size_z": ("pos", 1), "neurons_per_voxel": ("pos", 1),
    "psp_uniform": ("bool", False), "threshold": ("float", 1.0),
    "threshold_inc_x": ("float", 0.0), "threshold_inc_y": ("float", 0.0), "threshold_inc_z": ("float", 0.0),
    "threshold_limit": ("float", 0.0), "refractory_period": ("int", 0), "leak": ("float", 0.0),
    "cfc_limit": ("int", 0), "snooze": ("int", 0), "snooze_i": ("int", None),
    "mp_accumulate": ("bool", False), "mp_driven_psp": ("bool", False), "psp": ("float", 1.0),
    "excitability": ("float", 100.0), "memory": ("bool", False),
}
_DEFAULTS = {gene: default for gene, (_kind, default) in GENE_KINDS.items()}

# Core areas (feagi_burst.genome.ids has the id spellings): the id an auto-added core area gets in
# each format (FEAGI's own 8-byte id, as text in 2.x and as base64 in 3.0) and its name.
CORE_DEFAULT_IDS: dict[str, str] = {k: b.decode("ascii") for k, b in CORE_BYTES.items()}
CORE_DEFAULT_IDS_3: dict[str, str] = {k: a for a, k in CORE_ALIASES.items() if a.endswith("=")}
CORE_NAMES: dict[str, str] = {k: k.capitalize() for k in CORE_KINDS}

# Limits from the data model: coordinates are u16, neuron ids u32.
MAX_DIMENSION = 65536
MAX_NEURONS = 2**32 - 1

# Why a rule makes no synapses (MappingRule.dropped); rules.DROPPED_WINDOW_0 is the other reason.
DROPPED_INVALID_ID = "invalid destination id"


@dataclass(frozen=True)
class MappingRule:
    """One mapping rule of a source area.

    List form `[morphology_id, scalar, psc_multiplier, plastic, constant, ltp, ltd, window, delay]`
    (4, 7, 8 or 9 elements) or the object form (3.0 writes all 9 keys). `destination` is the id as
    written in the dstmap; `target` the cortical id of the area it names (a core alias such as
    `_death` names the core area the brain has); `dropped` says why the rule makes no synapses
    (rules.DROPPED_WINDOW_0, DROPPED_INVALID_ID) or is "".
    """

    destination: str
    morphology_id: str
    scalar: tuple[int, int, int]
    multiplier: float
    plastic: bool = False
    delay: int = 1
    index: int = 0  # position in the destination's rule list
    constant: float = 1.0  # plasticity_constant
    ltp: float = 1.0  # ltp_multiplier
    ltd: float = 1.0  # ltd_multiplier
    window: float | None = None  # plasticity_window as written; None when the rule has none
    target: str = ""
    dropped: str = ""


@dataclass
class AreaGene:
    """One cortical area's genes, with FEAGI's defaults for absent ones.

    cortical_id is the id as the genome writes it; decoded_id how it is shown (the 8 bytes of a
    3.0 base64 id as text, a legacy id as is); sort_key FEAGI's order (base64 of its 8-byte id).
    """

    cortical_id: str
    name: str = ""
    group: str = ""
    dimensions: tuple[int, int, int] = (1, 1, 1)
    neurons_per_voxel: int = 1
    threshold: float = 1.0
    threshold_increment: tuple[float, float, float] = (0.0, 0.0, 0.0)
    threshold_limit: float = 0.0
    refractory_period: int = 0
    leak: float = 0.0
    cfc_limit: int = 0
    snooze: int = 0
    snooze_i: int | None = None  # the `nx-snooze-i` value FEAGI ignores (None when absent)
    snooze_f_given: bool = False
    mp_accumulate: bool = False
    mp_driven_psp: bool = False
    psp: float = 1.0
    psp_uniform: bool = False
    excitability: float = 100.0
    memory: bool = False  # cx-memory-b
    core: str | None = None  # core kind ("power", ...) or None
    auto_added: bool = False
    mappings: list[MappingRule] = field(default_factory=list)
    decoded_id: str = ""
    sort_key: str = ""

    def __post_init__(self) -> None:
        if not self.decoded_id:
            self.decoded_id = self.cortical_id

    @property
    def neuron_count(self) -> int:
        x, y, z = self.dimensions
        return x * y * z * self.neurons_per_voxel

    @property
    def is_memory(self) -> bool:
        """A memory area for FEAGI: group MEMORY and cx-memory-b true (an `m` id alone is not)."""
        return self.memory and self.group.upper() == "MEMORY"

    @property
    def label(self) -> str:
        """How messages name the area: `'CRSMot'`, or `'Y0lITW90X18=' (cIHMot__ 'M1_BW')` in 3.0."""
        return label(self.cortical_id, self.name)

    def effective_snooze(self, honour_snooze_i: bool) -> int:
        """The snooze the engine uses: `nx-snooze-f`, or `nx-snooze-i` when asked and `-f` is absent."""
        if honour_snooze_i and not self.snooze_f_given and self.snooze_i is not None:
            return self.snooze_i
        return self.snooze


@dataclass
class Genome:
    """A validated genome: areas in file order, the morphologies rules use, and load warnings.

    format: FORMAT_2 ("2.x") or FORMAT_3 ("3.0"). plasticity: the plastic area pairs STDP runs on
    (feagi_burst.genome.plasticity.PlasticPair). core_ids: the cortical id of every core kind, the
    genome's own or the one expansion gives the core areas it adds. timestep: seconds per burst
    (`physiology.simulation_timestep`, or 2.x `burst_delay`), None when absent.
    """

    title: str
    path: str
    version: str
    areas: list[AreaGene]
    morphologies: dict[str, Morphology]
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""
    physiology: dict[str, Any] = field(default_factory=dict)
    format: str = FORMAT_2
    schema_version: int | None = None
    plasticity: list[PlasticPair] = field(default_factory=list)
    core_ids: dict[str, str] = field(default_factory=dict)
    timestep: float | None = None
    skipped_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lookup: AreaLookup | None = None

    def lookup(self) -> AreaLookup:
        """The areas by id as written, decoded id, core alias or name (built once)."""
        if self._lookup is None or len(self._lookup.ids) != len(self.areas):
            self._lookup = AreaLookup([a.cortical_id for a in self.areas], [a.name for a in self.areas])
        return self._lookup

    def area(self, key: str) -> AreaGene:
        """The area with this id (as written or decoded), core alias or name; KeyError if absent."""
        return self.areas[self.lookup().index(key)]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _convert(ctx: FileContext, where: Where, gene: str, value: Any) -> Any:
    """Check one gene's value against its kind and return it converted."""
    kind, _ = GENE_KINDS[gene]
    if kind == "text":
        if value is None:
            return ""
        if not isinstance(value, str):
            raise ctx.fail(where, f"{gene} must be text, got {value!r}", "write it as a JSON string")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ctx.fail(where, f"{gene} must be true or false, got {value!r}", "write it as a JSON boolean")
    if not _is_number(value):
        raise ctx.fail(where, f"{gene} must be a number, got {value!r}", "write it as a JSON number")
    if not math.isfinite(value):
        raise ctx.fail(where, f"{gene} is {value!r}", "give a finite number (NaN and infinity are not allowed)")
    if kind == "float":
        return float(value)
    if float(value) != int(value):
        raise ctx.fail(where, f"{gene} must be a whole number, got {value!r}", "round it to an integer")
    iv = int(value)
    if kind == "pos":
        if iv < 1:
            raise ctx.fail(where, f"{gene} must be at least 1, got {iv}", "give a positive size")
        limit = MAX_DIMENSION if gene.startswith("size_") else 65535
        if iv > limit:
            raise ctx.fail(where, f"{gene} is {iv}, above the limit {limit}", "make the area smaller")
        return iv
    if iv < 0 or iv > 65535:
        raise ctx.fail(where, f"{gene} must be between 0 and 65535, got {iv}", "give a count of bursts in that range")
    return iv


def _parse_scalar(ctx: FileContext, where: Where, v: Any) -> tuple[int, int, int]:
    if _is_number(v) and math.isfinite(v) and float(v) == int(v):
        return (int(v),) * 3  # type: ignore[return-value]
    if isinstance(v, (list, tuple)) and len(v) == 3 and all(
            _is_number(c) and math.isfinite(c) and float(c) == int(c) for c in v):
        return (int(v[0]), int(v[1]), int(v[2]))
    raise ctx.fail(where, f"morphology scalar must be an integer or [x, y, z] integers, got {v!r}",
                   "use [1, 1, 1]")


def _finite(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v)


def _parse_rule(ctx: FileContext, where: Where, dst: str, index: int, rule: Any, target: str = "",
                dropped: str = "") -> MappingRule:
    """One mapping rule, list form `[id, scalar, psc, plastic, pc, ltp, ltd, window, delay]` or object form."""
    params: list[Any]
    if isinstance(rule, dict):
        if "morphology_id" not in rule or "postSynapticCurrent_multiplier" not in rule:
            raise ctx.fail(where, "a mapping rule object needs 'morphology_id' and 'postSynapticCurrent_multiplier'",
                           "add the missing keys")
        mid, scalar = rule["morphology_id"], rule.get("morphology_scalar", [1, 1, 1])
        mult, plastic = rule["postSynapticCurrent_multiplier"], rule.get("plasticity_flag", False)
        delay = rule.get("synaptic_delay_bursts", 1)
        names = ("plasticity_constant", "ltp_multiplier", "ltd_multiplier", "plasticity_window")
        params = [rule.get(k) for k in names]
        for k, v in zip(names, params):
            if v is not None and not _finite(v):
                raise ctx.fail(where, f"{k} {v!r} of rule {mid!r} is not a finite number", "write a number there")
    elif isinstance(rule, list):
        if len(rule) < 4:
            raise ctx.fail(where, f"mapping rule {rule!r} has {len(rule)} elements",
                           "write [morphology_id, [1, 1, 1], psc_multiplier, plastic] (4, 7, 8 or 9 elements)")
        mid, scalar, mult, plastic = rule[0], rule[1], rule[2], rule[3]
        delay = rule[8] if len(rule) > 8 else 1
        for extra in rule[4:8]:
            if not _finite(extra):
                raise ctx.fail(where, f"plasticity parameter {extra!r} of rule {rule!r} is not a finite number",
                               "write numbers there")
        params = list(rule[4:8]) + [None] * (8 - max(4, min(len(rule), 8)))
    else:
        raise ctx.fail(where, f"mapping rule {rule!r} is neither a list nor an object",
                       "write [morphology_id, [1, 1, 1], psc_multiplier, plastic]")
    if not isinstance(mid, str) or not mid:
        raise ctx.fail(where, f"morphology id {mid!r} is not a name", "name a morphology of neuron_morphologies")
    if not _finite(mult):
        raise ctx.fail(where, f"psc multiplier {mult!r} of rule {mid!r} is not a finite number",
                       "write a number such as 1 or -1")
    if not isinstance(plastic, bool):
        raise ctx.fail(where, f"plasticity flag {plastic!r} of rule {mid!r} is not true/false", "write false")
    if not (_finite(delay) and float(delay) == int(delay) and delay >= 0):
        raise ctx.fail(where, f"synaptic delay {delay!r} of rule {mid!r} is not a whole number >= 0", "write 1")
    constant, ltp, ltd, window = (None if v is None else float(v) for v in params)
    return MappingRule(destination=dst, morphology_id=mid, scalar=_parse_scalar(ctx, where, scalar),
                       multiplier=float(mult), plastic=plastic, delay=int(delay), index=index,
                       constant=1.0 if constant is None else constant, ltp=1.0 if ltp is None else ltp,
                       ltd=1.0 if ltd is None else ltd, window=window, target=target, dropped=dropped)


def _read_document(ctx: FileContext, data: Any) -> tuple[str, str, dict[str, Any], int | None, list[str]]:
    """(format, version, blueprint, schema version, warnings) of a genome document, or a one-line error."""
    if not isinstance(data, dict):
        raise ctx.fail("", f"the top level is a JSON {type(data).__name__}, not a genome object",
                       "give a FEAGI genome (an object with 'blueprint' and 'neuron_morphologies')")
    bp = data.get("blueprint")
    if isinstance(bp, dict) and "cortical_areas" in bp and not any(str(k).startswith(FLAT_PREFIX) for k in bp):
        raise ctx.fail("blueprint", "this is a different schema (blueprint.cortical_areas, like feagi-core's "
                       "example_fp32/int8 illustrative genomes), not a flat FEAGI 2.x or 3.0 genome",
                       "export the genome from FEAGI in its flat format ('_____10c-...' blueprint keys)")
    if not isinstance(bp, dict) or not any(str(k).startswith(FLAT_PREFIX) for k in bp):
        raise ctx.fail("blueprint", "no '_____10c-<cortical_id>-<cx|nx>-<gene>-<type>' keys: not a flat FEAGI "
                       "2.x or 3.0 genome", "give a flat genome as FEAGI saves it")
    version = str(data.get("version", ""))
    warnings: list[str] = []
    schema = data.get("genome_schema_version")
    if version.startswith("2."):
        fmt = FORMAT_2
    elif version == "3" or version.startswith("3."):
        fmt = FORMAT_3
        if schema is not None and schema != SCHEMA_VERSION_3:
            warnings.append(f"genome_schema_version {schema!r}: read as schema {SCHEMA_VERSION_3} (FEAGI 2.6.10's "
                            "3.0 format); check the result")
    else:
        raise ctx.fail("version", f"genome version {version!r} is not supported (flat 2.x and 3.0 only)",
                       "export the genome from FEAGI 2.x as a flat 2.x or 3.0 genome")
    for key, kind in (("brain_regions", dict), ("classifiers", dict), ("physiology", dict),
                      ("neuron_morphologies", dict), ("brain_regions_root", str)):
        value = data.get(key)
        if value is not None and not isinstance(value, kind):
            raise ctx.fail(key, f"must be {'an object' if kind is dict else 'text'}, got {type(value).__name__}",
                           "write it as FEAGI does or remove it")
    if data.get("modulators"):
        mods = data["modulators"]
        names = ", ".join(map(str, list(mods)[:5])) if isinstance(mods, (dict, list)) else repr(mods)
        warnings.append(f"ignored: modulators ({names}): FEAGI's neuromodulation is not modelled; the brain "
                        "runs without them")
    if data.get("classifiers"):
        warnings.append(f"ignored: classifiers ({len(data['classifiers'])}): their areas load as ordinary areas "
                        "and the classifier assemblies are not formed")
    return fmt, version, bp, schema if isinstance(schema, int) and not isinstance(schema, bool) else None, warnings


def _collect_genes(ctx: FileContext, bp: dict[str, Any]
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]], dict[str, int],
                              dict[str, dict[str, Any]]]:
    """Blueprint keys grouped per cortical id: (raw values, key of each value, unknown genes,
    values of the spellings FEAGI ignores), areas in order of first appearance."""
    raw_areas: dict[str, dict[str, Any]] = {}
    keys_of: dict[str, dict[str, str]] = {}
    unknown: dict[str, int] = {}
    ignored: dict[str, dict[str, Any]] = {}
    for key, value in bp.items():
        if not key.startswith(FLAT_PREFIX):
            continue  # `_____10b-` species genes and the like carry no brain structure
        parts = key.split("-")
        if len(parts) != 5 or parts[2] not in ("cx", "nx"):
            raise ctx.fail(f"key {key!r}", "malformed blueprint key",
                           "write '_____10c-<cortical_id>-<cx|nx>-<gene>-<type>'")
        cid, gene = parts[1], f"{parts[3]}-{parts[4]}"
        raw = raw_areas.setdefault(cid, {})
        keys = keys_of.setdefault(cid, {})
        fieldname = GENE_SPELLINGS.get(gene)
        if gene in GENE_SPELLINGS and fieldname is None:  # a spelling FEAGI does not read
            if gene in OPTIONAL_SPELLINGS:
                raw[OPTIONAL_SPELLINGS[gene]] = value
                keys[OPTIONAL_SPELLINGS[gene]] = key
            ignored.setdefault(cid, {})[f"{parts[2]}-{gene}"] = value
            continue
        if fieldname is None:
            if gene not in UNUSED_GENES:
                unknown[gene] = unknown.get(gene, 0) + 1
            continue
        # the same gene under both prefixes: FEAGI takes the nx- one (docs/feagi-findings.md 2.2)
        if parts[2] == "cx" and keys.get(fieldname, "").split("-")[2:3] == ["nx"]:
            continue
        raw[fieldname] = value
        keys[fieldname] = key
    return raw_areas, keys_of, unknown, ignored


def _build_area(ctx: FileContext, info: CorticalId, raw: dict[str, Any], keys: dict[str, str],
                honour_snooze_i: bool, resolve: Callable[[str], tuple[str, str]], warnings: list[str]) -> AreaGene:
    """One area from its genes; `resolve(destination)` gives each rule's (target, dropped)."""
    cid = info.written

    def shown() -> str:
        return label(cid, raw.get("name") if isinstance(raw.get("name"), str) else "")

    vals = dict(_DEFAULTS)
    for gene, value in raw.items():
        if gene != "mappings" and value is not None:  # null counts as absent, as in FEAGI's converter
            vals[gene] = _convert(ctx, lambda g=gene: f"cortical id {shown()} key {keys.get(g, g)!r}", gene, value)
    if info.core == "power" and "psp_uniform" not in raw:
        vals["psp_uniform"] = True  # FEAGI's flat converter: power sends full psp on each synapse
    area = AreaGene(
        cortical_id=cid, name=vals["name"] or info.decoded, group=vals["group"],
        dimensions=(vals["size_x"], vals["size_y"], vals["size_z"]),
        neurons_per_voxel=vals["neurons_per_voxel"], threshold=vals["threshold"],
        threshold_increment=(vals["threshold_inc_x"], vals["threshold_inc_y"], vals["threshold_inc_z"]),
        threshold_limit=vals["threshold_limit"], refractory_period=vals["refractory_period"],
        leak=vals["leak"], cfc_limit=vals["cfc_limit"], snooze=vals["snooze"], snooze_i=vals["snooze_i"],
        snooze_f_given="snooze" in raw, mp_accumulate=vals["mp_accumulate"],
        mp_driven_psp=vals["mp_driven_psp"], psp=vals["psp"], psp_uniform=vals["psp_uniform"],
        excitability=vals["excitability"], memory=vals["memory"], core=info.core,
        decoded_id=info.decoded, sort_key=info.sort_key)
    if honour_snooze_i:
        area.snooze = area.effective_snooze(True)
    if info.core is not None and area.neuron_count != 1:
        warnings.append(f"core area {area.label} has {area.neuron_count} neurons in the genome; "
                        "FEAGI gives core areas exactly one neuron, so it is built 1x1x1")
        area.dimensions, area.neurons_per_voxel = (1, 1, 1), 1
    dstmap = raw.get("mappings", {})
    if dstmap is None:
        dstmap = {}

    def where() -> str:
        return f"cortical id {area.label} key {keys.get('mappings', 'cx-dstmap-d')!r}"

    if not isinstance(dstmap, dict):
        raise ctx.fail(where, f"mappings must be an object {{destination: [rules]}}, got {type(dstmap).__name__}",
                       "write {} for no mappings")
    for dst, rules in dstmap.items():
        if not isinstance(rules, list):
            raise ctx.fail(where, f"rules for destination {dst!r} must be a list", "write [[...], ...]")
        target, dropped = resolve(dst) if rules else ("", "")
        for i, rule in enumerate(rules):
            area.mappings.append(_parse_rule(ctx, lambda d=dst: f"{where()} destination {d!r}", dst, i, rule,
                                             target, dropped))
    return area


def _ignored_spelling_warnings(areas: list[AreaGene], ignored: dict[str, dict[str, Any]],
                               honour_snooze_i: bool) -> list[str]:
    """One warning per ignored spelling whose value differs from what the area uses."""
    changed: dict[str, list[str]] = {}
    for a in areas:
        for spelled, value in ignored.get(a.cortical_id, {}).items():
            gene = spelled.split("-", 1)[1]
            if gene == "snooze-i" and honour_snooze_i and not a.snooze_f_given:
                continue  # honoured: it is the snooze in use
            used = getattr(a, IGNORED_SPELLINGS[gene])
            if value is None or (_is_number(value) and float(value) == float(used)):
                continue
            changed.setdefault(spelled, []).append(f"{a.label}={value!r}")
    out = []
    for spelled, where in sorted(changed.items()):
        gene = spelled.split("-", 1)[1]
        read = gene.replace("-i", "-f")
        hint = " (pass honour_snooze_i=True, [genome] honour_snooze_i = true, to read it)" \
            if gene == "snooze-i" else ""
        out.append(f"ignored: gene {spelled} on {len(where)} area(s) ({', '.join(where[:5])}"
                   f"{', ...' if len(where) > 5 else ''}): FEAGI 2.6.10 reads only nx-{read}, so "
                   f"{IGNORED_SPELLINGS[gene]} keeps its nx-{read} value or default{hint}")
    return out


def load_genome(path: str | os.PathLike[str], honour_snooze_i: bool = False,
                memory_limit: int | None = None) -> Genome:
    """Read, validate and return the genome at `path` (flat 2.x or 3.0).

    honour_snooze_i: read `nx-snooze-i` as the snooze where `nx-snooze-f` is absent (FEAGI does not).
    memory_limit: bytes the neuron arrays may take (default: 80% of available memory); a genome above
    it is refused before anything is allocated.
    """
    p = Path(path)
    ctx = FileContext(str(path))
    data = read_json(p, "genome file")
    # Loading allocates a few objects per gene and rule and frees none: the cyclic collector would
    # only rescan them (a third of the time of a 150,000-area genome). Paused, then restored.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(ctx, p, data, honour_snooze_i, memory_limit)
    finally:
        if paused:
            gc.enable()


def _load(ctx: FileContext, p: Path, data: Any, honour_snooze_i: bool, memory_limit: int | None) -> Genome:
    path = ctx.path
    fmt, version, bp, schema, warnings = _read_document(ctx, data)

    # --- areas, in order of first appearance ---
    raw_areas, keys_of, unknown, ignored = _collect_genes(ctx, bp)
    infos: dict[str, CorticalId] = {}
    skipped: list[str] = []
    bad_core: list[str] = []
    for cid, raw in raw_areas.items():
        group = raw.get("group") if isinstance(raw.get("group"), str) else ""
        info = parse_cortical_id(cid, group)
        if info is None:
            skipped.append(cid)
        elif info.core is None and (info.feagi[:1] == b"_" if info.is_base64 else cid.startswith("_")):
            bad_core.append(cid)
        else:
            infos[cid] = info
    # FEAGI rejects the load on a bad core id; name every one at once so one edit fixes them all
    if bad_core:
        known = ", ".join(a for a in sorted(CORE_ALIASES) if not a.endswith("="))
        raise ctx.fail(f"cortical id{'s' if len(bad_core) > 1 else ''} {', '.join(map(repr, bad_core))}",
                       "not a valid core type: FEAGI 2.6.10 rejects ids starting with '_' other than its "
                       f"core areas ({known})", "rename those areas to custom ids such as 'c' + 5 letters "
                       "(and every mapping to them)")
    core_seen: dict[str, str] = {}
    for cid, info in infos.items():
        if info.core is not None:
            if info.core in core_seen:
                raise ctx.fail(f"cortical ids {core_seen[info.core]!r} and {cid!r}",
                               f"both are the core area {info.core!r}", "keep one of them")
            core_seen[info.core] = cid

    # --- destinations: found with dict lookups (FEAGI's id, core aliases), never a scan ---
    core_ids = {k: core_seen.get(k, (CORE_DEFAULT_IDS_3 if fmt == FORMAT_3 else CORE_DEFAULT_IDS)[k])
                for k in CORE_KINDS}
    sort_key = {cid: info.sort_key for cid, info in infos.items()}
    for k, cid in core_ids.items():
        sort_key.setdefault(cid, base64.b64encode(CORE_BYTES[k]).decode("ascii"))
    by_feagi: dict[bytes, str | None] = {}
    for cid, info in infos.items():
        by_feagi[info.feagi] = None if info.feagi in by_feagi else cid  # None: ambiguous
    skipped_set = set(skipped)
    to_skipped: dict[str, int] = {}
    invalid_dst: dict[str, list[str]] = {}

    def resolve(dst: str) -> tuple[str, str]:
        """(target cortical id, "") for a destination, ("", why) when FEAGI skips it."""
        if dst in sort_key:
            return dst, ""
        info = parse_cortical_id(dst)
        if info is None:
            return "", DROPPED_INVALID_ID
        target = core_ids[info.core] if info.core else by_feagi.get(info.feagi)
        if target is None:
            return "", "missing"  # a valid id of no area: an error below
        return target, ""

    areas: list[AreaGene] = []
    for cid, info in infos.items():
        area = _build_area(ctx, info, raw_areas[cid], keys_of[cid], honour_snooze_i, resolve, warnings)
        for r in area.mappings:
            if r.dropped == "missing":
                hint = " (the '//' looks like a commented-out mapping: JSON has no comments)" \
                    if r.destination.startswith("//") else ""
                raise ctx.fail(f"cortical id {area.label} mapping to {r.destination!r}",
                               f"destination area {r.destination!r} is not in the genome{hint}",
                               "add that area or remove the mapping")
            if r.dropped == DROPPED_INVALID_ID:
                if r.destination in skipped_set:
                    to_skipped[r.destination] = to_skipped.get(r.destination, 0) + 1
                else:
                    invalid_dst.setdefault(r.destination, []).append(area.label)
        areas.append(area)
    warnings += _ignored_spelling_warnings(areas, ignored, honour_snooze_i)
    if unknown:
        warnings.append("ignored: unknown genes " + ", ".join(f"{g} ({n})" for g, n in sorted(unknown.items())))

    # --- size guard before anything is allocated ---
    total_neurons = sum(a.neuron_count for a in areas) + len(CORE_KINDS)
    if total_neurons > MAX_NEURONS:
        raise ctx.fail("blueprint", f"{total_neurons:,} neurons exceed the 2^32-1 neuron ids of the engine",
                       "make areas smaller")
    limit = available_memory() if memory_limit is None else memory_limit
    need = GENOME.bytes(total_neurons, 0)
    if need > limit:
        raise ctx.fail("blueprint", f"{total_neurons:,} neurons need about {need / 2**30:.2f} GiB, "
                       f"more than the {limit / 2**30:.2f} GiB available",
                       "make areas smaller or run on a machine with more memory")

    # --- morphologies ---
    morphologies, unusable = parse_morphologies(ctx, data.get("neuron_morphologies") or {})

    # --- mappings: morphologies must exist ---
    used_unusable: dict[str, int] = {}
    used_unsupported: dict[str, int] = {}
    delayed: list[str] = []
    for a in areas:
        for r in a.mappings:
            if r.dropped:
                continue
            if r.morphology_id in unusable:
                used_unusable[r.morphology_id] = used_unusable.get(r.morphology_id, 0) + 1
            elif r.morphology_id not in morphologies:
                raise ctx.fail(f"cortical id {a.label} mapping to {r.destination!r}",
                               f"morphology {r.morphology_id!r} is not defined in neuron_morphologies "
                               "and is not a FEAGI core morphology", "define it or use another morphology")
            elif not morphologies[r.morphology_id].supported:
                used_unsupported[r.morphology_id] = used_unsupported.get(r.morphology_id, 0) + 1
            if r.delay != 1:
                delayed.append(f"{a.label} -> {label(r.destination)} delay {r.delay}")
    for cid in skipped:
        own = sum(1 for v in (raw_areas[cid].get("mappings") or {}).values() if isinstance(v, list) for _ in v) \
            if isinstance(raw_areas[cid].get("mappings"), dict) else 0
        warnings.append(f"skipped: cortical id {cid!r} is neither 6 nor 8 characters of letters, digits and '_' "
                        "nor the base64 of an 8-byte id; FEAGI skips that area, so it has no neurons, its "
                        f"{own} mapping rule(s) and the {to_skipped.get(cid, 0)} rule(s) to it make no synapses; "
                        "rename it (and every mapping to it) to keep it")
    for dst, sources in invalid_dst.items():
        hint = " (the '//' looks like a commented-out mapping: JSON has no comments)" if dst.startswith("//") else ""
        warnings.append(f"skipped: {len(sources)} mapping rule(s) from {', '.join(dict.fromkeys(sources))} to "
                        f"{dst!r}, which is not a valid cortical id{hint}; FEAGI skips them; remove them or fix the id")
    for mid, n in sorted(used_unusable.items()):
        warnings.append(f"morphology {mid!r} has no 'type' (pre-2.0 format) and FEAGI cannot use it: "
                        f"its {n} rule(s) create no synapses")
    for mid, n in sorted(used_unsupported.items()):
        warnings.append(f"morphology {mid!r} ({morphologies[mid].kind}): {morphologies[mid].why_unsupported}; "
                        f"its {n} rule(s) create no synapses")
    abort_windows(areas, sort_key, warnings)
    if delayed:
        warnings.append(f"ignored: synaptic_delay_bursts other than 1 on {len(delayed)} mapping rule(s) "
                        f"({', '.join(delayed[:3])}{', ...' if len(delayed) > 3 else ''}); "
                        "their spikes arrive the next burst")
    mem = [a.label for a in areas if a.is_memory]
    if mem:
        warnings.append(f"memory areas {', '.join(mem[:6])}{', ...' if len(mem) > 6 else ''} run as ordinary "
                        "areas: FEAGI's memory neurons (formed at run time) are not formed")

    title = data.get("genome_title") or data.get("genome_id") or p.stem
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    physiology = data.get("physiology") if isinstance(data.get("physiology"), dict) else {}
    step = physiology.get("simulation_timestep") if fmt == FORMAT_3 else data.get("burst_delay")
    if step is None:
        step = physiology.get("simulation_timestep", data.get("burst_delay"))
    return Genome(title=str(title), path=str(path), version=version, areas=areas, morphologies=morphologies,
                  warnings=warnings, fingerprint=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                  physiology=physiology, format=fmt, schema_version=schema, plasticity=plastic_pairs(areas),
                  core_ids=core_ids, timestep=float(step) if _finite(step) else None, skipped_ids=skipped)
