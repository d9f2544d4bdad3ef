"""The device layer: wgpu import, adapter probing, the device and the command recorder.

Modelled on tinygrad's runtime/ops_webgpu.py:

- `probe_adapters()` lists adapters without creating a device.
- `Native` calls wgpu-native directly on the per-burst path (encode, submit, map, poll).
- `Device` owns adapter, device and queue; every wgpu call goes through `Device.call`, which
  turns wgpu-py's errors (it captures each native call's validation / out-of-memory / internal
  error and raises it) and device loss into one `BackendError` naming what was being done.
  `Device.program` is the one place pipelines are made (shaders.load_shader, then compile).
- `Recorder` records one command buffer (a compute pass and copies) and submits it.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from feagi_burst.backends.base import BackendError
from feagi_burst.backends.wgpu.layout import MAX_DIM
from feagi_burst.backends.wgpu.shaders import load_shader
from feagi_burst.errors import InputError

SPIN_S = 0.002  # a wait for the GPU polls without sleeping this long before it blocks
ENV_TIMEOUT = "FEAGI_BURST_GPU_TIMEOUT"  # seconds a wait may last before the GPU counts as hung
DEFAULT_TIMEOUT_S = 60.0
SOFTWARE_NAMES = ("llvmpipe", "lavapipe", "swiftshader", "softpipe", "basic render", "warp")


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
    _configure_instance()
    return wgpu


_instance_configured = False


def _configure_instance() -> None:
    """Create wgpu's instance without indirect-call validation (before its first use).

    wgpu validates the arguments of every indirect dispatch, in release builds too, with an
    internal compute dispatch of its own before each one; a burst issues several indirect
    dispatches (propagation, dynamics, STDP), each with grids our own shaders bound (grid.wgsl
    splits them in 2-D past the limit). WGPU_VALIDATION_INDIRECT_CALL=1 turns it back on, as wgpu's
    other WGPU_* variables still apply (WithEnv). Timestamps are normalised to nanoseconds, which
    the phase timings assume. Where the instance exists already (an application created it), it is
    used as it is.
    """
    global _instance_configured
    if _instance_configured:
        return
    _instance_configured = True
    try:
        from wgpu.backends.wgpu_native.extras import set_instance_extras  # noqa: PLC0415

        set_instance_extras(flags=["WithEnv", "AutomaticTimestampNormalization"])
    except Exception:  # noqa: BLE001 (an older wgpu, or an instance made already: its defaults stand)
        pass


def probe_adapters() -> list[AdapterDescription]:
    """Every adapter wgpu can see (name, API, type, software or not), without creating a device."""
    wgpu = _wgpu()
    try:
        adapters = wgpu.gpu.enumerate_adapters_sync()
    except Exception as e:  # noqa: BLE001 (a broken driver stack must not crash a probe)
        raise BackendError(f"could not enumerate GPU adapters: {e}") from e
    return [_describe(a.info) for a in adapters]


def gpu_timeout_s() -> float:
    """How long one wait for the GPU may last (FEAGI_BURST_GPU_TIMEOUT, default 60 s)."""
    raw = os.environ.get(ENV_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"{ENV_TIMEOUT}={raw!r:.40}: give the seconds a wait for the GPU may last, a number "
                         f"above 0 (unset: {DEFAULT_TIMEOUT_S:g})")
    return value


# --- device layer --------------------------------------------------------------------------
class Native:
    """Direct calls into wgpu-native, for the per-burst path.

    wgpu-py's wrappers cost 5-30 µs a call (a cffi callback made per map_async, a poll thread
    that wakes the caller through two thread hops), which at one burst per command buffer costs
    more than the burst. Checked calls go through wgpu-py's `libf`, which raises the native error
    message (finishing and submitting the command buffer, ending the pass, writes); the commands of a
    burst use `lib` unchecked (creating the encoder and the pass, the pass commands, mapping and
    unmapping: ~1 µs of error capture each saved; a bad command invalidates the encoder, and the
    checked end or finish raises its message; a failed mapping reports its status). Mapping uses
    one callback made here, and completion is polled on the calling thread (non-blocking polls: a
    wait has a time limit).
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
        self.timeout_s = gpu_timeout_s()
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
        self.offset = ffi.new("uint32_t[1]")  # a bind group's dynamic offset (ffi.new costs ~40 µs)

    def write(self, buf: Any, offset: int, data: np.ndarray) -> None:
        self.libf.wgpuQueueWriteBuffer(self.queue, buf._internal, offset, self.ffi.from_buffer(data), data.nbytes)

    def map_read(self, buf: Any, size: int) -> int:
        self.next_key += 1
        key = self.next_key
        self.map_info.userdata1 = self.ffi.cast("void *", key)
        # unchecked: a failed mapping reports its status to the callback (read_mapped raises it)
        self.lib.wgpuBufferMapAsync(buf._internal, self.lib.WGPUMapMode_Read, 0, size, self.map_info[0])
        return key

    def poll(self) -> None:
        """Fire the callbacks of finished work, without waiting.

        Unchecked: a wait spins on this call, and the checked wrapper's error capture costs more
        than the poll; a lost device fails the next checked call.
        """
        self.lib.wgpuDevicePoll(self.device, False, self.ffi.NULL)

    def wait(self, key: int, submission: int) -> None:
        """Until mapping `key` is done: spin on non-blocking polls for up to SPIN_S, then poll
        between short sleeps; past `timeout_s` the GPU counts as hung (BackendError).

        A closed-loop burst spins through its short wait (a sleep wakes ~60 µs late). wgpu's
        blocking poll has no time limit: a hung device or driver would hang the run for good, where
        the engine can instead go on on the CPU from its last sync, with identical results.
        """
        now = time.perf_counter()
        spin_until, give_up = now + SPIN_S, now + self.timeout_s
        pause = 20e-6
        while key not in self.maps:
            now = time.perf_counter()
            if now > spin_until:
                if now > give_up:
                    raise BackendError(
                        f"the GPU did not finish submission {submission} within {self.timeout_s:g} s "
                        f"(a hung device or driver); {ENV_TIMEOUT}=SECONDS allows longer waits")
                time.sleep(pause)
                pause = min(2 * pause, 2e-4)
            self.poll()

    def mapped(self, buf: Any, size: int) -> np.ndarray:
        """The mapped bytes as u32 (valid until unmap)."""
        ptr = self.lib.wgpuBufferGetConstMappedRange(buf._internal, 0, size)
        if ptr == self.ffi.NULL:
            raise BackendError(f"reading {buf.label}: no mapped range of {size} bytes")
        return np.frombuffer(self.ffi.buffer(ptr, size), np.uint32)


class Device:
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

    def _native(self) -> Native | None:
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
        if not all(hasattr(lib, f) for f in Native.FUNCTIONS):
            return None
        return Native(lib, ffi, libf, self.device._internal, self.queue._internal)

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
            self.readback = self.buffer("state readback", pow2(padded),
                                        self.wgpu.BufferUsage.MAP_READ | self.wgpu.BufferUsage.COPY_DST)
        rec = Recorder(self, compute=False)
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
            self.native.lib.wgpuBufferUnmap(buf._internal)  # unchecked: nothing it can report matters here

    def program(self, name: str, layout: Any, includes: Mapping[str, str] | None = None,
                entry: str = "main") -> Any:
        """The compute pipeline of shader `name` (entry point `entry`) with pipeline layout `layout`.

        `includes` fills placeholder includes (`//!include MODEL` -> {"MODEL": "file.wgsl"}), so one
        shader can be compiled with several bodies; the label names them.
        """
        code = load_shader(name, includes)
        if includes:
            name = f"{name}[{', '.join(f'{k}={v}' for k, v in sorted(includes.items()))}]"
        if entry != "main":
            name = f"{name}:{entry}"
        module = self.call(f"compiling shader {name}", self.device.create_shader_module,
                           label=name, code=code)
        return self.call(f"creating pipeline {name}", self.device.create_compute_pipeline,
                         label=name, layout=layout, compute={"module": module, "entry_point": entry})


class Recorder:
    """Records one batch (a compute pass and the readback copies after it) and submits it.

    With `Native`, every command goes straight to wgpu-native (about ten per burst, each of which
    would cost ~5 µs in wgpu-py's wrappers); without it, the public API.
    """

    def __init__(self, dev: Device, compute: bool = True) -> None:
        self.dev = dev
        self.n = dev.native
        self.p = self.cp = None
        if self.n is None:
            self.enc = dev.call("encoding", dev.device.create_command_encoder)
            if compute:
                self.cp = self.enc.begin_compute_pass()
            return
        self.lib, self.ffi, null = self.n.lib, self.n.ffi, self.n.ffi.NULL
        # unchecked, like the pass commands: a failure here (a lost device) fails the checked finish
        self.enc = self.lib.wgpuDeviceCreateCommandEncoder(self.n.device, null)
        if compute:
            self.p = self.lib.wgpuCommandEncoderBeginComputePass(self.enc, null)
        self.offset = self.n.offset

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
        """Finish the command buffer and submit it; its submission index (0 without Native)."""
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


def grid(n: int) -> tuple[int, int, int]:
    """A dispatch of n workgroups: 2-D once n passes MAX_DIM workgroups per dimension."""
    if n <= 0:
        return (0, 1, 1)
    x = min(n, MAX_DIM)
    return (x, -(-n // x), 1)


def pow2(n: int) -> int:
    """The smallest power of two >= n (1 for n <= 1): buffer sizes that are reused as they grow."""
    return 1 << max(0, int(n) - 1).bit_length()
