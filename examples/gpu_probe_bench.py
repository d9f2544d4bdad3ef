"""GPU backend probe benchmark: µs per burst on a synthetic brain, pipelined and blocking.

Default: 1M neurons x 100 synapses, 1% firing (feagi_burst.synthetic: a Drive of 10,000 neurons per
burst at potential 1.5 over threshold 1.0, weight 1, psp 1/K, 20% inhibitory, no accumulation).
Prints one JSON object per line (and writes them to $OUT/gpu_bench.jsonl when OUT is set):
build/load times, GPU memory, a GPU == CPU check of the first bursts, then for each path
(auto, fcl) the pipelined µs/burst (many bursts in flight, results collected as they finish),
the blocking µs/burst (process_burst each), and the per-phase GPU timestamps.

    PYTHONPATH=. python3 examples/gpu_probe_bench.py [--neurons 1000000] [--synapses 100]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

from feagi_burst.backends.base import PHASES, BurstInput
from feagi_burst.backends.cpu import CPUBackend
from feagi_burst.backends.gpu import GPUBackend
from feagi_burst.fixed_point import compile_tables
from feagi_burst.synthetic import synthetic_brain

LOG: list[dict[str, Any]] = []


def emit(**row: Any) -> None:
    LOG.append(row)
    print(json.dumps(row), flush=True)


def pipelined(gpu: GPUBackend, first: int, count: int) -> tuple[float, list[Any]]:
    """Submit `count` bursts back to back, collecting finished ones as they come; s per burst."""
    out: list[Any] = []
    t0 = time.perf_counter()
    for b in range(first, first + count):
        gpu.submit(BurstInput(b))
        if b % 8 == 0:
            out += gpu.collect(wait=False)
    out += gpu.collect(wait=True)
    dt = time.perf_counter() - t0
    assert [r.burst for r in out] == list(range(first, first + count))
    return dt / count, out


def blocking(gpu: GPUBackend, first: int, count: int) -> float:
    t0 = time.perf_counter()
    for b in range(first, first + count):
        gpu.process_burst(BurstInput(b))
    return (time.perf_counter() - t0) / count


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--synapses", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--check", type=int, default=20, help="bursts compared with the CPU backend")
    ap.add_argument("--pipelined", type=int, default=3000)
    ap.add_argument("--blocking", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    t = time.perf_counter()
    brain = synthetic_brain(args.neurons, args.synapses, args.rate, seed=0)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    tables = compile_tables(brain)
    t_tables = time.perf_counter() - t

    gpu = GPUBackend(batch=args.batch, timing="host")
    t = time.perf_counter()
    gpu.load(brain, tables)
    t_load = time.perf_counter() - t
    emit(event="setup", device=gpu.backend_name(), software=gpu.is_software, neurons=brain.neuron_count,
         synapses=brain.synapse_count, build_s=round(t_build, 3), tables_s=round(t_tables, 3),
         gpu_load_s=round(t_load, 3), gpu_memory_mib=round(gpu.gpu_memory() / 2**20, 1),
         synapse_chunks=len(gpu.chunks), hash_max_probe=gpu.max_probe, fire_slots=gpu.R, batch=gpu.batch,
         timestamps_supported=gpu.dev.timestamps)

    # exactness at full size: the first bursts, GPU (pipelined) vs CPU
    cpu = CPUBackend()
    cpu.load(brain, tables)
    _, got = pipelined(gpu, 1, args.check)
    bad = 0
    for r in got:
        c = cpu.process_burst(BurstInput(r.burst))
        same = np.array_equal(r.fired, c.fired) and np.array_equal(r.mp.view(np.uint32), c.mp.view(np.uint32))
        bad += not same
    st_g, st_c = gpu.state(), cpu.state()
    state_same = bool(np.array_equal(st_g.mp.view(np.uint32), st_c.mp.view(np.uint32))
                      and np.array_equal(st_g.cfc_count, st_c.cfc_count)
                      and np.array_equal(st_g.blocked_until, st_c.blocked_until))
    emit(event="exact", bursts=len(got), mismatched_bursts=bad, state_equal=state_same,
         fired_per_burst=float(np.mean([r.fired.size for r in got])),
         candidates_per_burst=float(np.mean([r.candidates for r in got])))
    del cpu

    burst = args.check + 1
    for path in ("auto", "fcl"):
        gpu.path = path
        pipelined(gpu, burst, 64)  # warm-up (pipelines, staging buffers, cap)
        burst += 64
        per, res = pipelined(gpu, burst, args.pipelined)
        burst += args.pipelined
        per_b = blocking(gpu, burst, args.blocking)
        burst += args.blocking
        emit(event="speed", path=path, pipelined_us=round(per * 1e6, 1), blocking_us=round(per_b * 1e6, 1),
             fired_per_burst=float(np.mean([r.fired.size for r in res])),
             candidates_per_burst=float(np.mean([r.candidates for r in res])))
    gpu.close()

    # per-phase GPU time from timestamp queries (a second backend: timestamps cost a little)
    ts = GPUBackend(batch=args.batch)
    if ts.use_ts:
        ts.load(brain, tables)
        for path in ("auto", "fcl"):
            ts.path = path
            pipelined(ts, 1 if path == "auto" else 1000, 64)
            spans = []
            per, res = 0.0, []
            first = 100 if path == "auto" else 2000
            for j in range(10):  # 10 x 50 bursts, keeping each run's GPU span per burst
                p, r = pipelined(ts, first + 50 * j, 50)
                per, res = per + p / 10, res + r
                spans.append(ts.gpu_span)
            phases = {k: round(float(np.median([r.timings[k] for r in res])) * 1e6, 1) for k in PHASES}
            emit(event="phases", path=path, source="gpu timestamps (median µs)", pipelined_us=round(per * 1e6, 1),
                 gpu_us_per_burst=round(float(np.median(spans)) * 1e6, 1), **phases)
    ts.close()
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "gpu_bench.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in LOG)


if __name__ == "__main__":
    main()
