"""pop.toml: which brains a population holds (genomes, variants, replicas) and how long they run.

```toml
[population]
genomes = ["genomes/*.json"]      # files or globs, relative to this file
replicas = 2                      # copies of each genome (and variant), seeds seed, seed + 1, ...
seed = 0                          # seed of replica 0 (the Engine seed of the excitability draws)
bursts = 1000
stimulus = "stimulus.toml"        # one schedule for all; <genome stem>.stimulus.toml/json beside a
                                  # genome replaces it for that genome
fitness = "mymodule:score"        # record summary (dict) -> float; mymodule.py beside this file
honour_snooze_i = false

[[population.variant]]            # a gene sweep; several sweeps make a grid (every combination)
gene = "nx-fire_t-f"
area = "C76ges"                   # or a list of areas, each given the same value
values = [0.5, 1.0, 1.5]
```

Every key is checked here, before anything runs; the genomes themselves are read and loaded by
the runner (a genome that fails to load fails only its own brains).
"""
from __future__ import annotations

import glob
import importlib
import importlib.util
import itertools
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feagi_burst.errors import InputError
from feagi_burst.files import read_toml

KEYS = {"genomes", "replicas", "seed", "bursts", "stimulus", "fitness", "honour_snooze_i", "variant"}
VARIANT_KEYS = {"gene", "area", "values"}
STIMULUS_SUFFIXES = (".stimulus.toml", ".stimulus.json")
MAX_BRAINS = 1_000_000  # a typo in a sweep (values = range(1e6)) should not silently queue forever


@dataclass(frozen=True)
class Mutation:
    """One gene set to one value on one area, before the genome is expanded.

    `gene` is the blueprint spelling without the cortical id (`nx-fire_t-f`, `cx-___bbx-i`; the
    cx/nx prefix may be left out), `area` a cortical id as written, a decoded 3.0 id, or an area name.
    """

    gene: str
    area: str
    value: float | int | bool

    def label(self) -> str:
        v = self.value
        text = str(v).lower() if isinstance(v, bool) else f"{v:g}" if isinstance(v, float) else str(v)
        return f"{self.gene}@{self.area}={text}"


@dataclass
class Sweep:
    """One [[population.variant]] table: every value of `gene`, on every area listed."""

    gene: str
    areas: list[str]
    values: list[float | int | bool]


@dataclass
class PopulationConfig:
    """A validated pop.toml."""

    path: Path | None = None
    genomes: list[Path] = field(default_factory=list)
    replicas: int = 1
    seed: int = 0
    bursts: int = 100
    stimulus: Path | None = None
    fitness: str | None = None
    honour_snooze_i: bool = False
    sweeps: list[Sweep] = field(default_factory=list)

    def variants(self) -> list[tuple[Mutation, ...]]:
        """Every combination of the sweeps' values (one empty variant without sweeps)."""
        per_sweep = [[tuple(Mutation(s.gene, a, v) for a in s.areas) for v in s.values] for s in self.sweeps]
        return [tuple(m for part in combo for m in part) for combo in itertools.product(*per_sweep)]

    def stimulus_for(self, genome: Path) -> Path | None:
        """The schedule a genome runs with: `<stem>.stimulus.toml/json` beside it, else the common one."""
        for suffix in STIMULUS_SUFFIXES:
            own = genome.with_name(genome.stem + suffix)
            if own.is_file():
                return own
        return self.stimulus


def gene_field(gene: str, where: str) -> tuple[str, str, str]:
    """(prefix, `<gene>-<type>`, the AreaGene field it sets) of a gene as a sweep names it.

    The spellings are the genome loader's own (GENE_SPELLINGS), so a sweep accepts exactly the
    genes a genome file can carry.
    """
    from feagi_burst.genome.loader import GENE_SPELLINGS

    parts = gene.split("-")
    if len(parts) == 3 and parts[0] in ("cx", "nx"):
        prefix, key = parts[0], f"{parts[1]}-{parts[2]}"
    elif len(parts) == 2:
        prefix, key = "nx", gene
    else:
        prefix, key = "", ""
    settable = sorted(k for k, f in GENE_SPELLINGS.items() if f is not None and f not in ("mappings", "name", "group"))
    if key not in GENE_SPELLINGS:
        raise InputError(f"{where}: gene {gene!r} is not a FEAGI gene this engine reads; write it as in the "
                         f"genome, e.g. 'nx-fire_t-f'; genes: {', '.join('nx-' + k for k in settable)}")
    fieldname = GENE_SPELLINGS[key]
    if fieldname is None:
        read = key.rsplit("-", 1)[0] + "-f"
        raise InputError(f"{where}: gene {gene!r} is a spelling FEAGI 2.6.10 ignores; sweep 'nx-{read}' instead")
    if fieldname in ("mappings", "name", "group"):
        raise InputError(f"{where}: gene {gene!r} ({fieldname}) cannot be swept; sweep a number or true/false "
                         f"gene: {', '.join('nx-' + k for k in settable)}")
    return prefix, key, fieldname


def _check_value(value: Any, key: str, where: str) -> float | int | bool:
    """A sweep value of the gene's type (-f a number, -i a whole number, -b true/false)."""
    kind = key.rsplit("-", 1)[1]
    if kind == "b":
        if not isinstance(value, bool):
            raise InputError(f"{where}: {key} takes true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {key} takes a finite number, got {value!r}")
    if kind == "i":
        if float(value) != int(value):
            raise InputError(f"{where}: {key} takes a whole number, got {value!r}")
        return int(value)
    return float(value)


def _int(table: dict[str, Any], key: str, default: int, lo: int, where: str) -> int:
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise InputError(f"{where}: population.{key} must be a whole number, got {v!r}")
    if v < lo:
        raise InputError(f"{where}: population.{key} must be {lo} or more, got {v}")
    return v


def _expand_genomes(patterns: list[str], base: Path, where: str) -> list[Path]:
    """Files and globs in order, each file once. A glob matching nothing is an error; a named
    file that is missing is kept (its brains fail with the reason, the rest run)."""
    out: list[Path] = []
    for pattern in patterns:
        full = Path(os.path.normpath(base / Path(pattern).expanduser()))
        if glob.has_magic(pattern):
            hits = sorted(Path(p) for p in glob.glob(str(full)) if not p.endswith(STIMULUS_SUFFIXES[1]))
            if not hits:
                raise InputError(f"{where}: population.genomes pattern {pattern!r} matches no file "
                                 f"(looked for {full}); fix the pattern or the folder")
            out += hits
        else:
            out.append(full)
    seen: set[Path] = set()
    return [p for p in out if not (p in seen or seen.add(p))]


def parse_population(data: dict[str, Any], path: Path | None = None) -> PopulationConfig:
    """Validate a parsed pop.toml; relative paths are taken from `path`'s folder."""
    where = str(path) if path else "population config"
    base = path.parent if path else Path.cwd()
    if set(data) != {"population"}:
        extra = sorted(set(data) - {"population"})
        raise InputError(f"{where}: " + (f"unknown section [{extra[0]}]; a population config has one "
                                         "[population] table" if extra else "no [population] table"))
    table = data["population"]
    if not isinstance(table, dict):
        raise InputError(f"{where}: [population] must be a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key 'population.{unknown[0]}'; known keys: {', '.join(sorted(KEYS))}")
    genomes = table.get("genomes")
    if isinstance(genomes, str):
        genomes = [genomes]
    if not isinstance(genomes, list) or not genomes or not all(isinstance(g, str) and g for g in genomes):
        raise InputError(f"{where}: population.genomes must be a list of genome files or globs, "
                         'e.g. genomes = ["genomes/*.json"]')
    cfg = PopulationConfig(path=path)
    cfg.genomes = _expand_genomes(genomes, base, where)
    cfg.replicas = _int(table, "replicas", 1, 1, where)
    cfg.seed = _int(table, "seed", 0, 0, where)
    cfg.bursts = _int(table, "bursts", 100, 1, where)
    honour = table.get("honour_snooze_i", False)
    if not isinstance(honour, bool):
        raise InputError(f"{where}: population.honour_snooze_i must be true or false, got {honour!r}")
    cfg.honour_snooze_i = honour
    stim = table.get("stimulus")
    if stim is not None:
        if not isinstance(stim, str) or not stim:
            raise InputError(f"{where}: population.stimulus must be a schedule file name, got {stim!r}")
        cfg.stimulus = Path(os.path.normpath(base / Path(stim).expanduser()))
        if not cfg.stimulus.is_file():
            raise InputError(f"{where}: population.stimulus {cfg.stimulus} does not exist; fix the path")
    fit = table.get("fitness")
    if fit is not None:
        if not isinstance(fit, str) or fit.count(":") != 1 or not all(fit.split(":")):
            raise InputError(f"{where}: population.fitness must be 'module:callable', got {fit!r}")
        cfg.fitness = fit
    sweeps = table.get("variant", [])
    if not isinstance(sweeps, list) or not all(isinstance(s, dict) for s in sweeps):
        raise InputError(f"{where}: population.variant must be [[population.variant]] tables with gene, area, values")
    for i, s in enumerate(sweeps):
        at = f"{where}: population.variant[{i}]"
        bad = sorted(set(s) - VARIANT_KEYS) or sorted(VARIANT_KEYS - set(s))
        if bad:
            raise InputError(f"{at}: {'unknown' if set(s) - VARIANT_KEYS else 'missing'} key {bad[0]!r}; "
                             "a variant has gene, area and values")
        gene = s["gene"]
        if not isinstance(gene, str):
            raise InputError(f"{at}: gene must be text such as 'nx-fire_t-f', got {gene!r}")
        _, key, _ = gene_field(gene, at)
        areas = [s["area"]] if isinstance(s["area"], str) else s["area"]
        if not isinstance(areas, list) or not areas or not all(isinstance(a, str) and a for a in areas):
            raise InputError(f"{at}: area must be a cortical id or name, or a list of them, got {s['area']!r}")
        values = s["values"]
        if not isinstance(values, list) or not values:
            raise InputError(f"{at}: values must be a non-empty list, e.g. values = [0.5, 1.0, 1.5]")
        cfg.sweeps.append(Sweep(gene, list(areas), [_check_value(v, key, at) for v in values]))
    brains = len(cfg.genomes) * cfg.replicas * math.prod(len(s.values) for s in cfg.sweeps)
    if brains > MAX_BRAINS:
        raise InputError(f"{where}: {brains:,} brains (genomes x variants x replicas) is more than "
                         f"{MAX_BRAINS:,}; split the population")
    return cfg


def load_population_config(path: str | Path) -> PopulationConfig:
    """Read and validate a pop.toml."""
    p = Path(path)
    return parse_population(read_toml(p, "population config"), p)


def load_fitness(spec: str, base: Path, where: str) -> Callable[[dict[str, Any]], Any]:
    """The callable `module:name`; `module.py` in `base` (the config's folder) first, else an
    installed module. Imported once, before any brain runs, so a typo costs nothing."""
    module_name, attr = spec.split(":")
    local = base / (module_name.replace(".", "/") + ".py")
    try:
        if local.is_file():
            # loaded from its file under a private name: a module called `fitness` or `score`
            # must not be shadowed by (or shadow) an installed one
            unique = f"feagi_burst_fitness_{abs(hash(str(local.resolve())))}"
            spec_obj = importlib.util.spec_from_file_location(unique, local)
            assert spec_obj is not None and spec_obj.loader is not None
            module = importlib.util.module_from_spec(spec_obj)
            sys.modules[unique] = module
            sys.path.insert(0, str(base))  # so it can import its own neighbours
            try:
                spec_obj.loader.exec_module(module)
            finally:
                sys.path.remove(str(base))
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise InputError(f"{where}: fitness {spec!r}: no {local} and no installed module {e.name!r}; put "
                         f"{module_name}.py beside the config") from None
    except Exception as e:  # noqa: BLE001 (the user's module: say what broke, in one line)
        raise InputError(f"{where}: fitness {spec!r}: importing {module_name} failed: "
                         f"{type(e).__name__}: {' '.join(str(e).split())}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise InputError(f"{where}: fitness {spec!r}: {module_name} has no callable {attr!r}")
    return fn
