"""A closed loop through the Python API: a ball crosses the pong genome's camera, burst by burst.

Each burst we stimulate the camera voxels under the ball, run one burst (blocking, because the next
input depends on where the ball is now), and report which areas fired. Run it with
`.venv/bin/python examples/api_example.py` after `make run` or `make test` has set up .venv.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from feagi_burst import Engine

HERE = Path(__file__).parent


def main(bursts: int = 40) -> None:
    engine = Engine.from_genome(HERE / "pong_genome.json", backend="auto")
    print(f"{engine.brain.name}: {engine.brain.neuron_count:,} neurons on {engine.backend_name()}")
    x, dx = 0, 1
    for _ in range(bursts):
        ball = [[x + i, 14 + j, 0] for i in range(3) for j in range(3)]
        engine.stimulate("iv00CC", ball, mode="fire")
        result = engine.process_burst()
        areas = Counter(cid for cid, *_ in engine.describe(result.fired))
        print(f"burst {result.burst:3d}  ball x={x:2d}  spikes {result.spike_count:4d}  "
              + ", ".join(f"{a}:{n}" for a, n in sorted(areas.items())))
        if not 0 <= x + dx <= 61:  # bounce off the camera's edges
            dx = -dx
        x += dx
    engine.close()


if __name__ == "__main__":
    main()
