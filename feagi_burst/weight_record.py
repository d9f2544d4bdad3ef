"""Weight records: the weights of a brain's plastic pairs every N bursts, to watch it learn.

`feagi-burst run --record-weights PATH.npz [--record-weights-every N]` writes one `.npz` file
(np.load reads it, no pickle), written atomically (a temporary file renamed into place) at the
end of the run, at each checkpoint and when the run is stopped, so the file on disk is always
whole:

- `meta`: JSON (u1 bytes): `format` ("feagi-burst weights 1"), `genome` (title), `fingerprint`,
  `every` (N), `pairs`: one object per plastic pair: `name` ("src>dst", cortical ids as in the
  genome), `src`, `dst`, `src_name`, `dst_name`, `window`, `dp`, `dm`, `synapses`;
- `bursts`: int64 [T], the burst after whose STDP update each snapshot was taken (the first is the
  burst the run started from: 0, or the resumed checkpoint's);
- per pair p (its index in `pairs`): `weights_p` f32 [T, k] (the pair's k synapses in synapse
  table order), `source_xyz_p` and `target_xyz_p` u16 [k, 3] (voxel coordinates of each synapse's
  source and target neuron in their areas), `inhibitory_p` bool [k].

`read_weights(path)` returns it as a `WeightRecord`; `feagi-burst plot --weights PATH --pair SRC>DST`
draws a pair's weights over time (feagi_burst.plot.plot_weights).
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.errors import InputError
from feagi_burst.files import WriteError, atomic_write

FORMAT = "feagi-burst weights 1"


class WeightRecorder:
    """Snapshots of an engine's plastic weights, kept in memory and written atomically by `write`."""

    def __init__(self, engine: Any, path: str | Path, every: int) -> None:
        from feagi_burst.plasticity import pair_synapses, plastic_layout

        layout = plastic_layout(engine.brain, engine.tables)
        if layout is None:
            raise InputError(f"--record-weights {path}: {engine.brain.name!r} has no plastic synapses (no mapping "
                             "rule with plasticity on and a plasticity_window >= 1): there are no weights to record")
        if every < 1:
            raise InputError(f"--record-weights-every {every}: record every 1 or more bursts")
        self.engine, self.path, self.every = engine, Path(path), int(every)
        brain = engine.brain
        self.pairs: list[dict[str, Any]] = []
        self.static: dict[str, np.ndarray] = {}
        for p, name in enumerate(layout.pair_names):
            a, b = (brain.areas[int(i)] for i in layout.pair_areas[p])
            syn = pair_synapses(brain, engine.tables, None, a.cortical_id, b.cortical_id)
            self.pairs.append({"name": name, "src": a.cortical_id, "dst": b.cortical_id, "src_name": a.name,
                               "dst_name": b.name, "window": int(layout.window[p]), "dp": float(layout.dp[p]),
                               "dm": float(layout.dm[p]), "synapses": len(syn)})
            self.static[f"source_xyz_{p}"] = syn.source_xyz.astype(np.uint16)
            self.static[f"target_xyz_{p}"] = syn.target_xyz.astype(np.uint16)
            self.static[f"inhibitory_{p}"] = syn.inhibitory
        self.bursts: list[int] = []
        self.snaps: list[list[np.ndarray]] = [[] for _ in self.pairs]
        self.meta = {"format": FORMAT, "genome": brain.name, "fingerprint": brain.fingerprint, "every": self.every,
                     "pairs": self.pairs}

    @property
    def bytes_per_snapshot(self) -> int:
        return 4 * sum(p["synapses"] for p in self.pairs)

    def due(self, burst: int) -> bool:
        return burst % self.every == 0

    def snapshot(self) -> None:
        """Take the weights as they are after the engine's last burst (once per burst)."""
        b = int(self.engine.submitted)
        if self.bursts and self.bursts[-1] == b:
            return
        w = self.engine.weights()
        for p, meta in enumerate(self.pairs):
            self.snaps[p].append(w[meta["name"]])
        self.bursts.append(b)

    def write(self) -> None:
        """Write every snapshot so far to the file, atomically."""
        arrays: dict[str, np.ndarray] = {"meta": np.frombuffer(json.dumps(self.meta).encode(), np.uint8),
                                         "bursts": np.array(self.bursts, np.int64), **self.static}
        for p, meta in enumerate(self.pairs):
            arrays[f"weights_{p}"] = (np.stack(self.snaps[p]) if self.snaps[p]
                                      else np.zeros((0, meta["synapses"]), np.float32))
        try:
            with atomic_write(self.path, "wb") as f:
                np.savez(f, **arrays)
        except WriteError as e:
            raise InputError(str(e)) from None


@dataclass
class WeightRecord:
    """A weight record read back: `meta`, `bursts`, and per pair its weights and coordinates."""

    meta: dict[str, Any]
    bursts: np.ndarray
    weights: list[np.ndarray]
    source_xyz: list[np.ndarray]
    target_xyz: list[np.ndarray]
    inhibitory: list[np.ndarray]

    @property
    def pair_names(self) -> list[str]:
        return [p["name"] for p in self.meta["pairs"]]

    def find(self, pair: str) -> int:
        """The index of a pair given as "SRC>DST", each side a cortical id or an area name."""
        src, sep, dst = pair.partition(">")
        if not sep:
            raise InputError(f"--pair {pair!r}: write it as SRC>DST (cortical ids or area names), e.g. "
                             f"{self.pair_names[0]!r}")
        for i, p in enumerate(self.meta["pairs"]):
            if src.strip() in (p["src"], p["src_name"]) and dst.strip() in (p["dst"], p["dst_name"]):
                return i
        raise InputError(f"--pair {pair!r} is not a plastic pair of this record; it has "
                         + ", ".join(self.pair_names[:12]) + (", ..." if len(self.pair_names) > 12 else ""))


def read_weights(path: str | Path) -> WeightRecord:
    """Read a weight record; anything missing or damaged is an InputError naming the file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"weight record {p} does not exist" if not p.exists() else f"weight record {p} is not a file")
    try:
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT!r} file")
            n = len(meta["pairs"])
            rec = WeightRecord(meta, z["bursts"].astype(np.int64), [z[f"weights_{i}"] for i in range(n)],
                               [z[f"source_xyz_{i}"] for i in range(n)], [z[f"target_xyz_{i}"] for i in range(n)],
                               [z[f"inhibitory_{i}"] for i in range(n)])
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, zipfile.BadZipFile, EOFError) as e:
        raise InputError(f"weight record {p} is damaged or not a feagi-burst weight record ({e})") from None
    for w in rec.weights:
        if w.ndim != 2 or w.shape[0] != rec.bursts.size:
            raise InputError(f"weight record {p} is damaged (a pair's weights do not match its bursts)")
    return rec
