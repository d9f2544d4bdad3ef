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

Formats:

- `.jsonl`: one line per burst with at least one spike, `{"burst": b, "fired": [[neuron_id,
  "<cortical id>", x, y, z, mp], ...]}` sorted by neuron id. The `.partial` file has the same lines,
  so the final record is the partial file renamed.
- `.npz` (numpy, `np.load` reads it, no pickle): `burst` (u4), `neuron` (u4), `mp` (f4), one entry
  per spike in burst order; the per-neuron tables `area` (u2, index into `area_ids`), `x`, `y`, `z`
  (u2); `area_ids`, `area_names` (str); `first_burst`, `last_burst` (the bursts the record covers,
  spikes or not; 0 and 0 for an empty run).
  The `.npz.partial` stream is a sequence of standard `.npy` arrays (call `np.load` repeatedly on one
  open file to read them): a JSON header (u1 bytes), the per-neuron table (structured area/x/y/z),
  then per chunk a `[first_burst, last_burst]` array (u8) followed by the chunk's spikes
  (structured burst/neuron/mp).
"""
from __future__ import annotations

import contextlib
import json
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
from feagi_burst.files import atomic_write

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


def partial_path(path: str | Path) -> Path:
    """Where a record is streamed while the run goes: `<path>.partial`."""
    p = Path(path)
    return p.with_name(p.name + PARTIAL)


class SpikeRecorder:
    """Streams burst results into `<path>.partial`; `close` completes the record under `path`."""

    def __init__(self, path: str | Path, brain: Brain, force: bool = False, chunk_spikes: int = CHUNK_SPIKES,
                 chunk_bursts: int = CHUNK_BURSTS, chunk_seconds: float = CHUNK_SECONDS) -> None:
        self.path = Path(path)
        self.partial = partial_path(self.path)
        self.brain = brain
        self.chunk_spikes, self.chunk_bursts, self.chunk_seconds = chunk_spikes, chunk_bursts, chunk_seconds
        check_writable(self.path, force, "--record")
        if self.partial.exists() and not force:
            raise InputError(f"{self.partial} exists (left by an interrupted run: read it with read_record, or "
                             "delete it); choose another --record path or pass --force")
        try:
            self.file: IO[bytes] = open(self.partial, "wb")
        except OSError as e:
            raise InputError(f"cannot write {self.partial}: {e.strerror}") from None
        self.spikes = 0  # spikes recorded (flushed or buffered)
        self.first_burst = 0  # first and last burst seen, spikes or not
        self.last_burst = 0
        self._pending_bursts = 0
        self._pending_spikes = 0
        self._chunk_first = 0
        self._last_flush = time.monotonic()
        self.closed = False
        self._start()

    # -- what each format writes -----------------------------------------------------------
    def _start(self) -> None:
        """Write the stream's header."""

    def _buffer(self, r: BurstResult) -> None:
        raise NotImplementedError

    def _write_chunk(self, first: int, last: int) -> None:
        """Write the buffered bursts first..last to the stream and empty the buffer."""
        raise NotImplementedError

    def _complete(self) -> None:
        """Turn the closed `.partial` stream into the final record under `self.path`."""
        raise NotImplementedError

    # -- the recorder ------------------------------------------------------------------------
    def add(self, r: BurstResult) -> None:
        """Record one burst's result (bursts arrive in order)."""
        if self._pending_bursts == 0:
            self._chunk_first = r.burst
        self.first_burst = self.first_burst or r.burst
        self.last_burst = r.burst
        self._pending_bursts += 1
        if r.fired.size:
            self._buffer(r)
            self._pending_spikes += int(r.fired.size)
            self.spikes += int(r.fired.size)
        if (self._pending_spikes >= self.chunk_spikes or self._pending_bursts >= self.chunk_bursts
                or time.monotonic() - self._last_flush >= self.chunk_seconds):
            self.flush()

    def flush(self) -> None:
        """Write the buffered chunk to the `.partial` file and hand it to the OS."""
        if self._pending_bursts:
            self._write_chunk(self._chunk_first, self.last_burst)
            self._pending_bursts = self._pending_spikes = 0
        self.file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        """Complete the record under its final name (atomically) and remove the `.partial` file."""
        self.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        self._complete()
        self.closed = True

    def abort(self) -> Path | None:
        """Stop recording without completing: keep the `.partial` file if it holds any burst.

        Returns the kept file, or None when nothing was recorded (then nothing is left on disk).
        Also right after a `close` that was interrupted: the `.partial` file is still whole then.
        """
        if self.closed:
            return None
        self.closed = True
        if not self.file.closed:
            with contextlib.suppress(Exception):  # keep what is already on disk even if this fails
                self.flush()
            with contextlib.suppress(OSError):
                self.file.close()
        if not self.partial.exists():
            return None
        if self.last_burst == 0:
            self.partial.unlink(missing_ok=True)
            return None
        return self.partial


class JsonlRecorder(SpikeRecorder):
    """One JSON line per burst with at least one spike: {"burst", "fired": [[id, area, x, y, z, mp]]}."""

    def _start(self) -> None:
        self.lines: list[bytes] = []
        self.area_ids = [a.cortical_id for a in self.brain.areas]

    def _buffer(self, r: BurstResult) -> None:
        n = self.brain.neurons
        ids = r.fired.astype(np.int64)
        area_ids = self.area_ids
        fired = [[i, area_ids[a], x, y, z, m] for i, a, x, y, z, m in
                 zip(ids.tolist(), n.cortical_area[ids].tolist(), n.x[ids].tolist(), n.y[ids].tolist(),
                     n.z[ids].tolist(), r.mp.astype(np.float64).tolist())]
        self.lines.append((json.dumps({"burst": r.burst, "fired": fired}, separators=(",", ":")) + "\n").encode())

    def _write_chunk(self, first: int, last: int) -> None:
        self.file.write(b"".join(self.lines))
        self.lines.clear()

    def _complete(self) -> None:
        os.replace(self.partial, self.path)  # the stream already is the record


class NpzRecorder(SpikeRecorder):
    """Arrays burst, neuron, mp (one entry per spike) plus the per-neuron area/x/y/z tables."""

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
        self.file.flush()

    def _buffer(self, r: BurstResult) -> None:
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
    """Refuse to replace an existing output without --force, and a path whose folder is missing."""
    if path.exists() and not force:
        raise InputError(f"{path} already exists; choose another {option} path or pass --force")
    if path.is_dir():
        raise InputError(f"{option} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")


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
    except (ValueError, EOFError, OSError, SyntaxError):
        return None
    return dtype, int(np.prod(shape)), f.tell()


def _scan_stream(path: Path) -> _Stream:
    """Index a `.npz.partial` stream, stopping at the first torn chunk (what a crash leaves)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        got = _read_npy_header(f)
        if got is None or got[0] != np.uint8:
            raise InputError(f"{path} is not a feagi-burst spike stream (no header)")
        dtype, count, off = got
        try:
            header = json.loads(f.read(count))
        except ValueError:
            raise InputError(f"{path} is not a feagi-burst spike stream (bad header)") from None
        if not isinstance(header, dict) or header.get("format") != STREAM_FORMAT:
            raise InputError(f"{path} is not a feagi-burst spike stream ({STREAM_FORMAT!r})")
        got = _read_npy_header(f)
        if got is None or got[0] != TABLE_DTYPE or got[2] + got[1] * TABLE_DTYPE.itemsize > size:
            raise InputError(f"{path} is torn before its first chunk (the run recorded nothing)")
        table = np.frombuffer(f.read(got[1] * TABLE_DTYPE.itemsize), TABLE_DTYPE)
        chunks = []
        while True:
            ext = _read_npy_header(f)
            if ext is None or ext[1] != 2 or ext[2] + 16 > size:
                break
            first, last = np.frombuffer(f.read(16), "<u8").tolist()
            got = _read_npy_header(f)
            if got is None or got[0] != SPIKE_DTYPE or got[2] + got[1] * SPIKE_DTYPE.itemsize > size:
                break  # torn: the crash hit this chunk's write
            chunks.append((first, last, got[2], got[1]))
            f.seek(got[1] * SPIKE_DTYPE.itemsize, os.SEEK_CUR)
    return _Stream(header, table, chunks)


def _stream_spikes(path: Path, chunks: list[tuple[int, int, int, int]]) -> Iterator[np.ndarray]:
    """Each chunk's spikes (SPIKE_DTYPE), one chunk in memory at a time."""
    with path.open("rb") as f:
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


def read_spikes(path: str | Path) -> SpikeTable:
    """Any record (`.jsonl`, `.npz`, or their `.partial` stream) as a SpikeTable."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"record {p} does not exist; check the path")
    partial = p.name.endswith(PARTIAL)
    kind = Path(p.name[: -len(PARTIAL)] if partial else p.name).suffix.lower()
    if kind == ".npz":
        return _read_npz_stream(p) if partial else _read_npz(p)
    if kind == ".jsonl":
        return _read_jsonl(p)
    raise InputError(f"record {p}: unknown format; expected .jsonl or .npz (or their .partial)")


def _table(burst: np.ndarray, neuron: np.ndarray, mp: np.ndarray, area: np.ndarray, ids: list[str],
           names: list[str], first: int, last: int) -> SpikeTable:
    sizes = np.bincount(area, minlength=len(ids)) if area.size else np.zeros(len(ids), np.int64)
    neuron = neuron.astype(np.int64)
    return SpikeTable(burst.astype(np.int64), neuron, mp.astype(np.float32), area[neuron].astype(np.int64),
                      ids, names, sizes, first, last)


def _read_npz(p: Path) -> SpikeTable:
    try:
        with np.load(p, allow_pickle=False) as z:
            burst, neuron, mp, area = z["burst"], z["neuron"], z["mp"], z["area"].astype(np.int64)
            ids, names = z["area_ids"].tolist(), z["area_names"].tolist()
            first = int(z["first_burst"]) if "first_burst" in z else int(burst.min(initial=0))
            last = int(z["last_burst"]) if "last_burst" in z else int(burst.max(initial=0))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise InputError(f"record {p} is not a readable spike record .npz ({e})") from None
    return _table(burst, neuron, mp, area, ids, names, first, last)


def _read_npz_stream(p: Path) -> SpikeTable:
    st = _scan_stream(p)
    spikes = list(_stream_spikes(p, st.chunks)) or [np.empty(0, SPIKE_DTYPE)]
    s = np.concatenate(spikes)
    first = st.chunks[0][0] if st.chunks else 0
    last = st.chunks[-1][1] if st.chunks else 0
    return _table(s["burst"], s["neuron"], s["mp"], st.table["area"].astype(np.int64), st.header["area_ids"],
                  st.header["area_names"], first, last)


def _read_jsonl(p: Path) -> SpikeTable:
    try:
        text = p.read_bytes().decode()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read record {p}: {e}") from None
    lines = text.split("\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # a line without its newline was torn by a crash: drop it
    bursts: list[int] = []
    neurons: list[int] = []
    mps: list[float] = []
    areas: list[str] = []
    try:
        for line in lines:
            if not line:
                continue
            rec = json.loads(line)
            for f in rec["fired"]:
                bursts.append(rec["burst"])
                neurons.append(f[0])
                areas.append(f[1])
                mps.append(f[5])
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise InputError(f"record {p} is not a spike record .jsonl ({e})") from None
    neuron = np.array(neurons, np.int64)
    # areas in neuron-id order (ids are contiguous per area), since a .jsonl has no area table
    uniq, inv = np.unique(np.array(areas, dtype=str), return_inverse=True) if areas else (np.array([], str),
                                                                                        np.zeros(0, np.int64))
    lowest = np.full(uniq.size, np.iinfo(np.int64).max)
    np.minimum.at(lowest, inv, neuron)
    order = np.argsort(lowest, kind="stable")
    rank = np.empty(uniq.size, np.int64)
    rank[order] = np.arange(uniq.size)
    ids = uniq[order].tolist()
    burst = np.array(bursts, np.int64)
    return SpikeTable(burst, neuron, np.array(mps, np.float32), rank[inv].astype(np.int64), ids, list(ids), None,
                      int(burst.min(initial=0)), int(burst.max(initial=0)))


def read_record(path: str | Path) -> dict[int, list[tuple[int, float]]]:
    """burst -> [(neuron id, mp), ...] from any record (for tests, plots and comparisons)."""
    t = read_spikes(path)
    out: dict[int, list[tuple[int, float]]] = {}
    for b, i, m in zip(t.burst.tolist(), t.neuron.tolist(), t.mp.astype(np.float64).tolist()):
        out.setdefault(b, []).append((i, m))
    return out
