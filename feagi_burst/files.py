"""Reading user files with one-line errors, and writing files atomically (temp file, then rename)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from feagi_burst.errors import InputError


def read_text(path: str | Path, what: str) -> str:
    """A user's text file; a missing, unreadable or non-UTF-8 file is one InputError line."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{p}: file not found; check the path") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, not a {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: cannot read the {what} ({e.__class__.__name__}: {e}); "
                         "check its permissions and that it is UTF-8 text") from None


def read_toml(path: str | Path, what: str = "TOML file") -> dict[str, Any]:
    """Parse a TOML file; a syntax error is an InputError naming the file and line."""
    try:
        return tomllib.loads(read_text(path, what))
    except tomllib.TOMLDecodeError as e:
        raise InputError(f"{path}: invalid TOML: {e}; fix the syntax there") from None


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a syntax error is an InputError naming the file, line and column."""
    try:
        return json.loads(read_text(path, what))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: line {e.lineno} column {e.colno}: invalid JSON: {e.msg}; "
                         "fix the syntax there (a JSON validator shows the spot)") from None


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write `path` through a temporary file in the same folder, renamed into place on success.

    On any error the temporary file is removed and `path` keeps its previous content (if any).
    """
    p = Path(path)
    if not p.parent.exists():
        raise InputError(f"cannot write {p}: folder {p.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the result should look like any file we write
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
