#!/usr/bin/env bash
# The GPU rows of the README in one run (about 7 minutes on an H200 after numba's first compile):
# FEAGI LIF at 1M / 100M / 1% pipelined and blocking, STDP at --plastic-fraction 0.1, the PyTorch
# peer (examples/torch_peer.py: needs torch with CUDA), the population throughput (256 essential-
# genome brains batched, 1,000 and 10,000 bursts, against `feagi-burst run` one brain at a time),
# and the selection check. Run from the repository root with feagi-burst importable; results go to
# $OUT (default out/h200), bundled into one h200.tgz at the end (the device returns few files).
# POPULATIONS=0 leaves out the population rows (about 3 of the 7 minutes).
set -u
OUT=${OUT:-out/h200}; J="$OUT/json"; mkdir -p "$J"
B="python3 -m feagi_burst.cli bench --neurons 1000000 --backend gpu"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import wgpu; print([a.info['device'] for a in wgpu.gpu.enumerate_adapters_sync()])"
# the first 30 bursts at 1M against the CPU backend (fire sets, firing mps, final state)
OUT="$J" timeout 200 python3 examples/gpu_probe_bench.py --neurons 1000000 --check 30 --bursts 1000 --raw 2000 \
    --variants default --label exact 2>&1 | grep '"exact"'
# STDP at 1M / 10% plastic: 40 bursts on the CPU backend and the GPU, fire sets, firing mps, weights
timeout 200 python3 - <<'PY'
import numpy as np
from feagi_burst.engine import Engine
from feagi_burst.plasticity import plastic_layout
from feagi_burst.synthetic import synthetic_brain
brain = synthetic_brain(1000000, 100, 0.01, 0, plastic_fraction=0.1)
runs = {}
for be in ("cpu", "gpu"):
    e = Engine(brain, backend=be, warn=None)
    out: list = []
    e.run(40, on_result=lambda r: out.append((r.fired.copy(), r.mp.view(np.uint32).copy())))
    runs[be] = (out, e.state().plastic)
    initial = plastic_layout(brain, e.tables).initial_weights
(a, sa), (b, sb) = runs["cpu"], runs["gpu"]
print({"stdp_exact": all(np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b)),
       "weights_equal": bool(np.array_equal(sa.weights.view(np.uint32), sb.weights.view(np.uint32))),
       "committed_equal": bool(np.array_equal(sa.committed.view(np.uint32), sb.committed.view(np.uint32))),
       "weights_changed": int(np.count_nonzero(sa.weights != initial)),
       "fires": sum(x[0].size for x in a)})
PY
for i in 1 2; do timeout 60 $B --bursts 2000 --warmup 100 --json "$J/lif-1m-$i.json" 2>&1 | tail -4; done
timeout 60 $B --bursts 500 --warmup 50 --blocking --json "$J/lif-1m-blocking.json" 2>&1 | tail -3
for i in 1 2; do timeout 90 $B --plastic-fraction 0.1 --bursts 3000 --warmup 100 --json "$J/stdp-1m-$i.json" 2>&1 | tail -4; done
timeout 90 $B --plastic-fraction 0.1 --bursts 500 --warmup 50 --blocking --json "$J/stdp-1m-blocking.json" 2>&1 | tail -4
timeout 60 python3 examples/torch_peer.py --bursts 1000 > "$J/torch-peer.json" && cat "$J/torch-peer.json"
if [ "${POPULATIONS:-1}" = 1 ]; then
sed 's/^bursts = 1000/bursts = 10000/; s#"essential#"'"$PWD"'/examples/essential#g' examples/population_256.toml > /tmp/pop256-10k.toml
for cfg in examples/population_256.toml /tmp/pop256-10k.toml; do
    TIMEFORMAT="population ($cfg): %R s wall"
    time timeout 300 python3 -m feagi_burst.cli population --config "$cfg" --backend gpu \
        --json "$J/pop256-$(basename "$cfg" .toml).json" 2>&1 | tail -3
done
TIMEFORMAT="one brain alone: %R s wall"
for i in 1 2 3; do
    time timeout 60 python3 -m feagi_burst.cli run --genome examples/essential_genome.json \
        --stimulus examples/essential_stimulus.toml --bursts 1000 --seed "$i" --backend gpu \
        --json "$J/alone-$i.json" 2>&1 | tail -2
done
time timeout 120 python3 -m feagi_burst.cli run --genome examples/essential_genome.json \
    --stimulus examples/essential_stimulus.toml --bursts 10000 --seed 1 --backend gpu --json "$J/alone-10k.json" 2>&1 | tail -2
fi
timeout 300 python3 examples/check_selection.py > "$J/selection.jsonl"; tail -5 "$J/selection.jsonl" | cut -c1-3000
tar czf "$OUT/h200.tgz" -C "$OUT" json && rm -rf "$J"
