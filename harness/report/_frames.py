"""The frames the charts draw: pure pandas, no I/O, no matplotlib.

The phases' CSVs are read defensively: a column may carry one of several names (the
sampler's and Locust's spellings), and a missing column gives an empty frame, not an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.analysis.headline import ENDPOINT_ORDER, parse_labels
from harness.analysis.load import AGGREGATED, TTFT_TYPE, endpoint_label

TIME_COLUMNS = ("t_s", "elapsed_s", "time_s", "t")
ABSOLUTE_TIME_COLUMNS = ("unix_s", "timestamp", "ts", "unix_time", "time")
RESOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "rss_bytes": ("rss_bytes", "rss"),
    "uss_bytes": ("uss_bytes", "uss"),
    "num_fds": ("num_fds", "fds", "open_fds"),
    "num_threads": ("num_threads", "threads"),
    "connections": ("connections", "num_connections", "conns"),
    "cpu_percent": ("cpu_percent", "cpu"),
}


def pick_column(frame: pd.DataFrame, candidates: Sequence[str]) -> str | None:
    """The first of `candidates` that `frame` has (case-insensitive), or None."""
    lower = {str(c).lower(): str(c) for c in frame.columns}
    for name in candidates:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


# --- process samples -------------------------------------------------------------------------


def tree_total(samples: pd.DataFrame | None) -> pd.DataFrame:
    """One row per sample time with the process tree's totals.

    Columns: t_s and whichever of RESOURCE_COLUMNS the samples carry (a gap between two
    measured values filled in linearly). Rows with pid 'total' are used when present;
    otherwise the per-process rows are summed per sample time.
    """
    if samples is None or samples.empty:
        return pd.DataFrame({"t_s": pd.Series(dtype=float)})
    frame = samples.copy()
    time_col = pick_column(frame, TIME_COLUMNS)
    if time_col is not None:
        t = pd.to_numeric(frame[time_col], errors="coerce")
    else:
        abs_col = pick_column(frame, ABSOLUTE_TIME_COLUMNS)
        if abs_col is None:
            return pd.DataFrame({"t_s": pd.Series(dtype=float)})
        t = pd.to_numeric(frame[abs_col], errors="coerce")
        t = t - t.min()
    out = pd.DataFrame({"t_s": t})
    for canonical, names in RESOURCE_COLUMNS.items():
        col = pick_column(frame, names)
        if col is not None:
            out[canonical] = pd.to_numeric(frame[col], errors="coerce")
    pid_col = pick_column(frame, ("pid",))
    if pid_col is not None:
        pid = frame[pid_col].astype(str).str.strip().str.lower()
        if (pid == "total").any():
            out = out[pid == "total"]
        else:
            out = out.groupby("t_s", as_index=False).sum(min_count=1)
    out = out.dropna(subset=["t_s"]).sort_values("t_s").reset_index(drop=True)
    # The sampler measures USS and connections only every few samples (empty cells between):
    # join the measured points, so that a line is drawn through them.
    sparse = [c for c in out.columns if c != "t_s"]
    out[sparse] = out[sparse].interpolate(limit_area="inside")
    return out


# --- Locust's history: the load shape --------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """A stretch of constant user count, in seconds of the load phase."""

    start_s: float
    end_s: float
    users: int


def user_counts(history: pd.DataFrame | None, origin: float | None = None) -> pd.DataFrame:
    """Locust's user count over time: columns t_s, users (one row per timestamp).

    `origin`: the unix time that t_s = 0 stands for (the start of the process samples); by
    default the first Locust timestamp.
    """
    empty = pd.DataFrame({"t_s": pd.Series(dtype=float), "users": pd.Series(dtype=float)})
    if history is None or history.empty:
        return empty
    ts_col = pick_column(history, ("Timestamp",))
    users_col = pick_column(history, ("User Count", "user_count", "users"))
    if ts_col is None or users_col is None:
        return empty
    frame = pd.DataFrame(
        {
            "ts": pd.to_numeric(history[ts_col], errors="coerce"),
            "users": pd.to_numeric(history[users_col], errors="coerce"),
        }
    ).dropna()
    if frame.empty:
        return empty
    frame = frame.groupby("ts")["users"].max().reset_index().sort_values("ts")
    start = float(frame["ts"].min()) if origin is None else origin
    return pd.DataFrame({"t_s": frame["ts"] - start, "users": frame["users"]}).reset_index(
        drop=True
    )


def user_stages(counts: pd.DataFrame) -> list[Stage]:
    """Runs of constant user count; each lasts until the next one starts."""
    if counts.empty:
        return []
    t = counts["t_s"].to_numpy(dtype=float)
    users = counts["users"].to_numpy(dtype=float)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    stages: list[Stage] = []
    start = 0
    for i in range(1, len(t) + 1):
        if i == len(t) or users[i] != users[start]:
            end = t[i] if i < len(t) else t[-1] + step
            stages.append(Stage(float(t[start]), float(end), int(users[start])))
            start = i
    return stages


# --- the probe -------------------------------------------------------------------------------


def probe_points(probe: pd.DataFrame | None, value: str = "alloc_peak_bytes") -> pd.DataFrame:
    """Per (endpoint, history_len): median, min and max of `value` over the repetitions.

    Only successful requests count (status 2xx or 'ok' when a status column is present).
    """
    columns = ["endpoint", "history_len", "median", "min", "max", "reps"]
    if probe is None or probe.empty:
        return pd.DataFrame(columns=columns)
    ep_col = pick_column(probe, ("endpoint",))
    hl_col = pick_column(probe, ("history_len",))
    val_col = pick_column(probe, (value,))
    if ep_col is None or hl_col is None or val_col is None:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(
        {
            "endpoint": probe[ep_col].astype(str),
            "history_len": pd.to_numeric(probe[hl_col], errors="coerce"),
            "v": pd.to_numeric(probe[val_col], errors="coerce"),
        }
    )
    status_col = pick_column(probe, ("status",))
    if status_col is not None:
        status = probe[status_col].astype(str).str.strip().str.lower()
        ok = status.str.match(r"^2\d\d(\.0)?$") | status.isin(["ok", "passed", "success"])
        frame = frame[ok.to_numpy()]
    frame = frame.dropna()
    if frame.empty:
        return pd.DataFrame(columns=columns)
    grouped = frame.groupby(["endpoint", "history_len"])["v"]
    out = grouped.agg(["median", "min", "max", "count"]).reset_index()
    out = out.rename(columns={"count": "reps"})
    return out.sort_values(["endpoint", "history_len"]).reset_index(drop=True)


def probe_failures(probe: pd.DataFrame | None) -> pd.DataFrame:
    """(endpoint, history_len) points where no repetition succeeded, with their statuses."""
    columns = ["endpoint", "history_len", "status"]
    if probe is None or probe.empty:
        return pd.DataFrame(columns=columns)
    ep_col = pick_column(probe, ("endpoint",))
    hl_col = pick_column(probe, ("history_len",))
    status_col = pick_column(probe, ("status",))
    if ep_col is None or hl_col is None or status_col is None:
        return pd.DataFrame(columns=columns)
    status = probe[status_col].astype(str).str.strip().str.removesuffix(".0")
    frame = pd.DataFrame(
        {
            "endpoint": probe[ep_col].astype(str),
            "history_len": pd.to_numeric(probe[hl_col], errors="coerce"),
            "status": status,
            "ok": status.str.match(r"^2\d\d$") | status.str.lower().isin(["ok", "passed"]),
        }
    ).dropna(subset=["history_len"])
    out = []
    for (endpoint, history_len), group in frame.groupby(["endpoint", "history_len"]):
        if not group["ok"].any():
            statuses = ", ".join(sorted(set(group["status"])))
            out.append({"endpoint": endpoint, "history_len": history_len, "status": statuses})
    return pd.DataFrame(out, columns=columns)


def fit_line(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[float, float] | None:
    """Least-squares (slope, intercept), or None with fewer than two distinct x."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if len(set(xs.tolist())) < 2:
        return None
    slope, intercept = np.polyfit(xs, ys, 1)
    return float(slope), float(intercept)


def endpoints_sorted(names: Sequence[str]) -> list[str]:
    known = [e for e in ENDPOINT_ORDER if e in names]
    return known + sorted(n for n in set(names) if n not in ENDPOINT_ORDER)


# --- latency from the summary ----------------------------------------------------------------

PERCENTILE_METRICS = {"latency_p50_ms": "p50", "latency_p95_ms": "p95", "latency_p99_ms": "p99"}
TTFT_METRICS = {"ttft_p50_ms": "p50", "ttft_p95_ms": "p95", "ttft_p99_ms": "p99"}


def percentile_frame(frame: pd.DataFrame, metrics: dict[str, str]) -> pd.DataFrame:
    """design, endpoint ('' when unlabelled), percentile, value: load-phase rows only."""
    columns = ["design", "endpoint", "percentile", "value"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    sub = frame[(frame["phase"] == "load") & frame["metric"].isin(list(metrics))]
    if sub.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "design": sub["design"].astype(str),
            "endpoint": [parse_labels(str(k)).get("endpoint", "") for k in sub["labels"]],
            "percentile": sub["metric"].map(metrics),
            "value": sub["value"].astype(float),
        },
        columns=columns,
    ).reset_index(drop=True)


# --- memray's top sites ----------------------------------------------------------------------


def top_sites(sites: pd.DataFrame | None, n: int = 10) -> tuple[pd.DataFrame, str]:
    """The `n` largest allocation sites: columns label, bytes, count; and the kind shown.

    The high-water-mark kind ('hwm': what was held at the peak) is preferred over
    'allocated' (everything allocated over the run).
    """
    columns = ["label", "bytes", "count"]
    if sites is None or sites.empty:
        return pd.DataFrame(columns=columns), ""
    bytes_col = pick_column(sites, ("bytes", "size", "size_bytes"))
    if bytes_col is None:
        return pd.DataFrame(columns=columns), ""
    frame = sites
    kind = ""
    kind_col = pick_column(sites, ("kind",))
    if kind_col is not None:
        kinds = [str(k) for k in pd.unique(sites[kind_col])]
        kind = "hwm" if "hwm" in kinds else (kinds[0] if kinds else "")
        frame = sites[sites[kind_col].astype(str) == kind]
    func_col = pick_column(frame, ("function", "func"))
    loc_col = pick_column(frame, ("location", "file", "filename"))
    count_col = pick_column(frame, ("count", "allocations", "n_allocations"))
    labels = [
        site_label(
            str(frame[func_col].iloc[i]) if func_col else "?",
            str(frame[loc_col].iloc[i]) if loc_col else "",
        )
        for i in range(len(frame))
    ]
    out = pd.DataFrame(
        {
            "label": labels,
            "bytes": pd.to_numeric(frame[bytes_col], errors="coerce").to_numpy(),
            "count": (
                pd.to_numeric(frame[count_col], errors="coerce").to_numpy()
                if count_col
                else math.nan
            ),
        },
        columns=columns,
    ).dropna(subset=["bytes"])
    out = out.sort_values("bytes", ascending=False).head(n).reset_index(drop=True)
    return out, kind


def site_label(function: str, location: str, width: int = 64) -> str:
    """'raw_decode  (json/decoder.py:353)': the function whole, the location shortened.

    The location keeps its last two path parts; when the label is still too wide, the
    location (never the function name) loses characters from its left.
    """
    function = function.strip() or "?"
    location = location.strip()
    if not location or location == "nan":
        return function if len(function) <= width else function[: width - 1] + "…"
    parts = location.replace("\\", "/").split("/")
    short = "/".join(parts[-2:])
    room = width - len(function) - 4  # two spaces and the parentheses
    if len(short) > room:
        keep = max(room - 1, 12)
        short = "…" + short[-keep:]
    return f"{function}  ({short})"


# --- Locust's history: latency, throughput and failures over time ---------------------------

# Locust (2.x) writes, with --csv-full-history, its *current* figures each second: the
# percentiles of about the last CURRENT_RESPONSE_TIME_PERCENTILE_WINDOW seconds
# (locust.stats), and requests/s and failures/s averaged over the 10 whole seconds that end
# 2 s before the row. A row whose every percentile is 0 had nothing in its window.
PERCENTILE_WINDOW_S = 10
RATE_WINDOW_S = 10
ALL_REQUESTS = "all requests"  # the series name when the history has only "Aggregated" rows
HISTORY_PERCENTILES = {"50%": "p50_ms", "95%": "p95_ms"}
_PERCENTILE_HEADERS = ("50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "100%")
TIMELINE_COLUMNS = [
    "t_s",
    "endpoint",
    "rps",
    "fail_per_s",
    "p50_ms",
    "p95_ms",
    "requests",
    "failures",
]


def _history_rows(history: pd.DataFrame, kind: str) -> pd.DataFrame:
    """The rows of one kind: 'request' (endpoints), 'ttft' (TTFT events), 'aggregated'."""
    type_col = pick_column(history, ("Type",))
    name_col = pick_column(history, ("Name",))
    if name_col is None:
        return history.iloc[0:0]
    name = history[name_col].astype(str)
    rtype = (
        history[type_col].astype(object).fillna("").astype(str).str.strip()
        if type_col is not None
        else pd.Series("", index=history.index)
    )
    if kind == "aggregated":
        return history[name == AGGREGATED]
    if kind == "ttft":
        return history[rtype == TTFT_TYPE]
    return history[(name != AGGREGATED) & (rtype != TTFT_TYPE) & (rtype != "")]


def locust_timeline(
    history: pd.DataFrame | None, origin: float | None = None, kind: str = "request"
) -> pd.DataFrame:
    """Locust's per-second figures of one kind of row, one row per (second, endpoint).

    Columns TIMELINE_COLUMNS: t_s (seconds since `origin`, by default the first Locust
    timestamp), endpoint (the label every phase shares: chat, chat_stream, history, or
    Locust's name), rps and fail_per_s (Locust's current rates), p50_ms and p95_ms (its
    current percentiles; NaN when the window was empty), requests and failures (cumulative
    counts). `kind`: 'request' for the endpoints, 'ttft' for the time-to-first-token events
    (their "response time" is the time to the first token). For 'request', a history trimmed
    to Locust's "Aggregated" rows gives one series named ALL_REQUESTS.
    """
    empty = pd.DataFrame(
        {c: pd.Series(dtype=object if c == "endpoint" else float) for c in TIMELINE_COLUMNS}
    )
    if history is None or history.empty:
        return empty
    ts_col = pick_column(history, ("Timestamp",))
    if ts_col is None:
        return empty
    rows = _history_rows(history, kind)
    named = True
    if rows.empty and kind == "request":
        rows, named = _history_rows(history, "aggregated"), False
    if rows.empty:
        return empty
    ts = pd.to_numeric(rows[ts_col], errors="coerce")
    start = (
        float(pd.to_numeric(history[ts_col], errors="coerce").min()) if origin is None else origin
    )
    name_col = pick_column(rows, ("Name",))
    out = pd.DataFrame(
        {
            "t_s": ts - start,
            "endpoint": (
                [endpoint_label(str(n)) for n in rows[name_col]]
                if named and name_col
                else ALL_REQUESTS
            ),
        },
        index=rows.index,
    )
    for column, names in (
        ("rps", ("Requests/s",)),
        ("fail_per_s", ("Failures/s",)),
        ("requests", ("Total Request Count",)),
        ("failures", ("Total Failure Count",)),
    ):
        col = pick_column(rows, names)
        out[column] = pd.to_numeric(rows[col], errors="coerce") if col else math.nan
    percentiles = [c for c in (pick_column(rows, (h,)) for h in _PERCENTILE_HEADERS) if c]
    values = rows[percentiles].apply(pd.to_numeric, errors="coerce")
    nothing = (values.fillna(0) == 0).all(axis=1) if percentiles else pd.Series(True, rows.index)
    for header, column in HISTORY_PERCENTILES.items():
        col = pick_column(rows, (header,))
        series = (
            pd.to_numeric(rows[col], errors="coerce") if col else pd.Series(math.nan, rows.index)
        )
        out[column] = series.mask(nothing)
    out = out.dropna(subset=["t_s"]).sort_values(["endpoint", "t_s"], kind="stable")
    return out[TIMELINE_COLUMNS].reset_index(drop=True)


def throughput_timeline(timeline: pd.DataFrame) -> pd.DataFrame:
    """Per second, over every endpoint: t_s, rps, fail_per_s, failures (cumulative), new_failures.

    new_failures: failures Locust counted since the previous second (the exact moment of a
    failure; the rates are trailing averages).
    """
    columns = ["t_s", "rps", "fail_per_s", "failures", "new_failures"]
    if timeline.empty:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in columns})
    grouped = timeline.groupby("t_s", sort=True)[["rps", "fail_per_s", "failures"]]
    out = grouped.sum(min_count=1).reset_index()
    out["new_failures"] = out["failures"].diff().fillna(out["failures"]).clip(lower=0)
    return out[columns]


def failure_count(timeline: pd.DataFrame) -> int:
    """Failed requests over the whole history: the sum of each endpoint's last cumulative count."""
    if timeline.empty:
        return 0
    last = timeline.groupby("endpoint")["failures"].max()
    return int(last.fillna(0).sum())


# --- what the curves show: the peak stage's first and last seconds --------------------------


def peak_stage(stages: Sequence[Stage]) -> Stage | None:
    """The longest stretch at the highest user count (None without users)."""
    busy = [s for s in stages if s.users > 0]
    if not busy:
        return None
    most = max(s.users for s in busy)
    return max((s for s in busy if s.users == most), key=lambda s: s.end_s - s.start_s)


def drift_window_s(stage: Stage) -> float:
    """A quarter of the stage, at least Locust's percentile window and at most a minute."""
    return max(float(PERCENTILE_WINDOW_S), min(60.0, (stage.end_s - stage.start_s) / 4))


def first_and_last(
    frame: pd.DataFrame, column: str, stage: Stage, window_s: float
) -> tuple[float, float]:
    """Medians of `column` over the stage's first and last `window_s` seconds (NaN: no data)."""
    if frame.empty or column not in frame.columns:
        return math.nan, math.nan
    inside = frame[(frame["t_s"] >= stage.start_s) & (frame["t_s"] < stage.end_s)]
    values = inside.dropna(subset=[column])
    first = values[values["t_s"] < stage.start_s + window_s][column]
    last = values[values["t_s"] >= stage.end_s - window_s][column]
    return (
        float(first.median()) if not first.empty else math.nan,
        float(last.median()) if not last.empty else math.nan,
    )
