"""Refining a knee: bisect between the last rate that met the objective and the first that
missed, until the two are within a given precision (a breakpoint test's refinement).

Pure (no I/O). The staircase (harness.analysis.capacity.find_capacity) brackets the capacity
within one step factor (x1.7 in the quick profile: the figure could be up to 41% under the
truth). Each refinement probes the geometric middle of the bracket, one step at that rate,
and keeps the half the verdict points to: after k probes the bracket is factor^(1/2^k) wide,
so x1.7 needs three probes to come within 10%, x1.3 two.

A probe the load generator could not send (saturated) says nothing about the server: the
refinement stops there, and the capacity stays what was proven (a lower bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from harness.analysis.capacity import Capacity, Verdict

__all__ = ["Probe", "next_rate", "refine", "within"]


@dataclass(frozen=True)
class Probe:
    """One refinement step: the offered rate and its verdict."""

    rate_rps: float
    verdict: Verdict


def _rounded(rate: float) -> float:
    return float(f"{rate:.3g}")


def within(met_rps: float, missed_rps: float, precision: float) -> bool:
    """True when the bracket [met, missed] is at most `precision` wide (0.1: missed is at
    most 10% above met)."""
    return met_rps > 0 and missed_rps <= met_rps * (1.0 + precision) + 1e-9


def next_rate(capacity: Capacity, precision: float) -> float | None:
    """The rate to probe next, or None when there is nothing to refine: no knee (no
    bracket, or below the first step), or a bracket already within `precision`."""
    if capacity.status != "knee" or capacity.knee_rps is None:
        return None
    met, missed = capacity.capacity_rps, capacity.knee_rps
    if met <= 0 or within(met, missed, precision):
        return None
    middle = _rounded(math.sqrt(met * missed))
    if not met < middle < missed:  # three significant digits cannot split it further
        return None
    return middle


def refine(capacity: Capacity, probe: Probe) -> Capacity:
    """The capacity once `probe` is known: met raises the floor, missed lowers the knee,
    saturated ends the search with a lower bound."""
    status = probe.verdict.status
    rate = probe.rate_rps
    if status == "met" and rate > capacity.capacity_rps:
        return replace(
            capacity,
            capacity_rps=rate,
            capacity_step=None,
            reason=_bracket_reason(rate, capacity.knee_rps, capacity.reason),
        )
    if status == "missed" and capacity.knee_rps is not None and rate < capacity.knee_rps:
        return replace(
            capacity,
            knee_rps=rate,
            knee_step=None,
            reason=f"at {rate:g} req/s: {probe.verdict.reason}",
        )
    if status == "saturated":
        return replace(
            capacity,
            status="saturated",
            reason=f"at {rate:g} req/s: {probe.verdict.reason}",
        )
    return capacity


def _bracket_reason(met: float, knee: float | None, reason: str) -> str:
    return reason if knee is not None else f"every step met the objective, up to {met:g} req/s"
