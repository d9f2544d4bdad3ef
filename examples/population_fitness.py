"""Fitness of one brain of examples/population.toml: move when the ball is seen, at little cost.

A fitness function receives a brain's record summary (a dict: genome, variant, seed, bursts, neurons,
spikes, firing_rate, spikes_per_area, firing_rate_per_area, neurons_per_area) and returns a number.
`feagi-burst population` imports this file from the config's folder and calls `score` for every
brain that ran; the value is the `fitness` column of the --json and --csv summaries.
"""
from __future__ import annotations

from typing import Any

MOTOR = ("CRSMot", "CIHMot")  # M1 forward and backward: what reaches the motor output o__mot
DRIVE = ("m__for", "m__bac")  # the areas the top and bottom cameras drive


def score(summary: dict[str, Any]) -> float:
    """Motor spikes per burst, minus a penalty for every motor-drive spike that went nowhere."""
    spikes = summary["spikes_per_area"]
    bursts = max(1, summary["bursts"])
    motor = sum(spikes.get(a, 0) for a in MOTOR)
    drive = sum(spikes.get(a, 0) for a in DRIVE)
    return (motor - 0.25 * max(0, drive - motor)) / bursts
