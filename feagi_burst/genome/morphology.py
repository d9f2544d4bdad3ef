"""Morphologies: read from a genome's `neuron_morphologies`, then -> voxel pairs, vectorised with
numpy (SPEC.md section 3).

`parse_morphologies` reads the genome's definitions and adds FEAGI's core morphologies the genome
lacks (or defines unusably): every pattern of every morphology must be `[source, dest]`, used or
not; a morphology without `type` (the pre-2.0 `{"vectors": ...}` form) is unusable.

Every generator returns an int64 array of shape (n, 2): column 0 the source voxel index, column 1
the destination voxel index, with voxel index = (x * dim_y + y) * dim_z + z (the order of
`CorticalArea.voxel_receiver`). Pairs come out in FEAGI's creation order where it matters: grouped
by vector / pattern, source voxels ascending inside a group. Expansion later sorts synapses stably by
source, so inside one source the order is the order of the vectors or patterns.

Python loops run over vectors, patterns and the three axes, never over voxels or synapses.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from feagi_burst.errors import FileContext

Dims = tuple[int, int, int]

# Pattern tokens per axis (SPEC.md section 3). An int is an absolute coordinate.
ANY = "*"  # source: every coordinate; destination: every coordinate
SAME = "?"  # source: every coordinate; destination: the source's coordinate
OTHER = "!"  # source: every coordinate; destination: every coordinate but the source's
PATTERN_TOKENS = (ANY, SAME, OTHER)

PatternAxis = int | str
PatternSide = tuple[PatternAxis, PatternAxis, PatternAxis]
Pattern = tuple[PatternSide, PatternSide]


@dataclass(frozen=True)
class Morphology:
    """One neuron morphology, as loaded from `neuron_morphologies` (or FEAGI's core set).

    kind: "vectors", "patterns", "functions" or "composite". `supported` is False for kinds or
    functions this engine does not build (they create no synapses; the loader warns once each).
    """

    morphology_id: str
    kind: str
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int64))
    patterns: tuple[Pattern, ...] = ()
    core: bool = False
    supported: bool = True
    why_unsupported: str = ""


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


def _parse_morphology(ctx: FileContext, mid: str, raw: Any, core: bool) -> Morphology | None:
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


def parse_morphologies(ctx: FileContext, raw_morphs: dict[str, Any]) -> tuple[dict[str, Morphology], set[str]]:
    """(morphologies by id, ids of the unusable ones) of a genome's `neuron_morphologies`.

    A core morphology missing or unusable in the genome is FEAGI's own (and no longer unusable).
    """
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
    return morphologies, unusable


def voxel_count(dims: Dims) -> int:
    """Number of voxels of an area of these dimensions."""
    return int(dims[0]) * int(dims[1]) * int(dims[2])


def _scaled_vectors(vectors: np.ndarray, scalar: Sequence[int]) -> np.ndarray:
    # Legacy FEAGI scales each vector component by the rule's scalar on that axis
    # (`[v * s for v, s in zip(vector, scalar)]`); every real genome uses [1, 1, 1].
    return np.asarray(vectors, np.int64).reshape(-1, 3) * np.asarray(scalar, np.int64).reshape(1, 3)


def vector_pairs(src: Dims, dst: Dims, vectors: np.ndarray, scalar: Sequence[int] = (1, 1, 1)) -> np.ndarray:
    """Voxel pairs (src, src + v) for each vector v, source-major (each source voxel's pairs in
    vector order, as FEAGI walks them); destinations outside `dst` are dropped, and a vector given
    twice (after scaling) counts once, so no pair repeats. Pairs of earlier rules are `dedupe_pairs`'
    job (SPEC: a vector pair already connected is skipped). A compiled kernel: a genome's large
    areas make ~10^8 pairs."""
    from feagi_burst.backends.compiled import threads
    from feagi_burst.build_kernels import vector_pairs as fill_pairs

    vec = _scaled_vectors(vectors, scalar)
    if vec.shape[0] == 0 or voxel_count(src) == 0:
        return np.zeros((0, 2), np.int64)
    _, first = np.unique(vec, axis=0, return_index=True)
    vec = np.ascontiguousarray(vec[np.sort(first)])
    return fill_pairs(np.array(src, np.int64), np.array(dst, np.int64), vec, threads())


def _axis_source(token: PatternAxis, size: int) -> np.ndarray:
    """Source coordinates allowed on one axis: an int selects one, any token means all."""
    if isinstance(token, (int, np.integer)):
        return np.array([token], np.int64) if 0 <= token < size else np.zeros(0, np.int64)
    return np.arange(size, dtype=np.int64)


def _axis_pairs(src_token: PatternAxis, dst_token: PatternAxis, src_size: int, dst_size: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """(source coordinate, destination coordinate) pairs allowed on one axis."""
    s = _axis_source(src_token, src_size)
    if isinstance(dst_token, (int, np.integer)):
        if 0 <= dst_token < dst_size:
            return s, np.full(s.shape[0], dst_token, np.int64)
        return s[:0], s[:0]
    if dst_token == SAME:
        keep = s < dst_size
        return s[keep], s[keep]
    d_all = np.arange(dst_size, dtype=np.int64)
    ss = np.repeat(s, dst_size)
    dd = np.tile(d_all, s.shape[0])
    if dst_token == OTHER:
        keep = ss != dd
        return ss[keep], dd[keep]
    return ss, dd  # ANY


def pattern_pairs(src: Dims, dst: Dims, patterns: Sequence[Pattern]) -> np.ndarray:
    """Voxel pairs of a patterns morphology (each pattern `[src, dst]`, per axis int, *, ?, !).

    A pattern is a product over the three axes, so it is built from three short per-axis pair
    lists with broadcasting. Duplicates across patterns are left for `dedupe_pairs`.
    """
    parts: list[np.ndarray] = []
    for s_side, d_side in patterns:
        ax = [_axis_pairs(s_side[i], d_side[i], src[i], dst[i]) for i in range(3)]
        (sx, dx), (sy, dy), (sz, dz) = ax
        if min(sx.shape[0], sy.shape[0], sz.shape[0]) == 0:
            continue
        s_idx = ((sx[:, None, None] * src[1] + sy[None, :, None]) * src[2] + sz[None, None, :]).ravel()
        d_idx = ((dx[:, None, None] * dst[1] + dy[None, :, None]) * dst[2] + dz[None, None, :]).ravel()
        pair = np.stack([s_idx, d_idx], axis=1)
        # FEAGI walks source neurons in id order: put this pattern's pairs in source order
        parts.append(pair[np.argsort(s_idx, kind="stable")])
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.int64)


def _projector_axis(src_size: int, dst_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(source coordinate, destination coordinate) pairs of the projector on one axis.

    FEAGI computes in f32: scale down dst = trunc(c / (s/d)), scale up every v with
    trunc(v / (d/s)) == c, equal sizes c -> c. f32 matters: 10 / (100/30) is 2.99.. not 3.
    """
    if src_size > dst_size:
        ratio = np.float32(src_size) / np.float32(dst_size)
        c = np.arange(src_size, dtype=np.int64)
        d = (c.astype(np.float32) / ratio).astype(np.int64)
        keep = d < dst_size
        return c[keep], d[keep]
    if src_size < dst_size:
        ratio = np.float32(dst_size) / np.float32(src_size)
        v = np.arange(dst_size, dtype=np.int64)
        c = (v.astype(np.float32) / ratio).astype(np.int64)
        keep = c < src_size
        return c[keep], v[keep]
    c = np.arange(src_size, dtype=np.int64)
    return c, c


def projector_pairs(src: Dims, dst: Dims) -> np.ndarray:
    """Voxel pairs of the core function `projector` (scales each axis independently)."""
    (sx, dx), (sy, dy), (sz, dz) = (_projector_axis(src[i], dst[i]) for i in range(3))
    s_idx = ((sx[:, None, None] * src[1] + sy[None, :, None]) * src[2] + sz[None, None, :]).ravel()
    d_idx = ((dx[:, None, None] * dst[1] + dy[None, :, None]) * dst[2] + dz[None, None, :]).ravel()
    order = np.argsort(s_idx, kind="stable")
    return np.stack([s_idx[order], d_idx[order]], axis=1)


def block_to_block_pairs(src: Dims, dst: Dims) -> np.ndarray:
    """Core `block_to_block`: the vectors morphology [[0, 0, 0]]."""
    return vector_pairs(src, dst, np.zeros((1, 3), np.int64))


def morphology_pairs(morph: Morphology, src: Dims, dst: Dims, scalar: Sequence[int] = (1, 1, 1)
                     ) -> np.ndarray:
    """Voxel pairs of one rule using `morph`; an unsupported morphology gives none."""
    if not morph.supported:
        return np.zeros((0, 2), np.int64)
    if morph.kind == "vectors":
        return vector_pairs(src, dst, morph.vectors, scalar)
    if morph.kind == "patterns":
        return pattern_pairs(src, dst, morph.patterns)
    if morph.kind == "functions" and morph.morphology_id == "projector":
        return projector_pairs(src, dst)
    if morph.kind == "functions" and morph.morphology_id == "block_to_block":
        return block_to_block_pairs(src, dst)
    return np.zeros((0, 2), np.int64)


def unique_pairs(morph: Morphology) -> bool:
    """`morphology_pairs` of this morphology never repeats a pair (no `dedupe_pairs` needed): vectors
    and block_to_block (a repeated vector counts once), projector, and a single pattern (a product
    of per-axis pair lists without repeats); several patterns may overlap."""
    return morph.kind != "patterns" or len(morph.patterns) <= 1


def pair_upper_bound(morph: Morphology, src: Dims, dst: Dims) -> int:
    """An upper bound on the voxel pairs `morphology_pairs` can make, computed without building them.

    Used to refuse a brain that would not fit in memory before allocating anything.
    """
    if not morph.supported:
        return 0
    n_src = voxel_count(src)
    if morph.kind == "vectors" or morph.morphology_id == "block_to_block":
        return n_src * max(1, int(morph.vectors.shape[0]))
    if morph.kind == "patterns":
        total = 0
        for s_side, d_side in morph.patterns:
            n = 1
            for i in range(3):
                ns = 1 if isinstance(s_side[i], (int, np.integer)) else src[i]
                nd = 1 if isinstance(d_side[i], (int, np.integer)) or d_side[i] == SAME else dst[i]
                n *= ns * nd
            total += n
        return total
    if morph.morphology_id == "projector":
        return int(np.prod([max(src[i], dst[i]) for i in range(3)], dtype=np.int64))
    return 0


def dedupe_pairs(pairs: np.ndarray, n_dst_voxels: int, existing: np.ndarray | None = None
                 ) -> np.ndarray:
    """Drop repeated pairs (first occurrence kept, order kept) and, if given, pairs in `existing`.

    `existing` holds the pair keys src * n_dst_voxels + dst already made by earlier rules of the
    same source -> destination mapping (the vectors rule of SPEC.md).
    """
    if pairs.shape[0] == 0:
        return pairs
    keys = pairs[:, 0] * n_dst_voxels + pairs[:, 1]
    _, first = np.unique(keys, return_index=True)
    first.sort()
    if existing is not None and existing.shape[0]:
        first = first[~np.isin(keys[first], existing)]
    return pairs[first]
