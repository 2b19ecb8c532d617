"""The load and ceiling rows in full: design, phase, metric, value, unit and labels of every row,
from small frames built here (with failed requests, N/A percentiles, TTFT of two endpoints)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from harness.analysis.headline import HEADLINE
from harness.analysis.load import (
    CEILING,
    LOADGEN_SATURATED_PERCENT,
    Windows,
    ceiling_fraction,
    ceiling_rps,
    comparison_frame,
    console_specs,
    endpoint_label,
    load_summary,
    load_warnings,
    load_windows,
    loadgen_summary,
    locust_summary,
    ratio_designs,
    request_totals,
    rss_growth,
    sampler_summary,
    ttft_rows,
    worker_summary,
)
from harness.results import SummaryRow

Row = tuple[str, str, str, float, str, dict[str, str]]


def as_tuples(rows: list[SummaryRow]) -> list[Row]:
    return [(r.design, r.phase, r.metric, r.value, r.unit, dict(r.labels)) for r in rows]


def stat(kind: str, name: str, count: int, failures: int, rps: float, **pct: Any) -> dict[str, Any]:
    return {
        "Type": kind, "Name": name, "Request Count": count, "Failure Count": failures,
        "Requests/s": rps, "50%": pct.get("p50", 10), "95%": pct.get("p95", 20),
        "99%": pct.get("p99", 30),
    }  # fmt: skip


@pytest.fixture
def stats() -> pd.DataFrame:
    return pd.DataFrame(
        [
            stat("POST", "POST /chat", 8, 2, 4.0, p50=100, p95=200, p99="N/A"),
            stat("GET", "GET /custom", 2, 0, 1.0),
            stat("TTFT", "POST /chat [stream]", 3, 0, 0.0, p50=51, p95=52, p99=53),
            stat("TTFT", "POST /other [stream]", 9, 0, 0.0, p50=61, p95=62, p99=63),
            stat("", "Aggregated", 22, 2, 9.9),
        ]
    )


def test_locust_rows_in_full(stats: pd.DataFrame) -> None:
    chat, custom = {"endpoint": "chat"}, {"endpoint": "GET /custom"}
    assert as_tuples(locust_summary("d", stats)) == [
        ("d", "load", "rps", 5.0, "req/s", {}),
        ("d", "load", "requests", 10.0, "count", {}),
        ("d", "load", "failures", 2.0, "count", {}),
        ("d", "load", "failure_ratio", 0.2, "ratio", {}),
        ("d", "load", "rps", 4.0, "req/s", chat),
        ("d", "load", "requests", 8.0, "count", chat),
        ("d", "load", "failures", 2.0, "count", chat),
        ("d", "load", "latency_p50_ms", 100.0, "ms", chat),
        ("d", "load", "latency_p95_ms", 200.0, "ms", chat),  # p99 N/A: no row
        ("d", "load", "rps", 1.0, "req/s", custom),
        ("d", "load", "requests", 2.0, "count", custom),
        ("d", "load", "failures", 0.0, "count", custom),
        ("d", "load", "latency_p50_ms", 10.0, "ms", custom),
        ("d", "load", "latency_p95_ms", 20.0, "ms", custom),
        ("d", "load", "latency_p99_ms", 30.0, "ms", custom),
        # the busiest TTFT entry (9 events), not the first
        ("d", "load", "ttft_p50_ms", 61.0, "ms", {}),
        ("d", "load", "ttft_p95_ms", 62.0, "ms", {}),
        ("d", "load", "ttft_p99_ms", 63.0, "ms", {}),
    ]


def test_no_requests_is_zero_rps_and_no_failure_ratio() -> None:
    stats = pd.DataFrame([stat("", "Aggregated", 0, 0, 0.0)])
    assert as_tuples(locust_summary("d", stats)) == [
        ("d", "load", "rps", 0.0, "req/s", {}),
        ("d", "load", "requests", 0.0, "count", {}),
        ("d", "load", "failures", 0.0, "count", {}),
    ]
    assert request_totals(stats) == (0, 0)
    assert request_totals(pd.DataFrame()) == (0, 0)
    assert ttft_rows(pd.DataFrame()).empty


def test_endpoint_labels() -> None:
    assert endpoint_label("POST /chat [stream]") == "chat_stream"
    assert endpoint_label("GET /history") == "history"
    assert endpoint_label("GET /other") == "GET /other"


# --- windows and growth --------------------------------------------------------------------


def test_windows_of_missing_or_empty_history() -> None:
    assert load_windows(None) == Windows(0, None, None)
    assert load_windows(pd.DataFrame()) == Windows(0, None, None)
    assert load_windows(pd.DataFrame({"Timestamp": [1.0]})) == Windows(0, None, None)
    nan_only = pd.DataFrame({"Timestamp": [math.nan], "User Count": [3], "Name": ["Aggregated"]})
    assert load_windows(nan_only) == Windows(0, None, None)


def test_windows_use_the_aggregated_rows_only() -> None:
    history = pd.DataFrame(
        {
            "Timestamp": [10, 11, 12, 13, 12],
            "User Count": [1, 4, 4, 2, 9],
            "Name": ["Aggregated"] * 4 + ["POST /chat"],
        }
    )
    assert load_windows(history) == Windows(4, 11.0, 12.0)
    without_names = history.drop(columns=["Name"])
    assert load_windows(without_names) == Windows(9, 12.0, 12.0)


def samples_frame(rss: list[float], start: float = 100.0, **columns: list[Any]) -> pd.DataFrame:
    n = len(rss)
    frame = pd.DataFrame(
        {
            "t_s": [float(i) for i in range(n)],
            "unix_s": [start + i for i in range(n)],
            "pid": ["total"] * n,
            "rss_bytes": rss,
            **columns,
        }
    )
    other = frame.iloc[:1].assign(pid="123", rss_bytes=10**12)  # a single process: not a total
    return pd.concat([frame, other], ignore_index=True)


def test_growth_from_the_peak_window_and_the_end() -> None:
    total = samples_frame([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).iloc[:11]
    # peak from t=102 to t=107: warm-up = samples in [102, max(102+1, 103)] -> 3, 4
    growth = rss_growth(total, Windows(5, 102.0, 107.0))
    assert growth is not None
    assert (growth.warm_bytes, growth.end_bytes, growth.growth_bytes) == (3.5, 10.5, 7.0)
    # without windows: warm-up over the first 20% of the run (t <= 102), end the last 10%
    whole = rss_growth(total, Windows(0, None, None))
    assert whole is not None and (whole.warm_bytes, whole.end_bytes) == (2.0, 10.5)
    # a window before any sample: the first 20% of the sampled time instead
    early = rss_growth(total, Windows(5, 10.0, 20.0))
    assert early is not None and early.warm_bytes == 2.0
    assert rss_growth(total.iloc[:0], Windows(0, None, None)) is None


def test_sampler_rows_in_full() -> None:
    samples = samples_frame(
        [10.0, 30.0, 20.0],
        uss_bytes=[5.0, "n/a", 7.0],
        num_fds=[3, 9, 4],
        num_threads=[2, 2, 5],
        connections=[0, 1, 6],
        cpu_percent=[10.0, 95.0, 20.0],
    )
    rows = as_tuples(sampler_summary("d", samples))
    p95 = pd.Series([10.0, 30.0, 20.0]).quantile(0.95)
    assert rows == [
        ("d", "load", "rss_peak_bytes", 30.0, "bytes", {}),  # no hwm_bytes column: sampled
        ("d", "load", "rss_peak_sampled_bytes", 30.0, "bytes", {}),
        ("d", "load", "rss_p95_bytes", p95, "bytes", {}),
        ("d", "load", "uss_peak_bytes", 7.0, "bytes", {}),
        ("d", "load", "rss_warm_bytes", 20.0, "bytes", {}),  # median of t <= 101
        ("d", "load", "rss_end_bytes", 20.0, "bytes", {}),
        ("d", "load", "rss_growth_bytes", 0.0, "bytes", {}),
        ("d", "load", "fds_max", 9.0, "count", {}),
        ("d", "load", "threads_max", 5.0, "count", {}),
        ("d", "load", "connections_max", 6.0, "count", {}),
        ("d", "load", "server_cpu_max", 95.0, "percent", {}),
        ("d", "load", "samples", 3.0, "count", {}),
    ]


def test_sampler_rows_skip_missing_and_empty_columns() -> None:
    samples = samples_frame([10.0, 30.0], uss_bytes=["x", "y"])
    metrics = [r.metric for r in sampler_summary("d", samples)]
    assert "uss_peak_bytes" not in metrics and "fds_max" not in metrics
    assert metrics[0] == "rss_peak_bytes" and metrics[-1] == "samples"
    assert sampler_summary("d", samples.iloc[0:0]) == []


# --- the load generator, the ceiling, the workers ------------------------------------------


def test_the_load_generator_saturates_above_the_limit_only() -> None:
    at = loadgen_summary("d", LOADGEN_SATURATED_PERCENT)
    assert as_tuples(at) == [
        ("d", "load", "loadgen_cpu_max", LOADGEN_SATURATED_PERCENT, "percent", {}),
        ("d", "load", "loadgen_saturated", 0.0, "count", {}),
    ]
    assert loadgen_summary("d", LOADGEN_SATURATED_PERCENT + 0.1)[1].value == 1.0
    assert load_warnings(at) == []
    over = loadgen_summary("d", 97.0)
    (warning,) = load_warnings(over)
    assert warning.startswith("d load: the load generator reached 97% of a core (> 90%)")
    assert "the load generator's limit" in warning
    other = [SummaryRow("d", "probe", "loadgen_cpu_max", 99.0, "percent")]
    labelled = [SummaryRow("d", "load", "loadgen_cpu_max", 99.0, "percent", {"worker": "1"})]
    assert load_warnings(other + labelled) == []


def test_load_summary_joins_what_it_has(stats: pd.DataFrame) -> None:
    samples = samples_frame([1.0, 2.0])
    assert load_summary("d", None, None, None, None) == []
    assert load_summary("d", pd.DataFrame(), samples.iloc[0:0], None, None) == []
    rows = load_summary("d", stats, samples, None, 12.0)
    metrics = [r.metric for r in rows]
    assert metrics[0] == "rps" and "rss_peak_bytes" in metrics
    assert metrics[-2:] == ["loadgen_cpu_max", "loadgen_saturated"]


def test_ceiling_rps_and_fraction() -> None:
    rows = [
        SummaryRow(CEILING, CEILING, "capacity_rps", 7.0, "req/s", {"endpoint": "x"}),
        SummaryRow("d", CEILING, "rps", 8.0, "req/s"),
        SummaryRow(CEILING, "load", "rps", 9.0, "req/s"),
        SummaryRow(CEILING, CEILING, "requests", 9.0, "count"),
        SummaryRow(CEILING, CEILING, "capacity_rps", 200.0, "req/s"),
    ]
    assert ceiling_rps(rows) == 200.0
    assert ceiling_rps([SummaryRow(CEILING, CEILING, "capacity_rps", 0.0, "req/s")]) is None
    assert ceiling_rps([]) is None
    load = [
        SummaryRow("d", "load", "rps", 1.0, "req/s", {"endpoint": "chat"}),
        SummaryRow("d", "probe", "rps", 2.0, "req/s"),
        SummaryRow("d", "load", "requests", 3.0, "count"),
        SummaryRow("d", "load", "rps", 50.0, "req/s"),
    ]
    assert as_tuples(ceiling_fraction("d", load, 200.0)) == [
        ("d", "load", "rps_ceiling_fraction", 0.25, "ratio", {})
    ]
    assert ceiling_fraction("d", load, None) == []
    assert ceiling_fraction("d", load, 0.0) == []
    assert ceiling_fraction("d", load[:3], 200.0) == []


def test_worker_rows() -> None:
    assert as_tuples(worker_summary("d", 0, 3)) == [
        ("d", "load", "load_workers", 0.0, "count", {}),
        ("d", "load", "app_workers", 3.0, "count", {}),
    ]


# --- the console's table --------------------------------------------------------------------


def test_ratio_designs() -> None:
    assert ratio_designs(["optimized", "x", "naive"]) == ("naive", "optimized")
    assert ratio_designs(["a", "b", "c"]) == ("b", "a")
    assert ratio_designs(["a"]) is None
    assert ratio_designs([]) is None


def test_console_specs_add_three_lines_in_place() -> None:
    names = [s.metric for s in console_specs()]
    assert len(names) == len(HEADLINE) + 3
    assert names.index("ttft_p50_ms") == names.index("ttft_p95_ms") - 1
    assert names.index("acknowledged") == names.index("lost") - 1
    assert names.index("loadgen_cpu_max") == names.index("connections_max") + 1
    extra = {s.metric: s for s in console_specs()}
    assert (extra["acknowledged"].phase, extra["acknowledged"].better) == ("integrity", "higher")
    assert extra["acknowledged"].labels == "none"
    assert (extra["loadgen_cpu_max"].phase, extra["loadgen_cpu_max"].labels) == ("load", "none")
    assert (extra["ttft_p50_ms"].phase, extra["ttft_p50_ms"].better) == ("load", "lower")


def test_comparison_frame_ratio_column() -> None:
    rows = [
        SummaryRow("a", "load", "rps", 10.0, "req/s"),
        SummaryRow("b", "load", "rps", 30.0, "req/s"),
        SummaryRow("a", "integrity", "acknowledged", 4.0, "count"),
        SummaryRow("b", "integrity", "acknowledged", 0.0, "count"),
    ]
    frame, column = comparison_frame(rows, ["a", "b"])
    assert column == "b/a"
    assert frame.set_index("metric")[column].to_dict() == {"rps": 3.0, "acknowledged": 0.0}
    assert comparison_frame(rows, ["a", "missing"])[1] is None
    assert comparison_frame([], ["a", "b"])[1] is None


def test_a_blank_type_is_not_an_endpoint() -> None:
    stats = pd.DataFrame(
        [
            stat("POST", "POST /chat", 4, 0, 2.0),
            {**stat("", "odd", 9, 9, 9.0), "Type": math.nan},
            {**stat("", "Aggregated", 13, 9, 11.0), "Type": math.nan},
        ]
    )
    assert request_totals(stats) == (4, 0)
    assert ttft_rows(stats).empty


def test_load_summary_rows_are_the_designs_and_use_the_history() -> None:
    stats = pd.DataFrame([stat("POST", "POST /chat", 4, 0, 2.0)])
    samples = samples_frame([1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0])
    history = pd.DataFrame(
        {"Timestamp": [104, 110], "User Count": [5, 5], "Name": ["Aggregated"] * 2}
    )
    rows = load_summary("mine", stats, samples, history, 95.0)
    assert {r.design for r in rows} == {"mine"}
    growth = {r.metric: r.value for r in rows}["rss_growth_bytes"]
    assert growth == 0.0  # warm-up from t=104 (users at peak): 9 -> 9
    assert {r.metric: r.value for r in load_summary("m", None, samples, None, None)}[
        "rss_growth_bytes"
    ] == 8.0


def test_growth_needs_both_ends_of_the_window() -> None:
    total = samples_frame([1.0, 1.0, 1.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0]).iloc[:11]
    half = rss_growth(total, Windows(5, 104.0, None))
    assert half is not None and half.warm_bytes == 1.0


def test_a_small_ceiling_is_still_a_ceiling() -> None:
    assert ceiling_rps([SummaryRow(CEILING, CEILING, "capacity_rps", 0.5, "req/s")]) == 0.5
    load = [SummaryRow("d", "load", "rps", 0.25, "req/s")]
    assert ceiling_fraction("d", load, 0.5)[0].value == 0.5


def test_load_warnings_look_past_labelled_rows() -> None:
    rows = [
        SummaryRow("d", "load", "rps", 1.0, "req/s", {"endpoint": "chat"}),
        SummaryRow("d", "load", "loadgen_cpu_max", 99.0, "percent"),
    ]
    assert len(load_warnings(rows)) == 1


def test_console_spec_titles() -> None:
    extra = {s.metric: s for s in console_specs()}
    assert extra["ttft_p50_ms"].title == "Time to first token p50"
    assert extra["acknowledged"].title == "Acknowledged writes"
    assert (extra["loadgen_cpu_max"].title, extra["loadgen_cpu_max"].better) == (
        "Load generator CPU, max", "lower",
    )  # fmt: skip
