"""The knee refinement's edges found by `make mutation`: the bracket's exact bounds, a middle
that rounds onto an end, and a probe at a rate already known, in full."""

from __future__ import annotations

from harness.analysis.capacity import Capacity, Verdict
from harness.analysis.knee import Probe, next_rate, refine, within


def knee(met: float, missed: float, step: int | None = 1) -> Capacity:
    return Capacity(met, "knee", "at x: slow", capacity_step=step, knee_step=2, knee_rps=missed)


def test_within_bounds() -> None:
    assert not within(0.0, 0.0, 0.1)  # nothing met: no bracket
    assert within(0.5, 0.5, 0.1)
    assert within(10.0, 10 * 1.1 + 1e-9, 0.1)  # at the precision is within it


def test_next_rate_splits_from_a_low_floor_but_not_onto_an_end() -> None:
    assert next_rate(knee(1.0, 4.0), 0.1) == 2.0
    assert next_rate(knee(1.0, 1.002), 0.0) is None  # the middle rounds to 1.0, the floor
    assert next_rate(knee(0.9991, 1.0), 0.0) is None  # the middle rounds to 1.0, the knee


def test_refine_in_full() -> None:
    capacity = knee(10.0, 20.0)
    met, missed = Verdict("met"), Verdict("missed", "p95 too slow")
    assert refine(capacity, Probe(10.0, met)) == capacity  # no higher than known: no news
    assert refine(capacity, Probe(20.0, missed)) == capacity
    assert refine(capacity, Probe(14.0, met)) == Capacity(
        14.0, "knee", "at x: slow", capacity_step=None, knee_step=2, knee_rps=20.0
    )
    assert refine(capacity, Probe(14.0, missed)) == Capacity(
        10.0, "knee", "at 14 req/s: p95 too slow", capacity_step=1, knee_step=None, knee_rps=14.0
    )
    starved = refine(capacity, Probe(14.0, Verdict("saturated", "drops")))
    assert (starved.status, starved.reason) == ("saturated", "at 14 req/s: drops")


def test_refine_without_a_knee_says_every_step_met() -> None:
    open_ended = Capacity(10.0, "not reached", "every step met the objective, up to 10 req/s")
    raised = refine(open_ended, Probe(12.0, Verdict("met")))
    assert raised.reason == "every step met the objective, up to 12 req/s"
