"""The `feagi-burst` command line: run, plot, init, genome info, select, bench, population.

program.py holds the typer app, its global --version and main() (the console entry point); each
command is a module of its own (run.py, plot.py, init.py, genome.py, select.py, bench.py,
population.py) that registers on the app when imported, as here; options.py holds what several
commands do with the options they share.
"""
from __future__ import annotations

from feagi_burst.cli.program import app, main

# importing a command's module registers it on `app`, and this order is --help's
from feagi_burst.cli import run, plot, init, genome, select, bench, population
from feagi_burst.cli.run import StopFlag

__all__ = ["StopFlag", "app", "main", "run", "plot", "init", "genome", "select", "bench", "population"]
