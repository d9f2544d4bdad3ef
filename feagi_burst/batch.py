"""Many brains as one: a batch of brains merged into one Brain and one SynapseTables for the GPU.

Each brain keeps its own id space (its ids shifted by its first id: brains never reach each
other's neurons), its neuron models and parameters, its fixed-point scale and excitability seed
(the brain words at the end of each parameter row: backends/wgpu/params.py) and its stimulation.
One burst of the batch is one burst of every brain in one chain of dispatches, and each brain's
spikes are bit-identical to running it alone: its synaptic sums are integers (order-free), its
draws use its own ids and seed, its inputs are its own.

What a batch cannot hold (`not_batchable`): plastic pairs (STDP lowers one device-wide scale as
weights grow) and a synthetic Drive (applied by the device from one order); such brains run alone.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from feagi_burst.backends.base import BurstInput, BurstResult
from feagi_burst.backends.wgpu.params import BRAIN_WORDS, SEED_MULT
from feagi_burst.brain import Brain, NeuronArray, SynapseArray
from feagi_burst.fixed_point import SynapseTables
from feagi_burst.models import DEFAULT_MODEL, get_model
from feagi_burst.models.base import NeuronPopulation, merge_ranges
from feagi_burst.stimulus import StimulusPlan

MAX_AREAS = 1 << 16  # NeuronArray.cortical_area is u16


def not_batchable(brain: Brain) -> str | None:
    """Why `brain` must run alone on the GPU, or None when it can join a batch."""
    if brain.plasticity:
        return "it has plastic pairs (STDP rescales one device-wide word as weights grow)"
    if brain.drive is not None:
        return "it has a synthetic Drive"
    return None


@dataclass
class BrainBatch:
    """Brains merged for one GPU: `brain` and `tables` hold them all, brain i's neurons at
    [first[i], first[i+1]) and its areas at [first_area[i], first_area[i+1])."""

    brains: list[Brain]
    seeds: list[int]
    first: np.ndarray  # int64 [B+1]
    first_area: np.ndarray  # int64 [B+1]
    brain: Brain
    tables: SynapseTables
    brain_rows: np.ndarray  # u32 [areas, BRAIN_WORDS]: what GPUBackend.load takes as brain_rows
    power: np.ndarray  # u32: the power neuron of every brain that has one (merged ids)

    def __len__(self) -> int:
        return len(self.brains)

    def brain_of(self, ids: np.ndarray) -> np.ndarray:
        """The index of the brain each merged neuron id belongs to."""
        return np.searchsorted(self.first, np.asarray(ids, np.int64), side="right") - 1

    def split(self, r: BurstResult) -> list[BurstResult]:
        """One merged burst result as one result per brain, in each brain's own ids."""
        cut = np.searchsorted(r.fired, self.first)  # fire sets are sorted by id
        return [BurstResult(r.burst, (r.fired[a:b] - self.first[i]).astype(np.uint32), r.mp[a:b], {},
                            candidates=0) for i, (a, b) in enumerate(zip(cut[:-1], cut[1:]))]


def merge_brains(brains: list[Brain], tables: list[SynapseTables], seeds: list[int]) -> BrainBatch:
    """One Brain and SynapseTables holding every brain of `brains` (each with its tables and seed)."""
    for b in brains:
        why = not_batchable(b)
        if why:
            raise ValueError(f"{b.name} cannot join a batch: {why}")
    sizes = np.array([b.neuron_count for b in brains], np.int64)
    n_areas = np.array([len(b.areas) for b in brains], np.int64)
    first = np.concatenate([[0], np.cumsum(sizes)])
    first_area = np.concatenate([[0], np.cumsum(n_areas)])
    if first_area[-1] > MAX_AREAS:
        raise ValueError(f"a batch holds at most {MAX_AREAS:,} areas, these brains have {first_area[-1]:,}")

    areas = [replace(a, index=a.index + int(first_area[i]), first_neuron=a.first_neuron + int(first[i]))
             for i, b in enumerate(brains) for a in b.areas]
    names = list(dict.fromkeys(k for b in brains for k in b.neurons.params))
    lif = get_model(DEFAULT_MODEL)  # the genome's parameters (NeuronArray.params) are FEAGI LIF's

    def param(b: Brain, name: str) -> np.ndarray:
        return b.neurons.params[name] if name in b.neurons.params else lif.defaults(b.neuron_count)[name]

    # u16 throughout (no int64 copy of every id): first_area[-1] <= MAX_AREAS keeps each sum in range
    neurons = NeuronArray(
        cortical_area=np.concatenate([np.asarray(b.neurons.cortical_area, np.uint16) + np.uint16(first_area[i])
                                      for i, b in enumerate(brains)]),
        x=np.concatenate([b.neurons.x for b in brains]), y=np.concatenate([b.neurons.y for b in brains]),
        z=np.concatenate([b.neurons.z for b in brains]),
        params={k: np.concatenate([param(b, k) for b in brains]) for k in names})
    synapses = SynapseArray(
        source=np.concatenate([b.synapses.source + np.uint32(first[i]) for i, b in enumerate(brains)]),
        target=np.concatenate([b.synapses.target + np.uint32(first[i]) for i, b in enumerate(brains)]),
        weight=np.concatenate([b.synapses.weight for b in brains]),
        inhibitory=np.concatenate([b.synapses.inhibitory for b in brains]))

    # one population per model present, over every brain's areas that run it
    models = list(dict.fromkeys(p.model.name for b in brains for p in b.populations))
    populations = []
    for name in models:
        model = next(p.model for b in brains for p in b.populations if p.model.name == name)
        areas_of: list[int] = []
        ranges: list[tuple[int, int]] = []
        params: dict[str, list[np.ndarray]] = {p.name: [] for p in model.params}
        pops = [next((p for p in b.populations if p.model.name == name), None) for b in brains]
        for i, (b, pop) in enumerate(zip(brains, pops)):
            own = pop.params if pop is not None else model.defaults(b.neuron_count)
            for k in params:
                params[k].append(np.asarray(own[k]))
            if pop is not None:
                areas_of += [a + int(first_area[i]) for a in pop.areas]
                ranges += [(lo + int(first[i]), hi + int(first[i])) for lo, hi in pop.ranges]
        populations.append(NeuronPopulation(model, tuple(areas_of), {k: _joined(k, v, brains, pops, neurons.params)
                                                                     for k, v in params.items()},
                                            merge_ranges(ranges)))

    merged = Brain(name=f"a batch of {len(brains)} brains", areas=areas, neurons=neurons, synapses=synapses,
                   power_neuron=None, drive=None, populations=populations,
                   fingerprint="batch:" + ",".join(b.fingerprint for b in brains))
    syn_first = np.concatenate([[0], np.cumsum([t.pairs.size for t in tables])])
    merged_tables = SynapseTables(
        scale_exp=min(t.scale_exp for t in tables),  # unused: every brain's rows carry its own scale
        offsets=np.concatenate([t.offsets[:-1] + syn_first[i] for i, t in enumerate(tables)] + [syn_first[-1:]]),
        # (target u32 | contribution i32 << 32): adding the first id moves the target, never carries
        pairs=np.concatenate([t.pairs + np.int64(first[i]) for i, t in enumerate(tables)]),
        mp_driven_area=np.concatenate([t.mp_driven_area for t in tables]),
        mp_cap=np.concatenate([t.mp_cap for t in tables]),
        max_fan_in=max((t.max_fan_in for t in tables), default=0),
        fan_in=np.concatenate([t.fan_in for t in tables]) if all(t.fan_in is not None for t in tables) else None)

    rows = np.zeros((int(first_area[-1]), BRAIN_WORDS), np.uint32)
    for i, (t, seed) in enumerate(zip(tables, seeds)):
        span = slice(int(first_area[i]), int(first_area[i + 1]))
        rows[span, 0] = first[i]
        rows[span, 1] = (int(seed) * SEED_MULT) & 0xFFFFFFFF
        rows[span, 2] = np.float32(t.resolution).view(np.uint32)
    power = np.array([b.power_neuron + first[i] for i, b in enumerate(brains) if b.power_neuron is not None],
                     np.uint32)
    return BrainBatch(list(brains), [int(s) for s in seeds], first, first_area, merged, merged_tables, rows, power)


def _joined(name: str, parts: list[np.ndarray], brains: list[Brain], pops: list[NeuronPopulation | None],
            merged: dict[str, np.ndarray]) -> np.ndarray:
    """A merged population's parameter `name`: the merged genome array itself when every brain's
    population holds that very array (FEAGI LIF's parameters are the genome's, shared by the
    brain), as in a brain alone; else the parts joined. Sharing it saves a copy of a parameter
    per neuron of the batch (memory, and the time to touch it)."""
    shared = [b.neurons.params.get(name) for b in brains]
    if name in merged and all(p is not None and a is not None and p.params.get(name) is a
                              for a, p in zip(shared, pops)):
        return merged[name]
    return np.concatenate(parts)


@dataclass
class StimulusGroup:
    """One stimulation plan shared by brains of the same geometry: each burst is resolved once
    and repeated at each brain's first id."""

    plan: StimulusPlan
    first: np.ndarray  # int64: the first id of every brain it stimulates


def batch_input(burst: int, groups: list[StimulusGroup], power: np.ndarray) -> BurstInput:
    """The merged BurstInput of burst `burst`: every group's stimulation, and the power neurons'
    +1.0 after any external potential of theirs (the order a brain alone applies them in)."""
    pids: list[np.ndarray] = []
    pots: list[np.ndarray] = []
    fids: list[np.ndarray] = []
    fmps: list[np.ndarray] = []
    for g in groups:
        inp = g.plan.pop(burst)
        if inp.potential_ids.size:
            pids.append((inp.potential_ids.astype(np.int64)[None, :] + g.first[:, None]).reshape(-1))
            pots.append(np.tile(inp.potential, g.first.size))
        if inp.forced_ids.size:
            fids.append((inp.forced_ids.astype(np.int64)[None, :] + g.first[:, None]).reshape(-1))
            fmps.append(np.tile(inp.forced_mp, g.first.size))
    out = BurstInput(burst)
    if pids:
        ids = np.concatenate(pids + [power.astype(np.int64)])
        vals = np.concatenate(pots + [np.ones(power.size, np.float32)])
        uniq, inv = np.unique(ids, return_inverse=True)
        acc = np.zeros(uniq.size, np.float32)
        np.add.at(acc, inv, vals)  # in list order: a power neuron's external potential, then its +1.0
        out.potential_ids, out.potential = uniq.astype(np.uint32), acc
    elif power.size:
        out.potential_ids, out.potential = power, np.ones(power.size, np.float32)
    if fids:
        out.forced_ids = np.concatenate(fids).astype(np.uint32)
        out.forced_mp = np.concatenate(fmps).astype(np.float32)
    return out
