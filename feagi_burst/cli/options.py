"""What several commands do with the options they share: --config/--genome become the brain's Config;
--json is checked before anything runs and written as strict JSON."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from feagi_burst.config import Config, load_config
from feagi_burst.errors import InputError
from feagi_burst.files import atomic_write, check_output


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (never a half-written file); strict JSON: a NaN is written as null."""
    with atomic_write(path) as f:
        json.dump(finite(data), f, indent=2, allow_nan=False)
        f.write("\n")


def finite(data: Any) -> Any:
    """`data` with NaN and infinities as None, so that it is JSON every parser reads."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    return data


def resolve_config(config: Optional[Path], genome: Optional[Path]) -> Config:
    """The run's config: brain.toml if given, with --genome replacing its brain."""
    cfg = load_config(config) if config else Config()
    if genome is not None:
        cfg.genome, cfg.synthetic = genome, None
    if cfg.genome is None and cfg.synthetic is None:
        raise InputError("no brain to run: pass --config brain.toml or --genome genome.json")
    return cfg


def check_json_path(path: Optional[Path]) -> None:
    """--json is checked before anything runs: a missing folder must not lose a long run's summary."""
    if path is not None:
        check_output(path, "--json")
