"""Build time of a 1M-neuron / 99M-synapse brain from a FEAGI genome (issue 12's bar: at most 5 s).

Writes a 2.x genome whose one custom area, 1000 x 1000 x 1 voxels of one neuron, maps onto itself
with a vectors morphology of 100 offsets (a 10 x 10 patch: ~99 synapses a neuron), then times
reading it, expanding it into neuron and synapse arrays, and compiling the burst tables, as
`feagi-burst run --genome` does. Prints one JSON line.

    python docs/bench/million_genome.py [GENOME_PATH]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from feagi_burst.fixed_point import compile_tables
from feagi_burst.genome import expand_genome, load_genome


def write(path: Path) -> None:
    p = "_____10c-C1M___-"
    blueprint = {p + "cx-___bbx-i": 1000, p + "cx-___bby-i": 1000, p + "cx-___bbz-i": 1, p + "cx-_n_cnt-i": 1,
                 p + "cx-__name-t": "million", p + "cx-_group-t": "CUSTOM", p + "nx-fire_t-f": 1.0,
                 p + "nx-leak_c-f": 0.1, p + "cx-dstmap-d": {"C1M___": [["patch10x10", [1, 1, 1], 1, False]]}}
    morphologies = {"patch10x10": {"type": "vectors", "class": "custom",
                                   "parameters": {"vectors": [[dx, dy, 0] for dx in range(10) for dy in range(10)]}}}
    path.write_text(json.dumps({"version": "2.0", "genome_title": "million", "blueprint": blueprint,
                                "neuron_morphologies": morphologies}))


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()) / "million_genome.json"
    write(path)
    t0 = time.perf_counter()
    genome = load_genome(path)
    t1 = time.perf_counter()
    brain = expand_genome(genome)
    t2 = time.perf_counter()
    compile_tables(brain)
    t3 = time.perf_counter()
    print(json.dumps({"neurons": brain.neuron_count, "synapses": brain.synapse_count, "load_s": round(t1 - t0, 2),
                      "expand_s": round(t2 - t1, 2), "tables_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2)}))


if __name__ == "__main__":
    main()
