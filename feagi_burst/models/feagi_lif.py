"""FEAGI's leaky integrate-and-fire neuron: SPEC.md section 2, steps 2-3, and the forced-fire rule.

This is the model every area runs unless brain.toml says otherwise, bit-exact with FEAGI 2.6.10
(tests/test_conformance.py replays FEAGI's recordings). Only fire candidates are touched (FEAGI's
rule: no input, no change), so a burst costs O(candidates), never O(neurons). The refractory
period, the consecutive-fire limit and snooze belong to this model only.

State: `mp`; `cfc_count` (consecutive fires); `blocked_until` (neuron i discards input at bursts
up to and including B; a value below the current burst that is not 0 marks a block that ended and
whose consecutive-fire reset has not been applied yet: it is applied when the neuron is next
touched, so no per-burst pass over all neurons is needed).
The CPU step is compiled: backends/cpu_lif._lif_run writes the rule out neuron by neuron. Its
WGSL twin is shaders/models/feagi_lif.wgsl; keep the two in step, operation for operation.
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from feagi_burst.models.base import DTYPES, NeuronModel, Param, ParamTable, StateVar, StepContext

EXCITABILITY_ALWAYS = np.float32(0.999)
U16 = 65535
# the compiled step's parameter order (FeagiLIF.kernel_args, backends/cpu_lif._lif_run)
KERNEL_PARAMS = ("threshold", "threshold_limit", "leak", "excitability", "refractory_period", "cfc_limit",
                 "snooze", "mp_accumulate")
NOT_FORCED = np.zeros(0, np.bool_)


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

    @classmethod
    def kernel_args(cls, p: ParamTable) -> tuple:
        """The parameters as the compiled step takes them (backends/cpu_lif._lif_run), built
        once per table: (threshold, threshold_limit, leak, excitability, refractory_period,
        cfc_limit, snooze, mp_accumulate, area, may_block, any_cfc, any_limit).

        One layout for every brain, so that each kernel is compiled once per machine (numba
        compiles a kernel again for every new combination of argument types, ~5 s each): each
        parameter is a writable 1-D table, neuron i's value at [area[i]] (u32): one entry for
        all neurons when the value is the same for every neuron, else one per area, else one
        per neuron (area[i] = i). A flag is False when its rule cannot apply to any neuron.
        """
        args = getattr(p, "lif_kernel_args", None)
        if args is None:
            dtypes = [DTYPES[cls.param(name).dtype] for name in KERNEL_PARAMS]
            n = p.area.size
            if all(p.is_scalar(name) for name in KERNEL_PARAMS):
                values = [np.full(1, p.values[name], dtype) for name, dtype in zip(KERNEL_PARAMS, dtypes)]
                area = np.zeros(n, np.uint32)
            elif all(p.is_scalar(name) or name in p.per_area for name in KERNEL_PARAMS):
                n_areas = max([t.size for t in p.per_area.values()] + [1])
                values = [np.array(np.broadcast_to(p.per_area[name] if name in p.per_area else p.values[name],
                                                   (n_areas,)), dtype) for name, dtype in zip(KERNEL_PARAMS, dtypes)]
                area = np.array(p.area, np.uint32)
            else:
                every = np.arange(n)
                values = [np.array(np.broadcast_to(p.gather(name, every), every.shape), dtype)
                          for name, dtype in zip(KERNEL_PARAMS, dtypes)]
                area = np.arange(n, dtype=np.uint32)
            flags = cls._flags(p)
            args = (*values, area, *(bool(flags[f]) for f in ("may_block", "any_cfc", "any_limit")))
            p.lif_kernel_args = args  # type: ignore[attr-defined]
        return args

    def step(self, ctx: StepContext) -> tuple[np.ndarray, np.ndarray]:
        """Step 3 of SPEC.md for the candidates, compiled (backends/cpu_lif._lif_run, the rule
        written out neuron by neuron; the CPU backend runs the same function fused with reading
        the input when FEAGI LIF is the brain's only model).

        mp_accumulate = false is applied at the end of the burst (FEAGI's order): a candidate that
        neither fired nor was forced ends the burst at mp 0, a forced one keeps its mp
        (docs/feagi-findings.md, case f).
        """
        from feagi_burst.backends.cpu_lif import draw_mix, lif_step_list

        thr, tlim, leak, exc, refr, cfcl, snz, acc, area, may_block, any_cfc, any_limit = self.kernel_args(ctx.params)
        ids = np.require(ctx.ids, np.int64, ["C", "W"])  # writable too: the kernel's one signature
        forced = np.isin(ids, ctx.forced) if ctx.forced.size else NOT_FORCED
        out_pos = np.empty(ids.size, np.int64)
        out_mp = np.empty(ids.size, np.float32)
        nf = lif_step_list(ids, np.require(ctx.input, np.float32, ["C", "W"]), forced, int(ctx.burst),
                           draw_mix(ctx.burst, ctx.seed), thr, tlim, leak, exc, refr, cfcl, snz, acc, area,
                           ctx.state["mp"], ctx.state["cfc_count"], ctx.state["blocked_until"],
                           may_block, any_cfc, any_limit, out_pos, out_mp)
        return out_pos[:nf], out_mp[:nf]

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
