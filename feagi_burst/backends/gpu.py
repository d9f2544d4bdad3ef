"""The GPU backend: SPEC.md section 2 in WGSL compute shaders on wgpu-py, bit-exact with cpu.py.

Layers, bottom up (modelled on tinygrad's runtime/ops_webgpu.py):

- `probe_adapters()` lists adapters without creating a device.
- `_Native` calls wgpu-native directly on the per-burst path (encode, submit, map, poll).
- `_Device` owns adapter, device and queue; every wgpu call goes through `_Device.call`, which
  turns wgpu-py's errors (it captures each native call's validation / out-of-memory / internal
  error and raises it) and device loss into one `BackendError` naming what was being done.
- `build_synapse_hash` builds the GPU hash table source neuron -> (start, count, mp cap).
- `GPUBackend` keeps a brain on the device and pipelines bursts.

Per burst (all on the GPU, no CPU round trip), in one compute pass per batch of bursts:

1. `stage_input`: external potentials, the power neuron, forced-neuron marks, reset of this
   burst's fire slot, and the propagation grid (previous fire count) for the indirect dispatch
   that follows.
2. `synaptic_propagation_fcl` (FCL path) or `synaptic_propagation` (full-array path), indirect,
   once per synapse chunk: i32 atomic fixed-point sums, candidate stamps, and the Drive.
3. FCL path: `dynamics_args` (1 invocation) then `neural_dynamics_fcl` (indirect, candidates
   only); full path: `neural_dynamics` (every neuron, stamp test). Fires are recorded per neuron
   (a bitmask bit, the firing mp, a per-block count).
4. `fire_forced` when the burst has forced fires (recorded the same way).
5. `fire_compact`: the recorded fires into the burst's fire slot in ascending id order (block
   counts summed, a workgroup prefix sum per block), so the host never sorts.

After the pass, each burst's fire slot (header, the first `cap` ids and their mps) is copied into
a staging buffer (a reused pool) whose mapping starts right after the submit; `collect` checks
with a non-blocking poll which batches are done, slices out their fire sets and hands them out in
order, and waits (for that batch's submission only) just when the fire-slot ring is full or the
caller blocks. Bursts whose fire count exceeds `cap` (it tracks the recent maximum) get the rest by
one direct read. `_Native` makes the per-burst wgpu calls directly (see its docstring).
Neuron parameters are a per-neuron threshold plus a row index into a table of the distinct
remaining parameter combinations (usually one per cortical area).
Burst numbers start at 1 (as everywhere in the engine); the internal sequence used for stamps is
a u32 (4e9 bursts). The path (FCL or full-array) is chosen by the host per burst from the last
fire count it knows (its estimate of candidates vs N); both give identical results.
"""
from __future__ import annotations

import importlib.resources
import os
import tempfile
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from feagi_burst.backends.base import Backend, BackendError, BurstInput, BurstResult
from feagi_burst.brain import Brain, NeuronState
from feagi_burst.fixed_point import SynapseTables

# --- layout constants shared with shaders/common.wgsl ----------------------------------------
WG = 256
NONE = 0xFFFFFFFF
CAND_BASE = 16  # words of `work` before the candidate list
SLOT_HEADER = 4  # words: fired count, candidate count, seq, 0; then N ids, then N mps
HEADER_STRIDE = 256  # bytes per burst header (dynamic uniform offset)
HEADER_WORDS = 28
BLOCK_NEURONS = 8192  # neurons per fire block (one fire_compact workgroup: 256 bitmask words)
MAX_DIM = 65535
HASH_MULT = 0x9E3779B1
TS_SAMPLE = 8  # timing="auto": one batch in 8 carries GPU timestamps (each costs ~15% of its bursts' time)
IDLE_FLUSH_S = 0.002
SPIN_S = 0.002  # a wait for the GPU polls without sleeping this long before it blocks  # an idle GPU gets a partial batch once its oldest burst has waited this long
EXCITABILITY_ALWAYS = np.float32(0.999)
SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "softpipe", "basic render", "warp")

# header word indices (struct Header in common.wgsl)
(H_BURST, H_SEQ, H_SALT, H_APPEND, H_SLOT, H_PREV, H_N, H_SCALE, H_EXT_OFF, H_EXT_N, H_F_OFF,
 H_F_N, H_POWER, H_POWER_EXT, H_MASK, H_SHIFT, H_PROBE, H_D_OFF, H_D_LEN, H_D_START, H_D_N,
 H_D_POT, H_BITS, H_BCNT, H_FMP, H_NBLK, H_SINCE) = range(27)


# --- adapters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AdapterDescription:
    """One wgpu adapter as `probe_adapters` sees it (no device created)."""

    name: str
    backend: str  # Vulkan, Metal, D3D12, OpenGL
    adapter_type: str  # DiscreteGPU, IntegratedGPU, CPU, Unknown
    is_software: bool
    vendor: str = ""
    description: str = ""

    @property
    def label(self) -> str:
        return f"WGPU ({self.backend}): {self.name}"


def _describe(info: Any) -> AdapterDescription:
    name = str(info.get("device", "") or info.get("description", "") or "unknown adapter")
    kind = str(info.get("adapter_type", "Unknown"))
    low = (name + " " + str(info.get("vendor", ""))).lower()
    software = kind.upper() == "CPU" or any(s in low for s in SOFTWARE_NAMES)
    return AdapterDescription(name=name, backend=str(info.get("backend_type", "?")), adapter_type=kind,
                              is_software=software, vendor=str(info.get("vendor", "")),
                              description=str(info.get("description", "")))


def _wgpu() -> Any:
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # Mesa's Vulkan WSI prints "XDG_RUNTIME_DIR is invalid" once per adapter without it; a
        # compute-only process has no use for it, so give it a private folder and keep stderr clean.
        run_dir = Path(tempfile.gettempdir()) / f"feagi-burst-{os.getuid()}"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(run_dir)
    try:
        import wgpu  # noqa: PLC0415 (optional heavy import: only the GPU backend needs it)
    except ImportError as e:
        raise BackendError(f"the GPU backend needs the wgpu package (pip install wgpu): {e}") from e
    return wgpu


def probe_adapters() -> list[AdapterDescription]:
    """Every adapter wgpu can see (name, API, type, software or not), without creating a device."""
    wgpu = _wgpu()
    try:
        adapters = wgpu.gpu.enumerate_adapters_sync()
    except Exception as e:  # noqa: BLE001 (a broken driver stack must not crash a probe)
        raise BackendError(f"could not enumerate GPU adapters: {e}") from e
    return [_describe(a.info) for a in adapters]


# --- the synapse hash table ----------------------------------------------------------------
def hash_slot(ids: np.ndarray, shift: int) -> np.ndarray:
    """Home slot of each id: multiplicative (Fibonacci) hash, top bits; as in propagation.wgsl."""
    h = (np.asarray(ids, np.uint64) * np.uint64(HASH_MULT)) & np.uint64(0xFFFFFFFF)
    return (h >> np.uint64(shift)).astype(np.int64)


def build_synapse_hash(offsets: np.ndarray, extra: np.ndarray | None = None,
                       min_capacity: int = 16) -> tuple[np.ndarray, int]:
    """Hash table source neuron -> (start, count) of its synapses in the flat list.

    Returns (table, max_probe): table is u32 [capacity, 4] rows (key, start, count, extra[key])
    with key 0xFFFFFFFF for empty slots; capacity is a power of two, at least twice the number of
    neurons that have synapses. Linear probing, built with one vectorised pass per probe round;
    max_probe is the longest distance of a key from its home slot, the bound the shader probes.
    """
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    keys = np.flatnonzero(counts > 0)
    if offsets.size and int(offsets[-1]) >= 2**32:
        raise ValueError(f"{int(offsets[-1]):,} synapses: the GPU table indexes at most 2^32 - 1")
    if keys.size and int(keys[-1]) >= NONE:
        raise ValueError("neuron ids must stay below 2^32 - 1")
    cap = max(int(min_capacity), 2)
    while cap < 2 * keys.size:
        cap *= 2
    bits = cap.bit_length() - 1
    shift = 32 - bits
    table = np.full((cap, 4), NONE, np.uint32)
    table[:, 1:] = 0
    slot_key = table[:, 0]  # view
    home = hash_slot(keys, shift)
    pending = np.arange(keys.size)
    max_probe = 0
    probe = 0
    while pending.size:
        pos = (home[pending] + probe) & (cap - 1)
        free = slot_key[pos] == NONE
        cand, cpos = pending[free], pos[free]
        slot_key[cpos] = keys[cand]  # several keys may want one slot: the last write wins...
        won = slot_key[cpos] == keys[cand]  # ...and the others probe on
        if won.any():
            max_probe = probe
        pending = np.concatenate([pending[~free], cand[~won]])
        pending.sort()  # deterministic order whatever the round
        probe += 1
        if probe > cap:
            raise RuntimeError("hash table build did not converge")  # cannot happen at half load
    table[:, 0] = slot_key
    placed = slot_key != NONE
    k = slot_key[placed].astype(np.int64)
    table[placed, 1] = offsets[k].astype(np.uint32)
    table[placed, 2] = counts[k].astype(np.uint32)
    table[placed, 3] = extra[k].astype(np.uint32) if extra is not None else 0
    return table, max_probe


def lookup_synapse_hash(table: np.ndarray, max_probe: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) of each id, probing exactly as the shader does (numpy; for tests)."""
    ids = np.asarray(ids, np.int64)
    cap = table.shape[0]
    home = hash_slot(ids, 32 - (cap.bit_length() - 1))
    start = np.zeros(ids.size, np.int64)
    count = np.zeros(ids.size, np.int64)
    open_ = np.ones(ids.size, bool)
    for d in range(max_probe + 1):
        row = table[(home + d) & (cap - 1)]
        hit = open_ & (row[:, 0] == ids)
        start[hit], count[hit] = row[hit, 1], row[hit, 2]
        open_ &= ~hit & (row[:, 0] != NONE)
    return start, count


# --- shaders -------------------------------------------------------------------------------
_INCLUDE = re.compile(r"^//!include\s+(\S+)\s*$", re.M)


def _shader_text(name: str) -> str:
    """A shader file: package data `feagi_burst/shaders` when installed, else `<repo>/shaders`."""
    try:
        res = importlib.resources.files("feagi_burst.shaders").joinpath(name)
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    path = Path(__file__).resolve().parents[2] / "shaders" / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise BackendError(f"shader {name} not found (package data feagi_burst/shaders or {path})") from e


def load_shader(name: str) -> str:
    """Shader source with `//!include other.wgsl` lines replaced by the file (each once)."""
    seen: set[str] = set()

    def expand(text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            inc = m.group(1)
            if inc in seen:
                return ""
            seen.add(inc)
            return expand(_shader_text(inc))
        return _INCLUDE.sub(sub, text)

    return expand(_shader_text(name))


# --- neuron parameters ---------------------------------------------------------------------
PARAM_ROW_WORDS = 6  # threshold_limit, 1 - leak, excitability, refractory | snooze << 16, cfc_limit | acc << 16, 0


def neuron_params(brain: Brain) -> tuple[np.ndarray, int]:
    """The params buffer: u32 (threshold bits, row) per neuron, then the rows (PARAM_ROW_WORDS each).

    Everything but the threshold is usually constant per cortical area, so neurons share rows of
    a small table (it stays in cache) and neural dynamics reads 8 bytes per neuron instead of 32.
    Rows are the areas' when every area is uniform, else the distinct combinations. Returns the
    buffer (u32) and the number of rows.
    """
    nb = brain.neurons
    n = brain.neuron_count
    rows = np.zeros((n, PARAM_ROW_WORDS), np.uint32)
    rf = rows.view(np.float32)
    rf[:, 0] = nb.threshold_limit
    rf[:, 1] = np.float32(1) - nb.leak.astype(np.float32)  # the CPU's (1 - leak), in f32
    rf[:, 2] = nb.excitability
    rows[:, 3] = nb.refractory_period.astype(np.uint32) | (nb.snooze.astype(np.uint32) << 16)
    rows[:, 4] = nb.cfc_limit.astype(np.uint32) | (nb.mp_accumulate.astype(np.uint32) << 16)
    area = np.asarray(nb.cortical_area, np.int64)
    if n:
        areas, first, index = np.unique(area, return_index=True, return_inverse=True)
        table = rows[first]
        if not np.array_equal(rows, table[index]):  # some area is not uniform: distinct rows
            table, index = np.unique(rows, axis=0, return_inverse=True)
    else:
        table, index = np.zeros((0, PARAM_ROW_WORDS), np.uint32), np.zeros(0, np.int64)
    per_neuron = np.empty((n, 2), np.uint32)
    per_neuron[:, 0] = np.asarray(nb.threshold, np.float32).view(np.uint32)
    per_neuron[:, 1] = np.asarray(index, np.int64).reshape(-1)
    return np.concatenate([per_neuron.reshape(-1), table.reshape(-1)]), int(table.shape[0])


# --- device layer --------------------------------------------------------------------------
class _Native:
    """Direct calls into wgpu-native, for the per-burst path.

    wgpu-py's wrappers cost 5-30 µs a call (a cffi callback made per map_async, a poll thread
    that wakes the caller through two thread hops), which at one burst per command buffer costs
    more than the burst. Checked calls go through wgpu-py's `libf`, which raises the native error
    message; the per-dispatch pass commands use `lib` unchecked (a bad command invalidates the
    encoder, and the checked finish raises its message). Mapping uses one callback made here, and
    completion is polled on the calling thread, waiting for one submission rather than all.
    """

    FUNCTIONS = ("wgpuDeviceCreateCommandEncoder", "wgpuCommandEncoderBeginComputePass",
                 "wgpuComputePassEncoderSetBindGroup", "wgpuComputePassEncoderSetPipeline",
                 "wgpuComputePassEncoderDispatchWorkgroups", "wgpuComputePassEncoderDispatchWorkgroupsIndirect",
                 "wgpuComputePassEncoderWriteTimestamp", "wgpuComputePassEncoderEnd",
                 "wgpuCommandEncoderCopyBufferToBuffer", "wgpuCommandEncoderResolveQuerySet",
                 "wgpuCommandEncoderFinish", "wgpuQueueSubmitForIndex", "wgpuQueueWriteBuffer",
                 "wgpuBufferMapAsync", "wgpuBufferGetConstMappedRange", "wgpuBufferUnmap", "wgpuDevicePoll",
                 "wgpuComputePassEncoderRelease", "wgpuCommandEncoderRelease", "wgpuCommandBufferRelease")

    def __init__(self, lib: Any, ffi: Any, libf: Any, device: Any, queue: Any) -> None:
        self.lib, self.ffi, self.libf, self.device, self.queue = lib, ffi, libf, device, queue
        self.maps: dict[int, int] = {}  # map key -> status, written by the callback
        self.next_key = 0

        @ffi.callback("void(WGPUMapAsyncStatus, WGPUStringView, void *, void *)")
        def on_mapped(status: int, _message: Any, key: Any, _unused: Any) -> None:
            self.maps[int(ffi.cast("intptr_t", key))] = int(status)
        self.on_mapped = on_mapped  # alive as long as the device
        self.map_info = ffi.new("WGPUBufferMapCallbackInfo *")
        self.map_info.mode = lib.WGPUCallbackMode_AllowProcessEvents
        self.map_info.callback = on_mapped
        self.cmds = ffi.new("WGPUCommandBuffer[1]")
        self.index = ffi.new("uint64_t *")

    def write(self, buf: Any, offset: int, data: np.ndarray) -> None:
        self.libf.wgpuQueueWriteBuffer(self.queue, buf._internal, offset, self.ffi.from_buffer(data), data.nbytes)

    def map_read(self, buf: Any, size: int) -> int:
        self.next_key += 1
        key = self.next_key
        self.map_info.userdata1 = self.ffi.cast("void *", key)
        self.libf.wgpuBufferMapAsync(buf._internal, self.lib.WGPUMapMode_Read, 0, size, self.map_info[0])
        return key

    def poll(self, submission: int | None = None) -> None:
        """Fire the callbacks of finished work; with a submission index, first wait for it."""
        if submission is None:
            self.libf.wgpuDevicePoll(self.device, False, self.ffi.NULL)
        else:
            self.index[0] = submission
            self.libf.wgpuDevicePoll(self.device, True, self.index)

    def wait(self, key: int, submission: int) -> None:
        """Until mapping `key` is done: spin on non-blocking polls for up to SPIN_S, then block.

        A blocking poll sleeps in the driver and wakes ~60 µs after the GPU finishes (H100,
        Vulkan), which is half a burst: closed-loop bursts spin through the short wait instead.
        """
        deadline = time.perf_counter() + SPIN_S
        while key not in self.maps:
            if time.perf_counter() > deadline:
                self.poll(submission)
                if key not in self.maps:  # the callback runs on the poll after the wait
                    self.poll()
                return
            self.poll()

    def mapped(self, buf: Any, size: int) -> np.ndarray:
        """The mapped bytes as u32 (valid until unmap)."""
        ptr = self.libf.wgpuBufferGetConstMappedRange(buf._internal, 0, size)
        return np.frombuffer(self.ffi.buffer(ptr, size), np.uint32)


class _Device:
    """Adapter + device + queue; `call` runs a wgpu call and raises BackendError on failure."""

    def __init__(self, adapter: str | None = None, native: bool = True) -> None:
        self.wgpu = wgpu = _wgpu()
        self.lost: str | None = None
        try:
            if adapter:
                found = [a for a in wgpu.gpu.enumerate_adapters_sync()
                         if adapter.lower() in _describe(a.info).label.lower()]
                self.adapter = found[0] if found else None
            else:
                self.adapter = wgpu.gpu.request_adapter_sync(power_preference="high-performance")
        except Exception as e:  # noqa: BLE001
            raise BackendError(f"no GPU adapter could be requested: {e}") from e
        if self.adapter is None:
            raise BackendError("no GPU adapter found" + (f" matching {adapter!r}" if adapter else "")
                               + ": install a Vulkan/Metal/D3D12 driver (Linux without a GPU: "
                               "mesa-vulkan-drivers gives the lavapipe software adapter)")
        self.desc = _describe(self.adapter.info)
        feats = set(self.adapter.features)
        self.timestamps = {"timestamp-query", "timestamp-query-inside-passes"} <= feats
        want = [f for f in ("timestamp-query", "timestamp-query-inside-passes") if self.timestamps]
        # the defaults cap a storage binding at 128 MiB: ask for everything the adapter offers
        limits = {k: v for k, v in dict(self.adapter.limits).items() if v is not None}
        self.device = self.call("request_device", self.adapter.request_device_sync,
                                required_features=want, required_limits=limits)
        self.queue = self.device.queue
        self.limits = dict(self.device.limits)
        self.native = self._native() if native else None
        self.readback: Any = None  # staging for download(), grown on demand
        try:
            self.device.lost_async.then(self._on_lost)  # needs an event loop; fine when absent
        except Exception:  # noqa: BLE001
            pass

    def _native(self) -> _Native | None:
        """wgpu-native's C functions through wgpu-py's private cffi binding, when it has them all."""
        try:
            from wgpu.backends.wgpu_native._api import libf  # noqa: PLC0415
            from wgpu.backends.wgpu_native._ffi import ffi, lib  # noqa: PLC0415
        except ImportError:
            return None
        try:
            ffi.typeof("WGPUBufferMapCallbackInfo")
        except ffi.error:
            return None
        if not all(hasattr(lib, f) for f in _Native.FUNCTIONS):
            return None
        return _Native(lib, ffi, libf, self.device._internal, self.queue._internal)

    def _on_lost(self, info: Any) -> None:
        self.lost = str(getattr(info, "message", info))

    @property
    def label(self) -> str:
        return self.desc.label

    def limit(self, name: str) -> int:
        return int(self.limits[name])

    def call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one wgpu call; any wgpu error becomes a BackendError that says what failed."""
        if self.lost:
            raise BackendError(f"GPU device lost ({self.label}): {self.lost}")
        try:
            return fn(*args, **kwargs)
        except BackendError:
            raise
        except Exception as e:  # noqa: BLE001 (wgpu raises GPUError subclasses and RuntimeError)
            kind = type(e).__name__
            text = str(e).strip().splitlines()
            msg = " ".join(line.strip() for line in text[:6])
            if "OutOfMemory" in kind or "out of memory" in msg.lower():
                kind = "out of GPU memory"
            elif "Validation" in kind:
                kind = "validation error"
            elif "lost" in msg.lower():
                kind = "device lost"
            raise BackendError(f"{what} failed on {self.label}: {kind}: {msg}") from e

    def buffer(self, label: str, size: int, usage: int) -> Any:
        size = max(16, (int(size) + 15) // 16 * 16)
        if size > self.limit("max-buffer-size"):
            raise BackendError(f"buffer {label!r} needs {size / 2**20:,.1f} MiB but this device's "
                               f"max-buffer-size is {self.limit('max-buffer-size') / 2**20:,.1f} MiB")
        return self.call(f"allocating {label} ({size / 2**20:,.1f} MiB)", self.device.create_buffer,
                         label=label, size=size, usage=usage)

    def upload(self, buf: Any, data: np.ndarray, offset: int = 0) -> None:
        """`write` in pieces (bounded staging memory for GB-sized uploads), padded to 4 bytes."""
        raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
        step = 64 << 20
        for at in range(0, raw.size, step):
            part = raw[at:at + step]
            if part.size % 4:
                part = np.concatenate([part, np.zeros(4 - part.size % 4, np.uint8)])
            self.write(buf, part, offset + at)

    def download(self, buf: Any, offset: int, size: int) -> np.ndarray:
        """Blocking read of `size` bytes at `offset` (4-aligned), after all work submitted before.

        Through one reused staging buffer: wgpu-py's queue.read_buffer allocates a new one per
        call, which for a 1M-neuron state (16 MB) costs more than the copy.
        """
        padded = (size + 3) // 4 * 4
        if padded == 0:
            return np.zeros(0, np.uint8)
        if self.readback is None or self.readback.size < padded:
            if self.readback is not None:
                self.readback.destroy()
            self.readback = self.buffer("state readback", _pow2(padded),
                                        self.wgpu.BufferUsage.MAP_READ | self.wgpu.BufferUsage.COPY_DST)
        rec = _Recorder(self, compute=False)
        rec.copy(buf, offset, self.readback, 0, padded)
        submission = rec.submit()
        ticket = self.map_read(self.readback, padded)
        try:
            return self.read_mapped(self.readback, padded, ticket, submission).view(np.uint8)[:size].copy()
        finally:
            self.unmap(self.readback)

    def write(self, buf: Any, data: np.ndarray, offset: int = 0) -> None:
        """A small queue write (per-burst headers and inputs); `upload` for large data."""
        if self.native is None:
            self.call(f"writing {buf.label}", self.queue.write_buffer, buf, offset, data)
        else:
            self.call(f"writing {buf.label}", self.native.write, buf, offset, data)

    def map_read(self, buf: Any, size: int) -> Any:
        """Start mapping `buf` for reading once the work before it is done; returns a ticket."""
        if self.native is None:
            return self.call("mapping results", buf.map_async, "READ_NOSYNC", 0, size)
        return self.call("mapping results", self.native.map_read, buf, size)

    def is_mapped(self, ticket: Any) -> bool:
        """True once the mapping is done (never waits)."""
        if self.native is None:
            ev = getattr(ticket, "_thread_event", None)  # wgpu-py has no public "is resolved"
            return getattr(ticket, "_state", "pending") != "pending" or (ev is not None and ev.is_set())
        if ticket not in self.native.maps:
            self.call("polling the device", self.native.poll)
        return ticket in self.native.maps

    def read_mapped(self, buf: Any, size: int, ticket: Any, submission: int) -> np.ndarray:
        """Wait for the mapping (and submission `submission`); the mapped bytes as u32 until unmap."""
        if self.native is None:
            self.call("waiting for bursts", ticket.sync_wait)
            return np.frombuffer(self.call("reading results", buf.read_mapped, 0, size, copy=False), np.uint32)
        nat = self.native
        self.call("waiting for bursts", nat.wait, ticket, submission)
        status = nat.maps.pop(ticket, None)
        if status != nat.lib.WGPUMapAsyncStatus_Success:
            raise BackendError(f"mapping results failed on {self.label}: status {status}")
        return self.call("reading results", nat.mapped, buf, size)

    def unmap(self, buf: Any) -> None:
        if self.native is None:
            self.call("unmapping results", buf.unmap)
        else:
            self.call("unmapping results", self.native.libf.wgpuBufferUnmap, buf._internal)

    def program(self, name: str, layout: Any) -> Any:
        code = load_shader(name)
        module = self.call(f"compiling shader {name}", self.device.create_shader_module,
                           label=name, code=code)
        return self.call(f"creating pipeline {name}", self.device.create_compute_pipeline,
                         label=name, layout=layout, compute={"module": module, "entry_point": "main"})


class _Recorder:
    """Records one batch (a compute pass and the readback copies after it) and submits it.

    With `_Native`, every command goes straight to wgpu-native (about ten per burst, each of which
    would cost ~5 µs in wgpu-py's wrappers); without it, the public API.
    """

    def __init__(self, dev: _Device, compute: bool = True) -> None:
        self.dev = dev
        self.n = dev.native
        self.p = self.cp = None
        if self.n is None:
            self.enc = dev.call("encoding", dev.device.create_command_encoder)
            if compute:
                self.cp = self.enc.begin_compute_pass()
            return
        self.lib, self.ffi, null = self.n.lib, self.n.ffi, self.n.ffi.NULL
        self.enc = dev.call("encoding", self.n.libf.wgpuDeviceCreateCommandEncoder, self.n.device, null)
        if compute:
            self.p = dev.call("encoding", self.n.libf.wgpuCommandEncoderBeginComputePass, self.enc, null)
        self.offset = self.ffi.new("uint32_t[1]")

    def bind(self, index: int, group: Any, offset: int | None = None) -> None:
        if self.n is None:
            self.cp.set_bind_group(index, group, [] if offset is None else [offset])
        elif offset is None:
            self.lib.wgpuComputePassEncoderSetBindGroup(self.p, index, group._internal, 0, self.ffi.NULL)
        else:
            self.offset[0] = offset
            self.lib.wgpuComputePassEncoderSetBindGroup(self.p, index, group._internal, 1, self.offset)

    def pipeline(self, pipe: Any) -> None:
        if self.n is None:
            self.cp.set_pipeline(pipe)
        else:
            self.lib.wgpuComputePassEncoderSetPipeline(self.p, pipe._internal)

    def dispatch(self, x: int, y: int = 1, z: int = 1) -> None:
        if self.n is None:
            self.cp.dispatch_workgroups(x, y, z)
        else:
            self.lib.wgpuComputePassEncoderDispatchWorkgroups(self.p, x, y, z)

    def dispatch_indirect(self, buf: Any, offset: int) -> None:
        if self.n is None:
            self.cp.dispatch_workgroups_indirect(buf, offset)
        else:
            self.lib.wgpuComputePassEncoderDispatchWorkgroupsIndirect(self.p, buf._internal, offset)

    def timestamp(self, query: Any, index: int) -> None:
        if self.n is None:
            from wgpu.backends.wgpu_native.extras import write_timestamp  # noqa: PLC0415
            write_timestamp(self.cp, query, index)
        else:
            self.lib.wgpuComputePassEncoderWriteTimestamp(self.p, query._internal, index)

    def end_pass(self) -> None:
        if self.n is None:
            self.dev.call("ending the compute pass", self.cp.end)
        else:
            self.dev.call("ending the compute pass", self.n.libf.wgpuComputePassEncoderEnd, self.p)

    def resolve(self, query: Any, count: int, dst: Any) -> None:
        if self.n is None:
            self.enc.resolve_query_set(query, 0, count, dst, 0)
        else:
            self.lib.wgpuCommandEncoderResolveQuerySet(self.enc, query._internal, 0, count, dst._internal, 0)

    def copy(self, src: Any, src_off: int, dst: Any, dst_off: int, size: int) -> None:
        if self.n is None:
            self.enc.copy_buffer_to_buffer(src, src_off, dst, dst_off, size)
        else:
            self.lib.wgpuCommandEncoderCopyBufferToBuffer(self.enc, src._internal, src_off, dst._internal, dst_off,
                                                           size)

    def submit(self) -> int:
        """Finish the command buffer and submit it; its submission index (0 without _Native)."""
        d = self.dev
        if self.n is None:
            d.call("submitting bursts", d.queue.submit, [d.call("encoding bursts", self.enc.finish)])
            return 0
        cmd = None
        try:
            cmd = d.call("encoding bursts", self.n.libf.wgpuCommandEncoderFinish, self.enc, self.ffi.NULL)
            self.n.cmds[0] = cmd
            return int(d.call("submitting bursts", self.n.libf.wgpuQueueSubmitForIndex, self.n.queue, 1, self.n.cmds))
        finally:
            if self.p is not None:
                self.lib.wgpuComputePassEncoderRelease(self.p)
            self.lib.wgpuCommandEncoderRelease(self.enc)
            if cmd is not None:
                self.lib.wgpuCommandBufferRelease(cmd)


def _grid(n: int) -> tuple[int, int, int]:
    if n <= 0:
        return (0, 1, 1)
    x = min(n, MAX_DIM)
    return (x, -(-n // x), 1)


def _pow2(n: int) -> int:
    return 1 << max(0, int(n) - 1).bit_length()


@dataclass
class _Pending:
    inp: BurstInput
    seq: int
    full: bool
    stage: bool  # run stage_input (stimulation, the power neuron, or a grid the GPU did not write)
    t_host: float  # host time spent preparing it


@dataclass
class _Batch:
    bursts: list[_Pending]
    staging: Any
    size: int
    cap: int
    stride: int
    ts_bytes: int
    ticket: Any  # the staging buffer's mapping (_Device.map_read)
    submission: int
    t_submit: float
    host_s: float


@dataclass
class _Readback:
    """A batch read back: its results, and what the host learns for the next batches."""

    results: list[BurstResult]
    max_fired: int
    last_fired: int
    gpu_span: float | None


class GPUBackend(Backend):
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
        self.dev = _Device(adapter, native)
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
        plain = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout])
        with_syn = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout, self.syn_layout])
        with_args = call("pipeline layout", pl, bind_group_layouts=[self.g0_layout, self.args_layout])
        prog = self.dev.program
        self.p_stage = prog("stage_input.wgsl", with_args)
        self.p_args = prog("dynamics_args.wgsl", with_args)
        self.p_prop_fcl = prog("synaptic_propagation_fcl.wgsl", with_syn)
        self.p_prop_full = prog("synaptic_propagation.wgsl", with_syn)
        self.p_dyn_fcl = prog("neural_dynamics_fcl.wgsl", plain)
        self.p_dyn_full = prog("neural_dynamics.wgsl", plain)
        self.p_forced = prog("fire_forced.wgsl", plain)
        self.p_compact = prog("fire_compact.wgsl", with_args)
        self.p_delta = prog("state_delta.wgsl", with_args)

    # -- load -------------------------------------------------------------------------------
    def load(self, brain: Brain, tables: SynapseTables, seed: int = 0) -> None:
        """Upload the brain once: parameters, state, synapses (chunked), hash table, Drive order."""
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
        lookup = np.concatenate([table.reshape(-1), order, np.zeros((-order.size) % 4, np.uint32)])
        self.mean_fanout = s / max(1, int(np.count_nonzero(np.diff(tables.offsets))))

        params, self.param_rows = neuron_params(brain)

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
        # wgpu-native's blocking poll waits for every submission, so a batch's readback resolves
        # only when the batches behind it finish too: keep ~4 batches in flight so the GPU never
        # drains while the host waits (64 slots of 8 MiB at 1M neurons)
        want = self.slots_wanted or max(2, min(64, (512 << 20) // per_slot))
        self.R = int(min(want, fit))
        if self.R < 2:
            raise BackendError(self._too_big("the fire-slot ring (2 slots of N fires)", slots_base * 4 + 2 * per_slot,
                                             "max-storage-buffer-binding-size", self.binding_limit))
        self.batch = max(1, min(self.batch_max, max(self.R // 4, min(self.R // 2, 8))))
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
            self.b_headers = buf("burst headers", HEADER_STRIDE * self.batch, U.UNIFORM | CD)
            self.b_syn, self.b_chunk = [], []
            for i, (a, e) in enumerate(chunks):
                self.b_syn.append(buf(f"synapses[{i}]", (e - a) * 8, STO | CD))
                self.b_chunk.append(buf(f"chunk[{i}]", 16, U.UNIFORM | CD))
        except BackendError as e:
            raise BackendError(f"{e}. The brain needs {self.gpu_bytes / 2**20:,.1f} MiB of GPU memory "
                               f"({', '.join(f'{k} {v / 2**20:,.1f}' for k, v in sizes.items())} MiB)") from e
        self.dev.upload(self.b_params, params)
        self.dev.upload(self.b_lookup, lookup)
        piece = max(1, (64 << 20) // 8)
        for i, (a, e) in enumerate(chunks):
            for p in range(a, e, piece):
                q = min(e, p + piece)
                # tables.pairs already interleaves (target, contribution) as the shader reads them
                self.dev.upload(self.b_syn[i], tables.pairs[p:q], (p - a) * 8)
            self.dev.upload(self.b_chunk[i], np.array([a, e - a, 1 if i == 0 else 0, 0], np.uint32))
        self.chunks = chunks
        self.b_inputs = None
        self._ensure_inputs(1 << 12)

        self.b_resolve = None
        if self.ts_every:
            self.query = self.dev.call("query set", self.dev.device.create_query_set,
                                       type=w.QueryType.timestamp, count=5 * self.batch)
            self.b_resolve = buf("timestamps", 5 * self.batch * 8, U.QUERY_RESOLVE | U.COPY_SRC)

        bind = self.dev.device.create_bind_group

        def whole(b: Any, size: int | None = None) -> dict[str, Any]:
            return {"buffer": b, "offset": 0, "size": b.size if size is None else size}
        self.g_syn = [self.dev.call("bind group", bind, layout=self.syn_layout,
                                    entries=[{"binding": 0, "resource": whole(b)},
                                             {"binding": 1, "resource": whole(c, 16)}])
                      for b, c in zip(self.b_syn, self.b_chunk)]
        self.g_args = self.dev.call("bind group", bind, layout=self.args_layout,
                                    entries=[{"binding": 0, "resource": whole(self.b_args, 64)}])

        # host-side bookkeeping
        self.seq = 0
        self.power = brain.power_neuron
        self.pending: list[_Pending] = []
        self.pending_since = 0.0
        self.in_flight: deque[_Batch] = deque()
        self.ready: list[BurstResult] = []
        self.staging_pool: list[Any] = []
        self.last_fired = np.zeros(0, np.uint32)
        self.last_mp = np.zeros(0, np.float32)
        self.last_burst = 0
        self.known_fired = 0  # most recent fire count the host knows: drives the path choice
        # state() keeps a host copy of the state buffer and downloads only what changed since
        self.mirror = np.zeros((n, 4), np.uint32)  # the device zero-fills new buffers: all-zero state
        self.synced_seq = 0
        self.b_delta = self.g_delta = None
        self.state_download = ""  # how the last state() read the device: "delta (k rows)" or "full"
        self.need_stage = True  # the first burst's propagation grid comes from stage_input
        self.salt_seed = (self.seed * 3266489917) & 0xFFFFFFFF
        t = np.zeros(HEADER_STRIDE // 4, np.uint32)  # the header fields that are constant for this brain
        t[H_N] = n
        t[H_SCALE] = np.float32(tables.resolution).view(np.uint32)
        t[H_POWER] = NONE if self.power is None else self.power
        t[H_POWER_EXT] = NONE
        t[H_MASK], t[H_SHIFT], t[H_PROBE] = self.hash_mask, self.hash_shift, self.max_probe
        if drive is not None and drive.per_burst > 0 and drive.order.size:
            t[H_D_OFF], t[H_D_LEN] = self.drive_off, drive.order.size
            t[H_D_N] = min(drive.per_burst, drive.order.size)
            t[H_D_POT] = np.float32(drive.potential).view(np.uint32)
        t[H_BITS], t[H_BCNT], t[H_FMP], t[H_NBLK] = self.bits_off, self.bcnt_off, self.fmp_off, self.nblk
        self.h_rows = np.repeat(t[None, :], self.batch, axis=0)
        self.batches = 0
        self.recent_max = 0
        self.gpu_span = 0.0  # with timestamps: GPU seconds per burst over the last batch
        self.cap = min(max(n, 1), max(4096, _pow2(2 * (drive.per_burst if drive else 0) + 1024)))
        self.loaded = True

    def _too_big(self, what: str, need: int, limit_name: str, limit: int) -> str:
        return (f"{what} needs {need / 2**20:,.1f} MiB but {self.dev.label} allows "
                f"{limit / 2**20:,.1f} MiB ({limit_name})")

    def _ensure_inputs(self, words: int) -> None:
        if self.b_inputs is not None and self.b_inputs.size >= words * 4:
            return
        size = _pow2(max(words * 4, 1 << 12))
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
    def _check(self) -> None:
        if not self.loaded:
            raise BackendError("no brain loaded: call load() first")

    def submit(self, inp: BurstInput) -> None:
        """Queue burst `inp.burst`; bursts are encoded and submitted in batches."""
        self._check()
        t0 = time.perf_counter()
        self.seq += 1
        if self.path == "auto":
            drive_n = min(self.brain.drive.per_burst, self.brain.drive.order.size) if self.brain.drive else 0
            est = self.known_fired * self.mean_fanout + drive_n + inp.potential_ids.size
            full = est > self.full_fraction * self.n
        else:
            full = self.path == "full"
        # stage_input only does work for stimulation and the power neuron; otherwise the previous
        # burst's fire_compact already wrote this burst's propagation grid (saves a dispatch)
        stage = self.need_stage or self.power is not None or not inp.empty or not self.nblk
        self.need_stage = False
        if not self.pending:
            self.pending_since = t0
        self.pending.append(_Pending(inp, self.seq, full, stage, time.perf_counter() - t0))
        self.last_burst = inp.burst
        if len(self.pending) >= self.batch:
            self._flush()

    def collect(self, wait: bool = True) -> list[BurstResult]:
        """Finished bursts, oldest first; with wait, every submitted burst (blocking)."""
        self._check()
        if wait:
            self._drain()
        else:
            if self.pending and not self.in_flight and (
                    len(self.pending) * 2 >= self.batch or time.perf_counter() - self.pending_since > IDLE_FLUSH_S):
                # The GPU is idle: hand it what is pending. Not at every call, though: flushing
                # one or two bursts each time the GPU drains locks a pipelined run into tiny
                # batches, each paying the whole submit and readback overhead.
                self._flush()
            while self.in_flight and self.dev.is_mapped(self.in_flight[0].ticket):
                self._finish(self.in_flight.popleft())
        out, self.ready = self.ready, []
        return out

    def _flush(self) -> None:
        """Encode and submit the pending bursts as one batch, and start mapping its readback."""
        if not self.pending:
            return
        bursts, self.pending = self.pending, []
        # a fire slot must not be reused before its burst has been read back (overflow re-reads)
        while self.in_flight and bursts[-1].seq - self.in_flight[0].bursts[0].seq >= self.R:
            self._finish(self.in_flight.popleft())
        t0 = time.perf_counter()
        k = len(bursts)
        self._headers(bursts)

        cap = self.cap
        stride = (SLOT_HEADER + 2 * cap) * 4
        self.batches += 1
        ts = self.ts_every > 0 and (self.batches - 1) % self.ts_every == 0
        ts_bytes = 5 * k * 8 if ts else 0
        size = ts_bytes + k * stride
        staging = self._staging(size)
        rec = _Recorder(self.dev)
        dyn_grid = _grid(-(-self.n // WG))
        compact_grid = _grid(self.nblk)
        for i, p in enumerate(bursts):
            inp = p.inp
            rec.bind(0, self.g0, i * HEADER_STRIDE)
            if ts:
                rec.timestamp(self.query, 5 * i)
            if p.stage:
                rec.pipeline(self.p_stage)
                rec.bind(1, self.g_args)
                rec.dispatch(*_grid(-(-max(inp.potential_ids.size + 1, inp.forced_ids.size) // WG)))
            if ts:
                rec.timestamp(self.query, 5 * i + 1)
            rec.pipeline(self.p_prop_full if p.full else self.p_prop_fcl)
            for g in self.g_syn:
                rec.bind(1, g)
                rec.dispatch_indirect(self.b_args, 0)
            if ts:
                rec.timestamp(self.query, 5 * i + 2)
            if p.full:
                rec.pipeline(self.p_dyn_full)
                rec.dispatch(*dyn_grid)
            else:
                rec.pipeline(self.p_args)
                rec.bind(1, self.g_args)
                rec.dispatch(1)
                rec.pipeline(self.p_dyn_fcl)
                rec.dispatch_indirect(self.b_args, 16)
            if ts:
                rec.timestamp(self.query, 5 * i + 3)
            if inp.forced_ids.size:
                rec.pipeline(self.p_forced)
                rec.dispatch(*_grid(-(-inp.forced_ids.size // WG)))
            rec.pipeline(self.p_compact)
            rec.bind(1, self.g_args)
            rec.dispatch(*compact_grid)
            if ts:
                rec.timestamp(self.query, 5 * i + 4)
        rec.end_pass()
        if ts:
            rec.resolve(self.query, 5 * k, self.b_resolve)
            rec.copy(self.b_resolve, 0, staging, 0, ts_bytes)
        head = (SLOT_HEADER + cap) * 4
        for i, p in enumerate(bursts):
            slot = self._slot(p.seq) * 4
            at = ts_bytes + i * stride
            rec.copy(self.b_work, slot, staging, at, head)  # header + the first cap ids
            rec.copy(self.b_work, slot + (SLOT_HEADER + self.n) * 4, staging, at + head, cap * 4)  # their mps
        submission = rec.submit()
        ticket = self.dev.map_read(staging, size)
        host = time.perf_counter() - t0 + sum(p.t_host for p in bursts)
        self.in_flight.append(_Batch(bursts, staging, size, cap, stride, ts_bytes, ticket, submission,
                                     time.perf_counter(), host))

    def _headers(self, bursts: list[_Pending]) -> None:
        """Write the batch's burst headers (and staged inputs) to the device.

        The fields constant for a brain were written into `h_rows` at load; this sets the rest,
        a few scalar stores per burst (cheaper than any vectorised form at one burst per batch).
        """
        hdr = self.h_rows
        drive = self.brain.drive
        per_burst = drive.per_burst if drive is not None and drive.per_burst > 0 and drive.order.size else 0
        parts: list[np.ndarray] = []
        at = 0
        for i, p in enumerate(bursts):
            inp, b, seq = p.inp, p.inp.burst, p.seq
            h = hdr[i]
            h[H_BURST] = b & 0xFFFFFFFF
            h[H_SEQ] = seq & 0xFFFFFFFF
            h[H_SALT] = (b * 1597334677 + self.salt_seed) & 0xFFFFFFFF
            h[H_APPEND] = 0 if p.full else 1
            h[H_SLOT] = self._slot(seq)
            h[H_PREV] = self._slot(seq - 1)
            if per_burst:
                h[H_D_START] = ((b - 1) * per_burst) % drive.order.size
            if inp.empty:
                h[H_EXT_N] = h[H_F_N] = 0
                h[H_POWER_EXT] = NONE
                continue
            ext_ids = np.asarray(inp.potential_ids, np.uint32)
            ext_n = ext_ids.size
            h[H_EXT_OFF], h[H_EXT_N] = at, ext_n
            if ext_n:
                parts += [ext_ids, np.asarray(inp.potential, np.float32).view(np.uint32)]
                at += 2 * ext_n
            f_ids = np.asarray(inp.forced_ids, np.uint32)
            h[H_F_OFF], h[H_F_N] = at, f_ids.size
            if f_ids.size:
                parts += [f_ids, np.asarray(inp.forced_mp, np.float32).view(np.uint32)]
                at += 2 * f_ids.size
            h[H_POWER_EXT] = NONE
            if self.power is not None and ext_n:
                hit = np.flatnonzero(ext_ids == self.power)
                if hit.size:
                    h[H_POWER_EXT] = hit[0]
        if at:
            self._ensure_inputs(at)
            self.dev.write(self.b_inputs, np.concatenate(parts))
        self.dev.write(self.b_headers, hdr[: len(bursts)])

    def _slot(self, seq: int) -> int:
        return self.slots_base + (seq % self.R) * self.slot_words

    def _staging(self, size: int) -> Any:
        for i, s in enumerate(self.staging_pool):
            if s.size >= size:
                return self.staging_pool.pop(i)
        U = self.dev.wgpu.BufferUsage
        return self.dev.buffer("readback staging", _pow2(size), U.MAP_READ | U.COPY_DST)

    def _finish(self, b: _Batch) -> None:
        """Collect a batch's results (waiting for them) and learn from its fire counts."""
        rb = self._read_back(b)
        self.staging_pool.append(b.staging)
        self.ready.extend(rb.results)
        if rb.results:
            last = rb.results[-1]
            self.last_fired, self.last_mp = last.fired, last.mp
        self.known_fired = rb.last_fired
        if rb.gpu_span is not None:
            self.gpu_span = rb.gpu_span
        # Staging copies hold the recent maximum plus a margin: mapping costs grow with the bytes
        # read back, while a burst that overflows is completed by one extra (rare) direct read.
        self.recent_max = max(rb.max_fired, int(self.recent_max * 0.95))
        self.cap = int(min(max(self.n, 1), (self.recent_max * 5 // 4 + 511) // 256 * 256))

    def _read_back(self, b: _Batch) -> _Readback:
        """Wait for a batch's staging buffer and turn it into BurstResults.

        Fire sets arrive sorted by id (fire_compact), so this only slices and copies.
        """
        d = self.dev
        raw = d.read_mapped(b.staging, b.size, b.ticket, b.submission)
        t_done = time.perf_counter()
        k = len(b.bursts)
        ts = raw[: b.ts_bytes // 4].view(np.uint64).reshape(k, 5).astype(np.float64) * 1e-9 if b.ts_bytes else None
        gpu_share = (t_done - b.t_submit) / k
        results: list[BurstResult] = []
        max_fired = last_fired = 0
        cap = b.cap
        try:
            for i, p in enumerate(b.bursts):
                base = (b.ts_bytes + i * b.stride) // 4
                fired_n, cand_n, seq = int(raw[base]), int(raw[base + 1]), int(raw[base + 2])
                if seq != (p.seq & 0xFFFFFFFF):
                    raise BackendError(f"burst {p.inp.burst}: fire slot holds seq {seq}, "
                                       f"expected {p.seq} (GPU results out of step)")
                got = min(fired_n, cap)
                ids_at = base + SLOT_HEADER
                fired = raw[ids_at: ids_at + got].copy()
                mp = raw[ids_at + cap: ids_at + cap + got].view(np.float32).copy()
                if fired_n > cap:  # more fires than the staging copy held: read the rest directly
                    slot = self._slot(p.seq) + SLOT_HEADER
                    rest = (fired_n - got) * 4
                    fired = np.concatenate([fired, d.download(self.b_work, (slot + got) * 4, rest).view(np.uint32)])
                    mp = np.concatenate([mp, d.download(self.b_work, (slot + self.n + got) * 4, rest).view(np.float32)])
                max_fired, last_fired = max(max_fired, fired_n), fired_n
                if ts is not None:
                    t = ts[i]
                    timings = {"input": float(t[1] - t[0]), "synaptic_propagation": float(t[2] - t[1]),
                               "neural_dynamics": float(t[3] - t[2]), "output": float(t[4] - t[3])}
                elif self.ts_every == 0:
                    timings = {"input": b.host_s / k, "synaptic_propagation": 0.0, "neural_dynamics": gpu_share,
                               "output": (time.perf_counter() - t_done) / (i + 1)}
                else:
                    timings = {}  # a batch between the timestamped samples
                results.append(BurstResult(p.inp.burst, fired, mp, timings, candidates=cand_n))
        finally:
            del raw
            d.unmap(b.staging)
        # GPU time per burst over the whole batch, gaps between dispatches included
        span = float(ts[-1, 4] - ts[0, 0]) / k if ts is not None else None
        return _Readback(results, max_fired, last_fired, span)

    # -- state ------------------------------------------------------------------------------
    def state(self) -> NeuronState:
        """mp, cfc_count, blocked_until after every submitted burst has finished.

        Only the neurons touched since the last sync are downloaded when they are at most a
        quarter of the brain (one small round trip for their count first); otherwise every neuron.
        """
        self._check()
        self._drain()
        if self.seq != self.synced_seq and self.n:
            self._sync_mirror()
        m = self.mirror
        return NeuronState(m[:, 0].copy().view(np.float32), m[:, 1].astype(np.uint16), m[:, 2].copy(),
                           self.last_burst)

    def _sync_mirror(self) -> None:
        cap = max(1, self.n // 4)
        if self.b_delta is None:
            U = self.dev.wgpu.BufferUsage
            self.b_delta = self.dev.buffer("state delta", 16 + 16 * cap, U.STORAGE | U.COPY_DST | U.COPY_SRC)
            self.g_delta = self.dev.call("bind group", self.dev.device.create_bind_group, layout=self.args_layout,
                                         entries=[{"binding": 0, "resource": {"buffer": self.b_delta, "offset": 0,
                                                                              "size": self.b_delta.size}}])
        hdr = self.h_rows[:1].copy()
        hdr[0, H_SEQ], hdr[0, H_SINCE] = self.seq & 0xFFFFFFFF, self.synced_seq & 0xFFFFFFFF
        self.dev.write(self.b_headers, hdr)  # every burst is done: the header rows are free
        self.dev.write(self.b_delta, np.array([0, cap, 0, 0], np.uint32))
        rec = _Recorder(self.dev)
        rec.bind(0, self.g0, 0)
        rec.pipeline(self.p_delta)
        rec.bind(1, self.g_delta)
        rec.dispatch(*_grid(-(-self.n // WG)))
        rec.end_pass()
        rec.submit()
        count = int(self.dev.download(self.b_delta, 0, 16).view(np.uint32)[0])
        if count <= cap:
            rows = self.dev.download(self.b_delta, 16, count * 16).view(np.uint32).reshape(count, 4) \
                if count else np.zeros((0, 4), np.uint32)
            self.mirror[rows[:, 0], :3] = rows[:, 1:]
            self.state_download = f"delta ({count:,} of {self.n:,} neurons)"
        else:
            self.mirror = self.dev.download(self.b_state, 0, self.n * 16).view(np.uint32).reshape(self.n, 4)
            self.state_download = "full"
        self.synced_seq = self.seq

    def set_state(self, state: NeuronState, last_fired: np.ndarray, last_mp: np.ndarray) -> None:
        """Continue from `state`; `last_fired`/`last_mp` propagate into the next burst."""
        self._check()
        self._drain()
        n = self.n
        if state.mp.shape[0] != n:
            raise BackendError(f"state has {state.mp.shape[0]} neurons, the brain {n}")
        raw = np.zeros((n, 4), np.uint32)
        raw[:, 0] = np.asarray(state.mp, np.float32).view(np.uint32)
        raw[:, 1] = state.cfc_count
        raw[:, 2] = state.blocked_until
        if n:
            self.dev.upload(self.b_state, raw)
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
        self.known_fired = int(fired.size)

    def last_fire_set(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, mp) of the last submitted burst (waits for it; results stay for collect)."""
        self._check()
        self._drain()
        return self.last_fired, self.last_mp

    def _drain(self) -> None:
        self._flush()
        while self.in_flight:
            self._finish(self.in_flight.popleft())

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
        for name in ("b_params", "b_state", "b_fcl", "b_work", "b_lookup", "b_args", "b_headers", "b_inputs",
                     "b_resolve", "b_delta"):
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
