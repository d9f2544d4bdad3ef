"""Genome loading, validation, morphologies and expansion (SPEC.md section 3), 2.x and 3.0 formats.

Expected counts are FEAGI 2.6.10's (tests/data/genomes/SOURCES.md); neuron counts include the
one-neuron core areas FEAGI adds when a genome lacks them. tests/data/genomes/v3 holds genomes FEAGI
2.6.10 wrote itself in its 3.0 format; tests/data/genomes/feagi-stdp genomes FEAGI ran, with the
synapses it made (`*.rec.json`: the weights of each area pair, read from FEAGI's API).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feagi_burst.errors import InputError
from feagi_burst.genome import AreaLookup, PlasticPair, expand_genome, genome_info, load_genome
from feagi_burst.genome.expand import mapping_synapse_counts, rule_weight
from feagi_burst.genome.ids import decode_base64_id, migrate_legacy_id, parse_cortical_id
from feagi_burst.genome.morphology import (dedupe_pairs, morphology_pairs, pattern_pairs, projector_pairs,
                                           vector_pairs)
from feagi_burst.stimulus import resolve

DATA = Path(__file__).parent / "data" / "genomes"
V3 = DATA / "v3"
STDP = DATA / "feagi-stdp"


# ---------------------------------------------------------------- helpers

def write_genome(tmp_path: Path, areas: dict[str, dict[str, Any]],
                 morphologies: dict[str, Any] | None = None, name: str = "g.json", **top: Any) -> Path:
    """A flat genome file: `areas` maps cortical id -> {gene (e.g. 'cx-___bbx-i'): value}."""
    bp: dict[str, Any] = {}
    for cid, genes in areas.items():
        bp[f"_____10c-{cid}-cx-__name-t"] = genes.pop("name", cid)
        for gene, value in genes.items():
            bp[f"_____10c-{cid}-{gene}"] = value
    doc = {"version": "2.0", "genome_title": "test", "blueprint": bp,
           "neuron_morphologies": morphologies or {}}
    doc.update(top)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def area(x: int = 1, y: int = 1, z: int = 1, npv: int = 1, dstmap: dict[str, Any] | None = None,
         **genes: Any) -> dict[str, Any]:
    """Genes of one area of size x*y*z with npv neurons per voxel."""
    g: dict[str, Any] = {"cx-___bbx-i": x, "cx-___bby-i": y, "cx-___bbz-i": z, "cx-_n_cnt-i": npv,
                         "cx-dstmap-d": dstmap or {}}
    g.update(genes)
    return g


def rule(morph: str, psc: float = 1, plastic: bool = False) -> list[Any]:
    return [morph, [1, 1, 1], psc, plastic]


def pairs_of(brain: Any, src: str, dst: str) -> list[tuple[tuple[int, int, int], tuple[int, int, int]]]:
    """Synapses between two areas as ((src x, y, z), (dst x, y, z)), in stored order."""
    a, b = brain.area(src), brain.area(dst)
    s, t = brain.synapses.source.astype(np.int64), brain.synapses.target.astype(np.int64)
    keep = (s >= a.first_neuron) & (s < a.neuron_stop) & (t >= b.first_neuron) & (t < b.neuron_stop)
    n = brain.neurons
    return [((int(n.x[i]), int(n.y[i]), int(n.z[i])), (int(n.x[j]), int(n.y[j]), int(n.z[j])))
            for i, j in zip(s[keep], t[keep])]


def as_set(pairs: np.ndarray, src: tuple[int, int, int], dst: tuple[int, int, int]) -> set[tuple[tuple[int, ...], ...]]:
    """Voxel-index pairs -> {((sx, sy, sz), (dx, dy, dz))}."""
    out = set()
    for s, d in pairs.tolist():
        out.add((tuple(int(c) for c in np.unravel_index(s, src)), tuple(int(c) for c in np.unravel_index(d, dst))))
    return out


# ---------------------------------------------------------------- real genomes

def b64(text: str) -> str:
    """The 3.0 spelling of an 8-character id."""
    import base64
    return base64.b64encode(text.encode("latin-1")).decode("ascii")


COUNTS = [
    ("Huma_feagi_genome_pong.json", 56_560, 442_380),
    ("basic genome.json", 16_034, 121_776),
    ("feagi-core__essential_genome.json", 55_363, 1_552),
    ("feagi-py__essential_genome.json", 13_851, 400),
    ("feagi_blender_keyframe_genome.json", 203_532, 156),
    ("lift_drag_genome.json", 13_998, 8),
    ("test_timer.json", 109, 102),
    ("motor_pathway_m1.json", 27, 16),
    ("logic_and_gate__genome.json", 10, 2),
    ("static_genome.json", 171, 13),  # 13 synapses from FEAGI's core block_to_block
    ("motor_babble_genome.json", 3_027, 2_655),  # FEAGI's log: 2,655 synapses
    # plastic rules without a window: FEAGI aborts those sources' synaptogenesis in its sorted order
    ("LearningV1.1B__genome.json", 47_319, 33_934),  # the genome's own order would give 33,935
    ("Original Genome.json", 48_178, 32_506),
    ("feagi_genome_gesture_recognition.json", 8_358, 14_752),
    ("genome-tiago.json", 9_590, 0),
    ("webots-salamander-AvoidWalls.json", 287, 0),
    # the 7-character id 'c_avoid' is skipped with its mappings
    ("essential_genome_modification.json", 13_851, 400),
    # 3.0 files FEAGI 2.6.10 wrote: its export of feagi-core's essential genome (FEAGI ran the 2.x
    # original: 55,363 / 1,552), of stdp2 (FEAGI's synapses: feagi-stdp/stdp2.rec.json) and of probe2
    # with an edited snooze and npv 1 (FEAGI's highest neuron id in v3/probe2...feagi.json is 17)
    ("v3/feagi-core__essential_genome.v3.genome.json", 55_363, 1_552),
    ("v3/stdp2.v3.genome.json", 20, 28),
    ("v3/probe2.v3.snoozeedit.genome.json", 18, 11),
]


@pytest.mark.parametrize("name,neurons,synapses", COUNTS)
def test_feagi_counts(name: str, neurons: int, synapses: int) -> None:
    brain = expand_genome(load_genome(DATA / name))
    assert brain.neuron_count == neurons
    assert brain.synapse_count == synapses
    assert len(brain.neurons) == neurons
    # every core kind is there exactly once, with one neuron
    assert sum(a.neuron_count == 1 for a in brain.areas) >= 7
    assert brain.power_neuron is not None
    lookup = AreaLookup([a.cortical_id for a in brain.areas], [a.name for a in brain.areas])
    assert brain.neurons.cortical_area[brain.power_neuron] == lookup.index("___power") == lookup.index("_power")


def test_static_genome_1_loads_without_commented_out_mappings() -> None:
    # FEAGI was not run on it: "//i__inf" is not a valid id, so those two rules are skipped; the
    # engine's core block_to_block makes i__pro -> t__pro and t__pro -> o__bat (10 voxels each)
    g = load_genome(DATA / "static_genome_1.json")
    brain = expand_genome(g)
    assert (brain.neuron_count, brain.synapse_count) == (184, 20)
    assert sum("'//i__inf'" in w and "commented-out" in w for w in g.warnings) == 1
    assert sum("'//ii_inf'" in w for w in g.warnings) == 1
    dropped = [(m.source, m.dropped) for m in mapping_synapse_counts(g) if m.dropped]
    assert dropped == [("i__inf", "invalid destination id"), ("ii_inf", "invalid destination id")]


def test_pong_is_fast_and_sorted() -> None:
    g = load_genome(DATA / "Huma_feagi_genome_pong.json")
    t = time.perf_counter()
    brain = expand_genome(g)
    assert time.perf_counter() - t < 3.0
    src = brain.synapses.source
    assert np.all(src[1:] >= src[:-1])
    assert brain.synapses.target.max() < brain.neuron_count
    assert brain.power_neuron == brain.area("___pwr").first_neuron
    assert len(brain.fingerprint) == 64
    assert brain.synapses.weight.dtype == np.float32


def test_genome_info_of_pong() -> None:
    g = load_genome(DATA / "Huma_feagi_genome_pong.json")
    brain = expand_genome(g)
    info = genome_info(g, brain)
    assert info["title"] == g.title
    assert info["neurons"] == 56_560 and info["synapses"] == 442_380
    assert sum(m["synapses"] for m in info["mappings"]) == 442_380
    assert sum(a["neurons"] for a in info["areas"]) == 56_560
    assert {"cortical_id", "decoded_id", "name", "dimensions", "neurons_per_voxel", "neurons"} <= set(info["areas"][0])
    assert {"source", "destination", "morphology", "synapses", "dropped"} == set(info["mappings"][0])
    assert (info["format"], info["version"], info["plasticity"]) == ("2.x", "2.0", [])
    json.dumps(info)  # JSON-ready


# ---------------------------------------------------------------- rejected genomes

@pytest.mark.parametrize("name,words", [
    ("circuits__brightness_change_detection.json", ["'__back'", "not a valid core type"]),
    ("defaults__brightness_change_detection.json", ["'__back'", "not a valid core type"]),
    ("leak_test_1_23.json", ["Pattern must have 2 elements [source, dest]", "y_consolidator"]),
    ("example_fp32_genome.json", ["different schema", "not a flat FEAGI 2.x or 3.0 genome"]),
    ("example_int8_genome.json", ["different schema"]),
])
def test_rejected_real_genomes(name: str, words: list[str]) -> None:
    with pytest.raises(InputError) as e:
        load_genome(DATA / name)
    msg = str(e.value)
    assert "\n" not in msg and name in msg
    for w in words:
        assert w in msg


def one_line_error(path: Path, **kw: Any) -> str:
    with pytest.raises(InputError) as e:
        expand_genome(load_genome(path, **kw), **kw)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg
    return msg


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert "file not found" in one_line_error(tmp_path / "nope.json")
    assert "is a directory" in one_line_error(tmp_path)


def test_invalid_json_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "bad.json"
    p.write_text('{\n  "version": "2.0",\n  "blueprint": {,}\n}')
    msg = one_line_error(p)
    assert "invalid JSON" in msg and "line 3 column 17" in msg


def test_not_a_genome(tmp_path: Path) -> None:
    p = tmp_path / "list.json"
    p.write_text("[1, 2]")
    assert "not a genome object" in one_line_error(p)
    p.write_text('{"version": "2.0", "blueprint": {"x": 1}}')
    assert "not a flat FEAGI 2.x or 3.0 genome" in one_line_error(p)
    p = write_genome(tmp_path, {"c_aaaa": area()}, version="4.0")
    assert "version '4.0' is not supported (flat 2.x and 3.0 only)" in one_line_error(p)
    p = write_genome(tmp_path, {"c_aaaa": area()}, version="3.0", brain_regions=[1], name="b.json")
    assert "brain_regions: must be an object, got list" in one_line_error(p)


def test_mapping_to_missing_area(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_zzzz": [rule("block_to_block")]})})
    msg = one_line_error(p)
    assert "'c_zzzz' is not in the genome" in msg and "'c_aaaa'" in msg


def test_mapping_to_absent_core_area_is_fine(tmp_path: Path) -> None:
    # _death is added by FEAGI when missing, so a mapping to it is valid
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"_death": [rule("block_to_block")]})})
    brain = expand_genome(load_genome(p))
    assert pairs_of(brain, "c_aaaa", "___death") == [((0, 0, 0), (0, 0, 0))]


def test_missing_morphology(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_aaaa": [rule("no_such_morph")]})})
    msg = one_line_error(p)
    assert "'no_such_morph'" in msg and "not defined" in msg


def test_core_morphologies_are_added(tmp_path: Path) -> None:
    # none of these is defined in the genome: FEAGI adds its core set
    p = write_genome(tmp_path, {"c_aaaa": area(3, dstmap={"c_bbbb": [rule("projector")],
                                                          "c_aaaa": [rule("lateral_+x")]}),
                                "c_bbbb": area(3)})
    brain = expand_genome(load_genome(p))
    assert pairs_of(brain, "c_aaaa", "c_bbbb") == [((i, 0, 0), (i, 0, 0)) for i in range(3)]
    assert pairs_of(brain, "c_aaaa", "c_aaaa") == [((0, 0, 0), (1, 0, 0)), ((1, 0, 0), (2, 0, 0))]


@pytest.mark.parametrize("gene,value,words", [
    ("cx-___bbx-i", -2, "at least 1"),
    ("cx-___bbx-i", 0, "at least 1"),
    ("cx-___bby-i", 2.5, "whole number"),
    ("cx-___bbz-i", 10**9, "above the limit"),
    ("cx-___bbx-i", "4", "must be a number"),
    ("nx-fire_t-f", "high", "must be a number"),
    ("nx-fire_t-f", float("nan"), "NaN is not a number"),  # refused by the JSON reader, naming the key
    ("nx-leak_c-f", float("inf"), "is not a finite number"),
    ("nx-refrac-i", -1, "between 0 and 65535"),
    ("nx-mp_acc-b", "yes", "true or false"),
])
def test_bad_gene_values(tmp_path: Path, gene: str, value: Any, words: str) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(**{gene: value})})
    msg = one_line_error(p)
    assert words in msg and "c_aaaa" in msg and gene in msg


def test_huge_brain_is_refused_before_allocating(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(4000, 4000, 100)})
    msg = one_line_error(p)
    assert "GiB" in msg and "1,600,000,00" in msg
    # the synapse estimate is checked too (all_to_all between two 1000x1000 areas: 10^12 pairs)
    p = write_genome(tmp_path, {"c_aaaa": area(1000, 1000, dstmap={"c_bbbb": [rule("all_to_all")]}),
                                "c_bbbb": area(1000, 1000)}, name="b.json")
    assert "1,000,000,000,000 synapses" in one_line_error(p)


def test_bad_rules_and_patterns(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_aaaa": [["block_to_block", [1, 1, 1], 1]]})})
    assert "3 elements" in one_line_error(p)
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_aaaa": [["block_to_block", [1, 1, 1], "x", False]]})},
                     name="b.json")
    assert "psc multiplier 'x'" in one_line_error(p)
    p = write_genome(tmp_path, {"c_aaaa": area()}, {"m": {"type": "patterns", "parameters": {
        "patterns": [[["*", "*", "*"], [0, 0]]]}}}, name="c.json")
    assert "3 elements" in one_line_error(p)


def test_invalid_core_ids_fail_like_feagi(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"__back": area(), "_steer": area()})
    msg = one_line_error(p)
    assert "'__back', '_steer'" in msg and "not a valid core type" in msg
    # the same in 3.0: a base64 id whose bytes start with '_' but name no core area
    p = write_genome(tmp_path, {b64("___back_"): area()}, version="3.0", name="b.json")
    assert "not a valid core type" in one_line_error(p)


# ---------------------------------------------------------------- morphologies (voxel level)

def test_vectors_out_of_bounds_dropped() -> None:
    pairs = vector_pairs((3, 2, 1), (3, 2, 1), np.array([[1, 0, 0], [0, -1, 0]]))
    assert as_set(pairs, (3, 2, 1), (3, 2, 1)) == {
        ((0, 0, 0), (1, 0, 0)), ((0, 1, 0), (1, 1, 0)), ((1, 0, 0), (2, 0, 0)), ((1, 1, 0), (2, 1, 0)),
        ((0, 1, 0), (0, 0, 0)), ((1, 1, 0), (1, 0, 0)), ((2, 1, 0), (2, 0, 0))}
    # into a smaller destination, a vector leaving it is dropped
    assert as_set(vector_pairs((3, 1, 1), (2, 1, 1), np.array([[0, 0, 0]])), (3, 1, 1), (2, 1, 1)) == {
        ((0, 0, 0), (0, 0, 0)), ((1, 0, 0), (1, 0, 0))}
    # the rule scalar multiplies each component
    assert as_set(vector_pairs((4, 1, 1), (4, 1, 1), np.array([[1, 0, 0]]), (2, 1, 1)), (4, 1, 1), (4, 1, 1)) == {
        ((0, 0, 0), (2, 0, 0)), ((1, 0, 0), (3, 0, 0))}


def test_pattern_tokens() -> None:
    src, dst = (3, 2, 1), (3, 2, 1)
    # '?' keeps the source coordinate, '*' all, int fixed
    assert as_set(pattern_pairs(src, dst, [((0, "*", 0), ("?", "?", 0))]), src, dst) == {
        ((0, 0, 0), (0, 0, 0)), ((0, 1, 0), (0, 1, 0))}
    # '!' is every coordinate but the source's
    assert as_set(pattern_pairs(src, dst, [((1, 0, 0), ("!", 0, 0))]), src, dst) == {
        ((1, 0, 0), (0, 0, 0)), ((1, 0, 0), (2, 0, 0))}
    # '*' destination: all; a source-side '?' or '!' acts as '*'
    assert len(pattern_pairs(src, dst, [(("?", "!", "*"), ("*", "*", "*"))])) == 6 * 6
    # an int outside the area selects nothing
    assert len(pattern_pairs(src, dst, [((5, 0, 0), (0, 0, 0)), ((0, 0, 0), (0, 9, 0))])) == 0
    # '?' into a smaller destination drops coordinates it does not have
    assert as_set(pattern_pairs((3, 1, 1), (2, 1, 1), [(("*", 0, 0), ("?", 0, 0))]), (3, 1, 1), (2, 1, 1)) == {
        ((0, 0, 0), (0, 0, 0)), ((1, 0, 0), (1, 0, 0))}


def test_projector_scaling() -> None:
    # down-scaling 4 -> 2: floor(c / 2)
    assert as_set(projector_pairs((4, 1, 1), (2, 1, 1)), (4, 1, 1), (2, 1, 1)) == {
        ((0, 0, 0), (0, 0, 0)), ((1, 0, 0), (0, 0, 0)), ((2, 0, 0), (1, 0, 0)), ((3, 0, 0), (1, 0, 0))}
    # up-scaling 2 -> 5: every v with floor(v / 2.5) == c
    assert as_set(projector_pairs((2, 1, 1), (5, 1, 1)), (2, 1, 1), (5, 1, 1)) == {
        ((0, 0, 0), (0, 0, 0)), ((0, 0, 0), (1, 0, 0)), ((0, 0, 0), (2, 0, 0)),
        ((1, 0, 0), (3, 0, 0)), ((1, 0, 0), (4, 0, 0))}
    # axes scale independently; equal sizes map one to one
    p = projector_pairs((2, 3, 1), (1, 3, 2))
    assert as_set(p, (2, 3, 1), (1, 3, 2)) == {((x, y, 0), (0, y, z)) for x in range(2) for y in range(3)
                                               for z in range(2)}
    # FEAGI's f32 arithmetic: 16 -> 14, source 8 goes to 6 (8 / f32(16/14) = 6.9999995), not 7
    p = dict(projector_pairs((16, 1, 1), (14, 1, 1)).tolist())
    assert (p[7], p[8], p[9], p[15]) == (6, 6, 7, 13)
    # and up: 14 -> 16, destination 8 comes from source 6
    up = projector_pairs((14, 1, 1), (16, 1, 1)).tolist()
    assert [s for s, d in up if d == 8] == [6]


def test_dedupe_pairs() -> None:
    pairs = np.array([[0, 1], [0, 1], [2, 0], [1, 1]])
    assert dedupe_pairs(pairs, 3).tolist() == [[0, 1], [2, 0], [1, 1]]
    assert dedupe_pairs(pairs, 3, existing=np.array([0 * 3 + 1])).tolist() == [[2, 0], [1, 1]]


def test_duplicate_rules_through_expansion(tmp_path: Path) -> None:
    morphs = {"right": {"type": "vectors", "parameters": {"vectors": [[1, 0, 0]]}},
              "right2": {"type": "vectors", "parameters": {"vectors": [[1, 0, 0], [1, 0, 0]]}},
              "p01": {"type": "patterns", "parameters": {"patterns": [[[0, 0, 0], [1, 0, 0]],
                                                                      [[0, 0, 0], [1, 0, 0]]]}}}
    # vectors: a pair this rule or an earlier rule made is skipped
    p = write_genome(tmp_path, {"c_aaaa": area(2, dstmap={"c_bbbb": [rule("right2"), rule("right")]}),
                                "c_bbbb": area(2)}, morphs)
    assert pairs_of(expand_genome(load_genome(p)), "c_aaaa", "c_bbbb") == [((0, 0, 0), (1, 0, 0))]
    # patterns: once per rule, again for another rule
    p = write_genome(tmp_path, {"c_aaaa": area(2, dstmap={"c_bbbb": [rule("p01"), rule("p01")]}),
                                "c_bbbb": area(2)}, morphs, name="b.json")
    assert pairs_of(expand_genome(load_genome(p)), "c_aaaa", "c_bbbb") == [((0, 0, 0), (1, 0, 0))] * 2
    # a vectors rule after a patterns rule skips the pair the pattern made
    p = write_genome(tmp_path, {"c_aaaa": area(2, dstmap={"c_bbbb": [rule("p01"), rule("right")]}),
                                "c_bbbb": area(2)}, morphs, name="c.json")
    assert pairs_of(expand_genome(load_genome(p)), "c_aaaa", "c_bbbb") == [((0, 0, 0), (1, 0, 0))]


def test_synapse_rows_follow_rule_then_vector_order(tmp_path: Path) -> None:
    """Each source neuron's row, against the rule written out with loops: its rules in order, a
    vectors rule's pairs in vector order (a repeated vector, and a pair an earlier rule of the same
    mapping made, skipped), every neuron of the source voxel sending to the destination voxel's
    last neuron; a patterns or projector rule in its pair order (morphology_pairs, unit-tested
    above)."""
    vecs = [[1, 0, 0], [0, -1, 0], [1, 0, 0], [-2, 1, 1], [0, 0, 0], [5, 0, 0]]
    morphs = {"v": {"type": "vectors", "parameters": {"vectors": vecs}},
              "two": {"type": "patterns", "parameters": {"patterns": [[["*", 0, 0], ["?", 1, 0]],
                                                                       [[1, "*", 0], ["*", 0, 1]]]}}}
    a_map = {"c_bbbb": [rule("block_to_block"), rule("v", -2), rule("two", 0.5)],
             "c_aaaa": [["v", [2, 1, 1], 1, False], rule("projector")]}
    p = write_genome(tmp_path, {"c_aaaa": area(4, 3, 2, npv=2, dstmap=a_map),
                                "c_bbbb": area(3, 2, 2, npv=3, dstmap={"c_aaaa": [rule("v")]})},
                     {**morphs, "block_to_block": {"type": "vectors", "parameters": {"vectors": [[0, 0, 0]]}}})
    g = load_genome(p)
    brain = expand_genome(g)
    syn = brain.synapses
    starts = np.searchsorted(syn.source, np.arange(brain.neuron_count + 1))
    for src in ("c_aaaa", "c_bbbb"):
        a = brain.area(src)
        voxels = int(np.prod(a.dimensions))
        rows: dict[int, list[tuple[int, float, bool]]] = {s: [] for s in range(voxels)}
        made: dict[str, set[tuple[int, int]]] = {}
        for dst_id, rules in (a_map if src == "c_aaaa" else {"c_aaaa": [rule("v")]}).items():
            b = brain.area(dst_id)
            for r in rules:
                morph = g.morphologies[r[0]]
                done = made.setdefault(dst_id, set())
                if morph.kind == "vectors":
                    pairs = []
                    for s in range(voxels):
                        x, y, z = np.unravel_index(s, a.dimensions)
                        for v in morph.vectors.tolist():
                            d = (x + v[0] * r[1][0], y + v[1] * r[1][1], z + v[2] * r[1][2])
                            if all(0 <= d[i] < b.dimensions[i] for i in range(3)):
                                key = (s, int(np.ravel_multi_index(d, b.dimensions)))
                                if key not in done and key not in pairs:
                                    pairs.append(key)
                else:
                    pairs = [tuple(q) for q in morphology_pairs(morph, a.dimensions, b.dimensions).tolist()]
                    if morph.kind == "patterns":
                        pairs = list(dict.fromkeys(pairs))  # once per rule
                done.update(pairs)
                for s, d in pairs:
                    rows[s].append((b.first_neuron + d * b.neurons_per_voxel + b.neurons_per_voxel - 1,
                                    abs(r[2]), r[2] < 0))
        for s, row in rows.items():
            for k in range(a.neurons_per_voxel):
                n = a.first_neuron + s * a.neurons_per_voxel + k
                got = list(zip(syn.target[starts[n]:starts[n + 1]].tolist(),
                               syn.weight[starts[n]:starts[n + 1]].tolist(),
                               syn.inhibitory[starts[n]:starts[n + 1]].tolist()))
                assert got == row, (src, s, k)
        in_area = starts[a.first_neuron + a.neuron_count] - starts[a.first_neuron]
        assert in_area == sum(len(r) for r in rows.values()) * a.neurons_per_voxel
    assert (np.diff(syn.source.astype(np.int64)) >= 0).all() and syn.source.size > 300


def test_unsupported_morphology_warns_once(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(2, dstmap={"c_bbbb": [rule("expander_x"), rule("randomizer")],
                                                          "c_aaaa": [rule("expander_x")]}),
                                "c_bbbb": area(2)})
    brain = expand_genome(load_genome(p))
    assert brain.synapse_count == 0
    assert sum("'expander_x'" in w for w in brain.warnings) == 1
    assert sum("'randomizer'" in w for w in brain.warnings) == 1


# ---------------------------------------------------------------- neurons and synapses

def test_neuron_order_and_threshold_increments(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(2, 2, 2, npv=2, **{
        "nx-fire_t-f": 1.5, "nx-ftincx-f": 1.0, "nx-ftincy-f": 0.25, "nx-ftincz-f": 10.0})})
    brain = expand_genome(load_genome(p))
    a = brain.area("c_aaaa")
    assert a.first_neuron == 0 and a.neuron_count == 16
    n = brain.neurons
    coords = list(zip(n.x[:16].tolist(), n.y[:16].tolist(), n.z[:16].tolist()))
    assert coords == [(x, y, z) for x in range(2) for y in range(2) for z in range(2) for _ in range(2)]
    expect = [1.5 + x * 1.0 + y * 0.25 + z * 10.0 for x, y, z in coords]
    assert n.threshold[:16].tolist() == pytest.approx(expect)
    # the core areas follow, one neuron each, with FEAGI's defaults
    death = brain.area("___death")
    assert death.neuron_count == 1 and death.first_neuron == 16
    assert n.threshold[16] == 1.0 and n.leak[16] == pytest.approx(0.1) and n.refractory_period[16] == 5
    assert [x.cortical_id for x in brain.areas][1:] == ["___death", "___power", "___fatig", "___pain_",
                                                         "___pleas", "___fear_", "___hope_"]
    assert brain.power_neuron == brain.area("___power").first_neuron


def test_receiver_is_last_neuron_of_voxel(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(2, npv=3, dstmap={"c_bbbb": [rule("block_to_block")]}),
                                "c_bbbb": area(2, npv=4)})
    brain = expand_genome(load_genome(p))
    a, b = brain.area("c_aaaa"), brain.area("c_bbbb")
    s = brain.synapses
    got = sorted(zip((s.source - a.first_neuron).tolist(), (s.target - b.first_neuron).tolist()))
    # every neuron of source voxel x sends to neuron 4x+3 (the last of destination voxel x)
    assert got == [(0, 3), (1, 3), (2, 3), (3, 7), (4, 7), (5, 7)]


@pytest.mark.parametrize("psc,weight,inhibitory", [
    (1, 1.0, False), (3, 3.0, False), (-2, 2.0, True), (300, 300.0, False), (-1000, 1000.0, True),
    (0.5, 0.5, False), (-0.5, 0.5, True), (2.0, 2.0, False), (0, 0.0, False),
    (1.7, float(np.float32(1.7)), False), (0.3, float(np.float32(0.3)), False), (-14380.25, 14380.25, True)])
def test_weight_is_abs_psc_as_f32(tmp_path: Path, psc: float, weight: float, inhibitory: bool) -> None:
    # SPEC.md section 3: |psc multiplier| as f32, no rounding, no clamp (FEAGI: feagi-stdp/fracw)
    assert rule_weight(psc) == (weight, inhibitory)
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_bbbb": [rule("block_to_block", psc)]}),
                                "c_bbbb": area(), "_power": area(**{"nx-pstcr_-f": 500.0})})
    brain = expand_genome(load_genome(p))
    assert brain.synapses.weight.tolist() == [weight]
    assert brain.synapses.inhibitory.tolist() == [inhibitory]
    assert brain.area("_power").psp == 500.0  # psp is not clamped


def test_area_parameters_and_defaults(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {
        "c_aaaa": area(**{"nx-leak_c-f": 0.5, "nx-refrac-i": 3, "nx-c_fr_c-i": 2, "nx-snooze-f": 4,
                          "nx-mp_acc-b": True, "nx-mp_psp-b": True, "cx-pspuni-b": True,
                          "nx-pstcr_-f": 2.5, "nx-excite-f": 50, "nx-fthlim-f": 9.0}),
        "c_bbbb": {"cx-dstmap-d": {}},  # every gene absent
        "_power": {}})
    brain = expand_genome(load_genome(p))
    n = brain.neurons
    a, b, pw = brain.area("c_aaaa"), brain.area("c_bbbb"), brain.area("_power")
    i, j = a.first_neuron, b.first_neuron
    assert (n.leak[i], n.refractory_period[i], n.cfc_limit[i], n.snooze[i]) == (0.5, 3, 2, 4)
    assert (bool(n.mp_accumulate[i]), n.excitability[i], n.threshold_limit[i]) == (True, 50.0, 9.0)
    assert (a.mp_driven_psp, a.psp_uniform, a.psp) == (True, True, 2.5)
    assert (n.threshold[j], n.leak[j], n.refractory_period[j], n.excitability[j], bool(n.mp_accumulate[j])) == (
        1.0, 0.0, 0, 100.0, False)
    assert (b.dimensions, b.neurons_per_voxel, b.psp, b.psp_uniform, b.mp_driven_psp) == (
        (1, 1, 1), 1, 1.0, False, False)
    assert pw.psp_uniform  # FEAGI defaults the power area's psp_uniform to true
    assert brain.power_neuron == pw.first_neuron


def test_snooze_i_ignored_unless_honoured(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(**{"nx-snooze-i": 3}),
                                "c_bbbb": area(**{"nx-snooze-i": 3, "nx-snooze-f": 1})})
    g = load_genome(p)
    brain = expand_genome(g)
    assert brain.neurons.snooze[:2].tolist() == [0, 1]
    assert any("nx-snooze-i" in w for w in brain.warnings)
    assert expand_genome(g, honour_snooze_i=True).neurons.snooze[:2].tolist() == [3, 1]
    assert expand_genome(load_genome(p, honour_snooze_i=True)).neurons.snooze[:2].tolist() == [3, 1]


def test_legacy_power_ids_and_area_order(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(2), "___pwr": area(dstmap={"c_aaaa": [rule("projector")]}),
                                "c_bbbb": area(3)})
    brain = expand_genome(load_genome(p), area_order=["c_bbbb", "___pwr"])
    ids = [a.cortical_id for a in brain.areas]
    assert ids[:3] == ["c_bbbb", "___pwr", "c_aaaa"] and "___power" not in ids
    assert brain.power_neuron == 3 and brain.area("c_aaaa").first_neuron == 4
    assert brain.synapses.source.tolist() == [3, 3]
    with pytest.raises(InputError, match="area_order names 'c_zzzz'"):
        expand_genome(load_genome(p), area_order=["c_zzzz"])


def test_delay_modulators_classifiers_warn_once(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_bbbb": [
        ["block_to_block", [1, 1, 1], 1, True, 1, 1, 1, 4, 3], ["lateral_+x", [1, 1, 1], 1, False, 1, 1, 1, 4, 2]]}),
        "c_bbbb": area()}, modulators={"dopamine": {}}, classifiers={"k1": {}})
    g = load_genome(p)
    brain = expand_genome(g)
    assert brain.synapse_count == 1  # delays ignored: the synapse is built, spikes arrive the next burst
    assert g.plasticity == [PlasticPair("c_aaaa", "c_bbbb", 4, 1, 1)]  # plastic: for STDP, not ignored
    delays = [w for w in brain.warnings if "synaptic_delay_bursts" in w]
    assert len(delays) == 1 and "on 2 mapping rule(s)" in delays[0] and "'c_aaaa' -> 'c_bbbb' delay 3" in delays[0]
    assert sum(w.startswith("ignored: modulators (dopamine)") for w in brain.warnings) == 1
    assert sum(w.startswith("ignored: classifiers (1)") for w in brain.warnings) == 1
    assert not any("plasticity" in w for w in brain.warnings)


def test_fingerprint_is_canonical(tmp_path: Path) -> None:
    doc = json.loads((DATA / "test_timer.json").read_text())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(doc, indent=4))
    b.write_text(json.dumps(dict(reversed(list(doc.items())))))
    fa, fb = expand_genome(load_genome(a)).fingerprint, expand_genome(load_genome(b)).fingerprint
    assert fa == fb and len(fa) == 64
    doc["genome_title"] = "changed"
    b.write_text(json.dumps(doc))
    assert load_genome(b).fingerprint != fa


def test_prefix_spellings_nx_wins(tmp_path: Path) -> None:
    # early genomes write nx-___bbx-i and cx-pstcr_-f; with both prefixes FEAGI takes nx- (suffix2)
    p = write_genome(tmp_path, {
        "c_aaaa": {"nx-___bbx-i": 3, "cx-pstcr_-f": 5.0, "cx-dstmap-d": {}},
        "c_bbbb": {"cx-___bbx-i": 2, "nx-___bbx-i": 3, "nx-pstcr_-f": 2.0, "cx-pstcr_-f": 5.0},
        "c_cccc": {"nx-___bbx-i": 3, "cx-___bbx-i": 2, "cx-pstcr_-f": 5.0, "nx-pstcr_-f": 2.0}})
    brain = expand_genome(load_genome(p))
    a, b, c = brain.area("c_aaaa"), brain.area("c_bbbb"), brain.area("c_cccc")
    assert (a.dimensions, a.psp) == ((3, 1, 1), 5.0)
    assert (b.dimensions, b.psp) == ((3, 1, 1), 2.0)
    assert (c.dimensions, c.psp) == ((3, 1, 1), 2.0)


def test_excite_and_fthlim_i_are_ignored(tmp_path: Path) -> None:
    # docs/feagi-findings.md suffix1: FEAGI reads only the -f spellings
    p = write_genome(tmp_path, {"c_aaaa": area(**{"nx-excite-i": 0, "nx-fthlim-i": 2}),
                                "c_bbbb": area(**{"nx-excite-f": 0, "nx-fthlim-f": 2})})
    n = expand_genome(load_genome(p)).neurons
    assert (n.excitability[0], n.threshold_limit[0]) == (100.0, 0.0)
    assert (n.excitability[1], n.threshold_limit[1]) == (0.0, 2.0)


# ---------------------------------------------------------------- 3.0 format, ids and lookups

def v3_rule(morph: str, psc: float = 1, plastic: bool = False, window: float = 0, constant: float = 1,
            ltp: float = 1, ltd: float = 1, delay: int = 1) -> dict[str, Any]:
    """A mapping rule as FEAGI's 3.0 export writes it: an object with 9 keys."""
    return {"morphology_id": morph, "morphology_scalar": [1, 1, 1], "postSynapticCurrent_multiplier": psc,
            "plasticity_flag": plastic, "plasticity_constant": constant, "ltp_multiplier": ltp,
            "ltd_multiplier": ltd, "plasticity_window": window, "synaptic_delay_bursts": delay}


def write_v3(tmp_path: Path, areas: dict[str, dict[str, Any]], name: str = "g3.json", **top: Any) -> Path:
    """A 3.0 genome: `areas` keyed by 8-character ids, written as base64 (dstmap keys too)."""
    enc = {}
    for cid, genes in areas.items():
        genes = dict(genes)
        genes.setdefault("name", genes.pop("cx-__name-t", cid))
        if "cx-dstmap-d" in genes:
            genes["cx-dstmap-d"] = {b64(d): r for d, r in genes["cx-dstmap-d"].items()}
        enc[b64(cid)] = genes
    doc = {"version": "3.0", "genome_schema_version": 7, "brain_regions": {}, "brain_regions_root": "r",
           "classifiers": {}, "modulators": {}, "physiology": {"simulation_timestep": 0.25}}
    doc.update(top)
    return write_genome(tmp_path, enc, name=name, **doc)


def test_v3_export_equals_its_2x_original() -> None:
    # FEAGI 2.6.10 saved stdp2 in its 3.0 format: same areas (by name), synapses, weights and plastic pairs
    a, b = load_genome(STDP / "stdp2.genome.json"), load_genome(V3 / "stdp2.v3.genome.json")
    assert (a.format, b.format, b.version, b.schema_version, b.timestep) == ("2.x", "3.0", "3.0", 7, 0.25)
    ba, bb = expand_genome(a), expand_genome(b)

    def by_name(brain: Any) -> list[tuple[str, str, float, bool]]:
        names = [x.name for x in brain.areas]
        ca, s = brain.neurons.cortical_area, brain.synapses
        return sorted(zip([names[i] for i in ca[s.source]], [names[i] for i in ca[s.target]],
                          s.weight.tolist(), s.inhibitory.tolist()))
    assert by_name(ba) == by_name(bb) and len(by_name(bb)) == 28
    keys_a = {x.cortical_id: x.sort_key for x in a.areas}
    assert sorted((keys_a[p.src_area], keys_a[p.dst_area], p.window, p.dp, p.dm) for p in a.plasticity) == \
        sorted((p.src_area, p.dst_area, p.window, p.dp, p.dm) for p in b.plasticity)
    # and the 3.0 essential genome builds FEAGI's brain of the 2.x original
    e2 = expand_genome(load_genome(DATA / "feagi-core__essential_genome.json"))
    e3 = expand_genome(load_genome(V3 / "feagi-core__essential_genome.v3.genome.json"))
    assert sorted((x.name, x.dimensions, x.neurons_per_voxel) for x in e2.areas if not x.name[0].isupper()) == \
        sorted((x.name, x.dimensions, x.neurons_per_voxel) for x in e3.areas if not x.name[0].isupper())
    assert by_name(e2) == by_name(e3)


def test_v3_ids_are_shown_decoded_and_found_every_way() -> None:
    g = load_genome(V3 / "feagi-core__essential_genome.v3.genome.json")
    a = g.area("M1_BW")
    assert (a.cortical_id, a.decoded_id, a.name) == ("Y0lITW90X18=", "cIHMot__", "M1_BW")
    assert g.area("cIHMot__") is a and g.area("Y0lITW90X18=") is a
    vis = g.area("vision_LL")
    assert (vis.cortical_id, vis.decoded_id) == ("aXN2aQkAAAA=", "isvi\\x09\\x00\\x00\\x00")
    assert g.area("isvi\\x09\\x00\\x00\\x00") is vis and g.area("isvi\t\x00\x00\x00") is vis
    assert g.area("_power") is g.area("___power") is g.area("X19fcG93ZXI=") is g.area("Brain_Power")
    with pytest.raises(KeyError, match="unknown cortical area 'cIHMot'"):
        g.area("cIHMot")
    # genome info: the format it read, both ids and the name; --area by any of them
    brain = expand_genome(g)
    info = genome_info(g, brain, area="cIHMot__")
    assert (info["format"], info["version"]) == ("3.0", "3.0")
    assert info["areas"] == [{"cortical_id": "Y0lITW90X18=", "decoded_id": "cIHMot__", "name": "M1_BW",
                              "dimensions": [1, 1, 1], "neurons_per_voxel": 1, "neurons": 1,
                              "model": "feagi_lif"}]
    assert [(m["source"], m["destination"], m["synapses"]) for m in info["mappings"]] == [
        ("Y0lITW90X18=", "b21vdAUAAAA=", 1), ("Y19fYmFjX18=", "Y0lITW90X18=", 1)]
    assert genome_info(g, brain, area="M1_BW") == info == genome_info(g, brain, area="Y0lITW90X18=")


def test_stimulus_finds_areas_by_written_id_decoded_id_and_name() -> None:
    brain = expand_genome(load_genome(V3 / "feagi-core__essential_genome.v3.genome.json"))
    a = next(x for x in brain.areas if x.name == "vision_C")
    got = [resolve([{"area": key, "voxels": [[1, 2, 0]], "bursts": [1]}], brain)[0].neurons.tolist()
           for key in (a.cortical_id, "isviI\\x00\\x00\\x00", "isviI\x00\x00\x00", "vision_C")]
    assert got == [a.voxel_receiver([[1, 2, 0]]).tolist()] * 4
    power = resolve([{"area": "_power", "voxels": [[0, 0, 0]], "bursts": [1]}], brain)[0].neurons.tolist()
    assert power == [brain.power_neuron]
    with pytest.raises(InputError) as e:
        resolve([{"area": "vision_Q", "voxels": [[0, 0, 0]], "bursts": [1]}], brain, "s.toml")
    msg = str(e.value)
    assert "\n" not in msg and "s.toml entry 1: unknown cortical area 'vision_Q'" in msg
    assert "Y0lITW90X18= (cIHMot__, M1_BW)" in msg and "decoded id or the area's name" in msg


def test_lookup_precedence_and_shared_names() -> None:
    lk = AreaLookup(["c_aaaa", "c_bbbb", "c_cccc", b64("c_dddd__")], ["twin", "twin", "c_aaaa", "d"])
    assert lk.index("c_aaaa") == 0  # an id beats another area's name
    assert lk.index("c_cccc") == 2 and lk.index("d") == 3 and lk.index("c_dddd__") == 3
    with pytest.raises(KeyError, match="name 'twin' is shared by areas 'c_aaaa', 'c_bbbb'; give a cortical id"):
        lk.index("twin")
    assert lk.get("nope") is None


def test_lookup_and_loading_are_linear(tmp_path: Path) -> None:
    """No scan over areas per area or per rule: 4x the areas costs about 4x (quadratic would be 16x)."""
    def chain(n: int) -> Path:
        areas = {f"c{i:07d}": {"cx-__name-t": f"area {i}", "cx-___bbx-i": 2,
                               "cx-dstmap-d": {f"c{(i + 1) % n:07d}": [v3_rule("block_to_block")]}}
                 for i in range(n)}
        return write_v3(tmp_path, areas, name=f"chain{n}.json")

    def cost(path: Path) -> tuple[float, Any]:
        t = time.process_time()
        g = load_genome(path)
        brain = expand_genome(g)
        lookup = AreaLookup([a.cortical_id for a in brain.areas], [a.name for a in brain.areas])
        assert all(lookup.index(f"area {i}") == i for i in range(0, len(g.areas), 97))
        return time.process_time() - t, brain
    small, big = chain(4_000), chain(16_000)
    cost(small)  # warm up imports and caches
    t_small, _ = min(cost(small), cost(small), key=lambda r: r[0])
    t_big, brain = cost(big)
    assert (brain.neuron_count, brain.synapse_count) == (32_007, 32_000)
    assert t_big < 8 * t_small + 0.5, (t_small, t_big)


@pytest.mark.soak
def test_150000_areas_load_in_seconds(tmp_path: Path) -> None:
    areas = {f"c{i:07d}": {"cx-__name-t": f"a{i}", "cx-dstmap-d": {f"c{(i + 1) % 150_000:07d}": [
        v3_rule("block_to_block")]}} for i in range(150_000)}
    p = write_v3(tmp_path, areas)
    t = time.perf_counter()
    brain = expand_genome(load_genome(p))
    assert (brain.neuron_count, brain.synapse_count) == (150_007, 150_000)
    assert time.perf_counter() - t < 120


def test_id_rules() -> None:
    assert decode_base64_id("Y0lITW90X18=") == b"cIHMot__"
    assert decode_base64_id("Y0lITW90X18") is None  # no padding
    assert decode_base64_id(b64("xIHMot__")) is None  # 'x' is no type prefix
    assert decode_base64_id("c_avoid") is None
    # FEAGI's migration of legacy ids (what its 3.0 export writes)
    assert migrate_legacy_id("CRSMot", "CUSTOM") == b"cRSMot__"
    assert migrate_legacy_id("m__lef", "CUSTOM") == b"c__lef__"  # FEAGI's export of feagi-py's essential genome
    assert migrate_legacy_id("___pwr") == migrate_legacy_id("_power") == b"___power"
    assert parse_cortical_id("c_avoid") is None and parse_cortical_id("//i__inf") is None
    assert parse_cortical_id("C11sti", "CUSTOM").sort_key == b64("c11sti__")  # type: ignore[union-attr]


# ---------------------------------------------------------------- FEAGI's rules

def feagi_pairs(name: str) -> dict[str, list[tuple[float, int]]]:
    """FEAGI's synapses per 'src>dst' pair after burst 1: [(weight, type 0/1 = excitatory/inhibitory)]."""
    rec = json.loads((STDP / f"{name}.rec.json").read_text())
    first = rec["weights"][min(rec["weights"], key=int)]
    return {pair: sorted((w, t) for syns in voxels.values() for w, t, _psp in syns) for pair, voxels in first.items()}


def engine_pairs(brain: Any, sources: set[str]) -> dict[str, list[tuple[float, int]]]:
    ids = [a.cortical_id for a in brain.areas]
    ca, s = brain.neurons.cortical_area, brain.synapses
    out: dict[str, list[tuple[float, int]]] = {}
    for src, dst, w, inh in zip(ca[s.source], ca[s.target], s.weight.tolist(), s.inhibitory.tolist()):
        if ids[src] in sources:
            out.setdefault(f"{ids[src]}>{ids[dst]}", []).append((w, int(inh)))
    return {k: sorted(v) for k, v in out.items()}


def test_window_0_abort_follows_feagi_sorted_order() -> None:
    # destinations written T4, T1, T3 (plastic, window 0), T5, T2: FEAGI kept only T1 and T2
    g = load_genome(STDP / "fail_w0_order.genome.json")
    brain = expand_genome(g)
    want = feagi_pairs("fail_w0_order")
    assert want == {"cSrcS0>cTgt10": [(10.0, 0)], "cSrcS0>cTgt20": [(20.0, 0)]}
    assert engine_pairs(brain, {"cSrcS0"}) == want
    aborts = [w for w in g.warnings if "aborts the synaptogenesis" in w]
    assert len(aborts) == 1
    assert "plastic rule 'cSrcS0' -> 'cTgt30' #1 ('projector') has plasticity_window 0 (below 1)" in aborts[0]
    assert "3 rule(s) to 'cTgt30', 'cTgt40', 'cTgt50' make no synapses" in aborts[0]
    assert g.plasticity == []  # the failing pair has no synapses: nothing for STDP


def test_window_0_order_is_base64_of_feagi_ids_not_the_written_order(tmp_path: Path) -> None:
    # C11sti sorts before CZOLef as written, but FEAGI sorts base64('cZOLef__') = 'Y1pP...' before
    # base64('c11sti__') = 'YzEx...': CZOLef keeps its synapses (LearningV1.1B's 33,934, not 33,935)
    for order in (["C11sti", "CZOLef"], ["CZOLef", "C11sti"]):
        dstmap = {"C11sti": [["block_to_block", [1, 1, 1], 1, True, 1, 1, 1]],  # 7 elements: no window
                  "CZOLef": [rule("block_to_block", 5)]}
        p = write_genome(tmp_path, {"CSrc01": area(2, dstmap={d: dstmap[d] for d in order}),
                                    "C11sti": area(2), "CZOLef": area(2),
                                    "COther": area(2, dstmap={"C11sti": [rule("block_to_block")]})})
        brain = expand_genome(load_genome(p))
        assert engine_pairs(brain, {"CSrc01", "COther"}) == {"CSrc01>CZOLef": [(5.0, 0)] * 2,
                                                             "COther>C11sti": [(1.0, 0)] * 2}
    # 3.0: the keys as written are the sort order; a fractional window below 1 counts as 0
    p = write_v3(tmp_path, {"cSrc01__": {"cx-dstmap-d": {
        "cB______": [v3_rule("block_to_block", plastic=True, window=0.5)],
        "cA______": [v3_rule("block_to_block", 2), v3_rule("block_to_block", plastic=True, window=1.9)],
        "cC______": [v3_rule("block_to_block", 3)]}}, "cA______": {}, "cB______": {}, "cC______": {}})
    g = load_genome(p)
    assert engine_pairs(expand_genome(g), {b64("cSrc01__")}) == {f"{b64('cSrc01__')}>{b64('cA______')}": [(2.0, 0)]}
    assert g.plasticity == [PlasticPair(b64("cSrc01__"), b64("cA______"), 1, 1, 1)]
    assert sum("has plasticity_window 0.5 (below 1)" in w for w in g.warnings) == 1


def test_non_plastic_window_0_and_plastic_window_kept(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={
        "c_bbbb": [["block_to_block", [1, 1, 1], 1, False, 1, 1, 1, 0]],  # not plastic: window ignored
        "c_cccc": [["block_to_block", [1, 1, 1], 1, True, 3, 2, 1, 2]]}), "c_bbbb": area(), "c_cccc": area()})
    g = load_genome(p)
    assert expand_genome(g).synapse_count == 2
    assert g.plasticity == [PlasticPair("c_aaaa", "c_cccc", 2, 6, 3)]
    assert not any("abort" in w for w in g.warnings)


def test_plastic_pairs_truncate_clamp_and_last_rule_wins(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {
        "c_aaaa": area(dstmap={
            "c_bbbb": [["block_to_block", [1, 1, 1], 1, True, 1.9, 1.9, 2.9, 3],  # trunc each factor: 1*1, 1*2
                       ["block_to_block", [1, 1, 1], 1, False, 9, 9, 9, 9],  # not plastic: no say
                       ["all_to_all", [1, 1, 1], 1, True, 100, 3, -2, 25.7]],  # last plastic: wins
            "c_cccc": [["block_to_block", [1, 1, 1], 1, True, -3, 2, -4, 1]],  # negative step: 0; 12
            "_death": [["block_to_block", [1, 1, 1], 1, True, 2, 2, 2, 1]]}),  # a core alias
        "c_bbbb": area(), "c_cccc": area()})
    g = load_genome(p)
    assert g.plasticity == [PlasticPair("c_aaaa", "c_bbbb", 25, 255, 0), PlasticPair("c_aaaa", "c_cccc", 1, 0, 12),
                            PlasticPair("c_aaaa", "___death", 1, 4, 4)]
    brain = expand_genome(g)
    assert {p.dst_area for p in g.plasticity} <= {a.cortical_id for a in brain.areas}


def test_stdp_pairs_are_feagis_plastic_mappings() -> None:
    rec = json.loads((STDP / "stdp2.rec.json").read_text())
    g = load_genome(V3 / "stdp2.v3.genome.json")
    feagi = sorted(map(tuple, rec["plasticity_info"]["plastic_mappings"]))
    assert sorted((p.src_area, p.dst_area) for p in g.plasticity) == feagi and len(feagi) == 11
    steps = {g.area(p.dst_area).name: (p.window, p.dp, p.dm) for p in g.plasticity}
    assert steps["big300ltp_postE"] == (1, 255, 100) and steps["negltp_postE"] == (1, 0, 3)
    assert steps["w25_postE"][0] == 25 and steps["two_plastic_w1_w2_postE"][0] == 2
    # the synapses FEAGI made for every pair of the 2.x original, weights included
    brain = expand_genome(load_genome(STDP / "stdp2.genome.json"))
    want = feagi_pairs("stdp2")
    # FEAGI's record starts after burst 1, whose STDP (dm 3) already moved this pair: 0.5 -> 0, 100 -> 97
    assert want["_power>cPwrPl"] == [(0.0, 0), (97.0, 0)]
    want["_power>cPwrPl"] = [(0.5, 0), (100.0, 0)]
    assert engine_pairs(brain, {"_power", "cPreE0"}) == want


def test_fractional_and_large_weights_match_feagi() -> None:
    brain = expand_genome(load_genome(STDP / "fracw.genome.json"))
    want = feagi_pairs("fracw")
    assert want["_power>cTrd00"] == [(float(np.float32(0.3)), 0)] and want["_power>cBig00"] == [(300.0, 0)]
    assert engine_pairs(brain, {"_power", "cSrc00"}) == want
    assert brain.area("cSrc00").psp == 2.5


def test_invalid_length_id_is_skipped_with_its_mappings(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(2, dstmap={"c_avoid": [rule("block_to_block")],
                                                          "c_bbbb": [rule("block_to_block")]}),
                                "c_avoid": area(5, dstmap={"c_bbbb": [rule("block_to_block")],
                                                           "c_aaaa": [rule("all_to_all")]}),
                                "c_bbbb": area(2)})
    g = load_genome(p)
    brain = expand_genome(g)
    assert [a.cortical_id for a in g.areas] == ["c_aaaa", "c_bbbb"] and g.skipped_ids == ["c_avoid"]
    assert (brain.neuron_count, brain.synapse_count) == (4 + 7, 2)
    skipped = [w for w in g.warnings if "'c_avoid'" in w]
    assert len(skipped) == 1 and "its 2 mapping rule(s) and the 1 rule(s) to it make no synapses" in skipped[0]
    # FEAGI's own case: essential_genome_modification (13,851 neurons, 400 synapses, see COUNTS)
    g = load_genome(DATA / "essential_genome_modification.json")
    assert sum("'c_avoid'" in w for w in g.warnings) == 1


def test_mapping_to_a_valid_but_absent_id_still_fails(tmp_path: Path) -> None:
    p = write_v3(tmp_path, {"cAAAAA__": {"cx-dstmap-d": {"cZZZZZ__": [v3_rule("block_to_block")]}}})
    msg = one_line_error(p)
    assert "'Y0FBQUFBX18=' (cAAAAA__ 'cAAAAA__') mapping to 'Y1paWlpaX18='" in msg and "not in the genome" in msg


def test_gene_spellings_feagi_ignores_warn_once_each(tmp_path: Path) -> None:
    g = load_genome(STDP / "genespell.genome.json")
    n = expand_genome(g).neurons
    a = {x.name: x for x in g.areas}
    assert a["excite_i_0"].excitability == 100.0 and a["excite_f_0"].excitability == 0.0
    assert a["fthlim_i_2_input3"].threshold_limit == 0.0 and a["fthlim_f_2_input3"].threshold_limit == 2.0
    assert n.excitability[[x.cortical_id for x in g.areas].index("cExI00")] == 100.0
    for gene in ("nx-excite-i", "nx-fthlim-i"):
        hits = [w for w in g.warnings if f"gene {gene} " in w]
        assert len(hits) == 1 and "on 1 area(s)" in hits[0], g.warnings
    # a value equal to what the area uses changes nothing: no warning (FEAGI's 3.0 export writes snooze-i 0)
    p = write_genome(tmp_path, {"c_aaaa": area(**{"nx-snooze-i": 0, "nx-excite-i": 100, "nx-fthlim-i": 0}),
                                "c_bbbb": area(**{"nx-snooze-i": 2}), "c_cccc": area(**{"nx-snooze-i": 3})})
    w = load_genome(p).warnings
    assert [x for x in w if "nx-excite-i" in x or "nx-fthlim-i" in x] == []
    snooze = [x for x in w if "nx-snooze-i" in x]
    assert len(snooze) == 1 and "on 2 area(s) ('c_bbbb'=2, 'c_cccc'=3)" in snooze[0] and "honour_snooze_i" in snooze[0]
    assert not any("nx-snooze-i" in x for x in load_genome(p, honour_snooze_i=True).warnings)


def test_memory_areas_run_as_ordinary_areas_with_a_warning(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {
        "m_mem1": area(2, 2, **{"cx-_group-t": "MEMORY", "cx-memory-b": True}),
        "mplain": area(3),  # an id starting with m alone is an ordinary area
        "c_flag": area(**{"cx-memory-b": True}),  # the flag without the MEMORY group: ordinary
        "c_src1": area(2, 2, dstmap={"m_mem1": [rule("block_to_block")]})})
    g = load_genome(p)
    brain = expand_genome(g)
    assert brain.area("m_mem1").neuron_count == 4 and brain.synapse_count == 4
    mem = [w for w in g.warnings if "memory" in w]
    assert len(mem) == 1 and "memory areas 'm_mem1' run as ordinary areas" in mem[0]
    assert "memory neurons" in mem[0] and "not formed" in mem[0]
    # 3.0: named by decoded id and name
    p = write_v3(tmp_path, {"mMem1___": {"cx-__name-t": "recall", "cx-_group-t": "MEMORY", "cx-memory-b": True}})
    assert any("memory areas 'bU1lbTFfX18=' (mMem1___ 'recall')" in w for w in load_genome(p).warnings)


def test_v3_errors_are_one_line_and_name_the_area(tmp_path: Path) -> None:
    p = write_v3(tmp_path, {"cAAAAA__": {"cx-__name-t": "motor", "nx-refrac-i": -1}})
    msg = one_line_error(p)
    assert "cortical id 'Y0FBQUFBX18=' (cAAAAA__ 'motor') key '_____10c-Y0FBQUFBX18=-nx-refrac-i'" in msg
    assert "between 0 and 65535" in msg
    p = write_v3(tmp_path, {"cAAAAA__": {"cx-dstmap-d": {"cAAAAA__": [{"morphology_id": "x"}]}}}, name="b.json")
    assert "needs 'morphology_id' and 'postSynapticCurrent_multiplier'" in one_line_error(p)
    p = write_v3(tmp_path, {"cAAAAA__": {}}, genome_schema_version=9, name="c.json")
    assert any("genome_schema_version 9" in w for w in load_genome(p).warnings)


def test_genome_info_cli_says_the_format(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from feagi_burst.cli import app
    runner = CliRunner()
    r = runner.invoke(app, ["genome", "info", str(V3 / "stdp2.v3.genome.json"), "--json", "--area", "pre_every"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.output)
    assert (info["format"], info["neurons"], info["synapses"]) == ("3.0", 20, 28)
    assert [a["decoded_id"] for a in info["areas"]] == ["cPreE0__"]
    assert len(info["plasticity"]) == 10 and {p["src_area"] for p in info["plasticity"]} == {b64("cPreE0__")}
    r = runner.invoke(app, ["genome", "info", str(DATA / "LearningV1.1B__genome.json")])
    assert r.exit_code == 0 and "FEAGI 2.x genome" in r.output and "window-0 abort" in r.output
    r = runner.invoke(app, ["genome", "info", str(DATA / "test_timer.json"), "--area", "nope"])
    assert isinstance(r.exception, InputError)  # the CLI's main() prints it as one line, exit code 2
    assert str(r.exception).startswith("--area: unknown cortical area 'nope' (known: ___pwr (Brain_Power), ")
