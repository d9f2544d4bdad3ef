"""The same burst under PyTorch on CUDA, for the README's same-run comparison (device only).

Not part of feagi-burst: a peer measurement. It builds feagi-burst's synthetic brain (1M neurons,
100 synapses each, 1% driven), then times a burst written the way a PyTorch user would: the
synaptic events of the burst's fire set scatter-added into a dense input vector (index_add_),
then a dense threshold-and-reset update; eager, and replayed under a CUDA graph (the fire set's
synapse indices precomputed, no readback). FEAGI's rules (refractory, consecutive fires, leak,
excitability, exact fixed-point sums) are not in it. Prints one JSON line.

    python3 examples/torch_peer.py [--neurons 1000000] [--bursts 2000]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from feagi_burst.fixed_point import compile_tables
from feagi_burst.synthetic import synthetic_brain


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--synapses-per-neuron", type=int, default=100)
    ap.add_argument("--bursts", type=int, default=2000)
    a = ap.parse_args()
    brain = synthetic_brain(a.neurons, a.synapses_per_neuron, 0.01, 0)
    tables = compile_tables(brain)
    dev = torch.device("cuda")
    n = brain.neuron_count
    fired = np.sort(brain.drive.neurons(1).astype(np.int64))  # one burst's fire set (1%)
    starts, ends = tables.offsets[fired], tables.offsets[fired + 1]
    idx = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
    tgt = torch.tensor(tables.target[idx].astype(np.int64), device=dev)
    val = torch.tensor(tables.contribution[idx].astype(np.float32) * np.float32(tables.resolution), device=dev)
    thr = torch.ones(n, device=dev)
    mp = torch.zeros(n, device=dev)
    acc = torch.zeros(n, device=dev)

    def burst() -> None:
        acc.zero_()
        acc.index_add_(0, tgt, val)
        mp.add_(acc)
        spikes = mp >= thr
        mp.masked_fill_(spikes, 0.0)

    out = {"neurons": n, "synapses": int(tables.pairs.size), "events_per_burst": int(idx.size),
           "device": torch.cuda.get_device_name(0)}
    for _ in range(50):
        burst()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.bursts):
        burst()
    torch.cuda.synchronize()
    out["eager_us"] = (time.perf_counter() - t0) / a.bursts * 1e6
    g = torch.cuda.CUDAGraph()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        burst()
    torch.cuda.current_stream().wait_stream(s)
    with torch.cuda.graph(g):
        burst()
    for _ in range(50):
        g.replay()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(a.bursts):
        g.replay()
    torch.cuda.synchronize()
    out["cuda_graph_us"] = (time.perf_counter() - t0) / a.bursts * 1e6
    print(json.dumps(out))


if __name__ == "__main__":
    main()
