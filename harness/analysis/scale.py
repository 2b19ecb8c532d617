"""What a reader must know about the scale of a run: the ceiling (and the bare Locust beside
it) and the process counts of the load phase. Pure (pandas, no I/O); the report places them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from harness.analysis.bounds import CEILING


def scale_notes(frame: pd.DataFrame, phases: Sequence[Mapping[str, Any]] = ()) -> list[str]:
    """What a reader must know about the ceiling and the process counts."""
    notes: list[str] = []
    for record in phases:
        if record.get("phase") == CEILING and record.get("status") != "passed":
            notes.append(
                f"Ceiling: {record.get('status')} ({record.get('detail') or 'no detail'})."
            )
    if frame.empty:
        return notes
    ceiling = frame[(frame["design"] == CEILING) & (frame["metric"] == "capacity_rps")]
    if not ceiling.empty:
        bound = frame[(frame["design"] == CEILING) & (frame["metric"] == "capacity_lower_bound")]
        at_least = "at least " if not bound.empty and float(bound["value"].iloc[0]) else ""
        notes.append(
            f"Ceiling: the open-model capacity search against the health endpoint of the same "
            f"server stack held {at_least}{float(ceiling['value'].iloc[0]):.1f} req/s at its "
            "objective; each design's capacity (and closed-load throughput) is also shown as "
            "a fraction of it."
        )
        bare = frame[(frame["design"] == CEILING) & (frame["metric"] == "bare_locust_rps")]
        if not bare.empty:
            rps = float(bare["value"].iloc[0])
            share = float(ceiling["value"].iloc[0]) / rps if rps > 0 else math.nan
            delivered = frame[
                (frame["design"] == CEILING) & (frame["metric"] == "delivered_max_rps")
            ]
            generator = (
                f" The open-model generator itself delivered up to "
                f"{float(delivered['value'].iloc[0]):,.0f} req/s in the search "
                f"({float(delivered['value'].iloc[0]) / rps:.0%} of it): the ceiling is where "
                "the server's p95 passed its objective, not where the generator gave out."
                if not delivered.empty and rps > 0
                else ""
            )
            notes.append(
                f"Load generator calibration: a bare Locust (closed, no wait, the same processes) "
                f"reached {rps:,.0f} req/s on the same endpoint in the same run; the ceiling is "
                f"{at_least}{share:.0%} of it.{generator}"
            )
    workers = frame[
        (frame["phase"] == "load") & frame["metric"].isin(["app_workers", "load_workers"])
    ]
    if not workers.empty:
        app = _process_count(workers, "app_workers")
        load = _process_count(workers, "load_workers")
        notes.append(
            f"The load phase ran {app} app worker process(es) and {load} Locust process(es); "
            "the profile and probe phases always run one app process (tracemalloc and memray "
            "see one process)."
        )
    return notes


def _process_count(workers: pd.DataFrame, metric: str) -> int:
    """The largest count recorded; 1 when none is (or it is 0)."""
    largest = workers[workers["metric"] == metric]["value"].max()
    return 1 if math.isnan(largest) or largest < 1 else int(largest)


def ceiling_line(rows: Sequence[Any], objective_ms: float, health: str, target: str) -> str:
    """The console's line on the ceiling: its figure ("at least" without a knee) and the bare
    Locust's beside it. `rows`: the ceiling's summary rows (SummaryRow)."""
    values = {r.metric: r.value for r in rows if r.design == CEILING and not r.labels}
    rps = values.get("capacity_rps", math.nan)
    at_least = "at least " if values.get("capacity_lower_bound") else ""
    line = (
        f"ceiling: {at_least}{rps:g} req/s at p95 <= {objective_ms:g} ms (the capacity search "
        f"against {health} of {target}, {values.get('ceiling_load_workers', 1):g} Locust "
        "process(es)); each design's capacity is shown as a fraction of it"
    )
    bare = values.get("bare_locust_rps")
    if bare:
        share = f"{at_least}{rps / bare:.0%}"
        line += f". Bare Locust on the same endpoint: {bare:,.0f} req/s (the ceiling: {share})"
        delivered = values.get("delivered_max_rps")
        if delivered:
            line += (
                f"; the open-model generator delivered up to {delivered:,.0f} req/s in the "
                f"search ({delivered / bare:.0%} of the bare Locust's)"
            )
    return line
