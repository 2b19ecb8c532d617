"""A spike: ramp up, hold, drop to almost nothing, hold; ordinary users and whales (4:1).

The shape reads -u (peak users), -r (ramp rate) and -t (total run time) from the command
line. Over a run of T seconds:

- ramp from 0 to U users at R users/s, then hold U users until 55% of T;
- drop at once to max(1, U // 10) users and hold them until T, then stop.

The quiet tail lets the report show whether memory returns to its warmed-up level.
The harness needs none of these numbers: it finds the windows in Locust's user counts.
"""

from __future__ import annotations

from locust import LoadTestShape

from scenarios.common import ChatUser, WhaleUser

__all__ = ["ChatUser", "SpikeShape", "WhaleUser"]

PEAK_END = 0.55  # fraction of the run time at which the load drops
DROP_RATE = 100.0  # users stopped per second at the drop: a cliff, not a ramp


def spike_users(elapsed: float, total: float, peak: int) -> int | None:
    """Target user count at `elapsed` seconds of a `total`-second run; None: stop."""
    if elapsed >= total:
        return None
    if elapsed < PEAK_END * total:
        return peak
    return max(1, peak // 10)


class SpikeShape(LoadTestShape):
    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        peak = int(getattr(options, "num_users", None) or 10)
        rate = float(getattr(options, "spawn_rate", None) or 10)
        total = float(getattr(options, "run_time", None) or 60)
        users = spike_users(self.get_run_time(), total, peak)
        if users is None:
            return None
        return users, (rate if users == peak else DROP_RATE)
