"""README.md is true: every command and code block in it runs as written, from a fresh clone.

The README's fenced blocks are taken in order: each line of a ```sh block (continuation lines
joined) is run with bash in one temporary copy of the repository's tracked files (what a clone
holds; state carries over from one command to the next, as for a reader following along), each
```python block is run there with the installed package, and each ```toml block must parse (the
`[[stimulus]]` example must also resolve against the pong genome it names).

Skipped, with the reason shown: `make test` (the whole suite, this file included), commands that
need a hardware GPU when there is none, commands that start or join a Ray cluster. Commands that
take long (populations) are marked `soak`; run every block, in order, with
`pytest -m 'soak or not soak' tests/test_readme.py` (later blocks use what earlier ones made, such
as out/). The rest keeps this file near a minute. A synopsis that cannot run as written (a
placeholder such as `my_genome.json`) belongs in a ```text block, which is not run.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
TIMEOUT = 300
SLOW = ("population",)  # commands and blocks that take long: marked soak


@dataclass
class Block:
    kind: str  # sh, python, toml
    text: str
    line: int  # where it starts in README.md

    @property
    def id(self) -> str:
        first = self.text.strip().splitlines()[0] if self.text.strip() else ""
        return f"L{self.line}-{self.kind}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', first)[:50]}"


def blocks() -> list[Block]:
    """The fenced code blocks of README.md, in order."""
    out = []
    lines = README.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if m:
            start, kind = i + 1, m.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            out.append(Block(kind, "\n".join(lines[start:j]) + "\n", start + 1))
            i = j + 1
        else:
            i += 1
    return out


def commands(block: Block) -> list[Block]:
    """Each command of an sh block (`\\` continuations joined, comments dropped)."""
    out = []
    pending = ""
    start = block.line
    for k, raw in enumerate(block.text.splitlines()):
        line = raw.rstrip()
        if not pending:
            start = block.line + k
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        cmd = (pending + line).strip()
        pending = ""
        cmd = re.sub(r"\s+#.*$", "", cmd) if not cmd.startswith("#") else ""
        if cmd:
            out.append(Block("sh", cmd, start))
    return out


def has_hardware_gpu() -> tuple[bool, str]:
    try:
        from feagi_burst.backends import probe_adapters

        adapters = probe_adapters()
    except Exception as e:  # no wgpu, no driver
        return False, f"no GPU adapter ({e.__class__.__name__}: {e})"
    hardware = [a for a in adapters if not a.get("is_software")]
    if hardware:
        return True, ""
    names = ", ".join(a.get("name", "?") for a in adapters) or "none"
    return False, f"no hardware GPU adapter (found: {names})"


def skip_reason(cmd: str) -> str | None:
    if re.match(r"^make\s+(test|soak|bench|clean)\b", cmd):
        return f"`{cmd}` runs the test suite or a long job (this file is part of `make test`)"
    if cmd.startswith("ray ") or re.search(r"--ray\b", cmd):
        try:
            import ray  # noqa: F401
        except ImportError:
            return "needs Ray (pip install 'feagi-burst[cluster]'), which is not installed here"
        return "starts or joins a Ray cluster (all cores, minutes); tests/test_population*.py cover Ray"
    if re.search(r"--backend\s+gpu\b|--gpu\b", cmd):
        ok, why = has_hardware_gpu()
        if not ok:
            return why
    return None


def items() -> list[Any]:
    out = []
    for b in blocks():
        parts = commands(b) if b.kind == "sh" else [b] if b.kind in ("python", "toml") else []
        for part in parts:
            marks = [pytest.mark.soak] if any(word in part.text for word in SLOW) else []
            out.append(pytest.param(part, id=part.id, marks=marks))
    return out


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's tracked files, as a clone has them (build outputs, out/ and .venv left out)."""
    dst = tmp_path_factory.mktemp("clone")
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        names = [n for n in listed.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an sdist): copy the tree
        skip = {".git", ".venv", "out", ".pytest_cache", ".hypothesis", "__pycache__"}
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file()
                 and not skip & set(p.relative_to(ROOT).parts)]
    for name in names:
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


def env() -> dict[str, str]:
    return dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", COLUMNS="120",
                FEAGI_BURST_ALLOW_NO_GPU="1")


def test_the_readme_has_commands_and_code() -> None:
    found = blocks()
    assert sum(b.kind == "python" for b in found) >= 1
    assert sum(1 for b in found if b.kind == "sh" for c in commands(b) if c.text.startswith("feagi-burst")) >= 5


@pytest.mark.parametrize("block", items())
def test_readme_block_runs_as_written(clone: Path, block: Block) -> None:
    where = f"README.md line {block.line}"
    if block.kind == "toml":
        try:
            data = tomllib.loads(block.text)
        except tomllib.TOMLDecodeError as e:
            pytest.fail(f"{where}: the TOML example does not parse: {e}")
        if "stimulus" in data and set(data) == {"stimulus"}:
            from feagi_burst.engine import Engine

            with Engine.from_genome(ROOT / "examples" / "pong_genome.json", backend="cpu", warn=None) as engine:
                engine.add_schedule(data["stimulus"])
        return
    if block.kind == "python":
        script = clone / f"readme_block_{block.line}.py"
        script.write_text(block.text)
        # -P: the package under test is the installed one, not a copy beside the script
        p = subprocess.run([sys.executable, "-P", str(script)], cwd=clone, capture_output=True, text=True,
                           env=env(), timeout=TIMEOUT)
        script.unlink()
        assert p.returncode == 0, f"{where}: the Python block fails:\n{p.stderr[-3000:]}"
        return
    cmd = block.text
    reason = skip_reason(cmd)
    if reason:
        pytest.skip(f"{where}: {cmd!r}: {reason}")
    if re.match(r"^make\s+run\b", cmd):
        # the Makefile's own recipe, with the installed environment instead of building .venv
        # (-o: do not remake the install stamp)
        cmd = f"make run -o .venv/.installed BIN={BIN}"
    p = subprocess.run(["bash", "-c", cmd], cwd=clone, capture_output=True, text=True, env=env(), timeout=TIMEOUT)
    assert p.returncode == 0, f"{where}: `{block.text}` exits {p.returncode}:\n{p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr
