"""Read and validate a FEAGI flat 2.x genome (SPEC.md section 3) into plain dataclasses.

Every problem a user can fix is an `InputError` whose message is one line: the file, where in it
(cortical id, gene key, morphology), what is wrong and how to fix it. Things FEAGI tolerates but this
engine does not model (plasticity, memory areas, delays, modulators, some morphology functions) load
fine and leave one warning per kind in `Genome.warnings`.

What FEAGI 2.6.10 does, where this module copies it (sources: feagi-core's flat converter
`crates/feagi-evolutionary/src/converter_flat_full.rs`, the strings of the 2.6.10 server binary, and
the genome counts in the shared genomes' SOURCES.md, which all match):
- genes are looked up by `<gene>-<type>` whatever the `cx`/`nx` prefix (early genomes write
  `nx-___bbx-i`, `cx-pstcr_-f`), the `nx-` key winning when both exist; a type suffix it has no
  entry for is ignored (`nx-snooze-i`, `nx-excite-i`, `nx-fthlim-i`), as recorded in
  docs/feagi-findings.md section 2 (the 2.6.10 binary does not even contain the last two strings);
- a cortical id starting with `_` must be a known core area, so `__back` fails the whole load;
- every pattern of every morphology must be `[source, dest]`, used or not;
- a morphology without `type` (the pre-2.0 `{"vectors": ...}` form) is unusable, and the core
  morphologies (block_to_block, projector, lateral_+x, ...) missing or unusable are added;
- the power area's psp_uniform defaults to true when the genome does not set it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.files import read_json
from feagi_burst.genome.morphology import OTHER, PATTERN_TOKENS, Morphology, Pattern

FLAT_PREFIX = "_____10c-"

# Accepted gene spellings, keyed by `<gene>-<type>` (FEAGI ignores the cx/nx prefix): the AreaGene
# field each one sets, or None where FEAGI 2.6.10 ignores that spelling. Edit here to change what
# is read (another helper is recording FEAGI to settle `-i` spellings).
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
    # Spellings real genomes use that FEAGI 2.6.10 does not read (probe1/probe2 show snooze-i is
    # ignored; "excite-i" and "fthlim-i" do not occur in the 2.6.10 binary at all).
    "snooze-i": None,
    "excite-i": None,
    "fthlim-i": None,
}
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

# Core areas: the FEAGI 2.6.10 kinds in its cortical_idx order, every id spelling it accepts,
# and the id an auto-added area gets (FEAGI's own 8-byte id, which is what its API reports).
CORE_KINDS: tuple[str, ...] = ("death", "power", "fatigue", "pain", "pleasure", "fear", "hope")
CORE_ALIASES: dict[str, str] = {
    "_death": "death", "___death": "death",
    "_power": "power", "___pwr": "power", "___power": "power", "___pwr__": "power",
    "_fatigue": "fatigue", "___fatig": "fatigue",
    "_pain": "pain", "___pain_": "pain",
    "_pleasure": "pleasure", "___pleas": "pleasure",
    "_fear": "fear", "___fear_": "fear",
    "_hope": "hope", "___hope_": "hope",
}
CORE_DEFAULT_IDS: dict[str, str] = {
    "death": "___death", "power": "___power", "fatigue": "___fatig", "pain": "___pain_",
    "pleasure": "___pleas", "fear": "___fear_", "hope": "___hope_",
}
CORE_NAMES: dict[str, str] = {k: k.capitalize() for k in CORE_KINDS}
_ID_RE = re.compile(r"[A-Za-z0-9_]{6}|[A-Za-z0-9_]{8}")

# Core morphologies FEAGI adds when a genome lacks them (the `class: core` set of its genomes).
_CORE_FUNCTIONS = (
    "projector", "memory", "episodic_memory", "randomizer", "expander_x", "reducer_x",
    "lateral_pairs_x", "projector_xy", "projector_xz", "projector_yz", "project_from_end_x",
    "project_from_end_y", "project_from_end_z", "last_to_first", "first_to_last", "sweeper",
    "bitmask_encoder_x", "bitmask_encoder_y", "bitmask_encoder_z", "bitmask_decoder_x",
    "bitmask_decoder_y", "bitmask_decoder_z", "block_connection",
)
CORE_MORPHOLOGIES: dict[str, dict[str, Any]] = {
    "block_to_block": {"type": "vectors", "parameters": {"vectors": [[0, 0, 0]]}},
    "0-0-0_to_all": {"type": "patterns", "parameters": {"patterns": [[[0, 0, 0], ["*", "*", "*"]]]}},
    "all_to_0-0-0": {"type": "patterns", "parameters": {"patterns": [[["*", "*", "*"], [0, 0, 0]]]}},
    "all_to_all": {"type": "patterns", "parameters": {"patterns": [[["?", "?", "?"], ["*", "*", "*"]]]}},
    "lateral_+x": {"type": "vectors", "parameters": {"vectors": [[1, 0, 0]]}},
    "lateral_-x": {"type": "vectors", "parameters": {"vectors": [[-1, 0, 0]]}},
    "lateral_+y": {"type": "vectors", "parameters": {"vectors": [[0, 1, 0]]}},
    "lateral_-y": {"type": "vectors", "parameters": {"vectors": [[0, -1, 0]]}},
    "lateral_+z": {"type": "vectors", "parameters": {"vectors": [[0, 0, 1]]}},
    "lateral_-z": {"type": "vectors", "parameters": {"vectors": [[0, 0, -1]]}},
    "tile": {"type": "composite", "parameters": {"src_seed": [16, 16, 1], "src_pattern": [[1, 0], [1, 0], [1, 0]],
                                                 "mapper_morphology": "projector"}},
    **{name: {"type": "functions", "parameters": {}} for name in _CORE_FUNCTIONS},
}
SUPPORTED_FUNCTIONS = frozenset({"projector", "block_to_block"})

# Limits from the data model: coordinates are u16, neuron ids u32.
MAX_DIMENSION = 65536
MAX_NEURONS = 2**32 - 1
BYTES_PER_NEURON = 41  # 31 bytes of parameters + 10 of state (brain.py)
BYTES_PER_SYNAPSE = 10
MEMORY_FRACTION = 0.8  # of MemAvailable a brain may take


@dataclass(frozen=True)
class MappingRule:
    """One mapping rule of a source area: `[morphology_id, scalar, psc_multiplier, plastic, ...]`."""

    destination: str
    morphology_id: str
    scalar: tuple[int, int, int]
    multiplier: float
    plastic: bool = False
    delay: int = 1
    index: int = 0  # position in the destination's rule list


@dataclass
class AreaGene:
    """One cortical area's genes, with FEAGI's defaults for absent ones."""

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
    memory: bool = False
    core: str | None = None  # core kind ("power", ...) or None
    auto_added: bool = False
    mappings: list[MappingRule] = field(default_factory=list)

    @property
    def neuron_count(self) -> int:
        x, y, z = self.dimensions
        return x * y * z * self.neurons_per_voxel

    def effective_snooze(self, honour_snooze_i: bool) -> int:
        """The snooze the engine uses: `nx-snooze-f`, or `nx-snooze-i` when asked and `-f` is absent."""
        if honour_snooze_i and not self.snooze_f_given and self.snooze_i is not None:
            return self.snooze_i
        return self.snooze


@dataclass
class Genome:
    """A validated genome: areas in file order, the morphologies rules use, and load warnings."""

    title: str
    path: str
    version: str
    areas: list[AreaGene]
    morphologies: dict[str, Morphology]
    warnings: list[str] = field(default_factory=list)
    fingerprint: str = ""
    physiology: dict[str, Any] = field(default_factory=dict)

    def area(self, cortical_id: str) -> AreaGene:
        """The area with this id; KeyError if absent."""
        for a in self.areas:
            if a.cortical_id == cortical_id:
                return a
        raise KeyError(cortical_id)


class _Ctx:
    """Where we are in the file, to build one-line error messages."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, where: str, what: str, fix: str) -> InputError:
        msg = f"{self.path}: {where}: {what}; {fix}" if where else f"{self.path}: {what}; {fix}"
        return InputError(" ".join(msg.split()))  # one line, whatever the pieces contain


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _convert(ctx: _Ctx, where: str, gene: str, value: Any) -> Any:
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


def _parse_id(ctx: _Ctx, cortical_id: str, key: str) -> str | None:
    """Validate a cortical id the way FEAGI 2.6.10 does; returns its core kind or None."""
    if cortical_id in CORE_ALIASES:
        return CORE_ALIASES[cortical_id]
    if cortical_id.startswith("_"):
        known = ", ".join(sorted(CORE_ALIASES))
        raise ctx.fail(f"cortical id {cortical_id!r} (key {key!r})",
                       "not a valid core type: FEAGI 2.6.10 rejects ids starting with '_' other than its "
                       f"core areas ({known})",
                       "rename the area to a custom id such as 'c' + 5 letters")
    if not _ID_RE.fullmatch(cortical_id):
        raise ctx.fail(f"cortical id {cortical_id!r} (key {key!r})",
                       "a cortical id must be 6 or 8 characters of letters, digits and '_'",
                       "rename the area (and every mapping to it)")
    return None


def _parse_scalar(ctx: _Ctx, where: str, v: Any) -> tuple[int, int, int]:
    if _is_number(v) and math.isfinite(v) and float(v) == int(v):
        return (int(v),) * 3  # type: ignore[return-value]
    if isinstance(v, (list, tuple)) and len(v) == 3 and all(
            _is_number(c) and math.isfinite(c) and float(c) == int(c) for c in v):
        return (int(v[0]), int(v[1]), int(v[2]))
    raise ctx.fail(where, f"morphology scalar must be an integer or [x, y, z] integers, got {v!r}",
                   "use [1, 1, 1]")


def _parse_rule(ctx: _Ctx, where: str, dst: str, index: int, rule: Any) -> MappingRule:
    """One mapping rule, list form `[id, scalar, psc, plastic, pc, ltp, ltd, window, delay]` or object form."""
    if isinstance(rule, dict):
        if "morphology_id" not in rule or "postSynapticCurrent_multiplier" not in rule:
            raise ctx.fail(where, "a mapping rule object needs 'morphology_id' and 'postSynapticCurrent_multiplier'",
                           "add the missing keys")
        mid, scalar = rule["morphology_id"], rule.get("morphology_scalar", [1, 1, 1])
        mult, plastic = rule["postSynapticCurrent_multiplier"], rule.get("plasticity_flag", False)
        delay = rule.get("synaptic_delay_bursts", 1)
    elif isinstance(rule, list):
        if len(rule) < 4:
            raise ctx.fail(where, f"mapping rule {rule!r} has {len(rule)} elements",
                           "write [morphology_id, [1, 1, 1], psc_multiplier, plastic] (4, 7, 8 or 9 elements)")
        mid, scalar, mult, plastic = rule[0], rule[1], rule[2], rule[3]
        delay = rule[8] if len(rule) > 8 else 1
        for extra in rule[4:8]:
            if not (_is_number(extra) and math.isfinite(extra)):
                raise ctx.fail(where, f"plasticity parameter {extra!r} of rule {rule!r} is not a finite number",
                               "write numbers there")
    else:
        raise ctx.fail(where, f"mapping rule {rule!r} is neither a list nor an object",
                       "write [morphology_id, [1, 1, 1], psc_multiplier, plastic]")
    if not isinstance(mid, str) or not mid:
        raise ctx.fail(where, f"morphology id {mid!r} is not a name", "name a morphology of neuron_morphologies")
    if not _is_number(mult) or not math.isfinite(mult):
        raise ctx.fail(where, f"psc multiplier {mult!r} of rule {mid!r} is not a finite number",
                       "write a number such as 1 or -1")
    if not isinstance(plastic, bool):
        raise ctx.fail(where, f"plasticity flag {plastic!r} of rule {mid!r} is not true/false", "write false")
    if not (_is_number(delay) and math.isfinite(delay) and float(delay) == int(delay) and delay >= 0):
        raise ctx.fail(where, f"synaptic delay {delay!r} of rule {mid!r} is not a whole number >= 0", "write 1")
    return MappingRule(destination=dst, morphology_id=mid, scalar=_parse_scalar(ctx, where, scalar),
                       multiplier=float(mult), plastic=plastic, delay=int(delay), index=index)


def _pattern_token(v: Any) -> int | str | None:
    """A pattern axis value: int, or one of * ? !; numeric strings count as ints (FEAGI parses them)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, float) and math.isfinite(v) and v == int(v):
        return int(v)
    if isinstance(v, str):
        if v in PATTERN_TOKENS:
            return v
        if re.fullmatch(r"-?\d+", v):
            return int(v)
    return None


def _parse_morphology(ctx: _Ctx, mid: str, raw: Any, core: bool) -> Morphology | None:
    """A morphology definition, or None when it is unusable (no type and nothing to infer it from)."""
    where = f"neuron_morphologies[{mid!r}]"
    if not isinstance(raw, dict):
        raise ctx.fail(where, f"definition must be an object, got {type(raw).__name__}",
                       "write {\"type\": ..., \"parameters\": {...}}")
    kind, params = raw.get("type"), raw.get("parameters")
    if kind is None and isinstance(params, dict):  # FEAGI infers the type from the parameters
        kind = "vectors" if "vectors" in params else "patterns" if "patterns" in params else None
    if kind is None:
        return None
    if not isinstance(params, dict):
        params = {}
    if kind == "vectors":
        vecs = params.get("vectors")
        if not isinstance(vecs, list) or not all(
                isinstance(v, list) and len(v) == 3 and all(isinstance(c, int) and not isinstance(c, bool) for c in v)
                for v in vecs):
            raise ctx.fail(where, f"vectors must be a list of [x, y, z] integers, got {vecs!r}",
                           "write e.g. {\"vectors\": [[0, 0, 0]]}")
        return Morphology(mid, "vectors", vectors=np.array(vecs, np.int64).reshape(-1, 3), core=core)
    if kind == "patterns":
        pats = params.get("patterns")
        if not isinstance(pats, list):
            raise ctx.fail(where, f"patterns must be a list of [source, dest] pairs, got {pats!r}",
                           "write e.g. {\"patterns\": [[[\"*\", \"*\", 0], [0, 0, \"*\"]]]}")
        parsed: list[Pattern] = []
        bad: list[Any] = []
        for p in pats:
            if not isinstance(p, list) or len(p) != 2:
                raise ctx.fail(where, f"Pattern must have 2 elements [source, dest], got {p!r}",
                               "wrap each pattern as [[sx, sy, sz], [dx, dy, dz]]")
            sides = []
            for side in p:
                if not isinstance(side, list) or len(side) != 3:
                    raise ctx.fail(where, f"each side of pattern {p!r} must have 3 elements [x, y, z]",
                                   "write [[sx, sy, sz], [dx, dy, dz]]")
                toks = [_pattern_token(v) for v in side]
                bad += [v for v, t in zip(side, toks) if t is None]
                sides.append(tuple(toks))
            parsed.append((sides[0], sides[1]))  # type: ignore[arg-type]
        if bad:
            return Morphology(mid, "patterns", core=core, supported=False,
                              why_unsupported=f"pattern values {sorted(set(map(str, bad)))} are not int, *, ? or {OTHER}")
        return Morphology(mid, "patterns", patterns=tuple(parsed), core=core)
    if kind == "functions":
        if mid in SUPPORTED_FUNCTIONS:
            return Morphology(mid, "functions", vectors=np.zeros((1, 3), np.int64), core=core)
        return Morphology(mid, "functions", core=core, supported=False,
                          why_unsupported="function not implemented by this engine")
    return Morphology(mid, str(kind), core=core, supported=False,
                      why_unsupported=f"morphology type {kind!r} not implemented by this engine")


def available_memory() -> int:
    """Bytes a brain may use: a fraction of MemAvailable (Linux), else of physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * MEMORY_FRACTION)
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_FRACTION)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def load_genome(path: str | os.PathLike[str], honour_snooze_i: bool = False,
                memory_limit: int | None = None) -> Genome:
    """Read, validate and return the genome at `path`.

    honour_snooze_i: read `nx-snooze-i` as the snooze where `nx-snooze-f` is absent (FEAGI does not).
    memory_limit: bytes the neuron arrays may take (default: 80% of available memory); a genome above
    it is refused before anything is allocated.
    """
    p = Path(path)
    ctx = _Ctx(str(path))
    data = read_json(p, "genome file")
    if not isinstance(data, dict):
        raise ctx.fail("", f"the top level is a JSON {type(data).__name__}, not a genome object",
                       "give a FEAGI genome (an object with 'blueprint' and 'neuron_morphologies')")
    bp = data.get("blueprint")
    if isinstance(bp, dict) and "cortical_areas" in bp and not any(str(k).startswith(FLAT_PREFIX) for k in bp):
        raise ctx.fail("blueprint", "this is a different schema (blueprint.cortical_areas, like feagi-core's "
                       "example_fp32/int8 illustrative genomes), not a flat FEAGI 2.x genome",
                       "export the genome from FEAGI in the flat 2.x format ('_____10c-...' blueprint keys)")
    if not isinstance(bp, dict) or not any(str(k).startswith(FLAT_PREFIX) for k in bp):
        raise ctx.fail("blueprint", "no '_____10c-<cortical_id>-<cx|nx>-<gene>-<type>' keys: not a flat FEAGI 2.x genome",
                       "give a flat 2.x genome as FEAGI saves it")
    version = str(data.get("version", ""))
    if not version.startswith("2."):
        raise ctx.fail("version", f"genome version {version!r} is not supported (flat 2.x only)",
                       "export the genome as a 2.x flat genome")
    warnings: list[str] = []

    # --- areas, in order of first appearance ---
    raw_areas: dict[str, dict[str, Any]] = {}
    keys_of: dict[str, dict[str, str]] = {}
    unknown: dict[str, int] = {}
    ignored: dict[str, int] = {}
    for key, value in bp.items():
        if not key.startswith(FLAT_PREFIX):
            continue  # `_____10b-` species genes and the like carry no brain structure
        parts = key.split("-")
        if len(parts) != 5 or parts[2] not in ("cx", "nx"):
            raise ctx.fail(f"key {key!r}", "malformed blueprint key",
                           "write '_____10c-<cortical_id>-<cx|nx>-<gene>-<type>'")
        cid, gene = parts[1], f"{parts[3]}-{parts[4]}"
        raw_areas.setdefault(cid, {})
        keys_of.setdefault(cid, {})
        fieldname = GENE_SPELLINGS.get(gene)
        if gene in GENE_SPELLINGS and fieldname is None:  # a spelling FEAGI does not read
            if gene in OPTIONAL_SPELLINGS:
                raw_areas[cid][OPTIONAL_SPELLINGS[gene]] = value
                keys_of[cid][OPTIONAL_SPELLINGS[gene]] = key
            if value not in (0, None):
                ignored[parts[2] + "-" + gene] = ignored.get(parts[2] + "-" + gene, 0) + 1
            continue
        if fieldname is None:
            if gene not in UNUSED_GENES:
                unknown[gene] = unknown.get(gene, 0) + 1
            continue
        # the same gene under both prefixes: FEAGI takes the nx- one (docs/feagi-findings.md 2.2)
        if parts[2] == "cx" and keys_of[cid].get(fieldname, "").split("-")[2:3] == ["nx"]:
            continue
        raw_areas[cid][fieldname] = value
        keys_of[cid][fieldname] = key

    # FEAGI rejects the load on a bad id; name every bad core id at once so one edit fixes them all
    bad_core = [cid for cid in raw_areas if cid.startswith("_") and cid not in CORE_ALIASES]
    if bad_core:
        known = ", ".join(sorted(CORE_ALIASES))
        raise ctx.fail(f"cortical id{'s' if len(bad_core) > 1 else ''} {', '.join(map(repr, bad_core))}",
                       "not a valid core type: FEAGI 2.6.10 rejects ids starting with '_' other than its "
                       f"core areas ({known})", "rename those areas to custom ids such as 'c' + 5 letters "
                       "(and every mapping to them)")
    areas: list[AreaGene] = []
    core_seen: dict[str, str] = {}
    for cid, raw in raw_areas.items():
        first_key = next(iter(keys_of[cid].values()), f"{FLAT_PREFIX}{cid}-...")
        core = _parse_id(ctx, cid, first_key)
        if core is not None:
            if core in core_seen:
                raise ctx.fail(f"cortical ids {core_seen[core]!r} and {cid!r}",
                               f"both are the core area {core!r}", "keep one of them")
            core_seen[core] = cid
        vals: dict[str, Any] = {}
        for gene, (_kind, default) in GENE_KINDS.items():
            where = f"cortical id {cid!r} key {keys_of[cid].get(gene, gene)!r}"
            # null counts as absent (FEAGI's converter treats null coordinates the same way)
            vals[gene] = _convert(ctx, where, gene, raw[gene]) if raw.get(gene) is not None else default
        if core == "power" and "psp_uniform" not in raw:
            vals["psp_uniform"] = True  # FEAGI's flat converter: power sends full psp on each synapse
        area = AreaGene(
            cortical_id=cid, name=vals["name"] or cid, group=vals["group"],
            dimensions=(vals["size_x"], vals["size_y"], vals["size_z"]),
            neurons_per_voxel=vals["neurons_per_voxel"], threshold=vals["threshold"],
            threshold_increment=(vals["threshold_inc_x"], vals["threshold_inc_y"], vals["threshold_inc_z"]),
            threshold_limit=vals["threshold_limit"], refractory_period=vals["refractory_period"],
            leak=vals["leak"], cfc_limit=vals["cfc_limit"], snooze=vals["snooze"], snooze_i=vals["snooze_i"],
            snooze_f_given="snooze" in raw, mp_accumulate=vals["mp_accumulate"],
            mp_driven_psp=vals["mp_driven_psp"], psp=vals["psp"], psp_uniform=vals["psp_uniform"],
            excitability=vals["excitability"], memory=vals["memory"], core=core)
        if honour_snooze_i:
            area.snooze = area.effective_snooze(True)
        if core is not None and area.neuron_count != 1:
            warnings.append(f"core area {cid!r} has {area.neuron_count} neurons in the genome; "
                            "FEAGI gives core areas exactly one neuron, so it is built 1x1x1")
            area.dimensions, area.neurons_per_voxel = (1, 1, 1), 1
        dstmap = raw.get("mappings", {})
        if dstmap is None:
            dstmap = {}
        where = f"cortical id {cid!r} key {keys_of[cid].get('mappings', 'cx-dstmap-d')!r}"
        if not isinstance(dstmap, dict):
            raise ctx.fail(where, f"mappings must be an object {{destination: [rules]}}, got {type(dstmap).__name__}",
                           "write {} for no mappings")
        for dst, rules in dstmap.items():
            if not isinstance(rules, list):
                raise ctx.fail(where, f"rules for destination {dst!r} must be a list", "write [[...], ...]")
            for i, rule in enumerate(rules):
                area.mappings.append(_parse_rule(ctx, f"{where} destination {dst!r}", dst, i, rule))
        areas.append(area)

    if ignored:
        names = ", ".join(f"{g} ({n} areas)" for g, n in sorted(ignored.items()))
        hint = " (pass honour_snooze_i=True to read nx-snooze-i)" if any("snooze-i" in g for g in ignored) else ""
        warnings.append(f"ignored: gene spellings FEAGI 2.6.10 does not read, with non-zero values: {names}{hint}")
    if unknown:
        warnings.append("ignored: unknown genes " + ", ".join(f"{g} ({n})" for g, n in sorted(unknown.items())))

    # --- size guard before anything is allocated ---
    total_neurons = sum(a.neuron_count for a in areas) + len(CORE_KINDS)
    if total_neurons > MAX_NEURONS:
        raise ctx.fail("blueprint", f"{total_neurons:,} neurons exceed the 2^32-1 neuron ids of the engine",
                       "make areas smaller")
    limit = available_memory() if memory_limit is None else memory_limit
    need = total_neurons * BYTES_PER_NEURON
    if need > limit:
        raise ctx.fail("blueprint", f"{total_neurons:,} neurons need about {need / 2**30:.2f} GiB, "
                       f"more than the {limit / 2**30:.2f} GiB available",
                       "make areas smaller or run on a machine with more memory")

    # --- morphologies ---
    raw_morphs = data.get("neuron_morphologies", {})
    if raw_morphs is None:
        raw_morphs = {}
    if not isinstance(raw_morphs, dict):
        raise ctx.fail("neuron_morphologies", "must be an object {name: definition}", "write {} if there are none")
    morphologies: dict[str, Morphology] = {}
    unusable: set[str] = set()
    for mid, raw in raw_morphs.items():
        m = _parse_morphology(ctx, mid, raw, core=False)
        if m is None:
            unusable.add(mid)
        else:
            morphologies[mid] = m
    for mid, raw in CORE_MORPHOLOGIES.items():
        if mid not in morphologies:  # missing or unusable in the genome: FEAGI adds its own
            m = _parse_morphology(ctx, mid, raw, core=True)
            assert m is not None
            morphologies[mid] = m
            unusable.discard(mid)

    # --- mappings: destinations and morphologies must exist ---
    ids = {a.cortical_id for a in areas}
    core_ids = {a.core for a in areas if a.core}
    used_unusable: dict[str, int] = {}
    used_unsupported: dict[str, int] = {}
    plastic = delayed = 0
    for a in areas:
        for r in a.mappings:
            where = f"cortical id {a.cortical_id!r} mapping to {r.destination!r}"
            dst_core = CORE_ALIASES.get(r.destination)
            if r.destination not in ids and not (dst_core and dst_core not in core_ids):
                hint = " (the '//' looks like a commented-out mapping: JSON has no comments)" \
                    if r.destination.startswith("//") else ""
                raise ctx.fail(where, f"destination area {r.destination!r} is not in the genome{hint}",
                               "add that area or remove the mapping")
            if r.morphology_id in unusable:
                used_unusable[r.morphology_id] = used_unusable.get(r.morphology_id, 0) + 1
            elif r.morphology_id not in morphologies:
                raise ctx.fail(where, f"morphology {r.morphology_id!r} is not defined in neuron_morphologies "
                               "and is not a FEAGI core morphology", "define it or use another morphology")
            elif not morphologies[r.morphology_id].supported:
                used_unsupported[r.morphology_id] = used_unsupported.get(r.morphology_id, 0) + 1
            plastic += r.plastic
            delayed += r.delay not in (0, 1)
    for mid, n in sorted(used_unusable.items()):
        warnings.append(f"morphology {mid!r} has no 'type' (pre-2.0 format) and FEAGI cannot use it: "
                        f"its {n} rule(s) create no synapses")
    for mid, n in sorted(used_unsupported.items()):
        warnings.append(f"morphology {mid!r} ({morphologies[mid].kind}): {morphologies[mid].why_unsupported}; "
                        f"its {n} rule(s) create no synapses")
    if plastic:
        warnings.append(f"ignored: plasticity on {plastic} mapping rule(s); their synapses are built static "
                        "(FEAGI 2.6.10 itself rejects plastic rules whose plasticity_window is not > 0)")
    if delayed:
        warnings.append(f"ignored: synaptic delays on {delayed} mapping rule(s); spikes arrive the next burst")
    mem = [a.cortical_id for a in areas if a.memory]
    if mem:
        warnings.append(f"ignored: memory areas {mem}; they are built as plain areas without memory formation")
    if data.get("modulators"):
        warnings.append("ignored: modulators; the brain runs without them")

    title = data.get("genome_title") or data.get("genome_id") or p.stem
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    physiology = data.get("physiology") if isinstance(data.get("physiology"), dict) else {}
    return Genome(title=str(title), path=str(path), version=version, areas=areas, morphologies=morphologies,
                  warnings=warnings, fingerprint=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                  physiology=physiology)
