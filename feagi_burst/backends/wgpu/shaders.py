"""WGSL source loading: shader files, `//!include` expansion and the generated layout.

Shader files are the package data `feagi_burst/shaders` (the repository's `shaders/` folder). A
shader is assembled from its file by replacing, recursively and each at most once:

- `//!include other.wgsl` by that file;
- `//!include PLACEHOLDER` by the file the caller maps it to (`includes={"PLACEHOLDER": "x.wgsl"}`),
  so one entry point can be compiled with different bodies (e.g. one per neuron model);
- `//!generated layout` by `layout.wgsl()`: the constants and `struct Header` the host shares.
"""
from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from feagi_burst.backends.base import BackendError
from feagi_burst.backends.wgpu import layout

_INCLUDE = re.compile(r"^//!include\s+(\S+)\s*$", re.M)
_GENERATED = re.compile(r"^//!generated\s+(\S+)\s*$", re.M)
GENERATED: dict[str, Callable[[], str]] = {"layout": layout.wgsl}  # `//!generated NAME` -> its text


def shader_text(name: str) -> str:
    """A shader file: package data `feagi_burst/shaders` when installed, else `<repo>/shaders`;
    an absolute path (a user's neuron model) is read as it is."""
    if Path(name).is_absolute():
        try:
            return Path(name).read_text(encoding="utf-8")
        except OSError as e:
            raise BackendError(f"shader {name} cannot be read: {e.strerror or e}") from e
    try:
        res = importlib.resources.files("feagi_burst.shaders").joinpath(name)
        if res.is_file():
            return res.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    path = Path(__file__).resolve().parents[3] / "shaders" / name
    try:
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise BackendError(f"shader {name} not found (package data feagi_burst/shaders or {path})") from e


def load_shader(name: str, includes: Mapping[str, str] | None = None) -> str:
    """Shader source with `//!include other.wgsl` lines replaced by the file (each once).

    `includes` maps placeholder names to files: `//!include MODEL` with `{"MODEL": "lif.wgsl"}`
    pastes lif.wgsl there. `//!generated NAME` lines get the generated text (GENERATED).
    """
    includes = dict(includes or {})
    seen: set[str] = set()

    def expand(text: str, where: str) -> str:
        def sub(m: re.Match[str]) -> str:
            inc = includes.get(m.group(1), m.group(1))
            if not inc.endswith(".wgsl") and not Path(inc).is_absolute():
                raise BackendError(f"shader {where} includes {inc!r}, a placeholder no file was given for")
            if inc in seen:
                return ""
            seen.add(inc)
            return expand(_generate(shader_text(inc), inc), inc)
        return _INCLUDE.sub(sub, text)

    return expand(_generate(shader_text(name), name), name)


def _generate(text: str, where: str) -> str:
    def sub(m: re.Match[str]) -> str:
        what = m.group(1)
        if what not in GENERATED:
            raise BackendError(f"shader {where}: unknown `//!generated {what}` (known: {', '.join(GENERATED)})")
        return GENERATED[what]().rstrip("\n")
    return _GENERATED.sub(sub, text)
