"""STDP on the GPU: the plastic synapses' buffers, the per-burst dispatches, state in and out.

What is computed is feagi_burst/plasticity.py's (its docstring: the rule, the lazy updates, the two
weight arrays, the requantisation); this module lays it out for shaders/stdp*.wgsl. Per burst of a
brain with plastic pairs, in the same compute pass, with no readback:

1. fire_compact with the STDP hooks (shaders/compact_stdp.wgsl), as it lists the fire set: the
   stamps of the fired neurons of the plastic span and the burst's fired list, the indirect grid
   of stdp_pre (in the `grid` buffer), and the copies stdp_requant decides from;
2. `stdp` (chunk 0 bound): the one kernel over plastic synapses, those of the fired list: replay,
   commit where the source fired, the burst's step;
3. `stdp_pre`, only with several synapse chunks, per chunk after the first: the fired rows' words
   there, from the committed weights;
4. `stdp_requant` per synapse chunk: the requantisation decision from the burst's largest
   committed weight, and, when the scale dropped (rarely), the shift of every word and the plastic
   ones recomputed from their committed weights, row by row.

Work per burst (N_f fired, d_out/d_in their plastic synapses): fire_compact's hooks N_f stamps and
list appends (one atomic per workgroup); stdp N_f * (d_out + d_in) lanes reading contiguous rows
(w, wq, meta, tgt; in_idx, in_src, in_pair) and, at random, the other endpoint's stamps and (on
the incoming side) the weight, writing only changed weights and the words of fired sources.

Buffers: `info` (uniform StdpInfo: sizes, section offsets, the burst the state was loaded at),
`pl` (read-only layout: per span neuron its plastic synapse ranges, per plastic synapse
src/tgt/meta/table index/unit, per pair W/dp/dm, the scale table), `ps` (weights, committed
weights, two stamps per span neuron, the two fired lists), `ctl` (counters, cap, scale, scale
steps: STDP_* of layout.py), `grid`.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from feagi_burst.backends.base import BackendError
from feagi_burst.backends.wgpu.layout import (
    STDP_CTL_WORDS, STDP_DIRECT_GRID, STDP_DRIVEN, STDP_GRID_PRE, STDP_GRID_WORDS, STDP_KCUR, STDP_MAX_STEPS,
    STDP_NSTEPS, STDP_REQUANT_ROWS, STDP_SCUR, STDP_SHIFT, STDP_STEPS, STDP_UPDATE_NEURONS, W_SCALE_INV)
from feagi_burst.backends.wgpu.runtime import Recorder
from feagi_burst.fixed_point import SynapseTables
from feagi_burst.plasticity import PlasticLayout, PlasticState, canonical, plastic_layout

INFO_FIELDS = ("n_plastic", "lo", "span", "o_out", "o_in", "o_inidx", "o_insrc", "o_inpair", "o_tgt",
               "o_meta", "o_pidx", "o_unit", "o_pairs", "o_table", "o_w", "o_wq", "o_stamp", "o_list", "chunks",
               "hash_n", "settled")
INFO_WORDS = 24  # StdpInfo in stdp_common.wgsl, padded to 16 bytes


def _u32(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.size and (int(a.min()) < 0 or int(a.max()) > 0xFFFFFFFF):
        raise BackendError(f"STDP: {what} does not fit 32 bits on the GPU")
    return a.astype(np.uint32)


class GPUPlasticity:
    """The STDP buffers and dispatches of one loaded brain on a GPUBackend (`gb`)."""

    def __init__(self, gb: Any, layout: PlasticLayout, tables: SynapseTables) -> None:
        self.gb, self.layout, self.tables = gb, layout, tables
        dev = gb.dev
        L = layout
        p, span = L.size, L.span
        self._pipelines()
        pairs = np.zeros((len(L.pairs), 4), np.uint32)
        pairs[:, 0] = L.window
        pairs[:, 1] = L.dp.view(np.uint32)
        pairs[:, 2] = L.dm.view(np.uint32)
        meta = L.pair.astype(np.uint32) | np.where(L.driven, np.uint32(STDP_DRIVEN), np.uint32(0))
        sections = [("o_out", _u32(L.out_off, "the plastic synapse count")), ("o_in", _u32(L.in_off, "")),
                    ("o_inidx", _u32(L.in_idx, "")), ("o_insrc", _u32(L.in_src, "a neuron id")),
                    ("o_inpair", _u32(L.in_pair, "")), ("o_tgt", _u32(L.tgt, "a neuron id")), ("o_meta", meta),
                    ("o_pidx", _u32(L.index, "a synapse index")), ("o_unit", L.unit.view(np.uint32)),
                    ("o_pairs", pairs.reshape(-1)), ("o_table", L.scale_table.astype(np.int32).view(np.uint32))]
        info: dict[str, int] = {"n_plastic": p, "lo": L.lo, "span": span,
                                "hash_n": int(gb.hash_mask) + 1}
        words, at = [], 0
        for name, arr in sections:
            info[name] = at
            words.append(arr)
            at += arr.size + (-arr.size % 4)
            words.append(np.zeros(-arr.size % 4, np.uint32))
        pl = np.concatenate(words)
        info.update({"o_w": 0, "o_wq": p, "o_stamp": 2 * p, "o_list": 2 * p + 2 * span, "chunks": len(gb.chunks)})
        ps_words = 2 * p + 4 * span
        self.info = info
        sizes = {"STDP layout": pl.nbytes, "STDP state": ps_words * 4}
        for label, size in sizes.items():
            if size > gb.binding_limit:
                raise BackendError(gb._too_big(label, size, "max-storage-buffer-binding-size", gb.binding_limit))
        gb.gpu_bytes += sum(sizes.values())
        U = dev.wgpu.BufferUsage
        buf = dev.buffer
        self.b_info = buf("STDP info", INFO_WORDS * 4, U.UNIFORM | U.COPY_DST)
        self.b_pl = buf("STDP layout", pl.nbytes, U.STORAGE | U.COPY_DST)
        self.b_ps = buf("STDP state", ps_words * 4, U.STORAGE | U.COPY_DST | U.COPY_SRC)
        self.b_ctl = buf("STDP control", STDP_CTL_WORDS * 4, U.STORAGE | U.COPY_DST | U.COPY_SRC)
        self.b_grid = buf("STDP grids", STDP_GRID_WORDS * 4, U.STORAGE | U.INDIRECT | U.COPY_DST)
        # direct grids that loop over their work (layout.py STDP_DIRECT_GRID)
        self.main_grid = max(1, min(-(-span // STDP_UPDATE_NEURONS), STDP_DIRECT_GRID))
        self.table_grid = max(1, min(-(-info["hash_n"] // STDP_REQUANT_ROWS), STDP_DIRECT_GRID))
        dev.upload(self.b_pl, pl)

        bind = dev.device.create_bind_group

        def whole(b: Any) -> dict[str, Any]:
            return {"buffer": b, "offset": 0, "size": b.size}
        self.g1 = dev.call("bind group", bind, layout=gb._stdp["l1"], entries=[
            {"binding": i, "resource": whole(b)} for i, b in enumerate((self.b_info, self.b_pl, self.b_ps, self.b_ctl))])
        self.g_grid = dev.call("bind group", bind, layout=gb._stdp["lgrid"],
                               entries=[{"binding": 0, "resource": whole(self.b_grid)}])
        self.g_chunks = [dev.call("bind group", bind, layout=gb._stdp["lchunk"], entries=[
            {"binding": 0, "resource": whole(s)}, {"binding": 1, "resource": {"buffer": c, "offset": 0, "size": 16}}])
            for s, c in zip(gb.b_syn, gb.b_chunk)]
        self.restore(L.initial_state(), 0, fresh_table=True)

    # -- pipelines (made once per backend) ---------------------------------------------------------
    def _pipelines(self) -> None:
        gb = self.gb
        if getattr(gb, "_stdp", None) is not None:
            return
        dev = gb.dev
        w, d = dev.wgpu, dev.device
        C = w.ShaderStage.COMPUTE
        st = {"type": w.BufferBindingType.storage}
        ro = {"type": w.BufferBindingType.read_only_storage}
        uni = {"type": w.BufferBindingType.uniform}
        call = dev.call
        l1 = call("bind group layout", d.create_bind_group_layout, entries=[
            {"binding": 0, "visibility": C, "buffer": uni}, {"binding": 1, "visibility": C, "buffer": ro},
            {"binding": 2, "visibility": C, "buffer": st}, {"binding": 3, "visibility": C, "buffer": st}])
        lgrid = call("bind group layout", d.create_bind_group_layout,
                     entries=[{"binding": 0, "visibility": C, "buffer": st}])
        lchunk = call("bind group layout", d.create_bind_group_layout, entries=[
            {"binding": 0, "visibility": C, "buffer": st}, {"binding": 1, "visibility": C, "buffer": uni}])
        pl = d.create_pipeline_layout
        # fire_compact with the STDP hooks: its own `args` at group 1, STDP's groups after it
        with_hooks = call("pipeline layout", pl, bind_group_layouts=[gb.g0_layout, gb.args_layout, l1, lgrid])
        with_chunk = call("pipeline layout", pl, bind_group_layouts=[gb.g0_layout, l1, lchunk])
        prog = dev.program
        gb._stdp = {"l1": l1, "lgrid": lgrid, "lchunk": lchunk,
                    "compact": prog("fire_compact.wgsl", with_hooks, {"HOOKS": "compact_stdp.wgsl"}),
                    "requant": prog("stdp_requant.wgsl", with_chunk),
                    "requant_host": prog("stdp_requant.wgsl", with_chunk, entry="host_pass"),
                    "pre": prog("stdp_pre.wgsl", with_chunk), "main": prog("stdp.wgsl", with_chunk)}

    # -- per burst ----------------------------------------------------------------------------------
    def encode_compact(self, rec: Recorder, workgroups: tuple[int, int, int]) -> None:
        """Record fire_compact with the STDP hooks (group 0 is bound to the burst's header already)."""
        rec.pipeline(self.gb._stdp["compact"])
        rec.bind(1, self.gb.g_args)
        rec.bind(2, self.g1)
        rec.bind(3, self.g_grid)
        rec.dispatch(*workgroups)

    def encode(self, rec: Recorder) -> None:
        """Record the rest of one burst's STDP dispatches, after encode_compact's."""
        k = self.gb._stdp
        rec.pipeline(k["main"])
        rec.bind(1, self.g1)
        rec.bind(2, self.g_chunks[0])  # the update commits the words of chunk 0 (stdp_pre the others')
        rec.dispatch(self.main_grid)
        if len(self.g_chunks) > 1:
            rec.pipeline(k["pre"])
            for g in self.g_chunks[1:]:
                rec.bind(2, g)
                rec.dispatch_indirect(self.b_grid, STDP_GRID_PRE * 4)
        rec.pipeline(k["requant"])
        for g in self.g_chunks:
            rec.bind(2, g)
            rec.dispatch(self.table_grid)

    # -- state ----------------------------------------------------------------------------------------
    def restore(self, st: PlasticState | None, burst: int, fresh_table: bool = False) -> None:
        """Put `st` (None: the initial state; a reported state, every weight up to date after
        `burst`) on the device after burst `burst`: weights, stamps, counters, and the table words
        requantised along its scale steps. The next burst is the backend's seq + 1.
        `fresh_table`: the synapse chunks hold the compiled table already."""
        gb, L, dev = self.gb, self.layout, self.gb.dev
        st = L.initial_state() if st is None else st
        try:
            L.check_state(st)
        except ValueError as e:
            raise BackendError(str(e)) from None
        if len(st.scale_steps) > STDP_MAX_STEPS:
            raise BackendError(f"STDP: {len(st.scale_steps)} scale steps, the GPU keeps {STDP_MAX_STEPS}")
        if not fresh_table:
            gb.upload_synapses(self.tables.pairs)
        span = L.span
        self.settled = burst
        row = np.zeros(INFO_WORDS, np.uint32)
        row[: len(INFO_FIELDS)] = [{**self.info, "settled": burst}[k] for k in INFO_FIELDS]
        dev.upload(self.b_info, row)
        # the words follow the committed weights (stdp_requant below); a source's row is
        # committed anew when it next fires
        stamps = np.zeros((span, 2), np.uint32)
        stamps[:, 0] = st.stamps
        ps = np.concatenate([st.weights.view(np.uint32), st.committed.view(np.uint32), stamps.reshape(-1),
                             np.zeros(2 * span, np.uint32)])
        dev.upload(self.b_ps, ps)
        ctl = np.zeros(STDP_CTL_WORDS, np.uint32)
        ctl[STDP_KCUR] = st.cap_exp
        steps = np.array(st.scale_steps, np.int32)
        # requantise the compiled words along the steps, on the device (the kernels of a burst)
        ctl[STDP_NSTEPS] = steps.size
        ctl[STDP_STEPS: STDP_STEPS + steps.size] = steps.view(np.uint32)
        grids = np.zeros(STDP_GRID_WORDS, np.uint32)
        grids[[STDP_GRID_PRE + 1, STDP_GRID_PRE + 2]] = 1  # the grid's y and z
        # each step shifts every word (and writes the plastic ones at its scale); the last pass,
        # at the state's scale, leaves every plastic word its committed weight's
        passes = [(int(a - b), int(b)) for a, b in zip(steps[:-1], steps[1:])]
        if not passes or passes[-1][1] != st.scale_exp:
            passes.append((0, int(st.scale_exp)))
        for shift, scale in passes:
            ctl[STDP_SHIFT] = shift
            ctl[STDP_SCUR] = np.int32(scale).view(np.uint32)
            dev.upload(self.b_ctl, ctl)
            self._run_table_pass()
        ctl[STDP_SHIFT] = 0
        ctl[STDP_SCUR] = np.int32(st.scale_exp).view(np.uint32)
        dev.upload(self.b_ctl, ctl)
        dev.upload(self.b_grid, grids)
        dev.upload(gb.b_work, np.array([np.float32(2.0 ** -st.scale_exp).view(np.uint32)], np.uint32), W_SCALE_INV * 4)

    def _run_table_pass(self) -> None:
        """stdp_requant's host_pass over every chunk: the shift and scale in ctl, now."""
        gb = self.gb
        rec = Recorder(gb.dev)
        rec.bind(0, gb.g0, 0)
        rec.pipeline(gb._stdp["requant_host"])
        rec.bind(1, self.g1)
        for g in self.g_chunks:
            rec.bind(2, g)
            rec.dispatch(self.table_grid)
        rec.end_pass()
        rec.submit()

    def state(self, burst: int) -> PlasticState:
        """The plastic state on the device (every submitted burst finished)."""
        L, dev = self.layout, self.gb.dev
        p, span = L.size, L.span
        raw = dev.download(self.b_ps, 0, (2 * p + 2 * span) * 4).view(np.uint32)
        ctl = dev.download(self.b_ctl, 0, STDP_CTL_WORDS * 4).view(np.uint32)
        n = int(ctl[STDP_NSTEPS])
        steps = tuple(int(x) for x in ctl[STDP_STEPS: STDP_STEPS + n].view(np.int32))
        # views of the fresh download (no copies: at a sync point these are tens of MB)
        w, committed = raw[:p].view(np.float32), raw[p: 2 * p].view(np.float32)
        stamps = np.ascontiguousarray(raw[2 * p: 2 * p + 2 * span: 2])  # each neuron's last fire
        return canonical(L, PlasticState(w, committed, stamps, int(ctl[STDP_KCUR]),
                                         int(ctl[STDP_SCUR: STDP_SCUR + 1].view(np.int32)[0]), steps), burst,
                         self.settled, copy=False)

    def close(self) -> None:
        for b in (self.b_info, self.b_pl, self.b_ps, self.b_ctl, self.b_grid):
            try:
                b.destroy()
            except Exception:  # noqa: BLE001
                pass


def attach_gpu(gb: Any, brain: Any, tables: SynapseTables) -> GPUPlasticity | None:
    """The GPU backend's STDP runtime for `brain` (None without plastic synapses)."""
    layout = plastic_layout(brain, tables)
    return None if layout is None else GPUPlasticity(gb, layout, tables)


__all__ = ["GPUPlasticity", "attach_gpu"]
