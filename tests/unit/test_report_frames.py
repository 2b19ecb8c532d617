"""harness.report._frames: the frames the charts draw, from small frames built here
(other column spellings, per-process rows without totals, failed probe repetitions)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.report._frames import (
    Stage,
    endpoints_sorted,
    fit_line,
    percentile_frame,
    pick_column,
    probe_failures,
    probe_points,
    site_label,
    top_sites,
    tree_total,
    user_counts,
    user_stages,
)
from harness.results import SummaryRow


def rows_of(frame: pd.DataFrame) -> list[list[object]]:
    return frame.values.tolist()


def test_pick_column_is_case_insensitive_and_ordered() -> None:
    frame = pd.DataFrame(columns=["RSS", "uss_bytes", "Pid"])
    assert pick_column(frame, ("rss_bytes", "rss")) == "RSS"
    assert pick_column(frame, ("uss_bytes", "rss")) == "uss_bytes"
    assert pick_column(frame, ("pid",)) == "Pid"
    assert pick_column(frame, ("cpu",)) is None


# --- process samples -------------------------------------------------------------------------


def test_tree_total_takes_the_total_rows() -> None:
    samples = pd.DataFrame(
        {
            "t_s": [0.2, 0.2, 0.1, 0.1, "x"],
            "pid": ["total", "7", " TOTAL ", "7", "total"],
            "rss": [30, 10, 20, 5, 99],
            "fds": [3, 1, 2, 1, 9],
        }
    )
    out = tree_total(samples)
    assert list(out.columns) == ["t_s", "rss_bytes", "num_fds"]
    assert rows_of(out) == [[0.1, 20.0, 2.0], [0.2, 30.0, 3.0]]
    assert list(out.index) == [0, 1]


def test_tree_total_sums_processes_when_there_is_no_total() -> None:
    samples = pd.DataFrame(
        {
            "unix_s": [100.5, 100.5, 101.0, 101.0],
            "pid": [1, 2, 1, 2],
            "rss_bytes": [10, 20, 30, None],
            "cpu_percent": [1.0, 2.0, 3.0, 4.0],
        }
    )
    out = tree_total(samples)
    assert list(out.columns) == ["t_s", "rss_bytes", "cpu_percent"]
    assert rows_of(out) == [[0.0, 30.0, 3.0], [0.5, 30.0, 7.0]]


def test_tree_total_without_pids_or_time() -> None:
    no_pid = pd.DataFrame({"elapsed_s": [2.0, 1.0], "threads": [4, 3]})
    assert rows_of(tree_total(no_pid)) == [[1.0, 3.0], [2.0, 4.0]]
    for bad in (None, pd.DataFrame(), pd.DataFrame({"rss": [1]})):
        out = tree_total(bad)
        assert out.empty and list(out.columns) == ["t_s"] and out["t_s"].dtype == float


# --- the load shape --------------------------------------------------------------------------


def test_user_counts_per_timestamp_from_an_origin() -> None:
    history = pd.DataFrame(
        {
            "Timestamp": [12, 10, 10, 11, "x"],
            "User Count": [5, 2, 3, 5, 8],
        }
    )
    out = user_counts(history)
    assert list(out.columns) == ["t_s", "users"]
    assert rows_of(out) == [[0.0, 3.0], [1.0, 5.0], [2.0, 5.0]]
    assert user_counts(history, origin=8.0)["t_s"].tolist() == [2.0, 3.0, 4.0]
    assert list(out.index) == [0, 1, 2]


def test_user_counts_of_nothing() -> None:
    for history in (
        None,
        pd.DataFrame(),
        pd.DataFrame({"Timestamp": [1]}),
        pd.DataFrame({"users": [1]}),
        pd.DataFrame({"Timestamp": ["a"], "users": ["b"]}),
    ):
        out = user_counts(history)
        assert out.empty and list(out.columns) == ["t_s", "users"]


def test_user_stages() -> None:
    counts = pd.DataFrame({"t_s": [0.0, 2.0, 4.0, 6.0], "users": [1, 1, 5, 2]})
    assert user_stages(counts) == [Stage(0.0, 4.0, 1), Stage(4.0, 6.0, 5), Stage(6.0, 8.0, 2)]
    one = pd.DataFrame({"t_s": [3.0], "users": [4]})
    assert user_stages(one) == [Stage(3.0, 4.0, 4)]
    assert user_stages(pd.DataFrame({"t_s": [], "users": []})) == []


# --- the probe -------------------------------------------------------------------------------


def probe_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "endpoint": ["chat", "chat", "chat", "chat", "history", "history", "history"],
            "history_len": [100, 100, 100, 0, 0, 0, "x"],
            "alloc_peak_bytes": [30, 10, 20, 5, 7, 9, 1],
            "alloc_net_bytes": [1, 2, 3, 4, 5, 6, 7],
            "status": ["200", "200.0", "500", "ok", "503", "Failed", "200"],
        }
    )


def test_probe_points_use_successful_repetitions_only() -> None:
    out = probe_points(probe_frame())
    assert list(out.columns) == ["endpoint", "history_len", "median", "min", "max", "reps"]
    assert rows_of(out) == [["chat", 0.0, 5.0, 5.0, 5.0, 1], ["chat", 100.0, 20.0, 10.0, 30.0, 2]]
    net = probe_points(probe_frame(), "alloc_net_bytes")
    assert net["median"].tolist() == [4.0, 1.5]


def test_probe_points_without_status_count_everything() -> None:
    out = probe_points(probe_frame().drop(columns=["status"]))
    assert out["reps"].tolist() == [1, 3, 2]
    assert out["endpoint"].tolist() == ["chat", "chat", "history"]


def test_probe_points_of_nothing() -> None:
    columns = ["endpoint", "history_len", "median", "min", "max", "reps"]
    for probe in (None, pd.DataFrame(), probe_frame().drop(columns=["endpoint"])):
        assert list(probe_points(probe).columns) == columns and probe_points(probe).empty
    assert probe_points(probe_frame(), "missing").empty
    failed = probe_frame().assign(status="500")
    assert probe_points(failed).empty and list(probe_points(failed).columns) == columns


def test_probe_failures_name_points_where_nothing_succeeded() -> None:
    out = probe_failures(probe_frame())
    assert rows_of(out) == [["history", 0.0, "503, Failed"]]
    assert list(out.columns) == ["endpoint", "history_len", "status"]
    for probe in (None, pd.DataFrame(), probe_frame().drop(columns=["status"])):
        assert probe_failures(probe).empty
        assert list(probe_failures(probe).columns) == ["endpoint", "history_len", "status"]


def test_fit_line() -> None:
    slope_intercept = fit_line([0, 1, 2], [1, 3, 5])
    assert slope_intercept is not None
    assert slope_intercept == pytest.approx((2.0, 1.0))
    assert fit_line([1, 1], [1, 2]) is None
    assert fit_line([], []) is None
    assert fit_line([0, 1], [0, 1]) == pytest.approx((1.0, 0.0))  # two points are a line


def test_endpoints_sorted() -> None:
    assert endpoints_sorted(["zeta", "history", "alpha", "chat", "zeta"]) == [
        "chat", "history", "alpha", "zeta",
    ]  # fmt: skip


# --- latency from the summary ----------------------------------------------------------------


def test_percentile_frame_takes_load_rows_of_the_named_metrics() -> None:
    from harness.analysis.headline import summary_frame
    from harness.report._frames import PERCENTILE_METRICS, TTFT_METRICS

    frame = summary_frame(
        [
            SummaryRow("a", "load", "latency_p95_ms", 80.0, "ms", {"endpoint": "chat"}),
            SummaryRow("a", "load", "latency_p50_ms", 40.0, "ms"),
            SummaryRow("a", "probe", "latency_p95_ms", 1.0, "ms", {"endpoint": "chat"}),
            SummaryRow("b", "load", "ttft_p50_ms", 55.0, "ms"),
            SummaryRow("b", "load", "rps", 3.0, "req/s"),
        ]
    )
    out = percentile_frame(frame, PERCENTILE_METRICS)
    assert list(out.columns) == ["design", "endpoint", "percentile", "value"]
    assert rows_of(out) == [["a", "chat", "p95", 80.0], ["a", "", "p50", 40.0]]
    assert rows_of(percentile_frame(frame, TTFT_METRICS)) == [["b", "", "p50", 55.0]]
    empty = percentile_frame(summary_frame([]), PERCENTILE_METRICS)
    assert empty.empty and list(empty.columns) == ["design", "endpoint", "percentile", "value"]
    none = percentile_frame(frame, {"other": "p1"})
    assert none.empty and list(none.columns) == ["design", "endpoint", "percentile", "value"]


# --- memray's top sites ----------------------------------------------------------------------


def sites_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "kind": ["allocated", "hwm", "hwm", "hwm"],
            "function": ["big", "small", "large", "mid"],
            "location": ["a.py:1", "b.py:2", "/x/y/c.py:3", "d.py:4"],
            "bytes": [10**9, 10, 1000, "n/a"],
            "count": [1, 2, 3, 4],
        }
    )


def test_top_sites_prefer_the_high_water_mark_and_sort_by_bytes() -> None:
    out, kind = top_sites(sites_frame())
    assert kind == "hwm"
    assert list(out.columns) == ["label", "bytes", "count"]
    assert rows_of(out) == [["large  (y/c.py:3)", 1000.0, 3.0], ["small  (b.py:2)", 10.0, 2.0]]
    top1, _ = top_sites(sites_frame(), n=1)
    assert top1["label"].tolist() == ["large  (y/c.py:3)"]


def test_top_sites_other_kinds_and_spellings() -> None:
    allocated = sites_frame()[sites_frame()["kind"] == "allocated"]
    out, kind = top_sites(allocated)
    assert kind == "allocated" and out["bytes"].tolist() == [1e9]
    plain = pd.DataFrame({"func": ["f"], "file": ["m.py"], "size": [5]})
    out, kind = top_sites(plain)
    assert kind == ""
    assert out["label"].tolist() == ["f  (m.py)"] and math.isnan(out["count"].iloc[0])
    nameless = pd.DataFrame({"bytes": [5], "n_allocations": [2]})
    out, _ = top_sites(nameless)
    assert rows_of(out) == [["?", 5.0, 2.0]]
    for sites in (None, pd.DataFrame(), pd.DataFrame({"function": ["f"]})):
        empty, kind = top_sites(sites)
        assert empty.empty and kind == "" and list(empty.columns) == ["label", "bytes", "count"]


def test_site_labels() -> None:
    assert site_label(" f ", " a/b/c.py:3 ") == "f  (b/c.py:3)"
    assert site_label("", "") == "?"
    assert site_label("f", "nan") == "f"
    assert site_label("f" * 70, "") == "f" * 63 + "…"
    assert site_label("f" * 64, "") == "f" * 64
    assert site_label("f", "a\\b\\c.py:1") == "f  (b/c.py:1)"
    long = site_label("function", "pkg/" + "m" * 80 + ".py:12", width=40)
    assert long.startswith("function  (…") and long.endswith(".py:12)")
    assert len(long) == 40
    tight = site_label("f" * 50, "pkg/module_name_long.py:1", width=40)
    assert tight == "f" * 50 + "  (…" + "pkg/module_name_long.py:1"[-12:] + ")"


# --- the other spellings each reader accepts ---------------------------------------------------


def test_user_counts_accept_other_spellings() -> None:
    for users in ("user_count", "users"):
        history = pd.DataFrame({"Timestamp": [1, 2], users: [3, 4]})
        assert user_counts(history)["users"].tolist() == [3.0, 4.0]
    two = pd.DataFrame({"t_s": [0.0, 3.0], "users": [1, 2]})
    assert user_stages(two) == [Stage(0.0, 3.0, 1), Stage(3.0, 6.0, 2)]


def test_probe_statuses_that_count_as_success() -> None:
    probe = probe_frame().assign(status=["passed", "success", "SUCCESS", "PASSED ", "x", "x", "x"])
    assert probe_points(probe)["reps"].tolist() == [1, 3]
    assert probe_failures(probe)["endpoint"].tolist() == ["history"]
    numbered = probe_frame().assign(status=["500.0"] * 7)
    assert set(probe_failures(numbered)["status"]) == {"500"}
    no_endpoint = probe_frame().drop(columns=["endpoint"])
    assert probe_failures(no_endpoint).empty
    empty = probe_failures(probe_frame().assign(status="200"))
    assert empty.empty and list(empty.columns) == ["endpoint", "history_len", "status"]


def test_top_sites_accept_other_spellings() -> None:
    frame = pd.DataFrame({"filename": ["/a/b/m.py"], "size_bytes": [9], "allocations": ["3"]})
    out, _ = top_sites(frame)
    assert rows_of(out) == [["?  (b/m.py)", 9.0, 3.0]]
    size = pd.DataFrame({"function": ["f"], "size": ["7"], "n_allocations": [1]})
    assert rows_of(top_sites(size)[0]) == [["f", 7.0, 1.0]]
    unknown_kind = pd.DataFrame({"kind": ["odd"], "function": ["f"], "bytes": [1]})
    assert top_sites(unknown_kind)[1] == "odd"


def test_site_label_at_exactly_the_width() -> None:
    location = "pkg/" + "m" * 20 + ".py"  # 27 characters
    label = site_label("f" * 9, location, width=40)  # room = 40 - 9 - 4 = 27: fits
    assert label == "f" * 9 + "  (" + location + ")"


def test_junk_cells_become_gaps_not_errors() -> None:
    abs_time = pd.DataFrame({"unix_s": [10.0, "?", 11.0], "rss": [1, "n/a", 3]})
    assert rows_of(tree_total(abs_time)) == [[0.0, 1.0], [1.0, 3.0]]
    probe = probe_frame().assign(alloc_peak_bytes=["x", 10, 20, 5, 7, 9, 1])
    assert probe_points(probe)["reps"].tolist() == [1, 1]
    sites = pd.DataFrame({"function": ["f"], "bytes": [5], "count": ["many"]})
    assert math.isnan(top_sites(sites)[0]["count"].iloc[0])


def test_top_sites_show_ten_by_default() -> None:
    sites = pd.DataFrame({"function": [f"f{i}" for i in range(12)], "bytes": range(12)})
    out, _ = top_sites(sites)
    assert len(out) == 10 and out["bytes"].iloc[0] == 11.0


def test_a_sample_with_a_missing_resource_is_kept() -> None:
    samples = pd.DataFrame({"t_s": [0.0, 1.0], "rss": [1, "n/a"], "fds": [2, 3]})
    out = tree_total(samples)
    assert out["num_fds"].tolist() == [2.0, 3.0]
    assert math.isnan(out["rss_bytes"].iloc[1])
