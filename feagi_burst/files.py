"""The one reader of users' files, and the one writer of ours.

Reading: every file a user hands us (genome, brain.toml, stimulus schedule, spike records) goes
through `open_input`, which refuses anything that is not a regular file (a directory, a device such
as /dev/zero, a FIFO, a socket) and anything larger than the limit for its kind, before reading a
byte, in one InputError line. The limits (`LIMITS`) are far above any real file of that kind and
below what would exhaust memory while parsing it:

    genome file          512 MiB   (FEAGI genomes are KBs to a few MBs)
    stimulus schedule     64 MiB
    config file            4 MiB   (brain.toml)
    spike record (.jsonl)  1 GiB   (parsed into Python lists: ~10x its size in memory)
    spike record (.npz)   16 GiB   (and its arrays must fit in available memory)
    checkpoint            16 GiB   (the same check on its arrays)

JSON and TOML are parsed by `parse_json` / `parse_toml`, which turn what the standard parsers let
through into one-line errors naming the spot: nesting deeper than MAX_DEPTH (10^5 levels would be a
RecursionError), integers beyond +-2^53 (10^400 or 2^63 would later overflow a float, a C long or a
numpy array), NaN and +-Infinity (JSON's non-standard constants, TOML's nan/inf, and finite-looking
literals such as 1e400 that parse to infinity). A key given twice in one JSON object is a warning
naming the key (the last value is used, as Python's and FEAGI's readers do).

`.npz` files (records, checkpoints) are read by `read_npz`, which checks every member's declared
shape and dtype against its stored size before reading data, so a crafted header declaring 10^12
elements or a compressed member inflating to gigabytes is refused rather than allocated.

Writing: `atomic_write` writes through a hidden temporary file in the target folder, renamed into
place on success; a failed write (a full disk, say) removes it and raises `WriteError` naming the
file and saying the previous content is unchanged. Temporary files of ours left by a kill -9 are
removed on the next write to that folder (a live writer holds a lock on its file, so only dead
ones go).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import stat
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from feagi_burst.errors import InputError

MiB = 1 << 20
GiB = 1 << 30
LIMITS: dict[str, int] = {
    "genome file": 512 * MiB,
    "stimulus schedule": 64 * MiB,
    "config file": 4 * MiB,
    "spike record": 1 * GiB,
    "spike record (.npz)": 16 * GiB,
    "checkpoint": 16 * GiB,
}
DEFAULT_LIMIT = 64 * MiB  # a kind not listed above
MAX_DEPTH = 100  # FEAGI genomes nest about 8 deep; Python's parsers recurse and fail near 1,000
MAX_INT = 2**53  # beyond this an integer no longer survives a float, and soon not a C long either


def limit_for(what: str) -> int:
    """The size limit for a kind of file (see LIMITS)."""
    return LIMITS.get(what, DEFAULT_LIMIT)


def _size(n: int) -> str:
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{n:,} bytes"


# -- printing ------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object, limit: int | None = None) -> str:
    """`text` safe for a terminal: control characters (ESC, NUL, CR, newlines...) as escapes.

    A genome title or area name can hold anything; printed raw, an escape sequence would move the
    cursor, recolour or clear the user's terminal, and a newline would break the one-line promise.
    """
    s = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
    s = s.replace("\n", "\\n").replace("\t", " ")
    if limit is not None and len(s) > limit:
        s = s[: limit - 1] + "…"
    return s


def warn(message: str) -> None:
    """A warning, in the one format every part of feagi-burst uses: `feagi-burst: warning: ...`."""
    print(f"feagi-burst: warning: {printable(message)}", file=sys.stderr, flush=True)


# -- paths -----------------------------------------------------------------------------------------
def check_path(path: str | os.PathLike[str], what: str) -> Path:
    """A path that the OS can take; a NUL byte (from a TOML/JSON string or the API) is refused."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "surrogateescape")
    if "\x00" in text:
        raise InputError(f"{what} path '{printable(text, 120)}' contains a NUL byte; paths cannot hold one")
    return Path(text)


_KINDS = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO (pipe)"),
          (stat.S_ISSOCK, "a socket"))


def open_input(path: str | os.PathLike[str], what: str, limit: int | None = None) -> IO[bytes]:
    """Open a user's file for reading, after checking it is a regular file within the size limit.

    Opened non-blocking first: opening a FIFO with no writer for reading would otherwise hang here.
    """
    p = check_path(path, what)
    limit = limit_for(what) if limit is None else limit
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise InputError(f"{p}: file not found (no such {what}); check the path") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a {what}; give the file's path") from None
    except PermissionError:
        raise InputError(f"{p}: permission denied; make the {what} readable") from None
    except OSError as e:
        raise InputError(f"{p}: cannot open the {what} ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise InputError(f"{p}: is a directory, not a {what}; give the file's path")
        if not stat.S_ISREG(st.st_mode):
            kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
            raise InputError(f"{p}: is {kind}, not a regular file; give the {what} as a file")
        if st.st_size > limit:
            raise InputError(f"{p}: {_size(st.st_size)} is larger than the {_size(limit)} limit for a {what}; "
                             "check that this is the right file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], what: str, limit: int | None = None) -> bytes:
    """A user's whole file, checked by `open_input` (a file growing past the limit is refused too)."""
    limit = limit_for(what) if limit is None else limit
    with open_input(path, what, limit) as f:
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise InputError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    if len(data) > limit:
        raise InputError(f"{path}: larger than the {_size(limit)} limit for a {what}; check that this is the right file")
    return data


def read_text(path: str | os.PathLike[str], what: str, limit: int | None = None) -> str:
    """A user's UTF-8 text file; anything wrong with it is one InputError line."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8-sig")  # a BOM (Windows editors) is not part of the text
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: the {what} is not UTF-8 text (byte {e.start}); save it as UTF-8") from None


# -- JSON and TOML ---------------------------------------------------------------------------------
def _spot(keys: list[Any]) -> str:
    if not keys:
        return "the top level"
    return "/".join(printable(k, 60) for k in keys)


def _bad_value(value: Any) -> str | None:
    """Why a parsed scalar is refused, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        if abs(value) <= MAX_INT:
            return None
        digits = str(abs(value))
        shown = digits if len(digits) <= 24 else f"{digits[:24]}... ({len(digits)} digits)"
        return f"the integer {'-' if value < 0 else ''}{shown} is too large"
    if math.isnan(value):
        return "NaN is not a number"
    if math.isinf(value):
        return f"{value} is not a finite number (a literal beyond +-1.8e308 reads as infinity)"
    return None


def _locate(data: Any, depth_limit: int) -> tuple[list[Any], str]:
    """(path, why) of the first refused spot: the slow walk, run only once something is known wrong."""
    stack: list[tuple[Any, list[Any]]] = [(data, [])]
    while stack:
        value, keys = stack.pop()
        if isinstance(value, (dict, list)):
            if len(keys) >= depth_limit:
                return keys, "deep"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend((v, keys + [k]) for k, v in items)
        else:
            why = _bad_value(value)
            if why:
                return keys, why
    return [], ""


def check_values(data: Any, where: str) -> None:
    """Refuse nesting deeper than MAX_DEPTH, integers beyond +-2^53 and non-finite floats, naming the spot.

    Iterative (an explicit stack), so a deep document cannot exhaust Python's recursion here. The
    fast walk only looks at types (a 160 MB genome takes a second or two); the spot is found by a
    second, slower walk once something is wrong.
    """
    stack: list[tuple[Any, int]] = [(data, 0)]
    found = False
    while stack and not found:
        container, depth = stack.pop()
        if type(container) is dict:
            values: Any = container.values()
        elif type(container) is list:
            values = container
        else:
            found = _bad_value(container) is not None
            break
        if depth >= MAX_DEPTH:
            found = True
            break
        for v in values:
            t = type(v)
            if t is float:
                if v - v != 0.0:  # NaN or an infinity (inf - inf is NaN)
                    found = True
                    break
            elif t is int:
                if v > MAX_INT or v < -MAX_INT:
                    found = True
                    break
            elif t is dict or t is list:
                stack.append((v, depth + 1))
    if not found:
        return
    keys, why = _locate(data, MAX_DEPTH)
    if why == "deep":
        raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep (at {_spot(keys[:5])}/...); "
                         "no genome, schedule or record nests like this: check the file")
    raise InputError(f"{where}: at {_spot(keys)}: {why}; use a finite number between -2^53 and 2^53")


def parse_json(text: str | bytes, where: str, on_duplicate: Any = warn) -> Any:
    """Parse JSON text from `where` (a file name, `file line N`): one InputError line for anything wrong.

    A key given twice in one object calls `on_duplicate(message)` once per key (default: a warning).
    """
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(items)
        if len(d) != len(items):
            seen: set[str] = set()
            for k, _v in items:
                if k in seen and k not in duplicates:
                    duplicates.append(k)
                seen.add(k)
        return d

    try:
        data = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as e:
        raise InputError(f"{where}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}; "
                         "fix the syntax there (a JSON validator shows the spot)") from None
    except RecursionError:
        raise InputError(f"{where}: nested more than {MAX_DEPTH} levels deep; no genome, schedule or record "
                         "nests like this: check the file") from None
    except (ValueError, UnicodeDecodeError) as e:
        if "digits" in str(e):  # Python refuses to convert integer literals of more than 4,300 digits
            raise InputError(f"{where}: an integer literal has thousands of digits; use a finite number between "
                             "-2^53 and 2^53") from None
        raise InputError(f"{where}: not JSON text ({printable(e, 120)})") from None  # bytes not UTF-8/16/32
    check_values(data, where)
    if on_duplicate is not None:
        for k in duplicates[:10]:
            on_duplicate(f"{where}: key {printable(k, 80)!r} appears more than once in one object; the last value is used")
        if len(duplicates) > 10:
            on_duplicate(f"{where}: {len(duplicates) - 10} more keys appear more than once")
    return data


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """Parse TOML text; a syntax error names the file and line, and values get `check_values`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{where}: invalid TOML: {printable(e)}; fix the syntax there") from None
    except RecursionError:
        raise InputError(f"{where}: arrays nested more than {MAX_DEPTH} levels deep; check the file") from None
    except ValueError as e:  # an integer literal beyond Python's 4,300-digit conversion limit
        raise InputError(f"{where}: {printable(e, 120)}; use a finite number between -2^53 and 2^53") from None
    check_values(data, where)
    return data


def read_json(path: str | os.PathLike[str], what: str = "JSON file") -> Any:
    """Read and parse a user's JSON file (see `open_input` and `parse_json`)."""
    return parse_json(read_text(path, what), str(path))


def read_toml(path: str | os.PathLike[str], what: str = "config file") -> dict[str, Any]:
    """Read and parse a user's TOML file (see `open_input` and `parse_toml`)."""
    return parse_toml(read_text(path, what), str(path))


# -- .npz ------------------------------------------------------------------------------------------
def _member_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes of data) an .npy member declares, checked against its stored size."""
    with zf.open(info) as m:
        version = np.lib.format.read_magic(m)
        if version == (1, 0):
            shape, _fortran, dtype = np.lib.format.read_array_header_1_0(m)
        else:
            shape, _fortran, dtype = np.lib.format.read_array_header_2_0(m)
        header = m.tell()
    if dtype.hasobject:
        raise ValueError(f"member {info.filename} holds Python objects (pickles are never loaded)")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if header + nbytes != info.file_size:
        raise ValueError(f"member {info.filename} declares {count:,} x {dtype} but stores "
                         f"{info.file_size - header:,} bytes")
    return shape, dtype, nbytes


def read_npz(path: str | os.PathLike[str], what: str, limit: int | None = None,
             memory_limit: int | None = None) -> dict[str, np.ndarray]:
    """Every array of a user's `.npz` (no pickles), with declared sizes checked before any data is read.

    memory_limit: bytes the arrays may take in memory (default: what `memory.available_memory` allows).
    """
    from feagi_burst.memory import available_memory

    p = check_path(path, what)
    memory_limit = available_memory() if memory_limit is None else memory_limit
    with open_input(p, what, limit) as f:
        try:
            with zipfile.ZipFile(f) as zf:
                members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
                total = 0
                for info in members:
                    total += _member_header(zf, info)[2]
                if total > memory_limit:
                    raise InputError(f"{p}: its arrays take {_size(total)}, more than the {_size(memory_limit)} "
                                     f"of memory available; this {what} cannot be loaded here")
                out: dict[str, np.ndarray] = {}
                for info in members:
                    with zf.open(info) as m:
                        out[info.filename[:-4]] = np.lib.format.read_array(m, allow_pickle=False)
                return out
        except InputError:
            raise
        except Exception as e:  # numpy's and zipfile's parsers raise a dozen types on crafted input
            # (ValueError, EOFError, BadZipFile, tokenize.TokenError, MemoryError...): all mean "damaged"
            what_went_wrong = "empty file" if p.stat().st_size == 0 else printable(e, 200)
            raise InputError(f"{p}: not a readable {what} ({what_went_wrong})") from None


# -- writing ---------------------------------------------------------------------------------------
class WriteError(InputError, OSError):
    """A file of ours could not be written (full disk, quota, read-only folder); `path` is unchanged.

    Also an OSError (with the cause's errno and strerror), so callers that catch OSError around a
    write to add what they kept still do.
    """

    def __init__(self, message: str, path: Path, cause: OSError | None = None) -> None:
        OSError.__init__(self, cause.errno if cause else None, cause.strerror if cause else message)
        self.message = message
        self.path = path
        self.cause = cause

    def __str__(self) -> str:
        return self.message


TMP_SUFFIX = ".feagi-tmp"
_OURS = re.compile(r"^\..+\.[A-Za-z0-9_]{8}(\.feagi-tmp|\.tmp)$")


def clean_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove temporary files of ours in `folder` whose writer is gone (killed with kill -9, say).

    Ours: `.NAME.XXXXXXXX.feagi-tmp` (and `.NAME.XXXXXXXX.tmp` of earlier versions, only for `name`).
    A live writer holds an exclusive lock on its temporary file, so a file we can lock is stale.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        if not _OURS.match(e.name):
            continue
        if e.name.endswith(".tmp") and (name is None or not e.name.startswith(f".{name}.")):
            continue  # the older naming is common: only the file we are about to write is surely ours
        try:
            if not e.is_file(follow_symlinks=False):
                continue
            fd = os.open(e.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its writer is alive
        try:
            os.unlink(e.path)
            removed.append(Path(e.path))
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def check_output(path: str | os.PathLike[str], option: str, force: bool = True) -> Path:
    """An output path we can write: not a directory, its folder existing, no NUL byte.

    With force=False an existing file is refused too. Checked before a run starts, so a long run
    never ends in a refused write.
    """
    p = check_path(path, option)
    if p.is_dir():
        raise InputError(f"{option} {p} is a directory; give a file name inside it")
    if not p.parent.is_dir():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist; create it first "
                         f"(mkdir -p {p.parent})")
    if (p.exists() or p.is_symlink()) and not force:
        raise InputError(f"{p} already exists; choose another {option} path or pass --force")
    return p


def _nearly_full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20


def write_error(p: Path, e: OSError, kept: str | None = None) -> WriteError:
    """The one-line error for a failed write of `p`."""
    reason = e.strerror or str(e)
    if e.errno is None and _nearly_full(p.parent):  # numpy's tofile reports a short write without errno
        reason = f"No space left on device ({reason})"
    if e.errno in (errno.ENOSPC, errno.EDQUOT) or e.errno is None and reason.startswith("No space"):
        reason += " (the disk is full)"
    tail = kept if kept is not None else (f"{p} is unchanged" if p.exists() else f"nothing was written to {p}")
    return WriteError(f"cannot write {p}: {reason}; {tail}", p, e)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temporary file in the same folder, renamed into place on success.

    On any error the temporary file is removed and `path` keeps its previous content (if any); an
    OSError (a full disk, say) becomes a WriteError saying so.
    """
    p = check_path(path, "output")
    if not p.parent.is_dir():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist; create it first")
    if p.is_dir():
        raise InputError(f"cannot write {p}: it is a directory; give a file name inside it")
    clean_stale_temporaries(p.parent, p.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=TMP_SUFFIX, dir=p.parent)
    except OSError as e:
        raise write_error(p, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # tells clean_stale_temporaries this file is being written
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should look like any file we write
        try:
            with os.fdopen(os.dup(fd), mode) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except WriteError:
            raise
        except OSError as e:
            raise write_error(p, e) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        os.close(fd)


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as None, so that it is JSON every parser reads."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write JSON atomically (never a half-written file); strict JSON: a NaN is written as null."""
    with atomic_write(path) as f:
        json.dump(finite(data), f, indent=2, allow_nan=False)
        f.write("\n")


# -- locks -----------------------------------------------------------------------------------------
class FileLock:
    """An exclusive lock on `.NAME.lock` beside a file we write for a long time (a spike record).

    Two runs given the same record (both with --force) would otherwise interleave or truncate each
    other's spikes; the second is refused in one line. The lock file is removed on release; after a
    kill -9 the kernel drops the lock and the next run takes the stale file over.
    """

    def __init__(self, path: Path, option: str) -> None:
        self.path = path.with_name(f".{path.name}.lock")
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            except OSError as e:
                raise InputError(f"cannot lock {option} {path}: {e.strerror or e}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    self.fd = fd  # a file system without locks (some NFS): record unguarded, as before locks
                    return
                os.close(fd)
                raise InputError(f"{option} {path} is being written by another feagi-burst run right now; "
                                 "wait for it or choose another path") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except OSError:
                same = False
            if same:  # not a file the previous holder unlinked between our open and our lock
                self.fd: int | None = fd
                return
            os.close(fd)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        os.close(self.fd)
        self.fd = None
