"""GPU backend probe benchmark: µs per burst on a synthetic brain, pipelined and blocking.

Default: 1M neurons x 100 synapses, 1% firing (feagi_burst.synthetic: a Drive of 10,000 neurons per
burst at potential 1.5 over threshold 1.0, weight 1, psp 1/K, 20% inhibitory, no accumulation).
Prints one JSON object per line (and writes them to $OUT/gpu_bench_<label>.jsonl when OUT is set):

- setup: build/load times, GPU memory;
- exact: a GPU == CPU check of the first `--check` bursts (fire sets, firing mps, NeuronState);
- bench: for each variant (GPUBackend knobs), µs per burst measured as `feagi-burst bench`
  measures it (feagi_burst.bench.bench_backend: Engine, pipelined `run` or blocking
  `process_burst`), the mean GPU-timestamp phases, and the same bursts driven on the backend alone
  (no Engine, no bench bookkeeping), which isolates the engine's and the bench's own overhead;
- host: in blocking mode, host seconds per burst inside each wgpu call (encode, submit, map wait,
  read) and in the header build, from timers wrapped around the backend's methods.

A final table lists every variant. Run it once per code version (e.g. a copy of an older
checkout on PYTHONPATH with `--label base`) in the same device call to compare like with like.

    PYTHONPATH=. python3 examples/gpu_probe_bench.py [--neurons 1000000] [--variants default,host]
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from feagi_burst.backends import wgpu as gpu_mod
from feagi_burst.backends.base import PHASES, BurstInput
from feagi_burst.backends.cpu import CPUBackend
from feagi_burst.backends.wgpu import GPUBackend, layout
from feagi_burst.backends.wgpu.plasticity import GPUPlasticity
from feagi_burst.bench import bench_backend
from feagi_burst.fixed_point import compile_tables
from feagi_burst.synthetic import synthetic_brain

LOG: list[dict[str, Any]] = []
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},  # what `feagi-burst bench --backend gpu` builds (timestamps where supported)
    "host": {"timing": "host"},  # no timestamp queries: what they cost
    "b32": {"batch": 32},
    "b8": {"batch": 8},
    "fcl": {"path": "fcl"},
    # STDP probes (with --plastic-fraction): the plasticity phase without some of its dispatches
    # (wrong results, timing only): what each kernel costs
    "no_update": {"skip": ("main",)},
    "compact_only": {"skip": ("requant", "pre", "main")},
}


def skipping(skip: tuple[str, ...]) -> Callable[..., Any]:
    """GPUPlasticity.encode without the dispatches of the STDP kernels named in `skip`."""
    encode = GPUPlasticity.encode

    def encode_skipping(self: GPUPlasticity, rec: Any) -> None:
        drop = {id(self.gb._stdp[k]) for k in skip}
        orig = rec.pipeline, rec.dispatch, rec.dispatch_indirect
        skipped = [False]

        def pipeline(p: Any) -> None:
            skipped[0] = id(p) in drop
            if not skipped[0]:
                orig[0](p)
        rec.pipeline = pipeline
        rec.dispatch = lambda *a: None if skipped[0] else orig[1](*a)
        rec.dispatch_indirect = lambda *a: None if skipped[0] else orig[2](*a)
        try:
            encode(self, rec)
        finally:
            del rec.pipeline, rec.dispatch, rec.dispatch_indirect
    return encode_skipping


def emit(**row: Any) -> None:
    LOG.append(row)
    print(json.dumps(row), flush=True)


def pipelined(gpu: GPUBackend, first: int, count: int) -> tuple[float, list[Any]]:
    """Submit `count` bursts back to back, collecting finished ones as they come; s per burst."""
    out: list[Any] = []
    t0 = time.perf_counter()
    for b in range(first, first + count):
        gpu.submit(BurstInput(b))
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


def host_profile(gpu: GPUBackend, first: int, count: int) -> dict[str, float]:
    """Blocking bursts with timers around every `Device.call` (by what it does) and the header
    build; µs per burst in each."""
    spent: dict[str, float] = defaultdict(float)
    dev = gpu.dev
    orig_call = dev.call

    def timed_call(what: str, fn: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return orig_call(what, fn, *a, **kw)
        finally:
            spent[what] += time.perf_counter() - t
    orig_headers = getattr(gpu, "_headers", None)

    def timed_headers(*a: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return orig_headers(*a, **kw)  # type: ignore[misc]
        finally:
            spent["headers (incl. uploads)"] += time.perf_counter() - t
    dev.call = timed_call  # type: ignore[method-assign]
    if orig_headers is not None:
        gpu._headers = timed_headers  # type: ignore[method-assign]
    try:
        total = blocking(gpu, first, count)
    finally:
        dev.call = orig_call  # type: ignore[method-assign]
        if orig_headers is not None:
            del gpu._headers
    out = {k: round(v / count * 1e6, 1) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    out["total"] = round(total * 1e6, 1)
    return out


ENCODE = GPUPlasticity.encode


def bench_variant(args: argparse.Namespace, name: str, kw: dict[str, Any], brain: Any, tables: Any) -> dict[str, Any]:
    """One variant's row: bench's pipelined (and unless --quick, blocking) µs per burst and GPU
    phases, then the backend alone and its host timers."""
    res = {}
    for mode in ("pipelined",) if args.quick else ("pipelined", "blocking"):
        res[mode] = bench_backend(brain, GPUBackend(**kw), args.bursts, args.warmup, 0, mode == "blocking", tables)
    ph = res["pipelined"]["phases"]
    row: dict[str, Any] = dict(
        event="bench", label=args.label, variant=name, pipelined_us=round(res["pipelined"]["us_per_burst"], 1),
        blocking_us=round(res["blocking"]["us_per_burst"], 1) if "blocking" in res else 0.0,
        raw_pipelined_us=0.0, raw_blocking_us=0.0, gpu_span_us=None,
        gpu_phases_us={p: round(ph[p]["mean_us"], 1) for p in PHASES},
        gpu_phases_p50_us={p: round(ph[p]["p50_us"], 1) for p in PHASES},
        firing_rate=res["pipelined"]["firing_rate"])
    if args.quick:
        return row
    # the same bursts on the backend alone (no Engine, no bench bookkeeping), then host timers
    g = GPUBackend(**kw)
    g.load(brain, tables)
    pipelined(g, 1, 64)
    raw_pipe, _ = pipelined(g, 65, args.raw)
    blocking(g, 65 + args.raw, 20)
    raw_block = blocking(g, 85 + args.raw, args.bursts)
    row["host_blocking_us"] = host_profile(g, 85 + args.raw + args.bursts, args.bursts)
    if getattr(g, "ts_every", 0):
        row["gpu_span_us"] = round(g.gpu_span * 1e6, 1)
    else:
        row["gpu_phases_us"] = row["gpu_phases_p50_us"] = {}
    g.close()
    row.update(raw_pipelined_us=round(raw_pipe * 1e6, 1), raw_blocking_us=round(raw_block * 1e6, 1))
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--neurons", type=int, default=1_000_000)
    ap.add_argument("--synapses", type=int, default=100)
    ap.add_argument("--rate", type=float, default=0.01)
    ap.add_argument("--check", type=int, default=20, help="bursts compared with the CPU backend (0: none)")
    ap.add_argument("--bursts", type=int, default=200, help="timed bursts per bench (as the CLI)")
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--raw", type=int, default=1000, help="bursts of the backend-only pipelined run")
    ap.add_argument("--variants", default="default,host", help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--label", default="new", help="name of this code version in the table")
    ap.add_argument("--plastic-fraction", type=float, default=0.0, help="STDP on this fraction of the synapses")
    ap.add_argument("--quick", action="store_true", help="per variant, only the pipelined bench (phases)")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a shader constant of layout.py set to VALUE for this run (e.g. STDP_UPDATE_NEURONS=8)")
    args = ap.parse_args()
    for item in args.set:  # the generated WGSL reads layout.CONSTANTS when a pipeline is built
        name, value = item.split("=")
        assert name in layout.VALUE, f"--set: no constant {name} in layout.py"
        layout.CONSTANTS = tuple(c._replace(value=int(value, 0)) if c.name == name else c
                                 for c in layout.CONSTANTS)

    t = time.perf_counter()
    brain = synthetic_brain(args.neurons, args.synapses, args.rate, seed=0, plastic_fraction=args.plastic_fraction)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    tables = compile_tables(brain)
    t_tables = time.perf_counter() - t

    gpu = GPUBackend(timing="host")
    t = time.perf_counter()
    gpu.load(brain, tables)
    t_load = time.perf_counter() - t
    emit(event="setup", label=args.label, device=gpu.backend_name(), software=gpu.is_software,
         neurons=brain.neuron_count, synapses=brain.synapse_count, build_s=round(t_build, 3),
         tables_s=round(t_tables, 3), gpu_load_s=round(t_load, 3),
         gpu_memory_mib=round(gpu.gpu_memory() / 2**20, 1), synapse_chunks=len(gpu.chunks),
         hash_max_probe=gpu.max_probe, fire_slots=gpu.R, batch=gpu.batch,
         timestamps_supported=gpu.dev.timestamps, param_rows=getattr(gpu, "param_rows", None))

    if args.check:  # exactness at full size: the first bursts, GPU (pipelined) vs CPU
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
        emit(event="exact", label=args.label, bursts=len(got), mismatched_bursts=bad, state_equal=state_same,
             fired_per_burst=float(np.mean([r.fired.size for r in got])),
             candidates_per_burst=float(np.mean([r.candidates for r in got])))
        del cpu
    gpu.close()

    rows = []
    for name in args.variants.split(","):
        kw = dict(VARIANTS[name])
        skip = kw.pop("skip", ())
        if skip:
            GPUPlasticity.encode = skipping(skip)  # type: ignore[method-assign]
        try:
            rows.append(bench_variant(args, name, kw, brain, tables))
        finally:
            GPUPlasticity.encode = ENCODE  # type: ignore[method-assign]
        emit(**rows[-1])

    print(f"\n{'label':8} {'variant':8} {'pipe µs':>8} {'block µs':>8} {'raw pipe':>8} {'raw blk':>8} "
          f"{'gpu span':>8}  phases in/prop/dyn/out µs")
    for r in rows:
        ph = "/".join(f"{r['gpu_phases_us'].get(p, 0):.1f}" for p in PHASES) if r["gpu_phases_us"] else "-"
        print(f"{r['label']:8} {r['variant']:8} {r['pipelined_us']:8.1f} {r['blocking_us']:8.1f} "
              f"{r['raw_pipelined_us']:8.1f} {r['raw_blocking_us']:8.1f} {str(r['gpu_span_us']):>8}  {ph}")
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, f"gpu_bench_{args.label}.jsonl"), "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in LOG)
    _ = gpu_mod  # keep the module import: variants may patch it in experiments


if __name__ == "__main__":
    main()
