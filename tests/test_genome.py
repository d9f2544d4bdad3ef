"""Genome loading, validation, morphologies and expansion (SPEC.md section 3).

Expected counts are FEAGI 2.6.10's (tests/data/genomes/SOURCES.md); neuron counts include the
one-neuron core areas FEAGI adds when a genome lacks them.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feagi_burst.errors import InputError
from feagi_burst.genome import expand_genome, genome_info, load_genome
from feagi_burst.genome.expand import rule_weight
from feagi_burst.genome.morphology import dedupe_pairs, pattern_pairs, projector_pairs, vector_pairs

DATA = Path(__file__).parent / "data" / "genomes"


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
           "neuron_morphologies": morphologies or {}, **top}
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
    assert brain.neurons.cortical_area[brain.power_neuron] == next(
        a.index for a in brain.areas if a.cortical_id in ("_power", "___pwr", "___power"))


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


def test_genome_info_of_pong() -> None:
    g = load_genome(DATA / "Huma_feagi_genome_pong.json")
    brain = expand_genome(g)
    info = genome_info(g, brain)
    assert info["title"] == g.title
    assert info["neurons"] == 56_560 and info["synapses"] == 442_380
    assert sum(m["synapses"] for m in info["mappings"]) == 442_380
    assert sum(a["neurons"] for a in info["areas"]) == 56_560
    assert {"cortical_id", "name", "dimensions", "neurons_per_voxel", "neurons"} <= set(info["areas"][0])
    assert {"source", "destination", "morphology", "synapses"} == set(info["mappings"][0])
    json.dumps(info)  # JSON-ready


# ---------------------------------------------------------------- rejected genomes

@pytest.mark.parametrize("name,words", [
    ("circuits__brightness_change_detection.json", ["'__back'", "not a valid core type"]),
    ("defaults__brightness_change_detection.json", ["'__back'", "not a valid core type"]),
    ("leak_test_1_23.json", ["Pattern must have 2 elements [source, dest]", "y_consolidator"]),
    ("example_fp32_genome.json", ["different schema", "not a flat FEAGI 2.x genome"]),
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
    assert "not a flat FEAGI 2.x genome" in one_line_error(p)
    p = write_genome(tmp_path, {"c_aaaa": area()}, version="3.0")
    assert "version '3.0'" in one_line_error(p)


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
    ("nx-fire_t-f", float("nan"), "finite"),
    ("nx-leak_c-f", float("inf"), "finite"),
    ("nx-refrac-i", -1, "between 0 and 65535"),
    ("nx-mp_acc-b", "yes", "true or false"),
])
def test_bad_gene_values(tmp_path: Path, gene: str, value: Any, words: str) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(**{gene: value})})
    msg = one_line_error(p)
    assert words in msg and "'c_aaaa'" in msg and gene in msg


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


def test_invalid_ids(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"__back": area(), "_steer": area()})
    msg = one_line_error(p)
    assert "'__back', '_steer'" in msg and "not a valid core type" in msg
    p = write_genome(tmp_path, {"c_avoid": area()}, name="b.json")
    assert "6 or 8 characters" in one_line_error(p)


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
    (1, 1, False), (3, 3, False), (-2, 2, True), (300, 255, False), (-1000, 255, True),
    (0.5, 1, False), (-0.5, 1, True), (2.0, 2, False), (0, 0, False)])
def test_weight_clamp_and_sign(tmp_path: Path, psc: float, weight: int, inhibitory: bool) -> None:
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


def test_plasticity_delay_modulators_memory_warn(tmp_path: Path) -> None:
    p = write_genome(tmp_path, {"c_aaaa": area(dstmap={"c_bbbb": [
        ["block_to_block", [1, 1, 1], 1, True, 1, 1, 1, 4, 3]]}), "c_bbbb": area(**{"cx-memory-b": True})},
        modulators={"dopamine": {}})
    brain = expand_genome(load_genome(p))
    assert brain.synapse_count == 1  # built static
    text = " ".join(brain.warnings)
    for word in ("plasticity", "synaptic delays", "memory areas", "modulators"):
        assert f"ignored: {word}" in text


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
