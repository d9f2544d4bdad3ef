"""The plastic area pairs of a genome: what STDP (SPEC.md section 2, step 5) runs on.

The loader fills `Genome.plasticity` with one `PlasticPair` per source -> destination area pair
that has at least one mapping rule with the plastic flag set and `plasticity_window` >= 1, and
whose synapses were not dropped by FEAGI's window-0 abort (a pair after a failing plastic rule in
FEAGI's order has no synapses, so there is nothing for STDP to change). When a pair has several
plastic rules, the LAST one in the genome wins (SPEC.md: one parameter set per pair).

STDP then applies to EVERY synapse from `src_area` to `dst_area`, including those made by the
pair's non-plastic rules. Area ids are `Brain.areas[i].cortical_id` (the id as the genome writes
it; a mapping to a core alias such as `_death` names the core area the brain has, e.g. `___death`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

MAX_STEP = 255


@dataclass(frozen=True)
class PlasticPair:
    """STDP parameters of one area pair.

    src_area, dst_area: cortical ids of the source and destination areas (as in `Brain.areas`).
    window: `plasticity_window` W, in bursts (>= 1; a fractional window is truncated).
    dp: weight added to a synapse whose pre and post neurons both fired in the last W bursts.
    dm: weight removed (floor 0) when exactly one of them fired.
    dp = clamp(trunc(plasticity_constant) * trunc(ltp_multiplier), 0, 255), dm likewise with
    ltd_multiplier: each factor is truncated first, so 1.9 * 1.9 gives 1, and -2 * 3 gives 0.
    """

    src_area: str
    dst_area: str
    window: int
    dp: int
    dm: int


def stdp_step(constant: float, multiplier: float) -> int:
    """clamp(trunc(constant) * trunc(multiplier), 0, 255): FEAGI's per-burst weight step."""
    if not (math.isfinite(constant) and math.isfinite(multiplier)):
        return 0
    return max(0, min(MAX_STEP, math.trunc(constant) * math.trunc(multiplier)))


def effective_window(window: float | None) -> int:
    """The window FEAGI uses: missing or below 1 is 0 (synaptogenesis aborts), else truncated."""
    if window is None or not math.isfinite(window) or window < 1:
        return 0
    return math.trunc(window)


__all__ = ["MAX_STEP", "PlasticPair", "effective_window", "stdp_step"]
