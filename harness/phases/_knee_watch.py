"""The capacity search's watch on a running staircase: stop Locust at the first missed step."""

from __future__ import annotations

import time
from pathlib import Path

from harness.analysis.capacity import Limits, Step, first_miss, parse_steps
from harness.phases.load import _read_csv

__all__ = ["KneeWatch"]


class KneeWatch:
    """Polled while Locust runs: judges every finished step and, at the first miss, creates
    the stop file the locustfile's shape looks for."""

    def __init__(
        self, step_s: float, limits: Limits, stats_csv: Path, stop_file: Path, settle_s: float
    ) -> None:
        self.step_s = step_s
        self.limits = limits
        self.stats_csv = stats_csv
        self.stop_file = stop_file
        self.settle_s = settle_s
        self.knee: int | None = None
        self._newest = -1
        self._newest_seen = 0.0
        self._mtime = 0.0
        self._steps: list[Step] = []

    def poll(self) -> None:
        if self.knee is not None:
            return
        try:
            mtime = self.stats_csv.stat().st_mtime
        except FileNotFoundError:
            return
        now = time.monotonic()
        if mtime != self._mtime:
            self._mtime = mtime
            steps = parse_steps(_read_csv(self.stats_csv), self.step_s)
            newest = max((s.index for s in steps), default=-1)
            if newest > self._newest:
                self._newest, self._newest_seen = newest, now
            self._steps = steps
        # Only finished steps, once their rows have settled: the replies still missing are the
        # slow ones, so a step judged then can only look worse later, never better. (A running
        # step can look worse early than at its end: the spawn of its users, a cold cache.)
        if self._newest < 1 or now - self._newest_seen < self.settle_s:
            return
        knee = first_miss(self._steps, self.limits, self._newest - 1)
        if knee is not None:
            self.knee = knee
            self.stop_file.touch()
