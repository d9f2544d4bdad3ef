"""Spike records (SPEC.md section 4): `.jsonl` for small runs, `.npz` for large ones.

Both are written to a temporary file beside the target and renamed into place when the run ends,
so an interrupted or failed run never leaves a half-written record under the requested name.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np

from feagi_burst.backends.base import BurstResult
from feagi_burst.brain import Brain
from feagi_burst.errors import InputError

FORMATS = (".jsonl", ".npz")


class SpikeRecorder:
    """Base: a temporary file that becomes the record on `close`, or disappears on `abort`."""

    def __init__(self, path: str | Path, brain: Brain, force: bool = False) -> None:
        self.path = Path(path)
        self.brain = brain
        if self.path.exists() and not force:
            raise InputError(f"{self.path} already exists; choose another --record path or pass --force")
        if not self.path.parent.is_dir():
            raise InputError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        self.tmp = Path(tmp)
        self.file: IO[Any] = os.fdopen(fd, "wb")
        self.spikes = 0

    def add(self, r: BurstResult) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Write whatever the format keeps until the end."""

    def close(self) -> None:
        """Complete the record and move it into place."""
        self._finish()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        """Drop the temporary file (the run failed before producing a record)."""
        self.file.close()
        self.tmp.unlink(missing_ok=True)


class JsonlRecorder(SpikeRecorder):
    """One JSON line per burst with at least one spike: {"burst", "fired": [[id, area, x, y, z, mp]]}."""

    def add(self, r: BurstResult) -> None:
        if r.fired.size == 0:
            return
        n = self.brain.neurons
        ids = r.fired.astype(np.int64)
        area_ids = [a.cortical_id for a in self.brain.areas]
        fired = [[i, area_ids[a], x, y, z, m] for i, a, x, y, z, m in
                 zip(ids.tolist(), n.cortical_area[ids].tolist(), n.x[ids].tolist(), n.y[ids].tolist(),
                     n.z[ids].tolist(), r.mp.astype(np.float64).tolist())]
        self.file.write((json.dumps({"burst": r.burst, "fired": fired}, separators=(",", ":")) + "\n").encode())
        self.spikes += len(fired)


class NpzRecorder(SpikeRecorder):
    """Arrays burst, neuron, mp (one entry per spike) plus the per-neuron area/x/y/z tables."""

    def __init__(self, path: str | Path, brain: Brain, force: bool = False) -> None:
        super().__init__(path, brain, force)
        self.chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, r: BurstResult) -> None:
        if r.fired.size:
            self.chunks.append((np.full(r.fired.size, r.burst, np.uint32), r.fired.astype(np.uint32),
                                r.mp.astype(np.float32)))
            self.spikes += int(r.fired.size)

    def _finish(self) -> None:
        parts = list(zip(*self.chunks)) if self.chunks else [[np.zeros(0, np.uint32)], [np.zeros(0, np.uint32)],
                                                             [np.zeros(0, np.float32)]]
        n = self.brain.neurons
        np.savez(self.file, burst=np.concatenate(parts[0]), neuron=np.concatenate(parts[1]),
                 mp=np.concatenate(parts[2]), area=n.cortical_area, x=n.x, y=n.y, z=n.z,
                 area_ids=np.array([a.cortical_id for a in self.brain.areas]),
                 area_names=np.array([a.name for a in self.brain.areas]))


def open_recorder(path: str | Path, brain: Brain, force: bool = False) -> SpikeRecorder:
    """A recorder for `path`, chosen by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".jsonl":
        return JsonlRecorder(path, brain, force)
    if suffix == ".npz":
        return NpzRecorder(path, brain, force)
    raise InputError(f"--record {path}: unknown format {suffix or '(none)'}; use a .jsonl or .npz file")


def read_record(path: str | Path) -> dict[int, list[tuple[int, float]]]:
    """burst -> [(neuron id, mp), ...] from either format (for tests, plots and comparisons)."""
    p = Path(path)
    out: dict[int, list[tuple[int, float]]] = {}
    if p.suffix == ".npz":
        with np.load(p) as z:
            for b, i, m in zip(z["burst"].tolist(), z["neuron"].tolist(), z["mp"].tolist()):
                out.setdefault(b, []).append((i, m))
        return out
    for line in p.read_text().splitlines():
        rec = json.loads(line)
        out[rec["burst"]] = [(f[0], f[5]) for f in rec["fired"]]
    return out
