"""Spike records (SPEC.md section 4), streamed to disk in chunks so memory stays flat.

A run records into `<record>.partial` beside the requested path (e.g. `out/spikes.npz.partial`),
appending one chunk at a time. A chunk is flushed when it holds `chunk_spikes` spikes, when
`chunk_bursts` bursts have passed, or `chunk_seconds` after the previous flush, and always before a
checkpoint is written. When the run ends (normally, or stopped by Ctrl-C/SIGTERM) the record is
completed and moved to the requested name in one atomic rename; the `.partial` file then goes away.

What each ending leaves:

- normal end, first Ctrl-C, SIGTERM: the complete record under the requested name, nothing else.
- a crash, SIGKILL, or a second Ctrl-C (abort): no file under the requested name (never a
  half-written one), and `<record>.partial` holding every burst up to the last flushed chunk.
  `read_record`/`read_spikes` read a `.partial` directly (a torn last chunk or line is dropped), and
  `finish_partial` turns a `.npz.partial` into the final `.npz`. A `.partial` file is never
  overwritten by a later run unless `--force` is given.
- power loss: what the operating system had written of the `.partial` file (chunks are flushed to
  the OS, not fsynced; the final record is fsynced before its rename).

Two runs never write one record at once: the recorder holds a lock (`.NAME.lock` beside it, removed
at the end) and a second run given the same path, even with `--force`, is refused in one line.

A write that fails (a full disk) stops the run with one line saying what was kept: the `.partial`
file up to the last flushed chunk, or, when the final `.npz` cannot be written, the whole run in
the `.partial` file (`finish_partial` turns it into the `.npz` once there is room).

Formats:

- `.jsonl`: one line per burst with at least one spike, `{"burst": b, "fired": [[neuron_id,
  "<cortical id>", x, y, z, mp], ...]}` sorted by neuron id; bursts in which nothing fired are left
  out, except the run's first and last burst, which always have a line (`"fired": []` when nothing
  fired) so that the record shows the bursts it covers (`first_burst`, `last_burst` when read).
  The first line also carries `"brain"` (the genome's title) and `"fingerprint"` (the genome's
  SHA-256), so that records of different genomes are never mixed. The `.partial` file has the
  same lines, so the final record is the partial file renamed.
- `.npz` (numpy, `np.load` reads it, no pickle): `burst` (u4), `neuron` (u4), `mp` (f4), one entry
  per spike in burst order; the per-neuron tables `area` (u2, index into `area_ids`), `x`, `y`, `z`
  (u2); `area_ids`, `area_names` (str); `first_burst`, `last_burst` (the bursts the record covers,
  spikes or not; 0 and 0 for an empty run); `brain` and `fingerprint` (str, as in `.jsonl`).
  Burst numbers are 32-bit: a burst above 4,294,967,295 cannot be recorded in `.npz`.
  The `.npz.partial` stream is a sequence of standard `.npy` arrays (call `np.load` repeatedly on one
  open file to read them): a JSON header (u1 bytes), the per-neuron table (structured area/x/y/z),
  then per chunk a `[first_burst, last_burst]` array (u8) followed by the chunk's spikes
  (structured burst/neuron/mp).

Reading (`read_spikes`, `read_record`, `feagi-burst plot`) goes through feagi_burst.files (regular
files only, size limits, declared array sizes checked before reading) and validates every array
against the others (ids in range, matching lengths), so a damaged or crafted record is one
InputError line.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from feagi_burst.backends.base import BurstResult
from feagi_burst.brain import Brain
from feagi_burst.errors import InputError
from feagi_burst.files import (FileLock, MAX_INT, WriteError, atomic_write, check_output, check_path, open_input,
                                parse_json, printable, read_bytes, read_npz, write_error)

FORMATS = (".jsonl", ".npz")
PARTIAL = ".partial"
STREAM_FORMAT = "feagi-burst spike stream 1"
SPIKE_DTYPE = np.dtype([("burst", "<u4"), ("neuron", "<u4"), ("mp", "<f4")])
TABLE_DTYPE = np.dtype([("area", "<u2"), ("x", "<u2"), ("y", "<u2"), ("z", "<u2")])

# Flush policy defaults: a crash loses at most about a second of spikes, and the buffered chunk
# stays small (256 Ki spikes = 3 MiB) however busy the brain is.
CHUNK_SPIKES = 1 << 18
CHUNK_BURSTS = 4096
CHUNK_SECONDS = 1.0
MAX_NPZ_BURST = 2**32 - 1  # the .npz burst column is u4


def partial_path(path: str | Path) -> Path:
    """Where a record is streamed while the run goes: `<path>.partial`."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL)


class SpikeRecorder:
    """Streams burst results into `<path>.partial`; `close` completes the record under `path`."""

    max_burst: int | None = None  # the highest burst number the format can hold

    def __init__(self, path: str | Path, brain: Brain, force: bool = False, chunk_spikes: int = CHUNK_SPIKES,
                 chunk_bursts: int = CHUNK_BURSTS, chunk_seconds: float = CHUNK_SECONDS) -> None:
        self.path = check_path(path, "--record")
        self.partial = partial_path(self.path)
        self.brain = brain
        self.chunk_spikes, self.chunk_bursts, self.chunk_seconds = chunk_spikes, chunk_bursts, chunk_seconds
        check_writable(self.path, force, "--record")
        if self.partial.exists() and not force:
            raise InputError(f"{self.partial} exists (left by an interrupted run: read it with read_record, or "
                             "delete it); choose another --record path or pass --force")
        self.lock = FileLock(self.path, "--record")
        try:
            self.file: IO[bytes] = open(self.partial, "wb")
        except OSError as e:
            self.lock.release()
            raise InputError(f"cannot write {self.partial}: {e.strerror}") from None
        self.spikes = 0  # spikes recorded (flushed or buffered)
        self.first_burst = 0  # first and last burst seen, spikes or not
        self.last_burst = 0
        self.flushed_burst = 0  # the last burst whose spikes are on disk
        self.failed = False  # a write failed and the error already said what was kept
        self._pending_bursts = 0
        self._pending_spikes = 0
        self._chunk_first = 0
        self._last_flush = time.monotonic()
        self.closed = False
        try:
            self._start()
            self.file.flush()
        except OSError as e:
            self.failed = True
            self.abort()
            raise write_error(self.partial, e, "nothing was recorded") from None

    # -- what each format writes -----------------------------------------------------------
    def _start(self) -> None:
        """Write the stream's header."""

    def _buffer(self, r: BurstResult, first: bool) -> None:
        """Buffer one burst's spikes (`first`: the run's first burst)."""
        raise NotImplementedError

    def _before_close(self) -> None:
        """Buffer what the format writes at the end (after the last burst)."""

    def _write_chunk(self, first: int, last: int) -> None:
        """Write the buffered bursts first..last to the stream and empty the buffer."""
        raise NotImplementedError

    def _complete(self) -> None:
        """Turn the closed `.partial` stream into the final record under `self.path`."""
        raise NotImplementedError

    # -- the recorder ------------------------------------------------------------------------
    def add(self, r: BurstResult) -> None:
        """Record one burst's result (bursts arrive in order)."""
        burst = int(r.burst)
        if self.max_burst is not None and burst > self.max_burst:
            raise InputError(f"burst {burst:,} cannot be recorded in {self.path}: {self.path.suffix} records hold "
                             f"burst numbers up to {self.max_burst:,}; record to a .jsonl file")
        first = self.first_burst == 0
        if self._pending_bursts == 0:
            self._chunk_first = burst
        self.first_burst = self.first_burst or burst
        self.last_burst = burst
        self._pending_bursts += 1
        if r.fired.size or first:
            self._buffer(r, first)
            self._pending_spikes += int(r.fired.size)
            self.spikes += int(r.fired.size)
        if (self._pending_spikes >= self.chunk_spikes or self._pending_bursts >= self.chunk_bursts
                or time.monotonic() - self._last_flush >= self.chunk_seconds):
            self.flush()

    def _kept(self) -> str:
        if self.flushed_burst:
            return (f"spikes up to burst {self.flushed_burst:,} are kept in {self.partial} "
                    "(feagi-burst plot and read_record read it)")
        return "nothing was recorded"

    def flush(self) -> None:
        """Write the buffered chunk to the `.partial` file and hand it to the OS."""
        try:
            if self._pending_bursts:
                self._write_chunk(self._chunk_first, self.last_burst)
                self._pending_bursts = self._pending_spikes = 0
            self.file.flush()
        except OSError as e:
            self.failed = True
            raise write_error(self.partial, e, self._kept()) from None
        self.flushed_burst = self.last_burst
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Complete the record under its final name (atomically) and remove the `.partial` file."""
        self._before_close()
        self.flush()
        try:
            os.fsync(self.file.fileno())
            self.file.close()
        except OSError as e:
            self.failed = True
            raise write_error(self.partial, e, self._kept()) from None
        try:
            self._complete()
        except WriteError as e:
            self.failed = True
            reason = e.cause.strerror if e.cause is not None and e.cause.strerror else str(e)
            raise InputError(f"cannot write the record {self.path}: {reason}; every recorded spike is kept in "
                             f"{self.partial}: turn it into {self.path.name} with "
                             "feagi_burst.spike_record.finish_partial once there is room") from None
        self.closed = True
        self.lock.release()

    def abort(self) -> Path | None:
        """Stop recording without completing: keep the `.partial` file if it holds any burst.

        Returns the kept file, or None when nothing was recorded (then nothing is left on disk).
        Also right after a `close` that was interrupted: the `.partial` file is still whole then.
        """
        if self.closed:
            return None
        self.closed = True
        try:
            if not self.file.closed:
                if not self.failed:  # after a failed write, writing the chunk again could duplicate lines
                    with contextlib.suppress(Exception):  # keep what is already on disk even if this fails
                        self.flush()
                with contextlib.suppress(OSError):
                    self.file.close()
            if not self.partial.exists():
                return None
            if self.flushed_burst == 0:
                self.partial.unlink(missing_ok=True)
                return None
            return self.partial
        finally:
            self.lock.release()


class JsonlRecorder(SpikeRecorder):
    """One JSON line per burst with at least one spike: {"burst", "fired": [[id, area, x, y, z, mp]]}."""

    def _start(self) -> None:
        self.lines: list[bytes] = []
        self.area_ids = [a.cortical_id for a in self.brain.areas]
        self.lined_burst = 0  # the last burst written as a line

    def _buffer(self, r: BurstResult, first: bool) -> None:
        n = self.brain.neurons
        ids = r.fired.astype(np.int64)
        area_ids = self.area_ids
        fired = [[i, area_ids[a], x, y, z, m] for i, a, x, y, z, m in
                 zip(ids.tolist(), n.cortical_area[ids].tolist(), n.x[ids].tolist(), n.y[ids].tolist(),
                     n.z[ids].tolist(), r.mp.astype(np.float64).tolist())]
        line: dict[str, Any] = {"burst": int(r.burst), "fired": fired}
        if first:  # which genome made this record (see the module docstring)
            line.update(brain=self.brain.name, fingerprint=self.brain.fingerprint)
        self.lines.append((json.dumps(line, separators=(",", ":")) + "\n").encode())
        self.lined_burst = int(r.burst)

    def _before_close(self) -> None:
        if self.last_burst and self.lined_burst != self.last_burst:  # the run's last burst always has a line
            self.lines.append((json.dumps({"burst": self.last_burst, "fired": []}) + "\n").encode())
            self._pending_bursts = max(self._pending_bursts, 1)
            self.lined_burst = self.last_burst

    def _write_chunk(self, first: int, last: int) -> None:
        self.file.write(b"".join(self.lines))
        self.lines.clear()

    def _complete(self) -> None:
        try:
            os.replace(self.partial, self.path)  # the stream already is the record
        except OSError as e:
            raise write_error(self.path, e) from None


class NpzRecorder(SpikeRecorder):
    """Arrays burst, neuron, mp (one entry per spike) plus the per-neuron area/x/y/z tables."""

    max_burst = MAX_NPZ_BURST

    def _start(self) -> None:
        self.chunk: list[np.ndarray] = []
        areas = self.brain.areas
        header = {"format": STREAM_FORMAT, "brain": self.brain.name, "fingerprint": self.brain.fingerprint,
                  "area_ids": [a.cortical_id for a in areas], "area_names": [a.name for a in areas]}
        n = self.brain.neurons
        table = np.empty(len(n), TABLE_DTYPE)
        table["area"], table["x"], table["y"], table["z"] = n.cortical_area, n.x, n.y, n.z
        np.lib.format.write_array(self.file, np.frombuffer(json.dumps(header).encode(), np.uint8))
        np.lib.format.write_array(self.file, table)

    def _buffer(self, r: BurstResult, first: bool) -> None:
        s = np.empty(r.fired.size, SPIKE_DTYPE)
        s["burst"], s["neuron"], s["mp"] = r.burst, r.fired, r.mp
        self.chunk.append(s)

    def _write_chunk(self, first: int, last: int) -> None:
        spikes = np.concatenate(self.chunk) if self.chunk else np.empty(0, SPIKE_DTYPE)
        # the extent and the spikes go out in one write, so a crash tears at most this chunk
        buf = _BytesSink()
        np.lib.format.write_array(buf, np.array([first, last], "<u8"))
        np.lib.format.write_array(buf, spikes)
        self.file.write(buf.getvalue())
        self.chunk.clear()

    def _complete(self) -> None:
        finish_partial(self.partial, self.path, force=True)
        self.partial.unlink(missing_ok=True)


class _BytesSink:
    """A minimal write-only buffer np.lib.format.write_array accepts (it is not a real file)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(self.parts[-1])

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def check_writable(path: Path, force: bool, option: str) -> None:
    """Refuse a directory, a path whose folder is missing, and an existing output without --force."""
    check_output(path, option, force)


def open_recorder(path: str | Path, brain: Brain, force: bool = False, **chunking: Any) -> SpikeRecorder:
    """A recorder for `path`, chosen by its suffix (`chunking`: chunk_spikes, chunk_bursts, chunk_seconds)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return JsonlRecorder(path, brain, force, **chunking)
    if suffix == ".npz":
        return NpzRecorder(path, brain, force, **chunking)
    raise InputError(f"--record {path}: unknown format {suffix or '(none)'}; use a .jsonl or .npz file")


# -- reading the .npz stream -------------------------------------------------------------------
@dataclass
class _Stream:
    header: dict[str, Any]
    table: np.ndarray  # TABLE_DTYPE per neuron
    chunks: list[tuple[int, int, int, int]]  # (first burst, last burst, data offset, spike count)


def _read_npy_header(f: IO[bytes]) -> tuple[np.dtype, int, int] | None:
    """(dtype, count, data offset) of the next .npy array in `f`, or None at a torn/missing one."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(f)
    except Exception:  # numpy's header parser raises many types on torn or crafted bytes: all mean "no array"
        return None
    return dtype, math.prod(shape), f.tell()  # math.prod: np.prod wraps around on a crafted shape


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _scan_stream(path: Path) -> _Stream:
    """Index a `.npz.partial` stream, stopping at the first torn chunk (what a crash leaves)."""
    with open_input(path, "spike record (.npz)") as f:
        size = os.fstat(f.fileno()).st_size
        got = _read_npy_header(f)
        if got is None or got[0] != np.uint8 or got[1] > size:
            raise InputError(f"{path} is not a feagi-burst spike stream (no header)")
        dtype, count, off = got
        header = parse_json(f.read(count), f"{path} (header)", on_duplicate=None) if count <= 1 << 26 else None
        if not isinstance(header, dict) or header.get("format") != STREAM_FORMAT:
            raise InputError(f"{path} is not a feagi-burst spike stream ({STREAM_FORMAT!r})")
        ids, names = header.get("area_ids"), header.get("area_names")
        if not (_str_list(ids) and _str_list(names) and len(ids) == len(names)):
            raise InputError(f"{path}: damaged stream header (area_ids and area_names must be lists of names "
                             "of one length)")
        got = _read_npy_header(f)
        if got is None or got[0] != TABLE_DTYPE or got[2] + got[1] * TABLE_DTYPE.itemsize > size:
            raise InputError(f"{path} is torn before its first chunk (the run recorded nothing)")
        table = np.frombuffer(f.read(got[1] * TABLE_DTYPE.itemsize), TABLE_DTYPE)
        chunks: list[tuple[int, int, int, int]] = []
        while True:
            ext = _read_npy_header(f)
            if ext is None or ext[2] + 16 > size:
                break
            if ext[0] != np.dtype("<u8") or ext[1] != 2:
                raise InputError(f"{path}: damaged chunk {len(chunks) + 1} (its burst extent is not 2 x u8)")
            first, last = np.frombuffer(f.read(16), "<u8").tolist()
            if not (0 < first <= last <= MAX_INT) or (chunks and first <= chunks[-1][1]):
                raise InputError(f"{path}: damaged chunk {len(chunks) + 1} (bursts {first}..{last} out of order)")
            got = _read_npy_header(f)
            if got is None or got[2] + got[1] * SPIKE_DTYPE.itemsize > size:
                break  # torn: the crash hit this chunk's write
            if got[0] != SPIKE_DTYPE:
                raise InputError(f"{path}: damaged chunk {len(chunks) + 1} (spikes of type {got[0]})")
            chunks.append((first, last, got[2], got[1]))
            f.seek(got[1] * SPIKE_DTYPE.itemsize, os.SEEK_CUR)
    return _Stream(header, table, chunks)


def _stream_spikes(path: Path, chunks: list[tuple[int, int, int, int]]) -> Iterator[np.ndarray]:
    """Each chunk's spikes (SPIKE_DTYPE), one chunk in memory at a time."""
    with open_input(path, "spike record (.npz)") as f:
        for _first, _last, off, count in chunks:
            f.seek(off)
            yield np.frombuffer(f.read(count * SPIKE_DTYPE.itemsize), SPIKE_DTYPE)


def _write_member(zf: zipfile.ZipFile, name: str, dtype: np.dtype, count: int,
                  parts: Iterator[np.ndarray] | None = None, array: np.ndarray | None = None) -> None:
    """One `.npy` member of an npz, written from `array` or streamed from `parts` (1-D, `count` long)."""
    with zf.open(name + ".npy", "w", force_zip64=True) as m:
        if array is not None:
            np.lib.format.write_array(m, array if array.flags.c_contiguous else array.copy(), allow_pickle=False)
            return
        np.lib.format.write_array_header_2_0(m, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": (count,)})
        for p in parts or ():
            m.write(np.ascontiguousarray(p, dtype).tobytes())


def finish_partial(partial: str | Path, out: str | Path, force: bool = False) -> int:
    """Write the final `.npz` record from a `.npz.partial` stream (atomically); returns its spike count.

    This is what a normal end does, and what recovers a crashed run's record: every complete chunk
    is kept, a torn last chunk is dropped. Memory: one chunk at a time.
    """
    src, dst = Path(partial), Path(out)
    check_writable(dst, force, "output")
    st = _scan_stream(src)
    total = sum(c[3] for c in st.chunks)
    first = st.chunks[0][0] if st.chunks else 0
    last = st.chunks[-1][1] if st.chunks else 0
    with atomic_write(dst, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
            for col in ("burst", "neuron", "mp"):
                _write_member(zf, col, SPIKE_DTYPE[col], total,
                              parts=(c[col] for c in _stream_spikes(src, st.chunks)))
            for col in ("area", "x", "y", "z"):
                _write_member(zf, col, TABLE_DTYPE[col], 0, array=st.table[col])
            _write_member(zf, "area_ids", np.dtype(object), 0, array=np.array(st.header["area_ids"], str))
            _write_member(zf, "area_names", np.dtype(object), 0, array=np.array(st.header["area_names"], str))
            _write_member(zf, "first_burst", np.dtype(np.uint64), 0, array=np.array(first, np.uint64))
            _write_member(zf, "last_burst", np.dtype(np.uint64), 0, array=np.array(last, np.uint64))
            for key in ("brain", "fingerprint"):  # which genome made the record (plot refuses to mix genomes)
                _write_member(zf, key, np.dtype(object), 0, array=np.array(str(st.header.get(key, "")), str))
    return total


# -- reading any record ------------------------------------------------------------------------
@dataclass
class SpikeTable:
    """A record as arrays: one entry per spike, and what is known of the areas."""

    burst: np.ndarray  # i8
    neuron: np.ndarray  # i8
    mp: np.ndarray  # f4
    spike_area: np.ndarray  # i8, index into area_ids
    area_ids: list[str]
    area_names: list[str]
    area_sizes: np.ndarray | None  # neurons per area, when the record carries the neuron tables
    first_burst: int  # the bursts the record covers (spikes or not)
    last_burst: int
    brain: str | None = None  # the genome that made the record, when the record says (not older ones)
    fingerprint: str | None = None
    source: str = ""  # the file it was read from


SPIKE_BYTES_IN_MEMORY = 40  # burst, neuron, area (i8 each), mp (f4) and the sort/filter copies plot makes


def read_spikes(path: str | Path) -> SpikeTable:
    """Any record (`.jsonl`, `.npz`, or their `.partial` stream) as a SpikeTable."""
    p = check_path(path, "record")
    partial = p.name.endswith(PARTIAL)
    kind = Path(p.name[: -len(PARTIAL)] if partial else p.name).suffix.lower()
    if kind == ".npz":
        t = _read_npz_stream(p) if partial else _read_npz(p)
    elif kind == ".jsonl":
        t = _read_jsonl(p)
    else:
        raise InputError(f"record {p}: unknown format; expected .jsonl or .npz (or their .partial)")
    t.source = str(p)
    return t


def _damaged(p: Path, why: str) -> InputError:
    return InputError(f"record {p} is damaged or not a feagi-burst spike record ({why})")


def _table(p: Path, burst: np.ndarray, neuron: np.ndarray, mp: np.ndarray, area: np.ndarray, ids: list[str],
           names: list[str], first: int, last: int, brain: str | None = None,
           fingerprint: str | None = None) -> SpikeTable:
    """Validate a record's arrays against each other, then build its SpikeTable."""
    for name, a, kinds in (("burst", burst, "iu"), ("neuron", neuron, "iu"), ("mp", mp, "iuf"), ("area", area, "iu")):
        if a.ndim != 1 or a.dtype.kind not in kinds:
            raise _damaged(p, f"{name} must be a 1-D {'number' if 'f' in kinds else 'integer'} array, "
                              f"got {a.dtype} of shape {a.shape}")
    if not (burst.size == neuron.size == mp.size):
        raise _damaged(p, f"burst, neuron and mp differ in length ({burst.size}, {neuron.size}, {mp.size})")
    if len(ids) != len(names) or len(ids) > 1 << 16:
        raise _damaged(p, f"{len(ids)} area ids and {len(names)} area names")
    if neuron.size and (int(neuron.min()) < 0 or int(neuron.max()) >= area.size):
        raise _damaged(p, f"neuron ids {int(neuron.min())}..{int(neuron.max())} outside its {area.size:,} neurons")
    if area.size and (int(area.min()) < 0 or int(area.max()) >= len(ids)):
        raise _damaged(p, f"area indexes {int(area.min())}..{int(area.max())} outside its {len(ids)} areas")
    if burst.size and (int(burst.min()) < 0 or int(burst.max()) > MAX_INT):
        raise _damaged(p, f"burst numbers {int(burst.min())}..{int(burst.max())} out of range")
    if not (0 <= first <= MAX_INT and 0 <= last <= MAX_INT):
        raise _damaged(p, f"first_burst {first}, last_burst {last} out of range")
    area = area.astype(np.int64)
    sizes = np.bincount(area, minlength=len(ids)) if area.size else np.zeros(len(ids), np.int64)
    neuron = neuron.astype(np.int64)
    return SpikeTable(burst.astype(np.int64), neuron, mp.astype(np.float32), area[neuron], ids, names, sizes,
                      first, last, brain, fingerprint)


def _memory_for_spikes(p: Path, spikes: int) -> None:
    from feagi_burst.memory import check_fits

    check_fits(spikes * SPIKE_BYTES_IN_MEMORY, f"reading record {p} ({spikes:,} spikes)",
               "plot part of it on a machine with more memory")


def _scalar_int(p: Path, z: dict[str, np.ndarray], key: str, default: int) -> int:
    if key not in z:
        return default
    a = z[key]
    if a.size != 1 or a.dtype.kind not in "iu":
        raise _damaged(p, f"{key} must be one integer")
    return int(a.reshape(-1)[0])


def _names(p: Path, z: dict[str, np.ndarray], key: str) -> list[str]:
    a = z[key]
    if a.ndim != 1 or a.dtype.kind not in "U":
        raise _damaged(p, f"{key} must be a 1-D array of names, got {a.dtype} of shape {a.shape}")
    return [str(v) for v in a.tolist()]


def _read_npz(p: Path) -> SpikeTable:
    from feagi_burst.memory import available_memory

    # the arrays in memory, then widened to i8 by _table: a third of what is available for the file's
    z = read_npz(p, "spike record (.npz)", memory_limit=available_memory() // 3)
    missing = [k for k in ("burst", "neuron", "mp", "area", "area_ids", "area_names") if k not in z]
    if missing:
        raise _damaged(p, f"no {', '.join(missing)} array")
    burst = z["burst"]
    first = _scalar_int(p, z, "first_burst", int(burst.min()) if burst.size and burst.dtype.kind in "iu" else 0)
    last = _scalar_int(p, z, "last_burst", int(burst.max()) if burst.size and burst.dtype.kind in "iu" else 0)
    label = {k: str(z[k].reshape(-1)[0]) for k in ("brain", "fingerprint")
             if k in z and z[k].size == 1 and z[k].dtype.kind == "U" and str(z[k].reshape(-1)[0])}
    return _table(p, burst, z["neuron"], z["mp"], z["area"], _names(p, z, "area_ids"), _names(p, z, "area_names"),
                  first, last, label.get("brain"), label.get("fingerprint"))


def _read_npz_stream(p: Path) -> SpikeTable:
    st = _scan_stream(p)
    _memory_for_spikes(p, sum(c[3] for c in st.chunks))
    spikes = list(_stream_spikes(p, st.chunks)) or [np.empty(0, SPIKE_DTYPE)]
    s = np.concatenate(spikes)
    first = st.chunks[0][0] if st.chunks else 0
    last = st.chunks[-1][1] if st.chunks else 0
    h = st.header
    return _table(p, s["burst"], s["neuron"], s["mp"], st.table["area"], h["area_ids"], h["area_names"], first, last,
                  h.get("brain") if isinstance(h.get("brain"), str) else None,
                  h.get("fingerprint") if isinstance(h.get("fingerprint"), str) else None)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a record holds")


def _read_jsonl(p: Path) -> SpikeTable:
    text = read_bytes(p, "spike record")
    lines = text.split(b"\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # a line without its newline was torn by a crash: drop it
    bursts: list[int] = []
    neurons: list[int] = []
    mps: list[float] = []
    areas: list[str] = []
    covered: list[int] = []
    brain = fingerprint = None
    n = 0
    try:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            rec = json.loads(line, parse_constant=_no_constant)
            b = rec["burst"]
            if type(b) is not int or not 0 < b <= MAX_INT:
                raise ValueError(f"burst {printable(b, 40)} is not a burst number")
            fired = rec["fired"]
            if not isinstance(fired, list):
                raise ValueError("fired is not a list")
            if not covered:
                brain = rec.get("brain") if isinstance(rec.get("brain"), str) else None
                fingerprint = rec.get("fingerprint") if isinstance(rec.get("fingerprint"), str) else None
            covered.append(b)
            for f in fired:
                i, a, m = f[0], f[1], f[5]
                if (type(i) is not int or not 0 <= i < 2**32 or not isinstance(a, str) or len(f) != 6
                        or type(m) not in (int, float)):
                    raise ValueError(f"spike {printable(f, 60)} is not [neuron id, area, x, y, z, mp]")
                bursts.append(b)
                neurons.append(i)
                areas.append(a)
                mps.append(m)
    except RecursionError:
        raise _damaged(p, f"line {n} nests too deep") from None
    except (ValueError, KeyError, IndexError, TypeError, OverflowError) as e:
        raise _damaged(p, f"line {n}: {printable(e, 120)}") from None
    neuron = np.array(neurons, np.int64)
    # areas in neuron-id order (ids are contiguous per area), since a .jsonl has no area table
    uniq, inv = np.unique(np.array(areas, dtype=str), return_inverse=True) if areas else (np.array([], str),
                                                                                        np.zeros(0, np.int64))
    inv = inv.reshape(-1)
    lowest = np.full(uniq.size, np.iinfo(np.int64).max)
    np.minimum.at(lowest, inv, neuron)
    order = np.argsort(lowest, kind="stable")
    rank = np.empty(uniq.size, np.int64)
    rank[order] = np.arange(uniq.size)
    ids = uniq[order].tolist()
    burst = np.array(bursts, np.int64)
    # the first and last lines are the run's first and last bursts (written even when nothing fired)
    first, last = (min(covered), max(covered)) if covered else (0, 0)
    return SpikeTable(burst, neuron, np.array(mps, np.float32), rank[inv].astype(np.int64), ids, list(ids), None,
                      first, last, brain, fingerprint)


def read_record(path: str | Path) -> dict[int, list[tuple[int, float]]]:
    """burst -> [(neuron id, mp), ...] from any record (for tests, plots and comparisons)."""
    t = read_spikes(path)
    out: dict[int, list[tuple[int, float]]] = {}
    for b, i, m in zip(t.burst.tolist(), t.neuron.tolist(), t.mp.astype(np.float64).tolist()):
        out.setdefault(b, []).append((i, m))
    return out
