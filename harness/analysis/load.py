"""The load phase's figures: Locust statistics and psutil samples in, summary rows out.

Pure pandas, no I/O. The frames are the files of `<design>/load/` as `pandas.read_csv`
returns them:

- stats: `locust_stats.csv` (one row per (Type, Name), then "Aggregated");
- history: `locust_stats_history.csv` (per second: Timestamp, User Count, Type, Name, ...);
- samples: `process_samples.csv` (see harness.sampling.process_sampler; rows with
  pid == "total" hold the whole process tree).

The RSS peak is the larger of the sampled peak (`rss_peak_sampled_bytes`) and the kernel's
high-water marks (`rss_hwm_bytes`: VmHWM, summed over the tree's processes as they were at
one sample), and `rss_peak_from_hwm` says which (1: the high-water mark). A peak between two
samples shows only in the high-water mark; with several processes their sum bounds the tree's
peak from above (they need not peak together), with one process it is the kernel's figure.

Locust counts custom events in its "Aggregated" row, so totals here are computed from the
endpoint rows, never from "Aggregated", and the TTFT events are reported on their own.
Percentiles come from Locust (it computes them over every request) or from pandas quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from harness.analysis.bounds import QUALIFIERS_COLUMN, combine
from harness.analysis.headline import (
    HEADLINE,
    HeadlineMetric,
    headline_table,
    ratio,
    summary_frame,
)
from harness.results import SummaryRow

PHASE = "load"
TTFT_TYPE = "TTFT"
AGGREGATED = "Aggregated"
# Locust request names (see scenarios/common.py) -> the endpoint label every phase shares.
ENDPOINTS: Mapping[str, str] = {
    "POST /chat": "chat",
    "POST /chat [stream]": "chat_stream",
    "GET /history": "history",
}
LATENCY_PERCENTILES = (
    ("50%", "latency_p50_ms"),
    ("95%", "latency_p95_ms"),
    ("99%", "latency_p99_ms"),
)
TTFT_PERCENTILES = (("50%", "ttft_p50_ms"), ("95%", "ttft_p95_ms"), ("99%", "ttft_p99_ms"))
LOADGEN_SATURATED_PERCENT = 90.0  # of one core: above it, Locust is the bottleneck
WARMUP_FRACTION = 0.2  # warm-up: the first 20% of the time users were at their peak
END_FRACTION = 0.1  # end of run: the last 10% of the sampled time


def endpoint_label(name: str) -> str:
    return ENDPOINTS.get(name, name)


# --- Locust statistics ---------------------------------------------------------------------


def endpoint_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """The request rows of a stats frame: no "Aggregated" row, no TTFT events."""
    if stats.empty:
        return stats
    kind = stats["Type"].astype(object).fillna("").astype(str)  # all-NaN: float64
    name = stats["Name"].astype(str)
    return stats[(name != AGGREGATED) & (kind != TTFT_TYPE) & (kind != "")]


def ttft_rows(stats: pd.DataFrame) -> pd.DataFrame:
    if stats.empty:
        return stats
    return stats[stats["Type"].astype(object).fillna("").astype(str) == TTFT_TYPE]


def request_totals(stats: pd.DataFrame) -> tuple[int, int]:
    """(requests, failures) over the endpoint rows."""
    rows = endpoint_rows(stats)
    if rows.empty:
        return 0, 0
    return int(rows["Request Count"].sum()), int(rows["Failure Count"].sum())


def _number(value: object) -> float:
    """A CSV cell as a float; NaN for "N/A", blanks and the like."""
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return float(number) if pd.notna(number) else math.nan


def locust_summary(design: str, stats: pd.DataFrame) -> list[SummaryRow]:
    """rps, requests, failures (total and per endpoint), latency and TTFT percentiles."""
    rows: list[SummaryRow] = []

    def add(metric: str, value: float, unit: str, labels: Mapping[str, str] | None = None) -> None:
        if not math.isnan(value):
            rows.append(SummaryRow(design, PHASE, metric, value, unit, dict(labels or {})))

    requests, failures = request_totals(stats)
    endpoints = endpoint_rows(stats)
    add("rps", float(endpoints["Requests/s"].sum()) if not endpoints.empty else 0.0, "req/s")
    add("requests", float(requests), "count")
    add("failures", float(failures), "count")
    add("failure_ratio", failures / requests if requests else math.nan, "ratio")
    for record in endpoints.to_dict("records"):
        labels = {"endpoint": endpoint_label(str(record["Name"]))}
        add("rps", _number(record["Requests/s"]), "req/s", labels)
        add("requests", _number(record["Request Count"]), "count", labels)
        add("failures", _number(record["Failure Count"]), "count", labels)
        for column, metric in LATENCY_PERCENTILES:
            add(metric, _number(record.get(column)), "ms", labels)
    ttft = ttft_rows(stats)
    if not ttft.empty:
        # One TTFT entry per streamed endpoint; the headline TTFT is the busiest one's.
        busiest = ttft.sort_values("Request Count", ascending=False).iloc[0]
        for column, metric in TTFT_PERCENTILES:
            add(metric, _number(busiest.get(column)), "ms")
    return rows


# --- the load's time windows ---------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """Wall-clock (unix seconds) landmarks of a run, from Locust's user counts."""

    peak_users: int
    reached: float | None  # first time the user count was at its peak
    peak_end: float | None  # last time the user count was at its peak


def load_windows(history: pd.DataFrame | None) -> Windows:
    """When the users reached their peak count and when they left it."""
    if history is None or history.empty or "User Count" not in history:
        return Windows(0, None, None)
    agg = history[history["Name"].astype(str) == AGGREGATED] if "Name" in history else history
    agg = agg.dropna(subset=["Timestamp", "User Count"])
    if agg.empty:
        return Windows(0, None, None)
    peak = int(agg["User Count"].max())
    at_peak = agg[agg["User Count"] >= peak]
    return Windows(peak, float(at_peak["Timestamp"].min()), float(at_peak["Timestamp"].max()))


def totals(samples: pd.DataFrame) -> pd.DataFrame:
    """The whole-tree rows of a process-samples frame, in time order."""
    if samples.empty:
        return samples
    return samples[samples["pid"].astype(str) == "total"].sort_values("t_s")


@dataclass(frozen=True)
class Growth:
    warm_bytes: float
    end_bytes: float

    @property
    def growth_bytes(self) -> float:
        return self.end_bytes - self.warm_bytes


def rss_growth(
    total: pd.DataFrame,
    windows: Windows,
    warmup_fraction: float = WARMUP_FRACTION,
    end_fraction: float = END_FRACTION,
) -> Growth | None:
    """RSS at the end of the run minus RSS after warm-up (medians over windows).

    Warm-up: the samples of the first `warmup_fraction` of the time the users were at their
    peak count (without Locust's history: of the whole run). End: the samples of the last
    `end_fraction` of the sampled time; for the spike shape that is after the drop.
    """
    if total.empty:
        return None
    t = total["unix_s"].astype(float)
    rss = total["rss_bytes"].astype(float)
    first, last = float(t.min()), float(t.max())
    start, stop = first, last
    if windows.reached is not None and windows.peak_end is not None:
        start, stop = windows.reached, max(windows.peak_end, windows.reached)
    warm_end = start + warmup_fraction * (stop - start)
    warm = rss[(t >= start) & (t <= max(warm_end, start + 1.0))]
    if warm.empty:  # no samples in the window (clock skew, short run): the first ones
        warm = rss[t <= first + warmup_fraction * (last - first)]
    end = rss[t >= last - end_fraction * (last - first)]
    if warm.empty or end.empty:
        return None
    return Growth(float(warm.median()), float(end.median()))


def sampler_summary(
    design: str, samples: pd.DataFrame, history: pd.DataFrame | None = None
) -> list[SummaryRow]:
    """RSS/USS peaks and p95, RSS growth, fds/threads/connections maxima of the server tree."""
    total = totals(samples)
    if total.empty:
        return []
    rows: list[SummaryRow] = []

    def add(metric: str, series: pd.Series | None, how: str, unit: str) -> None:
        if series is None:
            return
        values = pd.to_numeric(series, errors="coerce").dropna()
        if values.empty:
            return
        value = float(values.max() if how == "max" else values.quantile(0.95))
        rows.append(SummaryRow(design, PHASE, metric, value, unit))

    rows += rss_peak_rows(design, total)
    add("rss_p95_bytes", total.get("rss_bytes"), "p95", "bytes")
    add("uss_peak_bytes", total.get("uss_bytes"), "max", "bytes")
    growth = rss_growth(total, load_windows(history))
    if growth is not None:
        rows.append(SummaryRow(design, PHASE, "rss_warm_bytes", growth.warm_bytes, "bytes"))
        rows.append(SummaryRow(design, PHASE, "rss_end_bytes", growth.end_bytes, "bytes"))
        rows.append(SummaryRow(design, PHASE, "rss_growth_bytes", growth.growth_bytes, "bytes"))
    add("fds_max", total.get("num_fds"), "max", "count")
    add("threads_max", total.get("num_threads"), "max", "count")
    add("connections_max", total.get("connections"), "max", "count")
    add("server_cpu_max", total.get("cpu_percent"), "max", "percent")
    rows.append(SummaryRow(design, PHASE, "samples", float(len(total)), "count"))
    return rows


def _column_max(frame: pd.DataFrame, column: str) -> float | None:
    if column not in frame:
        return None
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.max()) if not values.empty else None


def rss_peak_rows(design: str, total: pd.DataFrame) -> list[SummaryRow]:
    """rss_peak_bytes (the larger of the two below), rss_peak_sampled_bytes, rss_hwm_bytes
    (when the samples carry VmHWM) and rss_peak_from_hwm (1: the peak is the high-water mark).
    """
    sampled = _column_max(total, "rss_bytes")
    if sampled is None:
        return []
    hwm = _column_max(total, "hwm_bytes")
    peak = hwm if hwm is not None and hwm > sampled else sampled
    rows = [
        SummaryRow(design, PHASE, "rss_peak_bytes", peak, "bytes"),
        SummaryRow(design, PHASE, "rss_peak_sampled_bytes", sampled, "bytes"),
    ]
    if hwm is not None:
        rows.append(SummaryRow(design, PHASE, "rss_hwm_bytes", hwm, "bytes"))
        rows.append(SummaryRow(design, PHASE, "rss_peak_from_hwm", float(peak > sampled), "count"))
    return rows


@dataclass(frozen=True)
class HarnessCost:
    """CPU the harness's own parts used during a phase (seconds; wall seconds measured)."""

    sampler_cpu_s: float | None = None
    sampler_wall_s: float = 0.0
    samples: int = 0
    loadgen_cpu_s: float | None = None
    loadgen_wall_s: float = 0.0


def harness_cost_summary(design: str, phase: str, cost: HarnessCost) -> list[SummaryRow]:
    """The sampler thread's and the load generator's CPU: seconds, mean share of one core
    (percent) and, for the sampler, CPU per tree sample."""
    rows: list[SummaryRow] = []
    if cost.sampler_cpu_s is not None and cost.sampler_wall_s > 0:
        rows += [
            SummaryRow(design, phase, "sampler_cpu_s", cost.sampler_cpu_s, "s"),
            SummaryRow(
                design,
                phase,
                "sampler_cpu_mean",
                100.0 * cost.sampler_cpu_s / cost.sampler_wall_s,
                "percent",
            ),
        ]
        if cost.samples:
            per_sample = 1000.0 * cost.sampler_cpu_s / cost.samples
            rows.append(SummaryRow(design, phase, "sampler_cpu_per_sample_ms", per_sample, "ms"))
    if cost.loadgen_cpu_s is not None and cost.loadgen_wall_s > 0:
        mean = 100.0 * cost.loadgen_cpu_s / cost.loadgen_wall_s
        rows += [
            SummaryRow(design, phase, "loadgen_cpu_s", cost.loadgen_cpu_s, "s"),
            SummaryRow(design, phase, "loadgen_cpu_mean", mean, "percent"),
        ]
    return rows


def loadgen_summary(design: str, cpu_max_percent: float) -> list[SummaryRow]:
    """Locust's CPU peak, and whether it saturated (then latencies describe Locust)."""
    saturated = cpu_max_percent > LOADGEN_SATURATED_PERCENT
    return [
        SummaryRow(design, PHASE, "loadgen_cpu_max", cpu_max_percent, "percent"),
        SummaryRow(design, PHASE, "loadgen_saturated", 1.0 if saturated else 0.0, "count"),
    ]


def load_summary(
    design: str,
    stats: pd.DataFrame | None,
    samples: pd.DataFrame | None,
    history: pd.DataFrame | None,
    loadgen_cpu_max: float | None,
) -> list[SummaryRow]:
    """Every load-phase row; missing inputs (a crashed run) give fewer rows, not an error."""
    rows: list[SummaryRow] = []
    if stats is not None and not stats.empty:
        rows += locust_summary(design, stats)
    if samples is not None and not samples.empty:
        rows += sampler_summary(design, samples, history)
    if loadgen_cpu_max is not None:
        rows += loadgen_summary(design, loadgen_cpu_max)
    return rows


# --- the ceiling and the worker counts ------------------------------------------------------

CEILING = "ceiling"  # the design and the phase of the ceiling's rows


def ceiling_rps(rows: Iterable[SummaryRow]) -> float | None:
    """The ceiling's capacity (req/s, open model, health endpoint) among summary rows, or
    None (no ceiling ran, or not even its first step met the objective)."""
    for row in rows:
        key = (row.design, row.phase, row.metric)
        if key == (CEILING, CEILING, "capacity_rps") and not row.labels:
            return row.value if row.value > 0 else None
    return None


def ceiling_fraction(
    design: str, load_rows: Iterable[SummaryRow], ceiling: float | None
) -> list[SummaryRow]:
    """`rps_ceiling_fraction` (phase load): the design's closed-load RPS over the ceiling's
    capacity; [] without one."""
    if ceiling is None or ceiling <= 0:
        return []
    for row in load_rows:
        if row.phase == PHASE and row.metric == "rps" and not row.labels:
            return [SummaryRow(design, PHASE, "rps_ceiling_fraction", row.value / ceiling, "ratio")]
    return []


def worker_summary(design: str, load_workers: int, app_workers: int) -> list[SummaryRow]:
    """How many processes generated the load and served it (phase load, unit count).
    load_workers 0: a Locust master whose workers ran elsewhere."""
    return [
        SummaryRow(design, PHASE, "load_workers", float(load_workers), "count"),
        SummaryRow(design, PHASE, "app_workers", float(app_workers), "count"),
    ]


def load_warnings(rows: Iterable[SummaryRow]) -> list[str]:
    """What a reader must know before trusting the load figures."""
    out: list[str] = []
    for row in rows:
        if row.phase not in (PHASE, CEILING) or row.labels:
            continue
        if row.metric == "loadgen_cpu_max" and row.value > LOADGEN_SATURATED_PERCENT:
            out.append(
                f"{row.design} {row.phase}: the load generator reached {row.value:.0f}% of a "
                f"core (> {LOADGEN_SATURATED_PERCENT:.0f}%): the throughput and latency "
                "measured are the load generator's limit (Locust), not the server's"
            )
    return out


def ratio_designs(designs: Sequence[str]) -> tuple[str, str] | None:
    """(numerator, denominator) of the console's ratio column: naive/optimized, else 2nd/1st."""
    if "naive" in designs and "optimized" in designs:
        return "naive", "optimized"
    if len(designs) >= 2:
        return designs[1], designs[0]
    return None


def console_specs() -> tuple[HeadlineMetric, ...]:
    """The report's headline metrics, plus TTFT p50, Locust's CPU and acknowledged writes."""
    extra_before = {
        "ttft_p95_ms": HeadlineMetric("ttft_p50_ms", "load", "Time to first token p50", "lower"),
        "lost": HeadlineMetric(
            "acknowledged", "integrity", "Acknowledged writes", "higher", labels="none"
        ),
    }
    extra_after = {
        "connections_max": HeadlineMetric(
            "loadgen_cpu_max", "load", "Load generator CPU, max", "lower", labels="none"
        ),
    }
    specs: list[HeadlineMetric] = []
    for spec in HEADLINE:
        if spec.metric in extra_before:
            specs.append(extra_before[spec.metric])
        specs.append(spec)
        if spec.metric in extra_after:
            specs.append(extra_after[spec.metric])
    return tuple(specs)


def comparison_frame(
    rows: Iterable[SummaryRow], designs: Sequence[str]
) -> tuple[pd.DataFrame, str | None]:
    """The console's table: one line per headline figure, one column per design, the phase
    it comes from, and a ratio column (naive/optimized, else second/first); its name or None.
    """
    frame = headline_table(summary_frame(list(rows)), designs, console_specs())
    pair = ratio_designs(designs)
    if pair is None or frame.empty or pair[0] not in frame or pair[1] not in frame:
        return frame, None
    column = f"{pair[0]}/{pair[1]}"
    floors = {spec.metric: spec.ratio_floor for spec in console_specs()}
    frame[column] = [
        ratio(float(a), float(b), floors.get(str(metric), 0.0))
        for a, b, metric in zip(frame[pair[0]], frame[pair[1]], frame["metric"], strict=True)
    ]
    qualifiers: list[dict[str, str]] = [dict(q) for q in frame[QUALIFIERS_COLUMN]]
    for q in qualifiers:
        if both := combine(q.get(pair[0], ""), q.get(pair[1], "")):
            q[column] = both
    frame[QUALIFIERS_COLUMN] = pd.Series(qualifiers, index=frame.index, dtype=object)
    return frame, column
