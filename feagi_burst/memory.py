"""How much host memory a brain takes to build and run, and whether this machine has it.

One home for the estimate, so that a genome, a synthetic brain and `bench` are checked the same way
before anything is allocated (a brain that does not fit is one InputError line, not a process
killed by the kernel with no message).

The constants are measured peaks (ru_maxrss), build temporaries included, not the size of the
finished arrays: building sorts, quantises and indexes the synapses, and those steps briefly hold
several copies. Measured on Linux, numpy 2, CPU backend loaded and 3 bursts run:

    synthetic brain (feagi_burst.synthetic), 100 synapses per neuron:
        neurons x synapses     peak RSS over the interpreter
        100K  x  10M            0.47 GB
        300K  x  30M            0.99 GB
        1M    x 100M            2.61 GB
        2M    x 200M            4.78 GB
        4M    x 200M (50 each)  4.95 GB
        5M    x 0               0.45 GB   (90 bytes per neuron)
    -> 90 bytes per neuron + 24 per synapse + 512 MiB, above every measurement.

    genome expansion (feagi_burst.genome): 87 bytes per neuron and 79 per synapse at peak (its
    expansion holds int64 source/target temporaries per mapping before they are merged).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from feagi_burst.errors import InputError

MEMORY_FRACTION = 0.8  # of MemAvailable a brain may take: the rest is the OS's and other programs'


@dataclass(frozen=True)
class Footprint:
    """Peak host bytes of building and running a brain: per neuron, per synapse, and a fixed part."""

    per_neuron: int
    per_synapse: int
    fixed: int = 0

    def bytes(self, neurons: int, synapses: int) -> int:
        return self.fixed + neurons * self.per_neuron + synapses * self.per_synapse


SYNTHETIC = Footprint(per_neuron=90, per_synapse=24, fixed=512 << 20)
GENOME = Footprint(per_neuron=87, per_synapse=79)
BYTES_PER_NEURON = GENOME.per_neuron  # the larger of the two builds, for a quick bound
BYTES_PER_SYNAPSE = GENOME.per_synapse


def estimate_bytes(neurons: int, synapses: int, footprint: Footprint = GENOME) -> int:
    """Peak host memory to build and run a brain of this size (see the module docstring)."""
    return footprint.bytes(neurons, synapses)


def available_memory() -> int:
    """Bytes a brain may use: a fraction of MemAvailable (Linux), else of physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * MEMORY_FRACTION)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_FRACTION)
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def gib(n: int) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_fits(need: int, what: str, hint: str = "use a smaller brain", limit: int | None = None) -> None:
    """Refuse, in one line, building something that needs more memory than is available."""
    limit = available_memory() if limit is None else limit
    if need > limit:
        raise InputError(f"{what} needs about {gib(need)} of memory at its peak; {gib(limit)} is available "
                         f"({MEMORY_FRACTION:.0%} of free memory); {hint}")
