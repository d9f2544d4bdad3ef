"""The GPU's synapse hash table: source neuron -> (start, count, extra) of its synapses, built on the host.

`build_synapse_hash` builds it (numpy, one vectorised pass per probe round), `lookup_synapse_hash`
probes it exactly as propagation.wgsl does (for tests), and `hash_slot` is the home slot of both.
The multiplier and the empty key come from layout.py, which the shaders share.
"""
from __future__ import annotations

import numpy as np

from feagi_burst.backends.wgpu.layout import HASH_MULT, NONE


def hash_slot(ids: np.ndarray, shift: int) -> np.ndarray:
    """Home slot of each id: multiplicative (Fibonacci) hash, top bits; as in propagation.wgsl."""
    h = (np.asarray(ids, np.uint64) * np.uint64(HASH_MULT)) & np.uint64(0xFFFFFFFF)
    return (h >> np.uint64(shift)).astype(np.int64)


def build_synapse_hash(offsets: np.ndarray, extra: np.ndarray | None = None,
                       min_capacity: int = 16) -> tuple[np.ndarray, int]:
    """Hash table source neuron -> (start, count) of its synapses in the flat list.

    Returns (table, max_probe): table is u32 [capacity, 4] rows (key, start, count, extra[key])
    with key 0xFFFFFFFF for empty slots; capacity is a power of two, at least twice the number of
    neurons that have synapses. Linear probing, built with one vectorised pass per probe round;
    max_probe is the longest distance of a key from its home slot, the bound the shader probes.
    """
    offsets = np.asarray(offsets, np.int64)
    counts = np.diff(offsets)
    keys = np.flatnonzero(counts > 0)
    if offsets.size and int(offsets[-1]) >= 2**32:
        raise ValueError(f"{int(offsets[-1]):,} synapses: the GPU table indexes at most 2^32 - 1")
    if keys.size and int(keys[-1]) >= NONE:
        raise ValueError("neuron ids must stay below 2^32 - 1")
    cap = max(int(min_capacity), 2)
    while cap < 2 * keys.size:
        cap *= 2
    bits = cap.bit_length() - 1
    shift = 32 - bits
    table = np.full((cap, 4), NONE, np.uint32)
    table[:, 1:] = 0
    slot_key = table[:, 0]  # view
    home = hash_slot(keys, shift)
    pending = np.arange(keys.size)
    max_probe = 0
    probe = 0
    while pending.size:
        pos = (home[pending] + probe) & (cap - 1)
        free = slot_key[pos] == NONE
        cand, cpos = pending[free], pos[free]
        slot_key[cpos] = keys[cand]  # several keys may want one slot: the last write wins...
        won = slot_key[cpos] == keys[cand]  # ...and the others probe on
        if won.any():
            max_probe = probe
        pending = np.concatenate([pending[~free], cand[~won]])
        pending.sort()  # deterministic order whatever the round
        probe += 1
        if probe > cap:
            raise RuntimeError("hash table build did not converge")  # cannot happen at half load
    table[:, 0] = slot_key
    placed = slot_key != NONE
    k = slot_key[placed].astype(np.int64)
    table[placed, 1] = offsets[k].astype(np.uint32)
    table[placed, 2] = counts[k].astype(np.uint32)
    table[placed, 3] = extra[k].astype(np.uint32) if extra is not None else 0
    return table, max_probe


def lookup_synapse_hash(table: np.ndarray, max_probe: int, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(start, count) of each id, probing exactly as the shader does (numpy; for tests)."""
    ids = np.asarray(ids, np.int64)
    cap = table.shape[0]
    home = hash_slot(ids, 32 - (cap.bit_length() - 1))
    start = np.zeros(ids.size, np.int64)
    count = np.zeros(ids.size, np.int64)
    open_ = np.ones(ids.size, bool)
    for d in range(max_probe + 1):
        row = table[(home + d) & (cap - 1)]
        hit = open_ & (row[:, 0] == ids)
        start[hit], count[hit] = row[hit, 1], row[hit, 2]
        open_ &= ~hit & (row[:, 0] != NONE)
    return start, count

