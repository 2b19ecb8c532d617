"""The capacity search, computed: Locust's open-model rows -> steps -> verdicts -> capacity.

Pure functions over frames (no I/O). The capacity locustfile (scenarios/capacity.py) names its
rows so that Locust's own statistics hold one row per step and endpoint:

- Type OPEN, Name `<endpoint> @ step 03 (8 req/s)`: latency from each request's *intended*
  send time (coordinated omission corrected);
- Type DROPPED, Name `step 03 (8 req/s)`: sends the generator could not make on time (a
  user was ready for the send, but woke more than `late_s` after its time);
- Type HELD, Name `step 03 (8 req/s)`: sends for which no user was free in time, because
  every user of the process was waiting for a reply: the server held rate x in_flight_s
  requests, so by Little's law its latency was past any objective. Not the generator's
  limit: the server's.

A step *met* the objective when, with at most `max_dropped_ratio` of its sends dropped, at
most `max_error_ratio` of its sends held and of its requests failed, every endpoint with an
objective kept its corrected p95 at or under it. The capacity is the offered rate of the
highest step that met it with every step before it met too; the first step that did not is
the knee. A step with
too many drops says "load generator saturated": no capacity figure comes from it, and the
capacity found below it is a lower bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from harness.results import SummaryRow

__all__ = [
    "Capacity",
    "EndpointStep",
    "Limits",
    "Step",
    "Verdict",
    "capacity_rows",
    "endpoint_frame",
    "find_capacity",
    "first_miss",
    "judge",
    "memory_by_step",
    "parse_steps",
    "plan_rates",
    "steady_rps",
    "steps_frame",
]

PHASE = "capacity"
OPEN = "OPEN"
DROPPED = "DROPPED"
HELD = "HELD"
_OPEN_NAME = re.compile(r"^(?P<endpoint>.+) @ step (?P<step>\d+) \((?P<rate>[0-9.e+-]+) req/s\)$")
_DROPPED_NAME = re.compile(r"^step (?P<step>\d+) \((?P<rate>[0-9.e+-]+) req/s\)$")

Status = Literal["met", "missed", "saturated", "empty"]


def plan_rates(start_rps: float, factor: float, steps: int) -> tuple[float, ...]:
    """A geometric staircase: start, start*factor, ... (`steps` rates, 3 significant digits)."""
    if start_rps <= 0 or factor <= 1 or steps < 1:
        raise ValueError("start_rps > 0, factor > 1 and steps >= 1 are needed")
    return tuple(float(f"{start_rps * factor**i:.3g}") for i in range(steps))


@dataclass(frozen=True)
class Limits:
    """What a step must keep to meet the objective."""

    objectives_p95_ms: Mapping[str, float]  # endpoint -> corrected p95 objective
    max_error_ratio: float = 0.01
    max_dropped_ratio: float = 0.05
    default_p95_ms: float | None = None  # endpoints not named above; None: reported, not judged

    def objective_for(self, endpoint: str) -> float | None:
        return self.objectives_p95_ms.get(endpoint, self.default_p95_ms)


@dataclass(frozen=True)
class EndpointStep:
    endpoint: str
    requests: int
    failures: int
    p50_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Step:
    index: int  # from 0; names count from 1
    offered_rps: float
    step_s: float
    endpoints: tuple[EndpointStep, ...] = ()
    dropped: int = 0
    held: int = 0  # sends no user was free for: every user waited on a reply

    @property
    def requests(self) -> int:
        return sum(e.requests for e in self.endpoints)

    @property
    def failures(self) -> int:
        return sum(e.failures for e in self.endpoints)

    @property
    def achieved_rps(self) -> float:
        """Requests of this step's arrivals that were sent and answered, per second."""
        return self.requests / self.step_s

    @property
    def error_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def arrivals(self) -> int:
        """The step's scheduled sends that came due: answered, dropped or held."""
        return self.requests + self.dropped + self.held

    @property
    def dropped_ratio(self) -> float:
        return self.dropped / self.arrivals if self.arrivals else 0.0

    @property
    def held_ratio(self) -> float:
        return self.held / self.arrivals if self.arrivals else 0.0


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str = ""
    worst_endpoint: str = ""  # the gated endpoint closest to (or furthest over) its objective
    worst_ratio: float = math.nan  # its p95 / objective


@dataclass(frozen=True)
class Capacity:
    """The search's outcome. `capacity_rps` is 0 when even the first step missed."""

    capacity_rps: float
    status: Literal["knee", "saturated", "not reached", "below start", "no data"]
    reason: str
    capacity_step: int | None = None
    knee_step: int | None = None
    knee_rps: float | None = None
    verdicts: tuple[Verdict, ...] = field(default_factory=tuple)

    @property
    def lower_bound(self) -> bool:
        """True when the search ended without finding the knee (the capacity is at least)."""
        return self.status in ("saturated", "not reached")


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def parse_steps(stats: pd.DataFrame | None, step_s: float) -> list[Step]:
    """The steps found in a Locust stats frame, in order (a step with no row is absent)."""
    if stats is None or stats.empty or "Type" not in stats:
        return []
    endpoints: dict[int, list[EndpointStep]] = {}
    rates: dict[int, float] = {}
    dropped: dict[int, int] = {}
    held: dict[int, int] = {}
    for record in stats.to_dict("records"):
        kind, name = str(record.get("Type")), str(record.get("Name"))
        if kind == OPEN and (m := _OPEN_NAME.match(name)):
            index = int(m["step"]) - 1
            rates[index] = float(m["rate"])
            endpoints.setdefault(index, []).append(
                EndpointStep(
                    endpoint=m["endpoint"],
                    requests=int(_number(record.get("Request Count")) or 0),
                    failures=int(_number(record.get("Failure Count")) or 0),
                    p50_ms=_number(record.get("50%")),
                    p95_ms=_number(record.get("95%")),
                    p99_ms=_number(record.get("99%")),
                )
            )
        elif kind in (DROPPED, HELD) and (m := _DROPPED_NAME.match(name)):
            index = int(m["step"]) - 1
            rates[index] = float(m["rate"])
            count = int(_number(record.get("Request Count")) or 0)
            (dropped if kind == DROPPED else held)[index] = count
    return [
        Step(
            index=i,
            offered_rps=rates[i],
            step_s=step_s,
            endpoints=tuple(sorted(endpoints.get(i, []), key=lambda e: e.endpoint)),
            dropped=dropped.get(i, 0),
            held=held.get(i, 0),
        )
        for i in sorted(rates)
    ]


def judge(step: Step, limits: Limits) -> Verdict:
    """Did `step` meet the objective? Drops first: a starved generator proves nothing. Held
    sends next: a server that kept every user waiting missed, whatever the few replies that
    came back said."""
    if step.arrivals == 0:
        return Verdict("empty", "no request of this step finished")
    worst, worst_ratio = "", -math.inf
    for e in step.endpoints:
        objective = limits.objective_for(e.endpoint)
        if objective and not math.isnan(e.p95_ms) and e.p95_ms / objective > worst_ratio:
            worst, worst_ratio = e.endpoint, e.p95_ms / objective
    ratio = worst_ratio if worst else math.nan
    if step.dropped_ratio > limits.max_dropped_ratio:
        return Verdict(
            "saturated",
            f"load generator saturated: {step.dropped_ratio:.0%} of sends dropped "
            f"(> {limits.max_dropped_ratio:.0%})",
            worst,
            ratio,
        )
    if step.held_ratio > limits.max_error_ratio:
        return Verdict(
            "missed",
            f"{step.held_ratio:.1%} of sends found every user waiting on a reply "
            f"(> {limits.max_error_ratio:.0%}): the server held them all",
            worst,
            ratio,
        )
    if step.error_ratio > limits.max_error_ratio:
        return Verdict(
            "missed",
            f"{step.error_ratio:.1%} of requests failed (> {limits.max_error_ratio:.0%})",
            worst,
            ratio,
        )
    if worst and worst_ratio > 1.0:
        endpoint = next(e for e in step.endpoints if e.endpoint == worst)
        return Verdict(
            "missed",
            f"{worst} p95 {endpoint.p95_ms:,.0f} ms > {limits.objective_for(worst) or 0:,.0f} ms",
            worst,
            ratio,
        )
    return Verdict("met", "", worst, ratio)


def first_miss(steps: Sequence[Step], limits: Limits, through: int) -> int | None:
    """The index of the first step up to `through` that did not meet the objective."""
    for step in steps:
        if step.index > through:
            break
        if judge(step, limits).status in ("missed", "saturated"):
            return step.index
    return None


def find_capacity(steps: Sequence[Step], limits: Limits) -> Capacity:
    """The highest step that met the objective, every step below it too; see the module doc."""
    verdicts = tuple(judge(s, limits) for s in steps)
    if not steps:
        return Capacity(0.0, "no data", "no open-model rows in the statistics")
    best: Step | None = None
    for step, verdict in zip(steps, verdicts, strict=True):
        if verdict.status == "empty":
            continue
        if verdict.status == "met":
            best = step
            continue
        capacity = best.offered_rps if best is not None else 0.0
        where = f"at {step.offered_rps:g} req/s: {verdict.reason}"
        if verdict.status == "saturated":
            status: Literal["knee", "saturated", "below start"] = "saturated"
        else:
            status = "knee" if best is not None else "below start"
        return Capacity(
            capacity,
            status,
            where,
            best.index if best else None,
            step.index,
            step.offered_rps,
            verdicts,
        )
    if best is None:
        return Capacity(0.0, "no data", "no step finished a request", verdicts=verdicts)
    return Capacity(
        best.offered_rps,
        "not reached",
        f"every step met the objective, up to {best.offered_rps:g} req/s",
        best.index,
        verdicts=verdicts,
    )


def steady_rps(history: pd.DataFrame | None) -> float:
    """A closed load's steady throughput from Locust's stats history: the median of the
    Aggregated rows' Requests/s over the second half of the run (the first half holds the
    spawn). NaN without rows."""
    if history is None or history.empty or "Requests/s" not in history:
        return math.nan
    rows = history[history["Name"] == "Aggregated"] if "Name" in history else history
    rates = pd.to_numeric(rows["Requests/s"], errors="coerce").dropna()
    rates = rates[rates > 0]
    if rates.empty:
        return math.nan
    return float(rates.iloc[len(rates) // 2 :].median())


def memory_by_step(
    samples: pd.DataFrame | None, t0_unix: float, step_s: float, steps: int
) -> pd.DataFrame:
    """Max RSS and USS of the process tree ('total' rows) during each step: columns step,
    rss_max_bytes, uss_max_bytes (NaN where no sample fell in the step)."""
    columns = ["step", "rss_max_bytes", "uss_max_bytes"]
    if samples is None or samples.empty or "unix_s" not in samples or not math.isfinite(t0_unix):
        # no samples, or no known start of the schedule (a Locust master whose workers never
        # reported one): memory per step is unknown, not an error
        return pd.DataFrame({"step": range(steps)}).reindex(columns=columns)
    totals = samples[samples["pid"].astype(str) == "total"].copy()
    totals["unix_s"] = pd.to_numeric(totals["unix_s"], errors="coerce")
    for column in ("rss_bytes", "uss_bytes"):  # sparse columns: USS is not read every sample
        if column in totals:
            totals[column] = pd.to_numeric(totals[column], errors="coerce")
    totals = totals[totals["unix_s"].notna()]
    step_of = ((totals["unix_s"] - t0_unix) // step_s).astype(int)
    inside = totals[(step_of >= 0) & (step_of < steps)].assign(step=step_of)
    grouped = inside.groupby("step").agg(
        rss_max_bytes=("rss_bytes", "max"), uss_max_bytes=("uss_bytes", "max")
    )
    return grouped.reindex(range(steps)).rename_axis("step").reset_index()[columns]


def steps_frame(
    steps: Sequence[Step], limits: Limits, memory: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per step: offered and achieved rates, the worst gated endpoint's corrected
    percentiles, errors, drops, memory and the verdict."""
    rows = []
    for step in steps:
        verdict = judge(step, limits)
        worst = next((e for e in step.endpoints if e.endpoint == verdict.worst_endpoint), None)
        rows.append(
            {
                "step": step.index + 1,
                "offered_rps": step.offered_rps,
                "achieved_rps": round(step.achieved_rps, 3),
                "requests": step.requests,
                "failures": step.failures,
                "error_ratio": round(step.error_ratio, 4),
                "dropped": step.dropped,
                "dropped_ratio": round(step.dropped_ratio, 4),
                "held": step.held,
                "held_ratio": round(step.held_ratio, 4),
                "worst_endpoint": verdict.worst_endpoint,
                "p50_ms": worst.p50_ms if worst else math.nan,
                "p95_ms": worst.p95_ms if worst else math.nan,
                "p99_ms": worst.p99_ms if worst else math.nan,
                "p95_objective_ratio": round(verdict.worst_ratio, 3),
                "verdict": verdict.status,
                "reason": verdict.reason,
            }
        )
    frame = pd.DataFrame(rows)
    if memory is not None and not frame.empty and not memory.empty:
        mem = memory.assign(step=memory["step"] + 1)
        frame = frame.merge(mem, on="step", how="left")
    return frame


def endpoint_frame(steps: Sequence[Step], limits: Limits) -> pd.DataFrame:
    """One row per step and endpoint: corrected p50/p95/p99 and the objective (if gated)."""
    return pd.DataFrame(
        [
            {
                "step": step.index + 1,
                "offered_rps": step.offered_rps,
                "endpoint": e.endpoint,
                "requests": e.requests,
                "failures": e.failures,
                "p50_ms": e.p50_ms,
                "p95_ms": e.p95_ms,
                "p99_ms": e.p99_ms,
                "objective_p95_ms": limits.objective_for(e.endpoint) or math.nan,
            }
            for step in steps
            for e in step.endpoints
        ]
    )


def capacity_rows(
    design: str,
    phase: str,
    result: Capacity,
    limits: Limits,
    memory: pd.DataFrame | None = None,
    ceiling_rps: float | None = None,
    endpoints: Iterable[str] = (),
    at_capacity: Mapping[str, float] | None = None,
) -> list[SummaryRow]:
    """Summary rows: capacity_rps (req/s; 0 below the first step), capacity_lower_bound
    (1: no knee found), knee_rps, objective_p95_ms{endpoint}, rss/uss_at_capacity_bytes,
    capacity_ceiling_fraction (with a ceiling)."""
    rows = [
        SummaryRow(design, phase, "capacity_rps", result.capacity_rps, "req/s"),
        SummaryRow(design, phase, "capacity_lower_bound", float(result.lower_bound), "bool"),
    ]
    if result.knee_rps is not None:
        rows.append(SummaryRow(design, phase, "knee_rps", result.knee_rps, "req/s"))
    seen = set(endpoints)
    objectives = dict(limits.objectives_p95_ms)
    if limits.default_p95_ms is not None:
        objectives |= {e: limits.default_p95_ms for e in seen if e not in objectives}
    for endpoint, objective in sorted(objectives.items()):
        if not seen or endpoint in seen:
            rows.append(
                SummaryRow(
                    design,
                    phase,
                    "objective_p95_ms",
                    float(objective),
                    "ms",
                    {"endpoint": endpoint},
                )
            )
    for column, metric in (
        ("rss_max_bytes", "rss_at_capacity_bytes"),
        ("uss_max_bytes", "uss_at_capacity_bytes"),
    ):
        value = (at_capacity or {}).get(column, math.nan)
        if not math.isnan(value):
            rows.append(SummaryRow(design, phase, metric, value, "bytes"))
    if (
        at_capacity is None
        and memory is not None
        and result.capacity_step is not None
        and not memory.empty
    ):
        at = memory[memory["step"] == result.capacity_step]
        for column, metric in (
            ("rss_max_bytes", "rss_at_capacity_bytes"),
            ("uss_max_bytes", "uss_at_capacity_bytes"),
        ):
            value = _number(at[column].iloc[0]) if not at.empty else math.nan
            if not math.isnan(value):
                rows.append(SummaryRow(design, phase, metric, value, "bytes"))
    if ceiling_rps:
        rows.append(
            SummaryRow(
                design,
                phase,
                "capacity_ceiling_fraction",
                result.capacity_rps / ceiling_rps,
                "ratio",
            )
        )
    return rows
