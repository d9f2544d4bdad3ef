"""The GPU backend: SPEC.md section 2 in WGSL compute shaders on wgpu-py, bit-exact with cpu.py.

`GPUBackend` keeps a brain on the device (load), hands bursts to the scheduler (scheduler.py:
submit / collect), and reads and writes the neuron state. Per burst (all on the GPU, no CPU round
trip), in one compute pass per batch of bursts:

1. `stage_input`: external potentials, the power neuron, forced-neuron marks, reset of this
   burst's fire slot, and the propagation grid (previous fire count) for the indirect dispatch
   that follows.
2. `synaptic_propagation_fcl` (FCL path) or `synaptic_propagation` (full-array path), indirect,
   once per synapse chunk: i32 atomic fixed-point sums, candidate stamps, and the Drive.
3. Per neuron model present (its WGSL file pasted into each kernel, models/*.wgsl): a
   candidates-only model (FEAGI LIF) runs `model_dynamics_fcl` on the FCL path (after
   `dynamics_args`, indirect, candidates only) or `model_dynamics_full` (its id range, stamp
   test); a model that integrates every neuron runs `model_dynamics_all` over its id range.
   Fires are recorded per neuron (a bitmask bit, the firing mp, a per-block count).
4. `model_forced` per model when the burst has forced fires (recorded the same way).
5. `fire_compact`: the recorded fires into the burst's fire slot in ascending id order (block
   counts summed, a workgroup prefix sum per block), so the host never sorts.

Neuron parameters are one per-neuron word plus a row index into a table of the distinct
parameter rows, each led by its model's index (usually one row per cortical area; params.py).
Neuron state is four words per neuron, each model's variables in declaration order (state.py).
Burst numbers start at 1 (as everywhere in the engine); the internal sequence used for stamps is
a u32 (4e9 bursts).
"""
from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from feagi_burst.backends.base import Backend, BackendError, BurstResult
from feagi_burst.backends.wgpu.hashing import build_synapse_hash
from feagi_burst.backends.wgpu.layout import (
    BLOCK_NEURONS, CAND_BASE, COUNT_BITS, FULL_NEURONS, H_BCNT_OFF, H_BITS_OFF, H_DRIVE_LEN, H_DRIVE_N,
    H_DRIVE_OFF, H_DRIVE_POT, H_FMP_OFF, H_HASH_MASK, H_HASH_SHIFT, H_MAX_PROBE, H_N_NEURONS, H_NBLK, H_POWER,
    H_POWER_EXT, H_ROW_STRIDE, H_SEQ, H_SINCE, H_WIDE_OFF, H_ZERO, HEADER_STRIDE, HEADER_WORDS, NONE, SLOT_HEADER,
    W_SCALE_INV, WG)
from feagi_burst.backends.wgpu.params import neuron_params
from feagi_burst.backends.wgpu.plasticity import attach_gpu
from feagi_burst.backends.wgpu.runtime import AdapterDescription, Device, Recorder, grid, pow2
from feagi_burst.backends.wgpu.scheduler import HEADER_RING, TS, Batch, BurstScheduler, ModelRun, Pending
from feagi_burst.backends.wgpu.state import from_device, state_to_words, to_device, words_to_state
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables
from feagi_burst.models import NeuronModel, model_index

TS_SAMPLE = 8  # timing="auto": one batch in 8 carries GPU timestamps (each costs ~15% of its bursts' time)


class GPUBackend(BurstScheduler, Backend):
    """Bursts on a GPU through wgpu (WGSL compute shaders), bit for bit equal to the CPU backend.

    Knobs: `path` "auto" | "fcl" | "full" (force the candidate-list or full-array kernels),
    `batch` bursts encoded per command buffer, `adapter` a substring of the adapter label to pick,
    `timing` "auto" | "gpu" | "host", `max_binding_bytes` to shrink the storage binding limit
    (tests use it to exercise synapse chunking), `slots` the fire-slot ring size (bursts in flight),
    `native` False to use only wgpu-py's public API.

    Timings: with timestamp queries (adapter features timestamp-query and
    timestamp-query-inside-passes), each phase is GPU time between timestamps written inside the
    pass: input = stage_input (skipped, ~0, for bursts without stimulation or a power neuron),
    synaptic_propagation = propagation (+ Drive), neural_dynamics = dynamics_args + dynamics,
    output = forced fires + fire_compact (the readback copy is not timed). `timing="gpu"` stamps
    every batch; "auto" one batch in TS_SAMPLE, and the other bursts carry no timings.
    `timing="host"` (or no timestamp support): input = host time preparing and encoding the burst,
    synaptic_propagation = 0, neural_dynamics = the batch's wall time from submit to mapped,
    divided among its bursts, output = host time reading back.
    """

    name = "GPU (wgpu)"

    def __init__(self, path: str = "auto", batch: int = 16, adapter: str | None = None,
                 timing: str = "auto", max_binding_bytes: int | None = None, slots: int | None = None,
                 full_fraction: float = 0.125, native: bool = True) -> None:
        if path not in ("auto", "fcl", "full"):
            raise ValueError(f"path must be auto, fcl or full, not {path!r}")
        if timing not in ("auto", "gpu", "host"):
            raise ValueError(f"timing must be auto, gpu or host, not {timing!r}")
        self.path, self.batch_max, self.full_fraction = path, max(1, int(batch)), full_fraction
        self.dev = Device(adapter, native)
        if timing == "gpu" and not self.dev.timestamps:
            raise BackendError(f"{self.dev.label} has no timestamp queries inside passes")
        # batches between timestamped ones: 0 = host timing only
        self.ts_every = 0 if timing == "host" or not self.dev.timestamps else 1 if timing == "gpu" else TS_SAMPLE
        # Vulkan drivers cap a storage range at 2^31 - 1 whatever the limit reads (an H100 reported
        # 2^31 and then refused a 2^31-byte binding), so stay below that, aligned for every view
        self.binding_limit = min(self.dev.limit("max-storage-buffer-binding-size"),
                                 self.dev.limit("max-buffer-size"), 2**31 - 4) // 256 * 256
        if max_binding_bytes:
            self.binding_limit = min(self.binding_limit, int(max_binding_bytes))
        self.slots_wanted = slots
        self._layouts()
        self.loaded = False

    # -- identity ---------------------------------------------------------------------------
    def backend_name(self) -> str:
        return self.dev.label

    @property
    def is_software(self) -> bool:
        """True on a software rasteriser (llvmpipe, lavapipe, SwiftShader...): exact but slow."""
        return self.dev.desc.is_software

    @property
    def adapter(self) -> AdapterDescription:
        return self.dev.desc

    # -- pipelines --------------------------------------------------------------------------
    def _layouts(self) -> None:
        w, d = self.dev.wgpu, self.dev.device
        C = w.ShaderStage.COMPUTE
        st = {"type": w.BufferBindingType.storage}
        ro = {"type": w.BufferBindingType.read_only_storage}
        g0 = [{"binding": 0, "visibility": C,
               "buffer": {"type": w.BufferBindingType.uniform, "has_dynamic_offset": True,
                          "min_binding_size": HEADER_WORDS * 4}},
              {"binding": 1, "visibility": C, "buffer": ro}, {"binding": 2, "visibility": C, "buffer": st},
              {"binding": 3, "visibility": C, "buffer": st}, {"binding": 4, "visibility": C, "buffer": st},
              {"binding": 5, "visibility": C, "buffer": ro}, {"binding": 6, "visibility": C, "buffer": ro}]
        call = self.dev.call
        self.g0_layout = call("bind group layout", d.create_bind_group_layout, entries=g0)
        self.syn_layout = call("bind group layout", d.create_bind_group_layout, entries=[
            {"binding": 0, "visibility": C, "buffer": ro},
            {"binding": 1, "visibility": C, "buffer": {"type": w.BufferBindingType.uniform}}])
        self.args_layout = call("bind group layout", d.create_bind_group_layout,
                                entries=[{"binding": 0, "visibility": C, "buffer": st}])
        pl = d.create_pipeline_layout
        with_syn = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout, self.syn_layout])
        with_args = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout, self.args_layout])
        prog = self.dev.program
        self.p_stage = prog("stage_input.wgsl", with_args)
        self.p_args = prog("dynamics_args.wgsl", with_args)
        self.p_prop_fcl = prog("synaptic_propagation_fcl.wgsl", with_syn)
        self.p_prop_full = prog("synaptic_propagation.wgsl", with_syn)
        self.model_layout = call("bind group layout", d.create_bind_group_layout, entries=[
            {"binding": 0, "visibility": C, "buffer": {"type": w.BufferBindingType.uniform}}])
        self.with_model = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout, self.model_layout])
        self.model_pipelines: dict[str, dict[str, Any]] = {}  # model name -> kernel -> pipeline
        self.p_compact = prog("fire_compact.wgsl", with_args, {"HOOKS": "compact_plain.wgsl"})
        self.p_delta = prog("state_delta.wgsl", with_args)

    def _model_kernels(self, model: NeuronModel) -> dict[str, Any]:
        """The pipelines of one neuron model (its WGSL file pasted into each model kernel), compiled
        the first time a brain uses the model and kept for the backend's life."""
        if model.name not in self.model_pipelines:
            kernels = ("model_dynamics_all", "model_forced") if model.integrates_all else \
                ("model_dynamics_fcl", "model_dynamics_full", "model_forced")
            self.model_pipelines[model.name] = {
                k: self.dev.program(f"{k}.wgsl", self.with_model, {"MODEL": model.wgsl}) for k in kernels}
        return self.model_pipelines[model.name]

    # -- load -------------------------------------------------------------------------------
    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0, brain_rows: np.ndarray | None = None) -> None:
        """Upload the brain once: parameters, state, synapses (chunked), hash table, Drive order.

        brain_rows: when `brain` is a batch of brains (feagi_burst.batch.BrainBatch), each area's
        brain words (its brain's first id, seed term and resolution; params.BRAIN_WORDS).
        """
        self.close_buffers()
        w = self.dev.wgpu
        U = w.BufferUsage
        self.brain, self.tables, self.seed = brain, tables, int(seed)
        n = brain.neuron_count
        s = int(tables.pairs.size)
        self.n = n
        nb = brain.neurons

        # hash table and Drive order share one read-only binding
        area_cap = np.where(tables.mp_driven_area, tables.mp_cap, np.float32(0)).astype(np.float32)
        neuron_cap = area_cap[nb.cortical_area].view(np.uint32) if n else np.zeros(0, np.uint32)
        try:
            table, self.max_probe = build_synapse_hash(tables.offsets, neuron_cap)
        except ValueError as e:
            raise BackendError(str(e)) from e
        self.hash_table = table
        cap = table.shape[0]
        self.hash_mask, self.hash_shift = cap - 1, 32 - (cap.bit_length() - 1)
        drive = brain.drive
        order = np.asarray(drive.order, np.uint32) if drive is not None else np.zeros(0, np.uint32)
        self.drive_off = cap * 4
        # then the wide targets, whose synaptic events stamp them (layout.COUNT_BITS), as a bitmask
        fan_in = tables.fan_in if tables.fan_in is not None else np.bincount(tables.target, minlength=n)
        wide = np.packbits(fan_in >= 1 << COUNT_BITS, bitorder="little")
        wide = np.concatenate([wide, np.zeros(-wide.size % 16, np.uint8)]).view(np.uint32)
        self.wide_off = self.drive_off + order.size + (-order.size) % 4
        lookup = np.concatenate([table.reshape(-1), order, np.zeros((-order.size) % 4, np.uint32), wide])
        self.mean_fanout = s / max(1, int(np.count_nonzero(np.diff(tables.offsets))))

        params, self.param_rows, row_stride = neuron_params(brain, brain_rows, seed)

        # `work`: counters, candidate list, fire bitmask, block fire counts (two parities), firing
        # mps, then the ring of fire slots: every burst in flight keeps its fire set until read
        self.nblk = -(-n // BLOCK_NEURONS)
        self.bits_off = (CAND_BASE + n + 3) // 4 * 4
        self.bcnt_off = self.bits_off + self.nblk * (BLOCK_NEURONS // 32)
        self.fmp_off = (self.bcnt_off + 2 * self.nblk + 3) // 4 * 4
        slot_words = SLOT_HEADER + 2 * n
        slots_base = (self.fmp_off + n + 3) // 4 * 4
        per_slot = slot_words * 4
        fit = (self.binding_limit - slots_base * 4) // per_slot
        # keep ~4 batches in flight so the GPU never drains while the host waits for the oldest
        # (64 slots of 8 MiB at 1M neurons)
        want = self.slots_wanted or max(2, min(64, (512 << 20) // per_slot))
        self.R = int(min(want, fit))
        if self.R < 2:
            raise BackendError(self._too_big("the fire-slot ring (2 slots of N fires)", slots_base * 4 + 2 * per_slot,
                                             "max-storage-buffer-binding-size", self.binding_limit))
        # a batch's header rows and those written ahead of it must not wrap onto each other
        self.batch = max(1, min(self.batch_max, max(self.R // 4, min(self.R // 2, 8)), HEADER_RING // 2))
        self.slot_words, self.slots_base = slot_words, slots_base
        work_bytes = (slots_base + self.R * slot_words) * 4

        # synapses: (target, contribution) pairs, split into chunks of at most one binding
        per_chunk = max(1, min(self.binding_limit, self.dev.limit("max-buffer-size")) // 8)
        chunks = [(a, min(s, a + per_chunk)) for a in range(0, s, per_chunk)] or [(0, 0)]

        sizes = {"neuron parameters": params.nbytes, "neuron state": n * 16, "fire candidate list": n * 16,
                 "work (candidates + fire slots)": work_bytes, "synapse lookup": lookup.nbytes,
                 "synapses": s * 8}
        for label in ("neuron parameters", "neuron state", "fire candidate list", "synapse lookup"):
            if sizes[label] > self.binding_limit:
                raise BackendError(self._too_big(label, sizes[label], "max-storage-buffer-binding-size",
                                                 self.binding_limit))
        self.gpu_bytes = sum(sizes.values())
        try:
            STO, CD, CS = U.STORAGE, U.COPY_DST, U.COPY_SRC
            buf = self.dev.buffer
            self.b_params = buf("neuron parameters", params.nbytes, STO | CD)
            self.b_state = buf("neuron state", n * 16, STO | CD | CS)
            self.b_fcl = buf("fire candidate list", n * 16, STO | CD)
            self.b_work = buf("work", work_bytes, STO | CD | CS)
            self.b_lookup = buf("synapse lookup", lookup.nbytes, STO | CD)
            self.b_args = buf("dispatch args", 64, STO | U.INDIRECT | CD)
            self.b_headers = buf("burst headers", HEADER_STRIDE * (HEADER_RING + 1), U.UNIFORM | CD)
            self.b_models = buf("model info", 256 * len(brain.populations), U.UNIFORM | CD)
            self.b_syn, self.b_chunk = [], []
            for i, (a, e) in enumerate(chunks):
                self.b_syn.append(buf(f"synapses[{i}]", (e - a) * 8, STO | CD))
                self.b_chunk.append(buf(f"chunk[{i}]", 16, U.UNIFORM | CD))
        except BackendError as e:
            raise BackendError(f"{e}. The brain needs {self.gpu_bytes / 2**20:,.1f} MiB of GPU memory "
                               f"({', '.join(f'{k} {v / 2**20:,.1f}' for k, v in sizes.items())} MiB)") from e
        self.dev.upload(self.b_params, params)
        self.dev.upload(self.b_lookup, lookup)
        self.chunks = chunks
        self.upload_synapses(tables.pairs)
        for i, (a, e) in enumerate(chunks):
            self.dev.upload(self.b_chunk[i], np.array([a, e - a, 1 if i == 0 else 0, 0], np.uint32))
        self.b_inputs = None
        self._ensure_inputs(1 << 12)

        self.b_resolve = None
        if self.ts_every:
            self.query = self.dev.call("query set", self.dev.device.create_query_set,
                                       type=w.QueryType.timestamp, count=TS * self.batch)
            self.b_resolve = buf("timestamps", TS * self.batch * 8, U.QUERY_RESOLVE | U.COPY_SRC)

        bind = self.dev.device.create_bind_group

        def whole(b: Any, size: int | None = None) -> dict[str, Any]:
            return {"buffer": b, "offset": 0, "size": b.size if size is None else size}
        self.g_syn = [self.dev.call("bind group", bind, layout=self.syn_layout,
                                    entries=[{"binding": 0, "resource": whole(b)},
                                             {"binding": 1, "resource": whole(c, 16)}])
                      for b, c in zip(self.b_syn, self.b_chunk)]
        self.g_args = self.dev.call("bind group", bind, layout=self.args_layout,
                                    entries=[{"binding": 0, "resource": whole(self.b_args, 64)}])
        # one kernel set per neuron model present, each with its index and id range (ModelInfo)
        self.models: list[ModelRun] = []
        for k, pop in enumerate(brain.populations):
            lo, hi = pop.ranges[0][0], pop.ranges[-1][1]
            self.dev.upload(self.b_models, np.array([model_index(pop.model), lo, hi, 0], np.uint32), 256 * k)
            group = self.dev.call("bind group", bind, layout=self.model_layout, entries=[
                {"binding": 0, "resource": {"buffer": self.b_models, "offset": 256 * k, "size": 16}}])
            self.models.append(ModelRun(pop.model, group, self._model_kernels(pop.model), grid(-(-(hi - lo) // WG)),
                                        grid(-(-(hi - lo) // (WG * FULL_NEURONS)))))
        # a model that integrates every neuron changes every neuron's state each burst
        self.all_change = any(pop.model.integrates_all for pop in brain.populations)

        # host-side bookkeeping
        self.seq = 0
        self.power = brain.power_neuron
        self.pending: list[Pending] = []
        self.pending_since = 0.0
        self.in_flight: deque[Batch] = deque()
        self.ready: list[BurstResult] = []
        self.staging_pool: list[Any] = []
        self.last_fired = np.zeros(0, np.uint32)
        self.last_mp = np.zeros(0, np.float32)
        self.last_burst = 0
        self.known_fired = 0  # most recent fire count the host knows: drives the path choice
        # state() keeps a host copy of the state buffer and downloads only what changed since
        self.mirror = state_to_words(brain, brain.initial_state())
        if self.mirror.any():  # the device zero-fills new buffers: FEAGI LIF's initial state
            self.dev.upload(self.b_state, to_device(self.mirror))
        self.synced_seq = 0
        self.b_delta = self.g_delta = None
        self.state_download = ""  # how the last state() read the device: "delta (k rows)" or "full"
        self.need_stage = True  # the first burst's propagation grid comes from stage_input
        t = np.zeros(HEADER_STRIDE // 4, np.uint32)  # the header fields that are constant for this brain
        t[H_N_NEURONS] = n
        t[H_POWER] = NONE if self.power is None else self.power
        t[H_POWER_EXT] = NONE
        t[H_HASH_MASK], t[H_HASH_SHIFT], t[H_MAX_PROBE] = self.hash_mask, self.hash_shift, self.max_probe
        t[H_WIDE_OFF] = self.wide_off
        if drive is not None and drive.per_burst > 0 and drive.order.size:
            t[H_DRIVE_OFF], t[H_DRIVE_LEN] = self.drive_off, drive.order.size
            t[H_DRIVE_N] = min(drive.per_burst, drive.order.size)
            t[H_DRIVE_POT] = np.float32(drive.potential).view(np.uint32)
        t[H_BITS_OFF], t[H_BCNT_OFF], t[H_FMP_OFF], t[H_NBLK] = self.bits_off, self.bcnt_off, self.fmp_off, self.nblk
        t[H_ROW_STRIDE], t[H_ZERO] = row_stride, 0
        self.h_template = t
        # the constant fields in every row (a one-off dispatch reads them from row 0); no row holds a
        # burst's header yet
        self.dev.write(self.b_headers, np.repeat(t[None, :], HEADER_RING + 1, axis=0))
        self.h_end, self.h_full, self.h_delta = 0, False, 0
        # the fixed-point sum -> f32 factor is a device word: STDP lowers it on the device
        self.dev.upload(self.b_work, np.array([np.float32(tables.resolution).view(np.uint32)], np.uint32),
                        W_SCALE_INV * 4)
        self.plastic = attach_gpu(self, brain, tables)  # None without plastic synapses (plasticity.py)
        self.batches = 0
        self.recent_max = 0
        self.gpu_span = 0.0  # with timestamps: GPU seconds per burst over the last batch
        self.cap = min(max(n, 1), max(4096, pow2(2 * (drive.per_burst if drive else 0) + 1024)))
        self.loaded = True

    def upload_synapses(self, pairs: np.ndarray) -> None:
        """The synapse table's (target, contribution) words into the chunks (fixed_point.
        SynapseTables.pairs already interleaves them as the shaders read them)."""
        piece = max(1, (64 << 20) // 8)
        for i, (a, e) in enumerate(self.chunks):
            for p in range(a, e, piece):
                self.dev.upload(self.b_syn[i], pairs[p:min(e, p + piece)], (p - a) * 8)

    def _too_big(self, what: str, need: int, limit_name: str, limit: int) -> str:
        return (f"{what} needs {need / 2**20:,.1f} MiB but {self.dev.label} allows "
                f"{limit / 2**20:,.1f} MiB ({limit_name})")

    def _ensure_inputs(self, words: int) -> None:
        if self.b_inputs is not None and self.b_inputs.size >= words * 4:
            return
        size = pow2(max(words * 4, 1 << 12))
        if size > self.binding_limit:
            raise BackendError(self._too_big("staged input of one batch", size, "max-storage-buffer-binding-size",
                                             self.binding_limit))
        U = self.dev.wgpu.BufferUsage
        self.b_inputs = self.dev.buffer("staged input", size, U.STORAGE | U.COPY_DST)
        self.g0 = self.dev.call("bind group", self.dev.device.create_bind_group, layout=self.g0_layout, entries=[
            {"binding": 0, "resource": {"buffer": self.b_headers, "offset": 0, "size": HEADER_STRIDE}},
            *({"binding": i, "resource": {"buffer": b, "offset": 0, "size": b.size}} for i, b in
              ((1, self.b_params), (2, self.b_state), (3, self.b_fcl), (4, self.b_work), (5, self.b_lookup),
               (6, self.b_inputs)))])

    # -- submit / collect --------------------------------------------------------------------
    # -- state ------------------------------------------------------------------------------
    def state(self) -> NeuronState:
        """Every model's state variables after every submitted burst has finished.

        Only the neurons touched since the last sync are downloaded when they are at most a
        quarter of the brain (one small round trip for their count first); otherwise every neuron.
        """
        self._check()
        self._drain()
        if self.seq != self.synced_seq and self.n:
            self._sync_mirror()
        st = words_to_state(self.brain, self.mirror, self.last_burst)
        st.plastic = self.plastic.state(self.last_burst) if self.plastic is not None else None
        return st

    def plastic_state(self) -> object | None:
        """The STDP state after every submitted burst (only the plastic buffers are read)."""
        self._check()
        self._drain()
        return self.plastic.state(self.last_burst) if self.plastic is not None else None

    def _download_all(self) -> None:
        """The host copy from the whole state buffer (its word arrays back into rows)."""
        self.mirror = from_device(self.dev.download(self.b_state, 0, self.n * 16), self.n)
        self.state_download = "full"

    def _sync_mirror(self) -> None:
        if self.all_change:
            self._download_all()
            self.synced_seq = self.seq
            return
        cap = max(1, self.n // 4)
        if self.b_delta is None:
            U = self.dev.wgpu.BufferUsage
            self.b_delta = self.dev.buffer("state delta", 16 + 16 * cap, U.STORAGE | U.COPY_DST | U.COPY_SRC)
            self.g_delta = self.dev.call("bind group", self.dev.device.create_bind_group, layout=self.args_layout,
                                         entries=[{"binding": 0, "resource": {"buffer": self.b_delta, "offset": 0,
                                                                              "size": self.b_delta.size}}])
        hdr = self.h_template.copy()
        hdr[H_SEQ], hdr[H_SINCE] = self.seq & 0xFFFFFFFF, self.synced_seq & 0xFFFFFFFF
        one_off = HEADER_RING * HEADER_STRIDE  # the row after the ring: the bursts' rows stay as they are
        self.dev.write(self.b_headers, hdr, one_off)
        self.dev.write(self.b_delta, np.array([0, cap, 0, 0], np.uint32))
        rec = Recorder(self.dev)
        rec.bind(0, self.g0, one_off)
        rec.pipeline(self.p_delta)
        rec.bind(1, self.g_delta)
        rec.dispatch(*grid(-(-self.n // WG)))
        rec.end_pass()
        rec.submit()
        count = int(self.dev.download(self.b_delta, 0, 16).view(np.uint32)[0])
        if count <= cap:
            rows = self.dev.download(self.b_delta, 16, count * 16).view(np.uint32).reshape(count, 4) \
                if count else np.zeros((0, 4), np.uint32)
            self.mirror[rows[:, 0], :3] = rows[:, 1:]
            self.state_download = f"delta ({count:,} of {self.n:,} neurons)"
        else:
            self._download_all()
        self.synced_seq = self.seq

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        """Continue from `state`; `last_fired`/`last_mp` propagate into the next burst."""
        self._check()
        self._drain()
        n = self.n
        sizes = {v.shape[0] for v in state.values.values()}
        if sizes - {n}:
            raise BackendError(f"state has {sorted(sizes)} neurons, the brain {n}")
        raw = state_to_words(self.brain, state)
        if n:
            self.dev.upload(self.b_state, to_device(raw))
        self.mirror, self.synced_seq = raw, self.seq
        fired = np.asarray(last_fired, np.uint32)
        at = self._slot(self.seq) * 4
        head = np.zeros(SLOT_HEADER + fired.size, np.uint32)
        head[0], head[2] = fired.size, self.seq & 0xFFFFFFFF
        head[SLOT_HEADER:] = fired
        self.dev.upload(self.b_work, head, at)
        if fired.size:
            self.dev.upload(self.b_work, np.asarray(last_mp, np.float32).view(np.uint32),
                            at + (SLOT_HEADER + self.n) * 4)
        self.need_stage = True  # the next propagation grid must come from this fire set
        self.last_fired, self.last_mp = fired.copy(), np.asarray(last_mp, np.float32).copy()
        self.last_burst = state.burst
        if self.plastic is not None:
            self.plastic.restore(state.plastic, state.burst)
        self.known_fired = int(fired.size)

    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mp) of the last submitted burst (waits for it; results stay for collect)."""
        self._check()
        self._drain()
        return self.last_fired, self.last_mp


    def gpu_memory(self) -> int:
        """Bytes of device buffers this brain holds (staging and small buffers excluded)."""
        return int(getattr(self, "gpu_bytes", 0))

    # -- cleanup ----------------------------------------------------------------------------
    def close_buffers(self) -> None:
        if not getattr(self, "loaded", False):
            return
        try:
            self._drain()
        except BackendError:
            pass
        if getattr(self, "plastic", None) is not None:
            self.plastic.close()
            self.plastic = None
        for name in ("b_params", "b_state", "b_fcl", "b_work", "b_lookup", "b_args", "b_headers", "b_inputs",
                     "b_resolve", "b_delta", "b_models"):
            b = getattr(self, name, None)
            if b is not None:
                try:
                    b.destroy()
                except Exception:  # noqa: BLE001
                    pass
                setattr(self, name, None)
        for b in [*getattr(self, "b_syn", []), *getattr(self, "b_chunk", []), *getattr(self, "staging_pool", [])]:
            try:
                b.destroy()
            except Exception:  # noqa: BLE001
                pass
        self.b_syn, self.b_chunk, self.staging_pool = [], [], []
        self.loaded = False

    def close(self) -> None:
        self.close_buffers()
        dev = getattr(self, "dev", None)
        if dev is not None:
            try:
                dev.device.destroy()
            except Exception:  # noqa: BLE001
                pass
