"""Probe figures: per-request tracemalloc measurements -> tidy summary rows. Pure, no I/O.

Input: one row per measured request (the columns of ``probe_requests.csv``). Output rows:

- ``alloc_peak_bytes{endpoint,history_len}``: median over the reps;
- ``alloc_net_bytes{endpoint,history_len}``: median over the reps;
- ``alloc_cv{endpoint,history_len}``: coefficient of variation of alloc_peak_bytes across the reps
  (sample standard deviation / mean, a ratio; 0 when every rep is equal; left out below 2 reps);
- ``alloc_slope_bytes_per_message{endpoint}``: least-squares slope of the median alloc_peak_bytes
  against history_len, one point per history length (medians, so one odd rep does not tilt the
  line); left out when fewer than two distinct history lengths were probed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

import numpy as np
import pandas as pd

from harness.results import SummaryRow

PHASE = "probe"
ENDPOINTS = ("chat", "chat_stream", "history")
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
        ],
    )


def slopes(points: pd.DataFrame) -> dict[str, float]:
    """endpoint -> least-squares slope of median alloc_peak_bytes vs history_len (bytes/message)."""
    out: dict[str, float] = {}
    for endpoint, group in points.groupby("endpoint", sort=False):
        if group["history_len"].nunique() >= 2:
            out[str(endpoint)] = least_squares_slope(
                group["history_len"].tolist(), group["alloc_peak_bytes"].tolist()
            )
    return dict(sorted(out.items(), key=lambda kv: _endpoint_order(kv[0])))


def summary_rows(design: str, requests: pd.DataFrame) -> list[SummaryRow]:
    """The probe phase's summary rows for one design (labels are strings)."""
    points = per_point(requests)
    rows: list[SummaryRow] = []
    for p in points.to_dict("records"):
        labels = {"endpoint": str(p["endpoint"]), "history_len": str(p["history_len"])}
        peak, net, cv = (
            float(p["alloc_peak_bytes"]),
            float(p["alloc_net_bytes"]),
            float(p["alloc_cv"]),
        )
        rows.append(SummaryRow(design, PHASE, "alloc_peak_bytes", peak, "bytes", labels))
        rows.append(SummaryRow(design, PHASE, "alloc_net_bytes", net, "bytes", labels))
        if not np.isnan(cv):
            rows.append(SummaryRow(design, PHASE, "alloc_cv", cv, "ratio", labels))
    for endpoint, slope in slopes(points).items():
        rows.append(
            SummaryRow(
                design,
                PHASE,
                "alloc_slope_bytes_per_message",
                slope,
                "bytes/message",
                {"endpoint": endpoint},
            )
        )
    return rows
