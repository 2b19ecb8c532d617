"""Probe figures: per-request tracemalloc measurements -> tidy summary rows. Pure, no I/O.

Input: one row per measured request (the columns of ``probe_requests.csv``). Output rows:

- ``alloc_peak_bytes{endpoint,history_len}``: median over the reps;
- ``alloc_net_bytes{endpoint,history_len}``: median over the reps;
- ``alloc_cv{endpoint,history_len}``: coefficient of variation of alloc_peak_bytes across the reps
  (sample standard deviation / mean, a ratio; 0 when every rep is equal; left out below 2 reps);
- ``alloc_slope_bytes_per_unit{endpoint}``: least-squares slope of the median alloc_peak_bytes
  against history_len, one point per history length (medians, so one odd rep does not tilt the
  line); left out when fewer than two distinct history lengths were probed.
- ``alloc_peak_spread_bytes{endpoint,history_len}``: the robust spread of alloc_peak_bytes across
  the reps (1.4826 x the median absolute deviation: the standard deviation for normal noise, and
  one odd rep does not inflate it); the gate scales its limits by it.

From the leak runs (input: one row per checkpoint, ``probe_retained.csv``; column ``run``: 0
the warm-up until steady, 1 the run, 2 its confirmation):

- ``retained_bytes_per_request{endpoint,history_len}``: the rate of traced memory (after a
  collection) against the number of requests sent, from a step-and-slope fit of the last run
  (harness.analysis.leak: a one-time jump is taken out, the rate is Theil-Sen's): what each
  request leaves behind for good. Requests that reset the history afterwards have the rate of
  the resets alone (their own run, endpoint ``RESET``) subtracted, so the probe's bookkeeping
  does not count;
- ``retained_step_bytes{endpoint,history_len}``: the one-time growth: what the traced memory
  grew by from the endpoint's first request in the process to the end of its runs, minus what
  the rate explains (a cache filling, an object built on first use);
- ``retained_blocks_per_request{endpoint,history_len}``: the Theil-Sen rate of allocated blocks;
- ``retained_stderr_bytes{endpoint,history_len}``: the standard error of the rate (both runs'
  combined when one is subtracted): how finely the run resolved it.

A rate after a warm-up until steady, not one request's net figure nor a line through the
run: a cache filled once lands in the warm-up or shows as one step, while a leak adds the same
bytes at every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import numpy as np
import pandas as pd

from harness.analysis.leak import estimate_leak, theil_sen_slope
from harness.analysis.seen import SEEN_METRICS
from harness.results import SummaryRow

PHASE = "probe"
ENDPOINTS = ("chat", "chat_stream", "history")
RESET = "reset"  # the leak run of the probe's own history resets, subtracted from the others
RESETS_AFTER = ("chat", "chat_stream")  # endpoints whose requests are followed by a reset
MAD_TO_SIGMA = 1.4826
CHECKPOINT_COLUMNS = ("endpoint", "history_len", "requests", "traced_bytes", "blocks")
# Optional column of the checkpoints: 0 the warm-up until steady, 1 the leak run, 2 its
# confirmation (a longer run); without it, every row is the leak run.
RUN_COLUMN = "run"
# Optional column of both frames: which fresh server process measured the row (1, 2, ...). The
# reps of every process are pooled; each leak run is estimated in its own process.
PROCESS_COLUMN = "process"
# Optional column of the checkpoints: 1 where each request was followed by the setup, so the
# RESET run's slope is subtracted; without it, RESETS_AFTER says which endpoints reset.
RESETS_COLUMN = "resets_after"
REQUEST_COLUMNS = (
    "endpoint",
    "history_len",
    "rep",
    "alloc_peak_bytes",
    "alloc_net_bytes",
    "blocks",
    "duration_s",
    "status",
)


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Slope of the least-squares line through (xs, ys); needs two distinct xs."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"xs and ys differ in length: {x.size} vs {y.size}")
    if np.unique(x).size < 2:
        raise ValueError("a slope needs at least two distinct x values")
    design = np.column_stack([x, np.ones_like(x)])
    (slope, _intercept), *_ = np.linalg.lstsq(design, y, rcond=None)
    return float(slope)


def coefficient_of_variation(values: Iterable[float]) -> float:
    """Sample standard deviation / mean (a ratio). 0 for equal values; needs two values."""
    v = np.asarray(list(values), dtype=float)
    if v.size < 2:
        raise ValueError("a coefficient of variation needs at least two values")
    mean = float(v.mean())
    std = float(v.std(ddof=1))
    if std == 0.0:
        return 0.0
    if mean == 0.0:
        return float("inf")
    return std / abs(mean)


def robust_spread(values: Iterable[float]) -> float:
    """1.4826 x the median absolute deviation (0 for equal values; needs one value)."""
    v = np.asarray(list(values), dtype=float)
    if v.size == 0:
        raise ValueError("a spread needs at least one value")
    return MAD_TO_SIGMA * float(np.median(np.abs(v - np.median(v))))


def slope_with_stderr(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Least-squares slope and its standard error (0 with two points: the line is exact)."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    slope = least_squares_slope(xs, ys)
    if x.size <= 2:
        return slope, 0.0
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - (slope * x + intercept)
    sxx = float(((x - x.mean()) ** 2).sum())
    stderr = float(np.sqrt((residuals**2).sum() / (x.size - 2) / sxx))
    return slope, stderr


@dataclass(frozen=True)
class Retention:
    """What each request of an endpoint kept for good (``bytes_per_request``, its standard
    error, blocks) and what it kept once (``step_bytes``: a cache filling, an object built on
    first use, from its first request in the process on). ``confirmed``: the rate is that of a
    second, longer run (the first one's rate was high enough to need it)."""

    bytes_per_request: float
    blocks_per_request: float
    stderr_bytes: float
    step_bytes: float = 0.0
    confirmed: bool = False


def _own_retention(group: pd.DataFrame) -> Retention | None:
    """One leak run's figures. The rate is the step-and-slope estimate (harness.analysis.leak)
    of its last run (the confirmation when there is one); the one-time growth is everything the
    traced memory grew by, from the first reading of the warm-up to the last, that the rate
    does not explain."""
    group = group.sort_values(["requests"], kind="stable")
    runs = (
        group[RUN_COLUMN].fillna(1).astype(int)
        if RUN_COLUMN in group
        else pd.Series(1, index=group.index)
    )
    last = int(runs.max())
    final = group[runs == last] if last >= 1 else group
    xs, ys = final["requests"].tolist(), final["traced_bytes"].tolist()
    if final["requests"].nunique() < 2:
        return None
    if final["requests"].nunique() >= 3:
        estimate = estimate_leak(xs, ys)
        rate, stderr = estimate.rate_bytes_per_request, estimate.stderr_bytes
        blocks = theil_sen_slope(xs, final["blocks"].tolist())
    else:
        rate, stderr = slope_with_stderr(xs, ys)
        blocks = least_squares_slope(xs, final["blocks"].tolist())
    growth = float(group["traced_bytes"].iloc[-1] - group["traced_bytes"].iloc[0])
    sent = float(group["requests"].iloc[-1] - group["requests"].iloc[0])
    return Retention(rate, blocks, stderr, growth - rate * sent, last >= 2)


def retention(checkpoints: pd.DataFrame) -> dict[tuple[str, int], Retention]:
    """(endpoint, history_len) -> what each request left behind, from its leak runs: the
    median over processes (column ``process``) of each process's figures."""
    if PROCESS_COLUMN not in checkpoints or checkpoints.empty:
        return _process_retention(checkpoints)
    per_process = [
        _process_retention(group) for _, group in checkpoints.groupby(PROCESS_COLUMN, sort=True)
    ]
    return {key: _median_retention([p[key] for p in per_process if key in p]) for key in
            dict.fromkeys(k for p in per_process for k in p)}  # fmt: skip


def retention_range(checkpoints: pd.DataFrame) -> dict[tuple[str, int], tuple[float, float]]:
    """(endpoint, history_len) -> the lowest and highest leak rate of one process."""
    if PROCESS_COLUMN not in checkpoints or checkpoints.empty:
        return {k: (r.bytes_per_request,) * 2 for k, r in _process_retention(checkpoints).items()}
    rates: dict[tuple[str, int], list[float]] = {}
    for _, group in checkpoints.groupby(PROCESS_COLUMN, sort=True):
        for key, r in _process_retention(group).items():
            rates.setdefault(key, []).append(r.bytes_per_request)
    return {k: (min(v), max(v)) for k, v in rates.items()}


def _median_retention(figures: Sequence[Retention]) -> Retention:
    return Retention(
        bytes_per_request=float(np.median([r.bytes_per_request for r in figures])),
        blocks_per_request=float(np.median([r.blocks_per_request for r in figures])),
        stderr_bytes=float(np.median([r.stderr_bytes for r in figures])),
        step_bytes=float(np.median([r.step_bytes for r in figures])),
        confirmed=any(r.confirmed for r in figures),
    )


def _process_retention(checkpoints: pd.DataFrame) -> dict[tuple[str, int], Retention]:
    """The figures of one process's leak runs.

    Endpoints whose requests were each followed by the setup (column ``resets_after``; without
    that column, those in RESETS_AFTER) have the RESET run's rates subtracted (same size).
    """
    if RESETS_COLUMN in checkpoints:
        flagged = checkpoints[checkpoints[RESETS_COLUMN].fillna(0).astype(int) == 1]
        resetting = set(flagged["endpoint"].astype(str))
    else:
        resetting = set(RESETS_AFTER)
    raw: dict[tuple[str, int], Retention] = {}
    for key, group in checkpoints.groupby(["endpoint", "history_len"], sort=False):
        endpoint, history_len = cast(tuple[str, int], key)
        own = _own_retention(group)
        if own is not None:
            raw[(str(endpoint), int(history_len))] = own
    out: dict[tuple[str, int], Retention] = {}
    for (endpoint, history_len), r in raw.items():
        if endpoint == RESET:
            continue
        reset = raw.get((RESET, history_len)) if endpoint in resetting else None
        if reset is not None:
            r = replace(
                r,
                bytes_per_request=r.bytes_per_request - reset.bytes_per_request,
                blocks_per_request=r.blocks_per_request - reset.blocks_per_request,
                stderr_bytes=float(np.hypot(r.stderr_bytes, reset.stderr_bytes)),
            )
        out[(endpoint, history_len)] = r
    return dict(sorted(out.items(), key=lambda kv: (_endpoint_order(kv[0][0]), kv[0][1])))


def _endpoint_order(endpoint: str) -> tuple[int, str]:
    return (ENDPOINTS.index(endpoint) if endpoint in ENDPOINTS else len(ENDPOINTS), endpoint)


def per_point(requests: pd.DataFrame) -> pd.DataFrame:
    """One row per (endpoint, history_len): reps, peak and net medians, cv (NaN below 2 reps)."""
    missing = {"endpoint", "history_len", "alloc_peak_bytes", "alloc_net_bytes"} - set(requests)
    if missing:
        raise ValueError(f"probe requests lack columns: {', '.join(sorted(missing))}")
    rows: list[dict[str, Any]] = []
    for key, group in requests.groupby(["endpoint", "history_len"], sort=False):
        endpoint, history_len = cast(tuple[str, int], key)
        peaks = group["alloc_peak_bytes"].astype(float)
        rows.append(
            {
                "endpoint": str(endpoint),
                "history_len": int(history_len),
                "reps": len(group),
                "alloc_peak_bytes": float(peaks.median()),
                "alloc_net_bytes": float(group["alloc_net_bytes"].astype(float).median()),
                "alloc_cv": coefficient_of_variation(peaks) if len(group) >= 2 else float("nan"),
                "alloc_peak_spread": robust_spread(peaks),
                "alloc_peak_low": float(peaks.min()),
                "alloc_peak_high": float(peaks.max()),
            }
        )
    rows.sort(key=lambda r: (_endpoint_order(str(r["endpoint"])), int(r["history_len"])))
    return pd.DataFrame(
        rows,
        columns=[
            "endpoint",
            "history_len",
            "reps",
            "alloc_peak_bytes",
            "alloc_net_bytes",
            "alloc_cv",
            "alloc_peak_spread",
            "alloc_peak_low",
            "alloc_peak_high",
        ],
    )


def slopes(points: pd.DataFrame) -> dict[str, float]:
    """endpoint -> least-squares slope of median alloc_peak_bytes vs history_len (bytes/unit)."""
    out: dict[str, float] = {}
    for endpoint, group in points.groupby("endpoint", sort=False):
        if group["history_len"].nunique() >= 2:
            out[str(endpoint)] = least_squares_slope(
                group["history_len"].tolist(), group["alloc_peak_bytes"].tolist()
            )
    return dict(sorted(out.items(), key=lambda kv: _endpoint_order(kv[0])))


def _slope_range(requests: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """endpoint -> the lowest and highest slope of one process (column ``process``)."""
    if PROCESS_COLUMN not in requests or requests.empty:
        return {}
    per: dict[str, list[float]] = {}
    for _, group in requests.groupby(PROCESS_COLUMN, sort=True):
        for endpoint, slope in slopes(per_point(group)).items():
            per.setdefault(endpoint, []).append(slope)
    return {k: (min(v), max(v)) for k, v in per.items()}


def summary_rows(
    design: str,
    requests: pd.DataFrame,
    checkpoints: pd.DataFrame | None = None,
    size_unit: str = "message",
) -> list[SummaryRow]:
    """The probe phase's summary rows for one design (labels are strings); the slope's unit is
    bytes per `size_unit` (the recipe's: message for the reference designs)."""
    points = per_point(requests)
    rows: list[SummaryRow] = []
    for p in points.to_dict("records"):
        labels = {"endpoint": str(p["endpoint"]), "history_len": str(p["history_len"])}
        peak, net, cv = (
            float(p["alloc_peak_bytes"]),
            float(p["alloc_net_bytes"]),
            float(p["alloc_cv"]),
        )
        spread = float(p["alloc_peak_spread"])
        rows.append(SummaryRow(design, PHASE, "alloc_peak_bytes", peak, "bytes", labels))
        rows.append(SummaryRow(design, PHASE, "alloc_net_bytes", net, "bytes", labels))
        rows.append(SummaryRow(design, PHASE, "alloc_peak_spread_bytes", spread, "bytes", labels))
        seen_low, seen_high = SEEN_METRICS["alloc_peak_bytes"]
        rows.append(SummaryRow(design, PHASE, seen_low, p["alloc_peak_low"], "bytes", labels))
        rows.append(SummaryRow(design, PHASE, seen_high, p["alloc_peak_high"], "bytes", labels))
        if not np.isnan(cv):
            rows.append(SummaryRow(design, PHASE, "alloc_cv", cv, "ratio", labels))
    slope_range = _slope_range(requests)
    low_metric, high_metric = SEEN_METRICS["alloc_slope_bytes_per_unit"]
    for endpoint, slope in slopes(points).items():
        unit, labels = f"bytes/{size_unit}", {"endpoint": endpoint}
        low, high = slope_range.get(endpoint, (slope, slope))
        rows += [
            SummaryRow(design, PHASE, "alloc_slope_bytes_per_unit", slope, unit, labels),
            SummaryRow(design, PHASE, low_metric, low, unit, labels),
            SummaryRow(design, PHASE, high_metric, high, unit, labels),
        ]
    if checkpoints is not None and not checkpoints.empty:
        rate_range = retention_range(checkpoints)
        for (endpoint, history_len), r in retention(checkpoints).items():
            labels = {"endpoint": endpoint, "history_len": str(history_len)}
            rows += [
                SummaryRow(
                    design,
                    PHASE,
                    "retained_bytes_per_request",
                    r.bytes_per_request,
                    "bytes/request",
                    labels,
                ),
                SummaryRow(
                    design,
                    PHASE,
                    "retained_blocks_per_request",
                    r.blocks_per_request,
                    "blocks/request",
                    labels,
                ),
                SummaryRow(
                    design, PHASE, "retained_stderr_bytes", r.stderr_bytes, "bytes/request", labels
                ),
                SummaryRow(design, PHASE, "retained_step_bytes", r.step_bytes, "bytes", labels),
            ]
            low, high = rate_range.get((endpoint, history_len), (r.bytes_per_request,) * 2)
            low_metric, high_metric = SEEN_METRICS["retained_bytes_per_request"]
            rows += [
                SummaryRow(design, PHASE, low_metric, low, "bytes/request", labels),
                SummaryRow(design, PHASE, high_metric, high, "bytes/request", labels),
            ]
    return rows
