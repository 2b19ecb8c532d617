"""Load and integrity figures from small real outputs (tests/data/load, see its README)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from harness.analysis.integrity import integrity_counts, integrity_rows
from harness.analysis.load import (
    CEILING,
    HarnessCost,
    Windows,
    comparison_frame,
    endpoint_rows,
    harness_cost_summary,
    load_summary,
    load_warnings,
    load_windows,
    locust_summary,
    request_totals,
    rss_growth,
    rss_peak_rows,
    sampler_summary,
    totals,
)
from harness.results import SummaryRow

DATA = Path(__file__).resolve().parents[1] / "data" / "load"


def read(design: str, name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / design / name)


@pytest.fixture(scope="module")
def stats() -> pd.DataFrame:
    return read("naive", "locust_stats.csv")


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return read("naive", "locust_stats_history.csv")


@pytest.fixture(scope="module")
def samples() -> pd.DataFrame:
    return read("naive", "process_samples.csv")


def by_key(rows: list[SummaryRow]) -> dict[tuple[str, str], float]:
    return {(r.metric, r.labels.get("endpoint", "")): r.value for r in rows}


# --- Locust statistics -------------------------------------------------------------------


def test_totals_leave_out_ttft_and_aggregated(stats: pd.DataFrame) -> None:
    endpoints = endpoint_rows(stats)
    assert set(endpoints["Name"]) == {"POST /chat", "POST /chat [stream]", "GET /history"}
    requests, failures = request_totals(stats)
    aggregated = stats[stats["Name"] == "Aggregated"].iloc[0]
    ttft = stats[stats["Type"] == "TTFT"].iloc[0]
    # Locust's own total counts the TTFT events as requests; ours does not.
    assert requests == aggregated["Request Count"] - ttft["Request Count"]
    assert requests == endpoints["Request Count"].sum()
    assert failures == 0


def test_locust_summary_per_endpoint(stats: pd.DataFrame) -> None:
    rows = locust_summary("naive", stats)
    assert {r.phase for r in rows} == {"load"}
    got = by_key(rows)
    endpoints = endpoint_rows(stats).set_index("Name")
    assert got[("rps", "")] == pytest.approx(endpoints["Requests/s"].sum())
    assert got[("rps", "")] < stats.set_index("Name").loc["Aggregated", "Requests/s"]
    assert got[("latency_p95_ms", "chat")] == endpoints.loc["POST /chat", "95%"]
    assert got[("latency_p99_ms", "chat_stream")] == endpoints.loc["POST /chat [stream]", "99%"]
    assert got[("latency_p50_ms", "history")] == endpoints.loc["GET /history", "50%"]
    assert got[("requests", "history")] == endpoints.loc["GET /history", "Request Count"]
    ttft = stats[stats["Type"] == "TTFT"].iloc[0]
    assert got[("ttft_p50_ms", "")] == ttft["50%"]
    assert got[("ttft_p95_ms", "")] == ttft["95%"]
    assert got[("failures", "")] == 0
    assert got[("failure_ratio", "")] == 0
    units = {r.metric: r.unit for r in rows}
    assert units["rps"] == "req/s" and units["latency_p95_ms"] == "ms"
    assert units["failures"] == "count" and units["failure_ratio"] == "ratio"


def test_failures_and_missing_percentiles() -> None:
    stats = pd.DataFrame(
        {
            "Type": ["POST", "GET", None],
            "Name": ["POST /chat", "GET /history", "Aggregated"],
            "Request Count": [10, 0, 10],
            "Failure Count": [4, 3, 7],
            "Requests/s": [2.0, 0.0, 2.0],
            "50%": ["100", "N/A", "100"],
            "95%": ["200", "N/A", "200"],
            "99%": ["300", "N/A", "300"],
        }
    )
    got = by_key(locust_summary("d", stats))
    assert got[("failures", "")] == 7
    assert got[("failure_ratio", "")] == pytest.approx(0.7)
    assert got[("latency_p95_ms", "chat")] == 200
    assert ("latency_p95_ms", "history") not in got  # "N/A": no row rather than NaN
    assert ("ttft_p50_ms", "") not in got


# --- psutil samples ----------------------------------------------------------------------


def test_windows_from_user_counts(history: pd.DataFrame) -> None:
    windows = load_windows(history)
    agg = history[history["Name"] == "Aggregated"]
    peak = agg["User Count"].max()
    assert windows.peak_users == peak == 10
    at_peak = agg[agg["User Count"] == peak]["Timestamp"]
    assert windows.reached == at_peak.min()
    assert windows.peak_end == at_peak.max()
    assert load_windows(None) == Windows(0, None, None)


def test_sampler_summary_from_real_samples(samples: pd.DataFrame, history: pd.DataFrame) -> None:
    got = by_key(sampler_summary("naive", samples, history))
    total = totals(samples)
    assert got[("rss_peak_bytes", "")] == total["rss_bytes"].max()
    assert got[("rss_p95_bytes", "")] == pytest.approx(total["rss_bytes"].quantile(0.95))
    assert got[("uss_peak_bytes", "")] == total["uss_bytes"].max()
    assert got[("fds_max", "")] == total["num_fds"].max()
    assert got[("threads_max", "")] == total["num_threads"].max()
    assert got[("connections_max", "")] == total["connections"].max()
    assert got[("samples", "")] == len(total)
    # growth = median RSS of the last 10% of the run - median of the first 20% at peak
    windows = load_windows(history)
    assert windows.reached is not None and windows.peak_end is not None
    t = total["unix_s"]
    warm_end = windows.reached + 0.2 * (windows.peak_end - windows.reached)
    warm = total[(t >= windows.reached) & (t <= warm_end)]["rss_bytes"].median()
    end = total[t >= t.max() - 0.1 * (t.max() - t.min())]["rss_bytes"].median()
    assert got[("rss_warm_bytes", "")] == warm
    assert got[("rss_end_bytes", "")] == end
    assert got[("rss_growth_bytes", "")] == end - warm


def test_per_process_rows_are_not_totals() -> None:
    frame = pd.DataFrame(
        {
            "t_s": [0.0, 0.0, 0.0, 0.1, 0.1, 0.1],
            "unix_s": [100.0, 100.0, 100.0, 100.1, 100.1, 100.1],
            "pid": ["11", "12", "total", "11", "12", "total"],
            "rss_bytes": [10, 20, 30, 15, 25, 40],
            "uss_bytes": [None] * 6,
            "num_fds": [3, 4, 7, 3, 4, 7],
            "num_threads": [1, 2, 3, 1, 2, 3],
            "connections": [0, 1, 1, 0, 2, 2],
            "cpu_percent": [0.0] * 6,
        }
    )
    got = by_key(sampler_summary("d", frame))
    assert got[("rss_peak_bytes", "")] == 40
    assert got[("connections_max", "")] == 2
    assert ("uss_peak_bytes", "") not in got  # USS refused: no row, not a zero


def test_growth_without_history_uses_the_whole_run() -> None:
    total = pd.DataFrame(
        {"unix_s": [float(t) for t in range(10)], "rss_bytes": [100.0] * 5 + [300.0] * 5}
    )
    growth = rss_growth(total, Windows(0, None, None))
    assert growth is not None
    assert growth.warm_bytes == 100 and growth.end_bytes == 300
    assert growth.growth_bytes == 200
    assert rss_growth(total.iloc[0:0], Windows(0, None, None)) is None


def test_load_summary_tolerates_a_crashed_run(samples: pd.DataFrame) -> None:
    assert load_summary("d", None, None, None, None) == []
    rows = load_summary("d", None, samples, None, 12.0)
    metrics = {r.metric for r in rows}
    assert "rss_peak_bytes" in metrics and "rps" not in metrics
    assert "loadgen_cpu_max" in metrics


def test_loadgen_saturation_warns() -> None:
    calm = load_summary("d", None, None, None, 40.0)
    busy = load_summary("d", None, None, None, 97.0)
    assert by_key(busy)[("loadgen_saturated", "")] == 1.0
    assert by_key(calm)[("loadgen_saturated", "")] == 0.0
    assert load_warnings(calm) == []
    (warning,) = load_warnings(busy)
    assert "97%" in warning and "Locust" in warning
    assert "throughput and latency" in warning and "limit" in warning
    ceiling = [SummaryRow(CEILING, CEILING, "loadgen_cpu_max", 93.0, "percent")]
    (warning,) = load_warnings(ceiling)
    assert warning.startswith("ceiling ceiling:") and "93%" in warning


def _tree(rss: list[int], hwm: list[int | None] | None) -> pd.DataFrame:
    frame = pd.DataFrame({"t_s": [float(i) for i in range(len(rss))], "rss_bytes": rss})
    if hwm is not None:
        frame["hwm_bytes"] = hwm
    return frame


def test_rss_peak_is_the_larger_of_sample_and_high_water_mark() -> None:
    def got(frame: pd.DataFrame) -> dict[str, float]:
        rows = rss_peak_rows("d", frame)
        assert all((r.design, r.phase) == ("d", "load") for r in rows)
        return {r.metric: r.value for r in rows}

    missed = got(_tree([100, 120, 110], [100, 500, 500]))  # a peak between two samples
    assert missed == {
        "rss_peak_bytes": 500,
        "rss_peak_sampled_bytes": 120,
        "rss_hwm_bytes": 500,
        "rss_peak_from_hwm": 1.0,
    }
    caught = got(_tree([100, 130, 110], [100, 130, 130]))  # equal: the sample says it
    assert caught["rss_peak_bytes"] == 130 and caught["rss_peak_from_hwm"] == 0.0
    gone = got(_tree([100, 130], [None, None]))  # the column, but never measured
    assert gone == {"rss_peak_bytes": 130, "rss_peak_sampled_bytes": 130}
    assert got(_tree([100, 130], None)) == gone  # samples from before the column
    assert got(_tree([], None)) == {}


def test_harness_cost_rows() -> None:
    cost = HarnessCost(
        sampler_cpu_s=0.5, sampler_wall_s=50.0, samples=500, loadgen_cpu_s=30.0, loadgen_wall_s=40.0
    )
    rows = harness_cost_summary("naive", "load", cost)
    got = {r.metric: (r.value, r.unit) for r in rows}
    assert got == {
        "sampler_cpu_s": (0.5, "s"),
        "sampler_cpu_mean": (1.0, "percent"),
        "sampler_cpu_per_sample_ms": (1.0, "ms"),
        "loadgen_cpu_s": (30.0, "s"),
        "loadgen_cpu_mean": (75.0, "percent"),
    }
    assert all((r.design, r.phase, r.labels) == ("naive", "load", {}) for r in rows)
    only_locust = harness_cost_summary(
        "c", "ceiling", HarnessCost(loadgen_cpu_s=1.0, loadgen_wall_s=2.0)
    )
    assert {r.metric for r in only_locust} == {"loadgen_cpu_s", "loadgen_cpu_mean"}
    assert harness_cost_summary("d", "load", HarnessCost()) == []


def test_every_load_metric_of_the_architecture(
    stats: pd.DataFrame, samples: pd.DataFrame, history: pd.DataFrame
) -> None:
    rows = load_summary("naive", stats, samples, history, 20.0)
    metrics = {r.metric for r in rows}
    required = {
        "rps", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p50_ms",
        "ttft_p95_ms", "failures", "failure_ratio", "requests", "rss_peak_bytes",
        "rss_p95_bytes", "uss_peak_bytes", "rss_growth_bytes", "fds_max", "threads_max",
        "connections_max", "loadgen_cpu_max",
    }  # fmt: skip
    assert required <= metrics
    assert all(not math.isnan(r.value) for r in rows)


# --- the console's comparison --------------------------------------------------------------


def test_comparison_ratio_is_naive_over_optimized() -> None:
    rows: list[SummaryRow] = []
    for design in ("naive", "optimized"):
        rows += load_summary(
            design,
            read(design, "locust_stats.csv"),
            read(design, "process_samples.csv"),
            read(design, "locust_stats_history.csv"),
            10.0,
        )
    frame, column = comparison_frame(rows, ["naive", "optimized"])
    assert column == "naive/optimized"
    line = frame[frame["metric"] == "rss_peak_bytes"].iloc[0]
    assert line["phase"] == "load"
    assert line[column] == pytest.approx(line["naive"] / line["optimized"])
    assert {"ttft_p50_ms", "loadgen_cpu_max", "latency_p95_ms"} <= set(frame["metric"])
    _single, none = comparison_frame(rows, ["naive"])
    assert none is None


def test_comparison_shows_retained_per_request_without_a_ratio_of_noise() -> None:
    rows = [
        SummaryRow(
            design,
            "probe",
            "retained_bytes_per_request",
            value,
            "bytes/request",
            {"endpoint": endpoint, "history_len": "100"},
        )
        for design, endpoint, value in (
            ("naive", "chat", 4096.0),
            ("optimized", "chat", 1024.0),
            ("naive", "history", 12.0),
            ("optimized", "history", 2.0),
        )
    ]
    frame, column = comparison_frame(rows, ["naive", "optimized"])
    assert column == "naive/optimized"
    lines = frame[frame["metric"] == "retained_bytes_per_request"].set_index("labels")
    assert lines.at["endpoint=chat,history_len=100", column] == pytest.approx(4.0)
    assert math.isnan(lines.at["endpoint=history,history_len=100", column])


# --- integrity -----------------------------------------------------------------------------


def test_integrity_counts() -> None:
    seeded = {"a": 10, "b": 0, "c": 5}
    acknowledged = {"a": 2, "b": 1}
    stored = {"a": 14, "b": 1, "c": 7}  # b lost one message, c holds two unexpected
    counts = integrity_counts(seeded, acknowledged, stored)
    assert counts.users == 3
    assert counts.acknowledged == 3
    assert counts.expected == 15 + 2 * 3
    assert counts.stored == 22
    assert counts.lost == 1 and counts.lost_users == {"b": 1}
    assert counts.unexpected == 2 and counts.unexpected_users == {"c": 2}
    rows = {r.metric: r.value for r in integrity_rows("d", counts)}
    assert rows == {"acknowledged": 3, "expected": 21, "stored": 22, "lost": 1, "unexpected": 2}


def test_integrity_user_missing_from_the_store_lost_everything() -> None:
    counts = integrity_counts({"a": 4}, {"a": 1}, {})
    assert counts.lost == 6
    assert integrity_counts({"a": 4}, {}, {"a": 4}).lost == 0
