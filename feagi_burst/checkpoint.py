"""Checkpoints: the full dynamic state of a run, saved atomically, and resumed bit for bit.

A checkpoint is an `.npz` file (np.load reads it, no pickle) holding:

- `meta`: JSON (u1 bytes): format, burst, seed, the genome fingerprint (`Brain.fingerprint`), the
  run settings that change spikes (`config`) and their fingerprint, brain name and size, backend;
- `state:<model>.<variable>` (e.g. `state:feagi_lif.mp`): every state array of the NeuronState after
  burst `burst`, by name, as the neuron models declare them (meta `state` lists names and dtypes);
- `last_fired`, `last_mp`: the fire set of that burst (what the next burst propagates);
- for a brain with plastic pairs (STDP), `plastic:weights:<src>><dst>` and `plastic:committed:<src>><dst>`
  per pair and `plastic:stamps`, with meta `plastic` (feagi_burst.plasticity.state_arrays): the
  learned weights, by pair name;
- `plan_burst`, `plan_mode`, `plan_count`, `plan_neurons`, `plan_potential`: the staged input
  (every stimulation staged for a later burst, in staging order, so later bursts get bit-identical
  input: potentials sum in the same order, the latest forced fire wins as before).

It is written to a temporary file in the same folder, fsynced, then renamed over the previous one
(`feagi_burst.files.atomic_write`): a kill at any moment leaves the previous checkpoint intact.

The backend is not part of the fingerprint: both backends give identical spikes, so a run
checkpointed on the GPU may resume on the CPU and the other way round.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feagi_burst.brain import NeuronState
from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write
from feagi_burst.stimulus import StimulusPlan

FORMAT = "feagi-burst checkpoint 2"  # 2: state arrays by name (neuron models)
STATE_PREFIX = "state:"
MODES = ("fire", "potential")


def run_settings(seed: int, honour_snooze_i: bool = False, stimulus: Any = None) -> dict[str, Any]:
    """The run settings beside the genome that change the spikes (what a resume must match).

    `stimulus` is the schedule's entries (or None): they are hashed, so that resuming with an edited
    schedule is refused rather than silently giving a different run.
    """
    stim = None
    if stimulus is not None:
        canonical = json.dumps(stimulus, sort_keys=True, separators=(",", ":"), default=str)
        stim = hashlib.sha256(canonical.encode()).hexdigest()
    return {"seed": int(seed), "honour_snooze_i": bool(honour_snooze_i), "stimulus_sha256": stim}


def settings_fingerprint(settings: dict[str, Any]) -> str:
    """A stable hash of `run_settings`."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    meta: dict[str, Any]
    state: NeuronState
    last_fired: np.ndarray  # u32
    last_mp: np.ndarray  # f32
    plan: StimulusPlan
    plastic: dict[str, np.ndarray] | None = None  # the `plastic:` arrays (feagi_burst.plasticity.state_arrays)

    @property
    def burst(self) -> int:
        return int(self.meta["burst"])


def plan_arrays(plan: StimulusPlan) -> dict[str, np.ndarray]:
    """A StimulusPlan's staged input as flat arrays (staging order kept within each burst)."""
    items = [(b, m, np.asarray(n, np.int64), p) for b, entries in plan.by_burst.items() for m, n, p in entries]
    counts = np.array([n.size for _, _, n, _ in items], np.int64)
    return {
        "plan_burst": np.array([b for b, _, _, _ in items], np.int64),
        "plan_mode": np.array([MODES.index(m) for _, m, _, _ in items], np.uint8),
        "plan_count": counts,
        "plan_neurons": np.concatenate([n.reshape(-1) for _, _, n, _ in items]) if items else np.zeros(0, np.int64),
        # potentials are staged as float64 (scalars or arrays); broadcasting keeps every value exact
        "plan_potential": (np.concatenate([np.broadcast_to(np.asarray(p, np.float64), n.shape).reshape(-1)
                                           for _, _, n, p in items]) if items else np.zeros(0, np.float64)),
    }


def plan_from_arrays(z: Any) -> StimulusPlan:
    """The StimulusPlan that `plan_arrays` flattened."""
    plan = StimulusPlan()
    counts = z["plan_count"].astype(np.int64)
    ends = np.cumsum(counts)
    neurons, potential = z["plan_neurons"].astype(np.int64), z["plan_potential"].astype(np.float64)
    if ends.size and (ends[-1] != neurons.size or neurons.size != potential.size):
        raise ValueError("staged input arrays disagree in length")
    # one entry per staged item (a schedule entry at one burst), not per neuron
    for b, m, e, c in zip(z["plan_burst"].tolist(), z["plan_mode"].tolist(), ends.tolist(), counts.tolist()):
        plan.add(int(b), MODES[m], neurons[e - c:e], potential[e - c:e])
    return plan


def save_checkpoint(path: str | Path, meta: dict[str, Any], state: NeuronState, last_fired: np.ndarray,
                    last_mp: np.ndarray, plan: StimulusPlan,
                    plastic: tuple[dict[str, np.ndarray], dict[str, Any]] | None = None) -> None:
    """Write a checkpoint atomically (temporary file, fsync, rename); `plastic`: the STDP state's
    arrays and meta (feagi_burst.plasticity.state_arrays)."""
    meta = {"format": FORMAT, **meta, "burst": int(state.burst),
            "state": {k: str(v.dtype) for k, v in state.values.items()}}
    if plastic is not None:
        meta["plastic"] = plastic[1]
    arrays = {
        "meta": np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8),
        **{STATE_PREFIX + k: np.asarray(v) for k, v in state.values.items()},
        **({k: np.asarray(v) for k, v in plastic[0].items()} if plastic is not None else {}),
        "last_fired": np.asarray(last_fired, np.uint32),
        "last_mp": np.asarray(last_mp, np.float32),
        **plan_arrays(plan),
    }
    try:
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
    except OSError as e:
        raise InputError(f"cannot write checkpoint {path}: {e.strerror or e}; the previous one is unchanged") from None


def _shapes(p: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each array's shape and dtype from its .npy header, without reading (or inflating) its data."""
    out = {}
    with zipfile.ZipFile(p) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _fortran, dtype = read(f)
            out[info.filename[:-4]] = (tuple(shape), dtype)
    return out


def load_checkpoint(path: str | Path, state_vars: dict[str, np.dtype] | None = None,
                    neurons: int | None = None,
                    plastic: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None) -> Checkpoint:
    """Read a checkpoint; anything missing or damaged is an InputError naming the file.

    With `state_vars` (name -> dtype, `Brain.state_vars`) and `neurons`, every array's header is
    checked against them before any data is read: a crafted file cannot make us allocate more
    than the brain's own state. `plastic` (name -> shape, dtype: plasticity.expected_arrays) is what
    a brain with plastic pairs needs; its arrays are checked the same way and returned by name.
    """
    p = Path(path)
    if p.is_dir():
        raise InputError(f"checkpoint {p} is a directory; give the checkpoint file (.npz)")
    if not p.is_file():
        raise InputError(f"checkpoint {p} does not exist; check the --resume path")
    try:
        shapes = _shapes(p)
        if "meta" not in shapes or len(shapes["meta"][0]) != 1 or shapes["meta"][0][0] > 1 << 24:
            raise ValueError("no readable meta record")
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode())
            if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith("feagi-burst checkpoint"):
                raise ValueError(f"not a {FORMAT!r} file")
            if meta["format"] != FORMAT:
                raise InputError(f"checkpoint {p} is in an older format ({meta['format']!r}; this version reads "
                                 f"{FORMAT!r}, which stores every neuron model's state by name); start the run "
                                 "again without --resume")
            n = int(meta["neurons"])
            if neurons is not None and n != neurons:
                raise InputError(f"checkpoint {p} was made with another genome ({meta.get('brain')!r}, {n} neurons; "
                                 f"this brain has {neurons}); resume with the genome it was made with")
            names = [k[len(STATE_PREFIX):] for k in shapes if k.startswith(STATE_PREFIX)]
            if state_vars is not None and sorted(names) != sorted(state_vars):
                raise InputError(f"checkpoint {p} holds state {', '.join(sorted(names)) or 'none'}, this brain's "
                                 f"neuron models need {', '.join(sorted(state_vars))}; resume with the same "
                                 "genome and [[model]] settings")
            for k in names:
                shape, dtype = shapes[STATE_PREFIX + k]
                if shape != (n,) or (state_vars is not None and dtype != np.dtype(state_vars[k])):
                    raise ValueError(f"state array {k} is {dtype}{list(shape)}, expected {n} values")
            for key in ("last_fired", "last_mp"):
                if shapes.get(key, ((n + 1,), None))[0][0] > n:
                    raise ValueError(f"{key} holds more entries than the brain has neurons")
            state = NeuronState({k: z[STATE_PREFIX + k] for k in names}, int(meta["burst"]))
            fired, mp = z["last_fired"].astype(np.uint32), z["last_mp"].astype(np.float32)
            if fired.shape != mp.shape or (fired.size and int(fired.max()) >= n):
                raise ValueError("last fire set is inconsistent")
            plan_neurons, plan_burst = z["plan_neurons"], z["plan_burst"]
            if plan_neurons.size and (int(plan_neurons.min()) < 0 or int(plan_neurons.max()) >= n):
                raise ValueError("staged input names a neuron the brain does not have")
            if plan_burst.size and int(plan_burst.min()) <= int(meta["burst"]):
                raise ValueError("staged input for a burst that has already run")
            plan = plan_from_arrays(z)
            plastic_arrays = None
            if plastic:  # those present (Engine.restore refuses a checkpoint without them, after the genome check)
                for k, (shape, dtype) in plastic.items():
                    if k in shapes and shapes[k] != (shape, np.dtype(dtype)):
                        raise ValueError(f"{k} is {shapes[k][1]}{list(shapes[k][0])}, expected {np.dtype(dtype)}"
                                         f"{list(shape)}")
                plastic_arrays = {k: z[k] for k in plastic if k in shapes}
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, UnicodeDecodeError, zipfile.BadZipFile,
            EOFError, OverflowError, RecursionError) as e:
        raise InputError(f"checkpoint {p} is damaged or not a feagi-burst checkpoint ({e})") from None
    return Checkpoint(meta, state, fired, mp, plan, plastic_arrays)


def check_compatible(ck: Checkpoint, path: str | Path, genome_fingerprint: str, neurons: int,
                     settings: dict[str, Any] | None) -> None:
    """Refuse, in one line, a checkpoint made with another genome or other run settings."""
    m = ck.meta
    if m.get("genome_fingerprint") != genome_fingerprint or int(m.get("neurons", -1)) != neurons:
        raise InputError(f"checkpoint {path} was made with another genome ({m.get('brain')!r}, fingerprint "
                         f"{str(m.get('genome_fingerprint'))[:12]}, {m.get('neurons')} neurons; this one: "
                         f"{genome_fingerprint[:12]}, {neurons} neurons); resume with the genome it was made with")
    if settings is None:
        return
    saved = m.get("config", {})
    if m.get("config_fingerprint") != settings_fingerprint(settings):
        diff = [f"{k} {saved.get(k)!r} -> {settings.get(k)!r}" for k in sorted(set(saved) | set(settings))
                if saved.get(k) != settings.get(k)] or ["fingerprint differs"]
        raise InputError(f"checkpoint {path} was made with other run settings ({'; '.join(diff)}); "
                         "resume with the same seed, stimulus schedule and genome options")
