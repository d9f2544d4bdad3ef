"""Populations: pop.toml, variants, the batch runner (CPU, threads, shared GPU), the command, and Ray.

The promise tested throughout: every brain of a population gives exactly the spikes of running it
alone with `feagi-burst run` (same genome file, seed and schedule), on several real genomes at once.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import GENOMES
from feagi_burst.errors import InputError
from feagi_burst.population import Population, RayOptions
from feagi_burst.population.spec import load_population_config

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"
# real genomes of different shapes and sizes (10 to 55,363 neurons, 2 to 121,776 synapses)
REAL = ["test_timer.json", "motor_babble_genome.json", "basic genome.json", "feagi-core__essential_genome.json",
        "logic_and_gate__genome.json"]
BROKEN = "leak_test_1_23.json"  # its morphology y_consolidator has a 3-element pattern: fails to load


def write_pop(tmp: Path, body: str, name: str = "pop.toml") -> Path:
    p = tmp / name
    p.write_text(body)
    return p


def copy_genomes(tmp: Path, names: list[str]) -> Path:
    d = tmp / "genomes"
    d.mkdir(exist_ok=True)
    for n in names:
        shutil.copy(GENOMES / n, d / n)
    return d


def run_alone(genome: Path, seed: int, bursts: int, record: Path, stimulus: Path | None = None,
              backend: str = "cpu") -> None:
    """`feagi-burst run` for one brain (in this process, through the CLI's own command)."""
    from typer.testing import CliRunner

    from feagi_burst.cli import app

    args = ["run", "--genome", str(genome), "--seed", str(seed), "--bursts", str(bursts), "--backend", backend,
            "--record", str(record), "--force"]
    if stimulus is not None:
        args += ["--stimulus", str(stimulus)]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output


def assert_same_record(a: Path, b: Path) -> None:
    ra, rb = np.load(a), np.load(b)
    assert sorted(ra.files) == sorted(rb.files)
    for k in ra.files:
        if ra[k].dtype.kind == "f":
            np.testing.assert_array_equal(ra[k].view(np.uint32), rb[k].view(np.uint32), err_msg=k)
        else:
            np.testing.assert_array_equal(ra[k], rb[k], err_msg=k)


def comparable(rows: list[Any]) -> list[dict[str, Any]]:
    """Result rows without what differs between runs (time, where, the record folder)."""
    return [{k: v for k, v in r.row().items() if k not in ("wall_s", "backend")} for r in rows]


# -- pop.toml ---------------------------------------------------------------------------------
@pytest.mark.parametrize("body, fragment", [
    ('[population]\ngenomes = ["g.json"]\nbogus = 1\n', "unknown key 'population.bogus'"),
    ('[population]\ngenomes = ["nothing/*.json"]\n', "matches no file"),
    ('[population]\ngenomes = ["g.json"]\nbursts = 0\n', "population.bursts must be 1 or more"),
    ('[population]\ngenomes = ["g.json"]\n[[population.variant]]\ngene = "nx-bogus-f"\narea = "a"\nvalues = [1]\n',
     "is not a FEAGI gene"),
    ('[population]\ngenomes = ["g.json"]\n[[population.variant]]\ngene = "nx-snooze-i"\narea = "a"\nvalues = [1]\n',
     "sweep 'nx-snooze-f' instead"),
    ('[population]\ngenomes = ["g.json"]\n[[population.variant]]\ngene = "nx-refrac-i"\narea = "a"\n'
     'values = [1.5]\n', "takes a whole number"),
    ('[population]\ngenomes = ["g.json"]\n[[population.variant]]\ngene = "nx-mp_acc-b"\narea = "a"\n'
     'values = [1]\n', "takes true or false"),
    ('[population]\ngenomes = ["g.json"]\n[[population.variant]]\ngene = "nx-fire_t-f"\nvalues = [1]\n',
     "missing key 'area'"),
    ('[population]\ngenomes = ["g.json"]\nfitness = "nomodule"\n', "must be 'module:callable'"),
    ('[run]\nbursts = 1\n', "unknown section [run]"),
])
def test_config_errors_are_one_line(tmp_path: Path, body: str, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        load_population_config(write_pop(tmp_path, body))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_fitness_module_errors(tmp_path: Path) -> None:
    p = write_pop(tmp_path, '[population]\ngenomes = ["g.json"]\nfitness = "nofile:score"\n')
    with pytest.raises(InputError, match="no .*nofile.py"):
        Population.from_config(p)
    (tmp_path / "broken.py").write_text("raise ValueError('oops')\n")
    p = write_pop(tmp_path, '[population]\ngenomes = ["g.json"]\nfitness = "broken:score"\n')
    with pytest.raises(InputError, match="importing broken failed: ValueError: oops"):
        Population.from_config(p)
    (tmp_path / "nocall.py").write_text("x = 1\n")
    p = write_pop(tmp_path, '[population]\ngenomes = ["g.json"]\nfitness = "nocall:score"\n')
    with pytest.raises(InputError, match="no callable 'score'"):
        Population.from_config(p)


def test_jobs_are_genomes_x_variant_grid_x_replicas(tmp_path: Path) -> None:
    d = copy_genomes(tmp_path, ["test_timer.json", "motor_pathway_m1.json"])
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 3\nseed = 5\n'
                            '[[population.variant]]\ngene = "nx-fire_t-f"\narea = "x"\nvalues = [1.0, 2.0]\n'
                            '[[population.variant]]\ngene = "refrac-i"\narea = ["x", "y"]\nvalues = [0, 1]\n')
    pop = Population.from_config(p)
    assert len(pop.jobs) == 2 * 4 * 3
    assert [j.seed for j in pop.jobs[:3]] == [5, 6, 7]
    assert pop.jobs[0].genome.endswith("motor_pathway_m1.json")  # a glob's files in sorted order
    assert pop.jobs[3].variant == "nx-fire_t-f@x=1, refrac-i@x+y=1"


# -- variants ---------------------------------------------------------------------------------
def test_mutation_goes_through_the_loader(tmp_path: Path) -> None:
    from feagi_burst.genome import load_genome
    from feagi_burst.population.mutate import mutant_text, mutate_document
    from feagi_burst.population.spec import Mutation

    src = EXAMPLES / "essential_genome.json"
    doc, genome = json.loads(src.read_text()), load_genome(src)
    muts = (Mutation("nx-fire_t-f", "forward", 7.5), Mutation("nx-refrac-i", "m__bac", 3),
            Mutation("cx-___bbx-i", "o__mot", 9))  # an area by name, by id; a size gene under cx-
    out = tmp_path / "mutant.json"
    out.write_text(mutant_text(mutate_document(doc, genome, muts, "test")))
    mutant = load_genome(out)
    assert mutant.area("m__for").threshold == 7.5
    assert mutant.area("m__bac").refractory_period == 3
    assert mutant.area("o__mot").dimensions[0] == 9
    assert doc == json.loads(src.read_text())  # the original document is untouched
    with pytest.raises(InputError, match="the genome has no area 'nowhere'"):
        mutate_document(doc, genome, (Mutation("nx-fire_t-f", "nowhere", 1.0),), "test")


# -- the batch runner: bit-identical to `feagi-burst run` -------------------------------------------
def test_population_matches_feagi_burst_run_on_real_genomes(tmp_path: Path) -> None:
    d = copy_genomes(tmp_path, REAL + [BROKEN])
    shutil.copy(EXAMPLES / "essential_genome.json", d / "essential_genome.json")
    # a per-genome schedule beside one genome replaces the common (absent) one
    shutil.copy(EXAMPLES / "essential_stimulus.toml", d / "essential_genome.stimulus.toml")
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 2\nseed = 3\nbursts = 60\n')
    pop = Population.from_config(p)
    rec = tmp_path / "rec"
    rec.mkdir()
    result = pop.run(record_dir=rec)
    assert len(result.results) == 2 * (len(REAL) + 2)
    failed = [r for r in result.results if r.error]
    assert {Path(r.genome).name for r in failed} == {BROKEN} and len(failed) == 2
    assert "y_consolidator" in failed[0].error and "\n" not in failed[0].error
    ok = [r for r in result.results if not r.error]
    assert sum(r.spikes for r in ok) > 0
    for r in ok:
        g = Path(r.genome)
        stim = d / "essential_genome.stimulus.toml" if g.name == "essential_genome.json" else None
        alone = tmp_path / f"alone{r.index}.npz"
        run_alone(g, r.seed, 60, alone, stim)
        assert_same_record(rec / r.record, alone)
        assert r.spikes == len(np.load(alone)["burst"])
    essential = [r for r in ok if Path(r.genome).name == "essential_genome.json"]
    assert essential[0].spikes_per_area["iv00_C"] > 0  # its own schedule ran


def test_variant_matches_its_saved_genome_run_alone(tmp_path: Path) -> None:
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{EXAMPLES}/essential_genome.json"]\nbursts = 80\n'
                            f'stimulus = "{EXAMPLES}/essential_stimulus.toml"\nseed = 1\n'
                            '[[population.variant]]\ngene = "nx-excite-f"\narea = "m__for"\nvalues = [0.5]\n'
                            '[[population.variant]]\ngene = "nx-fire_t-f"\narea = "forward"\nvalues = [1.0, 30.0]\n')
    rec = tmp_path / "rec"
    rec.mkdir()
    result = Population.from_config(p).run(record_dir=rec)
    assert [r.error for r in result.results] == [None, None]
    assert result.results[0].spikes_per_area["m__for"] != result.results[1].spikes_per_area["m__for"]
    for r in result.results:
        alone = tmp_path / f"alone{r.index}.npz"
        run_alone(rec / r.genome_file, r.seed, 80, alone, EXAMPLES / "essential_stimulus.toml")
        assert_same_record(rec / r.record, alone)


def test_thread_pool_gives_the_same_results(tmp_path: Path) -> None:
    d = copy_genomes(tmp_path, ["motor_babble_genome.json", "test_timer.json", "basic genome.json"])
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 2\nbursts = 40\n')
    pop = Population.from_config(p)
    assert comparable(pop.run(threads=1).results) == comparable(pop.run(threads=2).results)


def test_gpu_batch_gives_every_brain_its_cpu_spikes(tmp_path: Path) -> None:
    """Different real genomes (their own ids, scales, seeds, power neurons, one with its own
    schedule) in one GPU batch: every brain's spike record is bit for bit its CPU record; a
    plastic genome cannot join the batch and runs alone on the device, said once."""
    from feagi_burst.backends.base import BackendError
    from feagi_burst.backends.wgpu import GPUBackend

    try:
        GPUBackend().close()
    except BackendError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1":
            pytest.skip(f"no GPU adapter: {e}")
        raise
    d = copy_genomes(tmp_path, ["motor_babble_genome.json", "test_timer.json", "logic_and_gate__genome.json",
                                "Huma_feagi_genome_pong.json"])
    shutil.copy(EXAMPLES / "essential_genome.json", d / "essential_genome.json")
    shutil.copy(EXAMPLES / "essential_stimulus.toml", d / "essential_genome.stimulus.toml")
    shutil.copy(GENOMES / "feagi-stdp" / "stdp2.genome.json", d / "stdp2.json")
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 2\nbursts = 50\nseed = 4\n')
    pop = Population.from_config(p)
    notes: list[str] = []
    recs = {k: tmp_path / k for k in ("gpu", "cpu")}
    for r in recs.values():
        r.mkdir()
    gpu = pop.run(backend="gpu", record_dir=recs["gpu"], on_note=notes.append)
    cpu = pop.run(backend="cpu", record_dir=recs["cpu"])
    batched = [r for r in gpu.results if "a batch of 10 brains" in r.backend]
    assert len(batched) == 10 and all(r.backend.startswith("WGPU") for r in gpu.results)
    assert comparable(gpu.results) == comparable(cpu.results)
    assert sum(r.spikes for r in gpu.results) > 0
    assert 0 < gpu.run_s < gpu.wall_s and gpu.setup_s + gpu.run_s == pytest.approx(gpu.wall_s)
    for g, c in zip(gpu.results, cpu.results):
        assert_same_record(recs["gpu"] / g.record, recs["cpu"] / c.record)
    assert notes == ["2 brains run one after another on the GPU, not batched: it has plastic pairs "
                     "(STDP rescales one device-wide word as weights grow)"]


def test_batches_split_by_limits_give_the_same_results(tmp_path: Path) -> None:
    from feagi_burst.backends.base import BackendError
    from feagi_burst.population.batched import BatchLimits, run_gpu_batched

    d = copy_genomes(tmp_path, ["test_timer.json", "logic_and_gate__genome.json"])
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 3\nbursts = 30\n')
    pop = Population.from_config(p)
    notes: list[str] = []
    try:
        small = run_gpu_batched(pop.batch(), limits=BatchLimits(neurons=60), note=notes.append)
    except InputError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1" and isinstance(e.__cause__, (BackendError, type(None))):
            pytest.skip(str(e))
        raise
    assert notes and "successive batches" in notes[0]
    assert comparable(small) == comparable(pop.run(backend="cpu").results)


def test_replicas_share_one_resolved_schedule_over_successive_batches(tmp_path: Path) -> None:
    """The schedule is resolved once for the replicas' one Brain; each batch stages it anew (a
    plan is consumed as it runs), so the second batch's brains get every stimulation too."""
    from feagi_burst.backends.base import BackendError
    from feagi_burst.population.batched import BatchLimits, run_gpu_batched

    d = copy_genomes(tmp_path, [])
    shutil.copy(EXAMPLES / "essential_genome.json", d / "essential_genome.json")
    shutil.copy(EXAMPLES / "essential_stimulus.toml", d / "essential_genome.stimulus.toml")
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 3\nbursts = 30\n')
    pop = Population.from_config(p)
    notes: list[str] = []
    try:
        small = run_gpu_batched(pop.batch(), limits=BatchLimits(neurons=2 * 13851), note=notes.append)
    except InputError as e:
        if os.environ.get("FEAGI_BURST_ALLOW_NO_GPU") == "1" and isinstance(e.__cause__, (BackendError, type(None))):
            pytest.skip(str(e))
        raise
    assert notes and "2 successive batches" in notes[0]
    cpu = pop.run(backend="cpu").results
    assert comparable(small) == comparable(cpu) and all(r.spikes for r in small)
    assert all(r.run_s > 0 and r.setup_s > 0 for r in small)


def test_setup_and_run_times_split_the_wall(tmp_path: Path) -> None:
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{GENOMES}/test_timer.json"]\nreplicas = 3\nbursts = 40\n')
    pop = Population.from_config(p)
    for threads in (1, 2):
        r = pop.run(threads=threads)
        assert 0 < r.run_s <= r.wall_s and r.setup_s >= 0
        assert r.setup_s + r.run_s == pytest.approx(r.wall_s)
        assert r.run_brain_bursts_per_s == pytest.approx(r.brain_bursts / r.run_s)
        assert r.run_brain_bursts_per_s >= r.brain_bursts_per_s
        if threads == 1:  # one brain after another: the bursts' own time
            assert r.run_s == pytest.approx(sum(b.run_s for b in r.results))


def test_fitness_scores_each_brain_and_a_failing_fitness_is_that_brains_error(tmp_path: Path) -> None:
    (tmp_path / "fit.py").write_text(
        "def score(s):\n"
        "    if s['seed'] == 1:\n        raise ZeroDivisionError('no')\n"
        "    return s['spikes'] / s['bursts']\n")
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{GENOMES}/test_timer.json"]\nreplicas = 2\nbursts = 30\n'
                            'fitness = "fit:score"\n')
    a, b = Population.from_config(p).run().results
    assert a.fitness == a.spikes / 30 and a.error is None
    assert b.fitness is None and b.error == "fitness fit:score: ZeroDivisionError: no"


# -- the command --------------------------------------------------------------------------------
def cli(*args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "feagi_burst.cli", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200", **(env or {})), timeout=300)


def test_command_writes_json_and_csv_and_reports_a_broken_genome(tmp_path: Path) -> None:
    d = copy_genomes(tmp_path, ["test_timer.json", BROKEN])
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 2\nbursts = 25\n')
    r = cli("population", "--config", p, "--backend", "cpu", "--json", tmp_path / "s.json", "--csv",
            tmp_path / "s.csv")
    assert r.returncode == 1, r.stderr  # some brains failed; the others ran and are written
    assert "Traceback" not in r.stderr
    assert "y_consolidator" in r.stderr
    assert "2 of 4 brains failed" in r.stderr and "brains x bursts per second" in r.stderr
    assert " while running (set-up " in r.stderr
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["brains"] == 4 and data["failed"] == 2 and data["bursts"] == 25
    assert data["setup_s"] + data["run_s"] == pytest.approx(data["wall_s"]) and data["run_s"] > 0
    assert data["run_brain_bursts_per_s"] == pytest.approx(data["brain_bursts"] / data["run_s"])
    ok = [row for row in data["rows"] if not row["error"]]
    assert [row["seed"] for row in ok] == [0, 1] and all(row["bursts"] == 25 for row in ok)
    assert ok[0]["spikes"] == sum(ok[0]["spikes_per_area"].values())
    csv_lines = (tmp_path / "s.csv").read_text().splitlines()
    assert csv_lines[0].startswith("index,genome,variant,seed,") and len(csv_lines) == 5


def test_command_checks_outputs_before_running(tmp_path: Path) -> None:
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{GENOMES}/test_timer.json"]\nbursts = 5\n')
    r = cli("population", "--config", p, "--json", tmp_path / "no" / "s.json")
    assert r.returncode == 2 and "folder" in r.stderr and "Traceback" not in r.stderr
    r = cli("population", "--config", p, "--bogus")
    assert r.returncode == 2 and "unexpected argument '--bogus'" in r.stderr


def test_ray_option_without_ray_says_how_to_install(tmp_path: Path) -> None:
    p = write_pop(tmp_path, f'[population]\ngenomes = ["{GENOMES}/test_timer.json"]\nbursts = 5\n')
    block = tmp_path / "noray"
    block.mkdir()
    (block / "ray.py").write_text("raise ImportError('no ray here')\n")  # shadows an installed ray
    r = cli("population", "--config", p, "--ray", env={"PYTHONPATH": str(block)})
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == ["feagi-burst: error: --ray needs Ray, which is not installed here: "
                     "pip install 'feagi-burst[cluster]'"]


def test_bundled_example_runs(tmp_path: Path) -> None:
    r = cli("population", "--config", EXAMPLES / "population.toml", "--backend", "cpu", "--bursts", "50",
            "--csv", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    assert "12 / 12" in r.stderr and "fitness" in r.stdout


# -- Ray ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_ray(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One local Ray instance with two CPU workers for the Ray tests (starting one takes seconds).

    The kill hook's marker exists from the start (disarmed); a test deletes it to kill one worker.
    """
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'feagi-burst[cluster]')")
    from feagi_burst.population.ray_runner import KILL_ONCE

    marker = tmp_path_factory.mktemp("ray") / "killed"
    marker.write_text("disarmed")
    old = os.environ.get(KILL_ONCE)
    os.environ[KILL_ONCE] = str(marker)  # inherited by the workers Ray starts
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="error")
    yield marker
    ray.shutdown()
    if old is None:
        os.environ.pop(KILL_ONCE, None)
    else:
        os.environ[KILL_ONCE] = old


def ray_population(tmp: Path) -> Population:
    d = copy_genomes(tmp, ["motor_babble_genome.json", "test_timer.json", BROKEN])
    shutil.copy(EXAMPLES / "essential_genome.json", d / "essential_genome.json")
    shutil.copy(EXAMPLES / "essential_stimulus.toml", d / "essential_genome.stimulus.toml")
    return Population.from_config(write_pop(tmp, f'[population]\ngenomes = ["{d}/*.json"]\nreplicas = 2\n'
                                                 'bursts = 40\n'))


def test_ray_two_cpu_workers_give_the_single_process_results(tmp_path: Path, local_ray: Path) -> None:
    pop = ray_population(tmp_path)
    local = pop.run(record_dir=tmp_path)
    rec = tmp_path / "ray"
    rec.mkdir()
    notes: list[str] = []
    remote = pop.run(ray=RayOptions(batch_size=3), record_dir=rec, on_note=notes.append)
    assert "2 CPU workers" in remote.where and "3 tasks" in remote.where
    assert comparable(remote.results) == comparable(local.results)
    for r in remote.results:
        if r.record:
            assert_same_record(rec / r.record, tmp_path / r.record)


def test_ray_worker_killed_mid_run_is_retried_and_nothing_is_lost_or_counted_twice(
        tmp_path: Path, local_ray: Path) -> None:
    pop = ray_population(tmp_path)
    local = pop.run()
    local_ray.unlink()  # armed: the first brain finished on a worker kills that worker
    seen: list[int] = []
    remote = pop.run(ray=RayOptions(batch_size=2, max_retries=2), on_brain=lambda r: seen.append(r.index))
    assert local_ray.read_text().isdigit()  # a worker process did die (its pid)
    assert sorted(seen) == list(range(len(pop.jobs)))  # each brain reported once
    assert comparable(remote.results) == comparable(local.results)
