"""Variants: a gene set to a new value in a copy of the genome document, before it is expanded.

The value goes into the parsed genome (the blueprint dict the loader reads), under the key the loader
reads for that gene and area, and the result is loaded by the genome loader like any file, so a
mutant is validated exactly as a genome written by hand would be, and can be saved and run alone
with `feagi-burst run --genome`.
"""
from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from feagi_burst.errors import InputError
from feagi_burst.population.spec import Mutation, gene_field


def blueprint_keys(cortical_id: str, key: str) -> tuple[str, str]:
    """The two spellings of a gene of an area in a flat blueprint: (nx-, cx-)."""
    from feagi_burst.genome.loader import FLAT_PREFIX

    return f"{FLAT_PREFIX}{cortical_id}-nx-{key}", f"{FLAT_PREFIX}{cortical_id}-cx-{key}"


def mutate_document(document: dict[str, Any], genome: Any, mutations: Sequence[Mutation],
                    where: str) -> dict[str, Any]:
    """A deep copy of the genome `document` with every mutation applied.

    `genome` is the loaded (unmutated) Genome, used to find each area as the user named it (id as
    written, decoded id, core alias or name). The loader reads a gene under either prefix, the nx-
    key winning, so the value is written to every spelling present (the nx- one when neither is).
    """
    doc = copy.deepcopy(document)
    bp = doc["blueprint"]
    for m in mutations:
        prefix, key, _field = gene_field(m.gene, where)
        try:
            area = genome.area(m.area)
        except KeyError:
            known = ", ".join(f"{a.cortical_id} ({a.name})" if a.name else a.cortical_id for a in genome.areas[:10])
            raise InputError(f"{where}: variant {m.label()}: the genome has no area {m.area!r}; its areas: "
                             f"{known}{', ...' if len(genome.areas) > 10 else ''}") from None
        if area.auto_added:
            raise InputError(f"{where}: variant {m.label()}: area {m.area!r} is a core area the genome does not "
                             "define (it is added with FEAGI's defaults); add it to the genome to mutate it")
        nx, cx = blueprint_keys(area.cortical_id, key)
        present = [k for k in (nx, cx) if k in bp]
        for k in present or [nx if prefix != "cx" else cx]:
            bp[k] = m.value
    return doc


def mutant_text(document: dict[str, Any]) -> str:
    """The mutated genome as JSON text (what is loaded, and what --record-dir saves)."""
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"
