"""Stopping a run that has no end: Ctrl-C and SIGTERM finish cleanly, a second Ctrl-C aborts (130)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from feagi_burst.checkpoint import load_checkpoint
from feagi_burst.spike_record import read_record

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Running:
    """A `feagi-burst run` subprocess whose stderr is read line by line as it comes."""

    def __init__(self, *args: Any) -> None:
        env = dict(os.environ, COLUMNS="200")
        self.proc = subprocess.Popen([sys.executable, "-m", "feagi_burst.cli", "run", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, fragment: str, timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not any(fragment in ln for ln in self.lines):
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise AssertionError(f"exited {self.proc.returncode} before {fragment!r}:\n{self.stderr}")
            if time.monotonic() > end:
                self.proc.kill()
                raise AssertionError(f"no {fragment!r} within {timeout} s:\n{self.stderr}")
            time.sleep(0.02)

    def finish(self, timeout: float = 120.0) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(10)
        return code

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def endless(tmp_path: Path, *extra: Any) -> Running:
    return Running("--genome", EXAMPLES / "pong_genome.json", "--stimulus", EXAMPLES / "pong_stimulus.toml",
                   "--backend", "cpu", "--bursts", 0, "--record", tmp_path / "spikes.npz",
                   "--checkpoint", tmp_path / "ck.npz", *extra)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_an_endless_run_cleanly(tmp_path: Path, signum: int) -> None:
    run = endless(tmp_path)
    run.wait_for("backend:")
    time.sleep(1.5)  # well into the run
    run.proc.send_signal(signum)
    assert run.finish() == 0, run.stderr
    err = run.stderr
    assert "Traceback" not in err
    assert "stopping after the current burst" in err and "stopped at burst" in err
    # the summary table is printed
    assert "synaptic propagation" in err and "total" in err and "bursts/s" in err
    ck = load_checkpoint(tmp_path / "ck.npz")
    assert ck.burst > 100  # it ran for a while: the ball crossed (bursts 1-60)
    assert f"checkpoint: {tmp_path / 'ck.npz'} (burst {ck.burst:,})" in err
    # the record is complete up to the checkpoint's burst, and nothing partial is left
    with np.load(tmp_path / "spikes.npz") as z:
        assert int(z["last_burst"]) == ck.burst and int(z["first_burst"]) == 1
        assert z["burst"].max() <= ck.burst
    rec = read_record(tmp_path / "spikes.npz")
    assert 1 in rec and len(rec[1]) == 10  # burst 1: the power neuron and the 9 forced ball voxels
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "spikes.npz"]


def test_the_resumed_run_continues_where_the_signal_stopped_it(tmp_path: Path) -> None:
    run = endless(tmp_path)
    run.wait_for("backend:")
    time.sleep(1.0)
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 0, run.stderr
    stopped = load_checkpoint(tmp_path / "ck.npz").burst
    again = Running("--genome", EXAMPLES / "pong_genome.json", "--stimulus", EXAMPLES / "pong_stimulus.toml",
                    "--backend", "cpu", "--bursts", 10, "--resume", tmp_path / "ck.npz",
                    "--record", tmp_path / "more.jsonl")
    assert again.finish() == 0, again.stderr
    assert f"at burst {stopped:,}" in again.stderr
    more = read_record(tmp_path / "more.jsonl")
    assert more and min(more) > stopped and max(more) <= stopped + 10


def test_a_second_ctrl_c_aborts_with_130(tmp_path: Path) -> None:
    # drawing the raster at the end takes long enough to be interrupted
    run = endless(tmp_path, "--raster", tmp_path / "raster.png")
    run.wait_for("backend:")
    time.sleep(1.0)
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("checkpoint:")  # the record and checkpoint are done; the raster is being drawn
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "raster.png").exists()
    # what was already written stays whole; no temporary file is left behind
    assert load_checkpoint(tmp_path / "ck.npz").burst > 0
    assert read_record(tmp_path / "spikes.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.npz", "spikes.npz"]
