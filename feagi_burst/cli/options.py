"""What several commands do with the options they share: --config/--genome become the brain's Config;
--json is checked before anything runs (feagi_burst.files.write_json writes it)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from feagi_burst.config import Config, load_config
from feagi_burst.errors import InputError
from feagi_burst.files import check_output


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
