#!/usr/bin/env bash
# The GPU rows of the README in one run (about 3 minutes on an H200 after numba's first compile):
# FEAGI LIF at 1M / 100M / 1% pipelined and blocking, STDP at --plastic-fraction 0.1, the PyTorch
# peer (examples/torch_peer.py: needs torch with CUDA), the population throughput (256 essential-
# genome brains batched, against `feagi-burst run` one brain at a time), and the selection check.
# Run from the repository root with feagi-burst importable; results go to $OUT (default out/h200).
set -u
OUT=${OUT:-out/h200}; mkdir -p "$OUT"
B="python3 -m feagi_burst.cli bench --neurons 1000000 --backend gpu"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 -c "import wgpu; print([a.info['device'] for a in wgpu.gpu.enumerate_adapters_sync()])"
for i in 1 2; do timeout 60 $B --bursts 2000 --warmup 100 --json "$OUT/lif-1m-$i.json" 2>&1 | tail -4; done
timeout 60 $B --bursts 500 --warmup 50 --blocking --json "$OUT/lif-1m-blocking.json" 2>&1 | tail -3
timeout 90 $B --plastic-fraction 0.1 --bursts 2000 --warmup 100 --json "$OUT/stdp-1m.json" 2>&1 | tail -4
timeout 90 $B --plastic-fraction 0.1 --bursts 500 --warmup 50 --blocking --json "$OUT/stdp-1m-blocking.json" 2>&1 | tail -4
timeout 60 python3 examples/torch_peer.py --bursts 1000 > "$OUT/torch-peer.json" && cat "$OUT/torch-peer.json"
TIMEFORMAT="population of 256: %R s wall"
time timeout 120 python3 -m feagi_burst.cli population --config examples/population_256.toml --backend gpu \
    --json "$OUT/pop256.json" 2>&1 | tail -3
TIMEFORMAT="one brain alone: %R s wall"
for i in 1 2 3; do
    time timeout 60 python3 -m feagi_burst.cli run --genome examples/essential_genome.json \
        --stimulus examples/essential_stimulus.toml --bursts 1000 --seed "$i" --backend gpu \
        --json "$OUT/alone-$i.json" 2>&1 | tail -2
done
timeout 300 python3 examples/check_selection.py > "$OUT/selection.jsonl"; tail -5 "$OUT/selection.jsonl"
