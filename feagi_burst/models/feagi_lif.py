"""FEAGI's leaky integrate-and-fire neuron: SPEC.md section 2, steps 2-3, and the forced-fire rule.

This is the model every area runs unless brain.toml says otherwise, bit-exact with FEAGI 2.6.10
(tests/test_conformance.py replays FEAGI's recordings). Only fire candidates are touched (FEAGI's
rule: no input, no change), so a burst costs O(candidates), never O(neurons). The refractory
period, the consecutive-fire limit and snooze belong to this model only.

State: `mp`; `cfc_count` (consecutive fires); `blocked_until` (neuron i discards input at bursts
up to and including B; a value below the current burst that is not 0 marks a block that ended and
whose consecutive-fire reset has not been applied yet: it is applied when the neuron is next
touched, so no per-burst pass over all neurons is needed).
The WGSL twin is shaders/models/feagi_lif.wgsl; keep the two in step, operation for operation.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from feagi_burst.models.base import NeuronModel, Param, ParamTable, StateVar, StepContext

EXCITABILITY_ALWAYS = np.float32(0.999)
U16 = 65535


def excitability_draw(ids: np.ndarray, burst: int, seed: int = 0) -> np.ndarray:
    """rand(id, b) of SPEC.md in wrapping u32 arithmetic, as f32 in [0, 1). seed 0 is FEAGI's."""
    with np.errstate(over="ignore"):
        i = (ids.astype(np.uint32) * np.uint32(2654435761)
             + np.uint32((burst * 1597334677 + seed * 3266489917) & 0xFFFFFFFF))
        s = i * np.uint32(747796405) + np.uint32(2891336453)
        w = ((s >> ((s >> np.uint32(28)) + np.uint32(4))) ^ s) * np.uint32(277803737)
        h = (w >> np.uint32(22)) ^ w
    return (h.astype(np.float32) / np.float32(4294967296.0)).astype(np.float32)


class FeagiLIF(NeuronModel):
    name = "feagi_lif"
    title = "FEAGI LIF"
    params: ClassVar[tuple[Param, ...]] = (
        Param("threshold", "f32", 1.0, doc="fires when threshold <= mp (nx-fire_t-f plus the per-axis increments)"),
        Param("threshold_limit", "f32", 0.0, doc="and mp <= threshold_limit, unless 0 (nx-fthlim-f)"),
        Param("leak", "f32", 0.0, doc="mp *= 1 - leak when a candidate does not fire (nx-leak_c-f)"),
        Param("refractory_period", "u16", 0, doc="bursts blocked after a fire (nx-refrac-i)"),
        Param("excitability", "f32", 100.0, doc=">= 0.999 always fires, else the probability (nx-excite-f)"),
        Param("cfc_limit", "u16", 0, doc="consecutive-fire limit, 0 = none (nx-c_fr_c-i)"),
        Param("snooze", "u16", 0, doc="bursts added to the block at the consecutive-fire limit (nx-snooze-f)"),
        Param("mp_accumulate", "bool", False, doc="keep mp between bursts without firing (nx-mp_acc-b)"),
    )
    state: ClassVar[tuple[StateVar, ...]] = (
        StateVar("mp", "f32", 0.0, "membrane potential"),
        StateVar("cfc_count", "u16", 0, "consecutive fires so far"),
        StateVar("blocked_until", "u32", 0, "last burst of the refractory/snooze block"),
    )
    integrates_all = False
    wgsl = "models/feagi_lif.wgsl"
    gpu_row_words = 5

    def mp_cap(self, params: ParamTable, ids: np.ndarray) -> float:
        thr = np.asarray(params.gather("threshold", ids), np.float64)
        lim = np.asarray(params.gather("threshold_limit", ids), np.float64)
        return max(100.0, float(lim.max(initial=0.0)), 4.0 * float(thr.max(initial=0.0)))

    @staticmethod
    def _flags(p: ParamTable) -> dict[str, bool]:
        flags = getattr(p, "lif_flags", None)
        if flags is None:
            # blocks only exist where a refractory period or a snooze can be non-zero
            flags = {"may_block": p.any("refractory_period") or (p.any("snooze") and p.any("cfc_limit")),
                     "any_cfc": p.any("cfc_limit"), "any_limit": p.any("threshold_limit")}
            p.lif_flags = flags  # type: ignore[attr-defined]
        return flags

    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """Step 3 of SPEC.md for the candidates.

        mp_accumulate = false is applied at the end of the burst (FEAGI's order): a candidate that
        neither fired nor was forced ends the burst at mp 0, a forced one keeps its mp
        (docs/feagi-findings.md, case f).
        """
        cand, b, p, area = ctx.ids, ctx.burst, ctx.params, ctx.area
        mp_s, cfc_s, bu_s = ctx.state["mp"], ctx.state["cfc_count"], ctx.state["blocked_until"]
        flags = self._flags(p)
        mp = mp_s[cand]
        gain = np.maximum(ctx.input, np.float32(0))
        if flags["may_block"]:
            bu = bu_s[cand]
            active = bu < b
            ended = (bu != 0) & active
            if ended.any():
                # a block ended since this neuron was last touched: apply its cfc reset now
                e = cand[ended]
                lim_e = p.gather("cfc_limit", e)
                cfc_e = cfc_s[e]
                cfc_s[e] = np.where((lim_e > 0) & (cfc_e >= lim_e), np.uint16(0), cfc_e)
                bu_s[e] = 0
            gain = np.where(active, gain, np.float32(0))
        else:
            active = None
        m = mp + gain
        above = p.gather("threshold", cand, area) <= m
        if flags["any_limit"]:
            tl = p.gather("threshold_limit", cand, area)
            above &= (tl == 0) | (m <= tl)
        if active is not None:
            above &= active
        if flags["any_cfc"]:
            lim = p.gather("cfc_limit", cand, area)
            cfc = cfc_s[cand]
            capped = above & (lim > 0) & (cfc >= lim)
            try_fire = above & ~capped
        else:
            capped = None
            try_fire = above
        ex = p.gather("excitability", cand, area)
        if np.ndim(ex) == 0:
            if ex >= EXCITABILITY_ALWAYS:
                fire = try_fire
            elif ex > 0:
                fire = try_fire & (excitability_draw(cand, b, ctx.seed) < ex)
            else:
                fire = np.zeros_like(try_fire)
        else:
            fire = try_fire & (ex >= EXCITABILITY_ALWAYS)
            maybe = np.flatnonzero(try_fire & (ex > 0) & (ex < EXCITABILITY_ALWAYS))
            if maybe.size:
                fire[maybe] = excitability_draw(cand[maybe], b, ctx.seed) < ex[maybe]

        fi = np.flatnonzero(fire)
        fired_ids = cand[fi]
        fired_mp = m[fi]
        # did not fire (and not held by the consecutive-fire limit): leak; a blocked neuron keeps mp
        leak = p.gather("leak", cand, area)
        if np.ndim(leak) != 0 or leak != 0:
            keep = fire if capped is None else fire | capped
            if active is not None:
                keep = keep | ~active
            m = np.where(keep, m, m * (np.float32(1) - leak)).astype(np.float32)
        acc = p.gather("mp_accumulate", cand, area)
        if np.ndim(acc) != 0 or not acc:
            keep_mp = acc | np.isin(cand, ctx.forced) if ctx.forced.size else acc
            m = np.where(keep_mp, m, np.float32(0)).astype(np.float32)
        m[fi] = 0.0
        mp_s[cand] = m
        if flags["any_cfc"]:
            # capped neurons restart their count; so do active neurons that did not fire
            reset = capped | (~fire & (lim > 0))
            if active is not None:
                reset &= active
            cfc = np.where(reset, np.uint16(0), cfc)
            cfc[fi] = np.minimum(cfc[fi], np.uint16(U16 - 1)) + np.uint16(1)  # saturate, never wrap
            cfc_s[cand] = cfc
            cfc_fired = cfc[fi]
        else:
            cfc_fired = np.minimum(cfc_s[fired_ids], np.uint16(U16 - 1)) + np.uint16(1)
            cfc_s[fired_ids] = cfc_fired
        if flags["may_block"]:
            bu_s[fired_ids] = self._block_end(p, fired_ids, cfc_fired, b)
        return fi, fired_mp.astype(np.float32)

    @staticmethod
    def _block_end(p: ParamTable, ids: np.ndarray, cfc_after: np.ndarray, b: int) -> np.ndarray:
        """blocked_until for neurons firing at b: refractory, plus snooze at the consecutive limit."""
        lim = p.gather("cfc_limit", ids)
        countdown = np.asarray(p.gather("refractory_period", ids), np.int64) + np.where(
            (lim > 0) & (cfc_after >= lim), p.gather("snooze", ids), 0)
        countdown = np.broadcast_to(countdown, ids.shape)
        return np.where(countdown > 0, b + countdown, 0).astype(np.uint32)

    def forced(self, ids: np.ndarray, burst: int, params: ParamTable, state: dict[str, np.ndarray]) -> None:
        """A forced burst inside a refractory or snooze block does not count toward the block: it
        gets one burst longer (measured on FEAGI: docs/feagi-findings.md). Nothing else changes."""
        if self._flags(params)["may_block"]:
            bu = state["blocked_until"]
            blocked = ids[bu[ids] >= burst]
            bu[blocked] += np.uint32(1)

    # -- GPU: shaders/models/feagi_lif.wgsl reads these words ------------------------------------
    def gpu_neuron_word(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        thr = np.broadcast_to(np.asarray(params.gather("threshold", ids), np.float32), ids.shape)
        return np.ascontiguousarray(thr).view(np.uint32)

    def gpu_row(self, params: ParamTable, ids: np.ndarray) -> np.ndarray:
        """threshold_limit, 1 - leak (the CPU's f32 expression), excitability,
        refractory | snooze << 16, cfc_limit | mp_accumulate << 16."""
        n = ids.size

        def col(name: str, dtype: type) -> np.ndarray:
            return np.broadcast_to(np.asarray(params.gather(name, ids), dtype), (n,))

        rows = np.zeros((n, self.gpu_row_words), np.uint32)
        rf = rows.view(np.float32)
        rf[:, 0] = col("threshold_limit", np.float32)
        rf[:, 1] = np.float32(1) - col("leak", np.float32)
        rf[:, 2] = col("excitability", np.float32)
        rows[:, 3] = col("refractory_period", np.uint32) | (col("snooze", np.uint32) << 16)
        rows[:, 4] = col("cfc_limit", np.uint32) | (col("mp_accumulate", np.uint32) << 16)
        return rows
