"""What a dispatch and a scattered atomic cost on this machine's wgpu stack: the floor under a burst.

A burst is a chain of dependent dispatches in one compute pass (wgpu puts a barrier between two
dispatches that write the same storage buffer). This times K back-to-back dispatches of small and
large kernels (docs/bench/dispatch_probe.wgsl) with timestamps at the pass's start and end, and
prints one JSON line per case: GPU µs per dispatch. Run on the device:
`python3 docs/bench/dispatch_probe.py [--adapter H200]`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from feagi_burst.backends.wgpu.runtime import _wgpu

N = 1 << 20  # neurons (accumulators) and scattered events, as at 1M neurons / 1% / 100 synapses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", default="", help="substring of the adapter's name")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of N (a software adapter: 0.01)")
    args = ap.parse_args()
    wgpu = _wgpu()
    adapters = [a for a in wgpu.gpu.enumerate_adapters_sync() if args.adapter in a.info["device"]]
    adapter = adapters[0]
    dev = adapter.request_device_sync(required_features=["timestamp-query"])
    n = max(256, int(N * args.scale))
    src = (Path(__file__).parent / "dispatch_probe.wgsl").read_text()
    mod = dev.create_shader_module(code=src)
    S = wgpu.ShaderStage.COMPUTE
    bgl = dev.create_bind_group_layout(entries=[
        {"binding": 0, "visibility": S, "buffer": {"type": "storage"}},
        {"binding": 1, "visibility": S, "buffer": {"type": "read-only-storage"}},
        {"binding": 2, "visibility": S, "buffer": {"type": "uniform"}},
        {"binding": 3, "visibility": S, "buffer": {"type": "storage"}},
        {"binding": 4, "visibility": S, "buffer": {"type": "storage"}},
    ])
    layout = dev.create_pipeline_layout(bind_group_layouts=[bgl])
    bare = dev.create_pipeline_layout(bind_group_layouts=[])
    pipes = {name: dev.create_compute_pipeline(layout=layout, compute={"module": mod, "entry_point": name})
             for name in ("noop", "touch", "scatter", "dense")}
    noop_bare = dev.create_compute_pipeline(layout=bare, compute={"module": mod, "entry_point": "noop"})
    U = wgpu.BufferUsage
    acc = dev.create_buffer(size=n * 16, usage=U.STORAGE | U.COPY_DST)
    marks = dev.create_buffer(size=n * 4, usage=U.STORAGE)
    plain = dev.create_buffer(size=n * 16, usage=U.STORAGE)
    rng = np.random.default_rng(1)
    ev = np.empty((n, 2), np.uint32)
    ev[:, 0] = rng.integers(0, n, n)
    ev[:, 1] = rng.integers(1, 1000, n)
    ev_sorted = ev.copy()  # targets ascending within each row of 100 events (a sorted synapse row)
    rows = ev_sorted[: n // 100 * 100, 0].reshape(-1, 100)
    rows.sort(axis=1)
    b_ev = dev.create_buffer_with_data(data=ev.tobytes(), usage=U.STORAGE)
    b_ev_sorted = dev.create_buffer_with_data(data=ev_sorted.tobytes(), usage=U.STORAGE)
    qs = dev.create_query_set(type="timestamp", count=2)
    b_q = dev.create_buffer(size=16, usage=U.QUERY_RESOLVE | U.COPY_SRC)
    b_read = dev.create_buffer(size=16, usage=U.MAP_READ | U.COPY_DST)

    def group(count: int, stride: int, stamp: int, events=b_ev):
        u = dev.create_buffer_with_data(data=np.array([count, stride, stamp, 7], np.uint32).tobytes(),
                                        usage=U.UNIFORM)
        return dev.create_bind_group(layout=bgl, entries=[
            {"binding": 0, "resource": {"buffer": acc}},
            {"binding": 1, "resource": {"buffer": events}},
            {"binding": 2, "resource": {"buffer": u}},
            {"binding": 3, "resource": {"buffer": marks}},
            {"binding": 4, "resource": {"buffer": plain}}])

    def grid(threads: int) -> tuple[int, int]:
        wgs = -(-threads // 256)
        x = min(wgs, 65535)
        return x, -(-wgs // x)

    def submit_timed(enc) -> float:
        """Submit `enc` (its passes wrote timestamps 0 and 1) and wait: GPU µs between them."""
        enc.resolve_query_set(qs, 0, 2, b_q, 0)
        enc.copy_buffer_to_buffer(b_q, 0, b_read, 0, 16)
        dev.queue.submit([enc.finish()])
        b_read.map_sync(wgpu.MapMode.READ)
        t = np.frombuffer(b_read.read_mapped(), np.uint64).copy()
        b_read.unmap()
        return float(t[1] - t[0]) * 1e-3

    def timed(pipe, bg, wg: tuple[int, int], k: int, passes: bool = False) -> tuple[float, float]:
        enc = dev.create_command_encoder()
        t0 = time.perf_counter()
        for i in range(k if passes else 1):
            tw = {"query_set": qs}
            if i == 0:
                tw["beginning_of_pass_write_index"] = 0
            if i == (k - 1 if passes else 0):
                tw["end_of_pass_write_index"] = 1
            cp = enc.begin_compute_pass(timestamp_writes=tw if len(tw) > 1 else None)
            cp.set_pipeline(pipe)
            if bg is not None:
                cp.set_bind_group(0, bg)
            for _ in range(1 if passes else k):
                cp.dispatch_workgroups(*wg)
            cp.end()
        gpu = submit_timed(enc)
        return gpu / k, (time.perf_counter() - t0) * 1e6 / k

    cases = [
        ("noop, 1 workgroup, no bindings", noop_bare, None, (1, 1), 2000, False),
        ("noop, 1 workgroup, rw storage bound", pipes["noop"], group(1, 1, 0), (1, 1), 2000, False),
        ("touch, 1 workgroup (a write each dispatch)", pipes["touch"], group(1, 1, 0), (1, 1), 2000, False),
        ("touch, 1 workgroup, one pass per dispatch", pipes["touch"], group(1, 1, 0), (1, 1), 500, True),
        (f"touch, {n} threads, coalesced", pipes["touch"], group(n, 1, 0), grid(n), 300, False),
        (f"dense read+clear {n} x 16 B", pipes["dense"], group(n, 4, 0), grid(n), 300, False),
        (f"scatter {n} atomics, dense i32", pipes["scatter"], group(n, 1, 0), grid(n), 300, False),
        (f"scatter {n} atomics, 16 B stride", pipes["scatter"], group(n, 4, 0), grid(n), 300, False),
        (f"scatter {n} atomics + stamp, 16 B stride", pipes["scatter"], group(n, 4, 1), grid(n), 300, False),
        (f"scatter {n}, rows of 100 sorted, 16 B + stamp", pipes["scatter"], group(n, 4, 1, b_ev_sorted),
         grid(n), 300, False),
        (f"scatter {n}, 16 B + atomic stamp in a dense array", pipes["scatter"], group(n, 4, 2),
         grid(n), 300, False),
        (f"scatter {n}, 16 B + atomicOr bitmask", pipes["scatter"], group(n, 4, 3), grid(n), 300, False),
        (f"scatter {n}, 16 B + plain stamp store in the entry", pipes["scatter"], group(n, 4, 4),
         grid(n), 300, False),
    ]
    print(json.dumps({"adapter": adapter.info["device"], "backend": adapter.info["backend_type"], "n": n}))
    # an indirect dispatch whose grid the dispatch before it wrote, against a direct one
    gbl = dev.create_bind_group_layout(entries=[{"binding": 0, "visibility": S, "buffer": {"type": "storage"}}])
    writer = dev.create_compute_pipeline(layout=dev.create_pipeline_layout(bind_group_layouts=[bgl, gbl]),
                                         compute={"module": mod, "entry_point": "write_grid"})
    b_grid = dev.create_buffer_with_data(data=np.array([1, 1, 1, 0], np.uint32).tobytes(),
                                         usage=U.STORAGE | U.INDIRECT)
    g_grid = dev.create_bind_group(layout=gbl, entries=[{"binding": 0, "resource": {"buffer": b_grid}}])
    g_touch = group(1, 1, 0)

    def pairs(k: int, write: bool, indirect: bool) -> float:
        enc = dev.create_command_encoder()
        cp = enc.begin_compute_pass(timestamp_writes={"query_set": qs, "beginning_of_pass_write_index": 0,
                                                      "end_of_pass_write_index": 1})
        for _ in range(k):
            if write:
                cp.set_pipeline(writer)
                cp.set_bind_group(0, g_touch)
                cp.set_bind_group(1, g_grid)
                cp.dispatch_workgroups(1)
            cp.set_pipeline(pipes["touch"])
            cp.set_bind_group(0, g_touch)
            if indirect:
                cp.dispatch_workgroups_indirect(b_grid, 0)
            else:
                cp.dispatch_workgroups(1)
        cp.end()
        return submit_timed(enc) / k

    for label, write, indirect in (("write grid, then touch by it (indirect)", True, True),
                                   ("write grid, then touch (direct)", True, False),
                                   ("touch indirect, grid not written in the pass", False, True),
                                   ("touch direct", False, False)):
        pairs(20, write, indirect)
        print(json.dumps({"case": label, "pairs": 1000, "gpu_us_per_pair": round(pairs(1000, write, indirect), 3)}),
              flush=True)
    for label, pipe, bg, wg, k, passes in cases:
        timed(pipe, bg, wg, min(k, 20), passes)  # warm-up
        gpu, wall = timed(pipe, bg, wg, k, passes)
        print(json.dumps({"case": label, "dispatches": k, "gpu_us_per_dispatch": round(gpu, 3),
                          "wall_us_per_dispatch": round(wall, 3)}), flush=True)


if __name__ == "__main__":
    main()
