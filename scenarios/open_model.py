"""The open model's schedule: when each request is meant to be sent, whatever the replies do.

Pure and free of locust (importable anywhere); scenarios/capacity.py drives Locust with it.

A plan is a staircase of offered rates (req/s), one per step of `step_s` seconds, with
Poisson or constant arrivals. Each Locust process that runs users takes its share: with N
processes (local `--processes N`, or a master's workers) process k generates rate/N, Poisson
with its own seed (the sum of independent Poisson streams is Poisson at the total rate), or
constant arrivals offset by k/rate so that the N streams interleave into one of the total rate.

The plan travels as JSON (HARNESS_CAPACITY_PLAN, or the master's message to its workers);
the keys are the fields of `Plan`.
"""

from __future__ import annotations

import functools
import json
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ARRIVALS",
    "DROPPED",
    "HELD",
    "OPEN",
    "Plan",
    "arrivals",
    "open_name",
    "step_label",
]

OPEN = "OPEN"  # request_type of the corrected (intended-start) latency rows
DROPPED = "DROPPED"  # request_type of the sends that could not go on time (the generator)
HELD = "HELD"  # request_type of the sends no user was free for (every user awaited a reply)
ARRIVALS = ("poisson", "constant")


@dataclass(frozen=True)
class Plan:
    rates: tuple[float, ...]  # offered req/s per step, every process together
    step_s: float
    arrival: str = "poisson"
    seed: int = 1
    late_s: float = 0.2  # a send picked up later than this after its time is dropped
    in_flight_s: float = 5.0  # users per step = rate * in_flight_s: replies this slow still
    min_users: int = 10  # find a free user
    max_users: int = 1000
    mix: str = "chat"  # chat: the chat tasks (3:3:2); health: GET health_path only
    pool: str = "mixed"  # mixed (4 ordinary : 1 whale), whales, ordinary
    health_path: str = "/healthz"
    stop_file: str = ""  # when this file exists, the load stops (the harness saw the knee)
    timeline_file: str = ""  # where the master (or the only process) writes t0 and the steps

    def __post_init__(self) -> None:
        if not self.rates or any(r <= 0 for r in self.rates):
            raise ValueError("a plan needs at least one step and positive rates")
        if self.step_s <= 0:
            raise ValueError("step_s must be positive")
        if self.arrival not in ARRIVALS:
            raise ValueError(f"arrival must be one of {ARRIVALS}, got {self.arrival!r}")

    @property
    def duration_s(self) -> float:
        return self.step_s * len(self.rates)

    def users_for(self, step: int) -> int:
        """Users for `step` (every process together): enough that a reply `in_flight_s`
        slow still leaves a user free for the next arrival."""
        rate = self.rates[min(max(step, 0), len(self.rates) - 1)]
        return max(self.min_users, min(self.max_users, math.ceil(rate * self.in_flight_s)))

    def step_at(self, elapsed_s: float) -> int:
        """The step running `elapsed_s` after t0 (0 before t0; len(rates) once over)."""
        return min(len(self.rates), max(0, int(elapsed_s // self.step_s)))

    def to_json(self) -> str:
        data = asdict(self)
        data["rates"] = list(self.rates)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str | Mapping[str, Any]) -> Plan:
        data = dict(json.loads(text) if isinstance(text, str) else text)
        data["rates"] = tuple(float(r) for r in data["rates"])
        return cls(**data)


@functools.lru_cache(maxsize=4096)
def step_label(step: int, rate: float) -> str:
    """`step 03 (8 req/s)`: steps count from 1 in names, from 0 in code. Cached: the generator
    names every arrival, thousands a second at the ceiling."""
    return f"step {step + 1:02d} ({rate:g} req/s)"


@functools.lru_cache(maxsize=4096)
def open_name(endpoint: str, step: int, rate: float) -> str:
    """The name of a corrected-latency row: `POST /chat @ step 03 (8 req/s)`."""
    return f"{endpoint} @ {step_label(step, rate)}"


def arrivals(plan: Plan, worker_index: int = 0, workers: int = 1) -> Iterator[tuple[float, int]]:
    """(seconds after t0, step index) of every send of process `worker_index` of `workers`."""
    if not 0 <= worker_index < workers:
        raise ValueError(f"worker_index {worker_index} is not in [0, {workers})")
    rng = random.Random(plan.seed * 1_000_003 + worker_index)
    for step, total in enumerate(plan.rates):
        rate = total / workers
        start, end = step * plan.step_s, (step + 1) * plan.step_s
        poisson = plan.arrival == "poisson"
        t = start + (rng.expovariate(rate) if poisson else worker_index / total)
        while t < end:
            yield t, step
            t += rng.expovariate(rate) if poisson else 1.0 / rate
