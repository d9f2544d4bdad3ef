"""FEAGI's synaptogenesis rules applied to loaded mapping rules (SPEC.md section 3).

What FEAGI 2.6.10 does, copied here (feagi-reference/stdp/fail_w0_order):
- a plastic rule whose `plasticity_window` is 0, missing or below 1 aborts the synaptogenesis of
  its source area: destinations are processed in FEAGI's sorted id order (`CorticalId.sort_key`),
  those before the failing pair keep their synapses, the failing pair and every later destination
  get none (LearningV1.1B then has FEAGI's 33,934 synapses);
- each area pair with a plastic rule of window >= 1 that kept its synapses is one `PlasticPair`,
  the last plastic rule of the pair winning.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from feagi_burst.genome.ids import label
from feagi_burst.genome.plasticity import PlasticPair, effective_window, stdp_step

if TYPE_CHECKING:  # the loader imports this module, so its dataclasses are named for the types only
    from feagi_burst.genome.loader import AreaGene

# Why a rule makes no synapses (MappingRule.dropped) when the window-0 abort drops it.
DROPPED_WINDOW_0 = "window-0 abort"


def abort_windows(areas: list[AreaGene], sort_key: dict[str, str], warnings: list[str]) -> None:
    """FEAGI's window-0 abort: per source, destinations in sorted id order; a plastic rule with
    plasticity_window below 1 (0, missing, fractional) stops the source's synaptogenesis there."""
    for a in areas:
        by_target: dict[str, list[int]] = {}
        for i, r in enumerate(a.mappings):
            if not r.dropped:
                by_target.setdefault(r.target, []).append(i)
        order = sorted(by_target, key=lambda t: sort_key[t])
        bad, lost = None, []
        for pos, t in enumerate(order):
            bad = next((i for i in by_target[t] if a.mappings[i].plastic
                        and effective_window(a.mappings[i].window) == 0), None)
            if bad is not None:
                lost = order[pos:]
                break
        if bad is None:
            continue
        r = a.mappings[bad]
        n = 0
        for tt in lost:
            for i in by_target[tt]:
                a.mappings[i] = replace(a.mappings[i], dropped=DROPPED_WINDOW_0)
                n += 1
        w = "no plasticity_window" if r.window is None else f"plasticity_window {r.window:g} (below 1)"
        names = ", ".join(label(x) for x in lost[:6]) + (", ..." if len(lost) > 6 else "")
        warnings.append(f"plastic rule {a.label} -> {label(r.destination)} #{r.index + 1} "
                        f"({r.morphology_id!r}) has {w}: FEAGI aborts the "
                        f"synaptogenesis of {a.label} there, destinations taken in its sorted id order, so "
                        f"{n} rule(s) to {names} make no synapses; give the rule a plasticity_window >= 1 "
                        "to keep them")


def plastic_pairs(areas: list[AreaGene]) -> list[PlasticPair]:
    """One PlasticPair per area pair with a plastic rule of window >= 1 that kept its synapses; the
    last plastic rule of a pair wins."""
    pairs: dict[tuple[str, str], PlasticPair] = {}
    for a in areas:
        for r in a.mappings:
            if r.dropped or not r.plastic:
                continue
            w = effective_window(r.window)
            if w >= 1:
                pairs[(a.cortical_id, r.target)] = PlasticPair(a.cortical_id, r.target, w,
                                                               stdp_step(r.constant, r.ltp),
                                                               stdp_step(r.constant, r.ltd))
    return list(pairs.values())
