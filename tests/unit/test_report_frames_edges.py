"""Edges of the report's frames that the chart tests do not reach (pure, no I/O).

Each test pins one rule of harness.report._frames (and _probe_frames) that a reader of the
report relies on: which of Locust's rows are endpoints, how per-second totals add up, what an
empty frame looks like, how the leak runs and the allocation sites are ordered, and what a
junk cell turns into."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.report import _frames as fr
from harness.report import _probe_frames as pf

T0 = 1_800_000_000.0


def history(rows: list[dict[str, object]]) -> pd.DataFrame:
    """Locust's per-second history with only the columns a test names."""
    return pd.DataFrame(rows)


def request(ts: object, name: str, rtype: object = "POST", **figures: object) -> dict[str, object]:
    return {"Timestamp": ts, "Type": rtype, "Name": name, **figures}


# --- Locust's rows --------------------------------------------------------------------------


def test_a_history_without_names_has_no_series() -> None:
    frame = pd.DataFrame({"Timestamp": [T0, T0 + 1], "Type": ["POST", "POST"]})
    assert fr.locust_timeline(frame).empty
    assert fr.locust_timeline(frame, kind="ttft").empty


def test_a_history_without_types_keeps_only_the_aggregated_rows() -> None:
    frame = pd.DataFrame(
        {
            "Timestamp": [T0, T0, T0 + 1, T0 + 1],
            "Name": ["POST /chat", "Aggregated", "POST /chat", "Aggregated"],
            "Requests/s": [1.0, 2.0, 3.0, 4.0],
        }
    )
    timeline = fr.locust_timeline(frame)
    assert set(timeline["endpoint"]) == {fr.ALL_REQUESTS}
    assert timeline["rps"].tolist() == [2.0, 4.0]


def test_a_row_with_a_blank_type_is_no_endpoint() -> None:
    frame = history(
        [
            request(T0, "POST /chat", **{"Requests/s": 1.0}),
            request(T0, "GET /odd", rtype=math.nan, **{"Requests/s": 7.0}),
            request(T0, "Aggregated", rtype=math.nan, **{"Requests/s": 8.0}),
        ]
    )
    timeline = fr.locust_timeline(frame)
    assert timeline["endpoint"].tolist() == ["chat"]
    assert timeline["rps"].tolist() == [1.0]


def test_empty_timeline_has_the_columns_types() -> None:
    empty = fr.locust_timeline(None)
    assert list(empty.columns) == fr.TIMELINE_COLUMNS
    assert empty["endpoint"].dtype == object
    assert all(empty[c].dtype == np.float64 for c in fr.TIMELINE_COLUMNS if c != "endpoint")


def test_junk_cells_of_the_history_are_gaps() -> None:
    frame = history(
        [
            request(T0, "POST /chat", **{"Requests/s": "N/A", "Total Request Count": 4}),
            request("later", "POST /chat", **{"Requests/s": 2.0, "Total Request Count": 6}),
        ]
    )
    timeline = fr.locust_timeline(frame)
    assert timeline["t_s"].tolist() == [0.0]  # the row without a time is dropped
    assert math.isnan(timeline["rps"].iloc[0])
    assert timeline["requests"].tolist() == [4.0]
    assert timeline["fail_per_s"].isna().all()  # no Failures/s column: a gap, not an error
    assert timeline["p50_ms"].isna().all()  # no percentile column: nothing measured


def test_a_timeline_has_its_columns_and_a_fresh_index() -> None:
    frame = history(
        [
            request(T0 + 1, "GET /history", **{"Requests/s": 1.0}),
            request(T0, "POST /chat", **{"Requests/s": 2.0}),
        ]
    )
    timeline = fr.locust_timeline(frame)
    assert list(timeline.columns) == fr.TIMELINE_COLUMNS
    assert timeline.index.tolist() == [0, 1]
    assert timeline["endpoint"].tolist() == ["chat", "history"]


def test_percentiles_of_an_empty_window_are_gaps() -> None:
    # 50% is 0 and 95% unknown: nothing in Locust's window, not a 0 ms request
    frame = history(
        [
            request(T0, "POST /chat", **{"50%": 0, "95%": "N/A"}),
            request(T0 + 1, "POST /chat", **{"50%": 120, "95%": "N/A"}),
        ]
    )
    timeline = fr.locust_timeline(frame)
    assert timeline["p50_ms"].isna().tolist() == [True, False]
    assert timeline["p50_ms"].iloc[1] == 120.0


def test_a_missing_percentile_column_is_a_float_gap() -> None:
    frame = history([request(T0 + i, "POST /chat", **{"95%": 300.0 + i}) for i in range(3)])
    timeline = fr.locust_timeline(frame)
    assert timeline["p95_ms"].tolist() == [300.0, 301.0, 302.0]
    assert timeline["p50_ms"].dtype == np.float64
    assert timeline["p50_ms"].isna().all()


# --- per-second totals ----------------------------------------------------------------------


def timeline_of(rows: list[tuple[float, str, float]]) -> pd.DataFrame:
    """A timeline of (t_s, endpoint, cumulative failures) rows, one request a second each."""
    return pd.DataFrame(
        {
            "t_s": [r[0] for r in rows],
            "endpoint": [r[1] for r in rows],
            "rps": [1.0] * len(rows),
            "fail_per_s": [0.0] * len(rows),
            "failures": [r[2] for r in rows],
        }
    )


def test_throughput_adds_the_endpoints_second_by_second() -> None:
    # sorted by endpoint first, as locust_timeline returns it
    timeline = timeline_of([(1.0, "chat", 0.0), (2.0, "chat", 3.0), (0.0, "history", 0.0)])
    out = fr.throughput_timeline(timeline)
    assert out["t_s"].tolist() == [0.0, 1.0, 2.0]
    assert out["rps"].tolist() == [1.0, 1.0, 1.0]  # one endpoint a second is a sum too
    assert out["new_failures"].tolist() == [0.0, 0.0, 3.0]


def test_new_failures_are_never_negative() -> None:
    # a second where one endpoint's row is missing: the total drops, nothing failed
    timeline = timeline_of([(0.0, "chat", 2.0), (0.0, "history", 3.0), (1.0, "chat", 2.0)])
    out = fr.throughput_timeline(timeline)
    assert out["failures"].tolist() == [5.0, 2.0]
    assert out["new_failures"].tolist() == [5.0, 0.0]


def test_empty_throughput_has_float_columns() -> None:
    out = fr.throughput_timeline(fr.locust_timeline(None))
    assert list(out.columns) == ["t_s", "rps", "fail_per_s", "failures", "new_failures"]
    assert all(dtype == np.float64 for dtype in out.dtypes)


def test_an_endpoint_without_failure_counts_counts_none() -> None:
    timeline = timeline_of([(0.0, "chat", math.nan), (0.0, "history", 2.0)])
    assert fr.failure_count(timeline) == 2


# --- the peak stage's first and last seconds -------------------------------------------------


def test_first_and_last_of_a_missing_column_is_nan() -> None:
    frame = pd.DataFrame({"t_s": [0.0, 1.0], "v": [1.0, 2.0]})
    first, last = fr.first_and_last(frame, "missing", fr.Stage(0.0, 2.0, 1), 1.0)
    assert math.isnan(first) and math.isnan(last)


def test_first_and_last_ignore_gaps_in_other_columns() -> None:
    frame = pd.DataFrame({"t_s": [0.0, 1.0], "v": [1.0, 2.0], "other": [math.nan, math.nan]})
    assert fr.first_and_last(frame, "v", fr.Stage(0.0, 2.0, 1), 1.0) == (1.0, 2.0)


def test_the_peak_stage_of_one_user_and_the_longest_of_equal_stages() -> None:
    assert fr.peak_stage([fr.Stage(0, 5, 0), fr.Stage(5, 9, 1)]) == fr.Stage(5, 9, 1)
    long_first = [fr.Stage(0, 30, 20), fr.Stage(30, 40, 5), fr.Stage(40, 45, 20)]
    assert fr.peak_stage(long_first) == fr.Stage(0, 30, 20)


def test_a_sparse_resource_is_joined_between_its_measurements_only() -> None:
    samples = pd.DataFrame(
        {
            "t_s": [0.0, 1.0, 2.0, 3.0],
            "pid": ["total"] * 4,
            "rss_bytes": [10.0, 11.0, 12.0, 13.0],
            "uss_bytes": [100.0, math.nan, 140.0, math.nan],
        }
    )
    out = fr.tree_total(samples)
    assert out["uss_bytes"].tolist()[:3] == [100.0, 120.0, 140.0]
    assert math.isnan(out["uss_bytes"].iloc[3])  # after the last measurement: unknown


# --- the probe's leak runs -------------------------------------------------------------------


Checkpoint = tuple[str, int, object, float]


def checkpoints(rows: list[Checkpoint], **extra: list[object]) -> pd.DataFrame:
    """Leak-run checkpoints: (endpoint, history_len, requests, traced_bytes)."""
    return pd.DataFrame(
        {
            "endpoint": [r[0] for r in rows],
            "history_len": [r[1] for r in rows],
            "requests": [r[2] for r in rows],
            "traced_bytes": [r[3] for r in rows],
            **extra,
        }
    )


def run(endpoint: str, history_len: int, per_request: float) -> list[Checkpoint]:
    return [(endpoint, history_len, n, 1000.0 + per_request * n) for n in (0, 10, 20)]


def test_empty_retained_curves_have_the_columns_types() -> None:
    empty = pf.retained_curves(None)
    assert list(empty.columns) == pf.RETAINED_COLUMNS
    assert empty["endpoint"].dtype == object
    assert all(empty[c].dtype == np.float64 for c in pf.RETAINED_COLUMNS if c != "endpoint")


def test_without_a_resets_column_chat_resets_and_history_does_not() -> None:
    raw = checkpoints(run("reset", 10, 5.0) + run("chat", 10, 7.0) + run("history", 10, 3.0))
    curves = pf.retained_curves(raw)
    chat = curves[curves["endpoint"] == "chat"]
    assert chat["reset_subtracted"].tolist() == [True, True, True]
    assert chat["retained_bytes"].tolist() == [0.0, 20.0, 40.0]  # 7 - 5 bytes a request
    other = curves[curves["endpoint"] == "history"]
    assert other["reset_subtracted"].tolist() == [False, False, False]
    assert other["retained_bytes"].tolist() == [0.0, 30.0, 60.0]
    assert curves["requests"].dtype == np.float64


def test_the_resets_column_says_which_runs_reset() -> None:
    rows = run("reset", 10, 5.0) + run("chat", 10, 7.0) + run("history", 10, 8.0)
    flags: list[object] = [0] * 3 + [math.nan] * 3 + ["1"] * 3  # chat's flag unknown: no reset
    curves = pf.retained_curves(checkpoints(rows, resets_after=flags))
    assert curves.groupby("endpoint")["reset_subtracted"].all().to_dict() == {
        "chat": False,
        "history": True,
    }
    history = curves[curves["endpoint"] == "history"]
    assert history["retained_bytes"].tolist() == [0.0, 30.0, 60.0]
    junk = pf.retained_curves(checkpoints(run("chat", 10, 7.0), resets_after=["yes"] * 3))
    assert not junk["reset_subtracted"].any()


def test_runs_that_share_a_checkpoint_subtract_the_reset_once_each() -> None:
    """A warm-up run then the measured run: the boundary checkpoint (16) is in both, in the
    endpoint's and the reset's runs (a probe of the naive design crashed the report here)."""
    counts = [0, 8, 16, 16, 20, 24]
    rows = [("reset", 100, n, 1000.0 + 5.0 * n) for n in counts]
    rows += [("chat_stream", 100, n, 1000.0 + 7.0 * n) for n in counts]
    curves = pf.retained_curves(checkpoints(rows, resets_after=[0] * 6 + [1] * 6))
    stream = curves[curves["endpoint"] == "chat_stream"]
    assert stream["reset_subtracted"].all()
    assert stream["retained_bytes"].tolist() == [2.0 * n for n in counts]


def test_a_junk_checkpoint_is_dropped() -> None:
    rows = [*run("history", 10, 2.0), ("history", 10, "n/a", 5.0)]
    curves = pf.retained_curves(checkpoints(rows))
    assert curves["requests"].tolist() == [0.0, 10.0, 20.0]


def test_a_run_of_one_checkpoint_is_a_point_at_zero() -> None:
    curves = pf.retained_curves(checkpoints([("chat", 10, 5, 4096.0)]))
    assert curves[["endpoint", "requests", "retained_bytes"]].values.tolist() == [
        ["chat", 5.0, 0.0]
    ]


def test_curves_are_in_endpoint_order_before_history_length() -> None:
    raw = checkpoints(run("history", 100, 1.0) + run("chat", 500, 1.0) + run("zeta", 10, 1.0))
    curves = pf.retained_curves(raw)
    assert curves["endpoint"].drop_duplicates().tolist() == ["chat", "history", "zeta"]


# --- a request's allocation sites -----------------------------------------------------------


def site(i: int, kind_bytes: float = 0.0, **fields: object) -> dict[str, object]:
    return {
        "endpoint": "chat",
        "history_len": 100,
        "location": f"app/store.py:{i}",
        "function": f"f{i}",
        "bytes": kind_bytes or 100.0 * i,
        "count": i,
        **fields,
    }


def test_probe_sites_show_five_per_endpoint_by_default() -> None:
    rows = pf.probe_site_rows({"peak": [site(i) for i in range(1, 9)]})
    assert rows["location"].tolist() == [f"app/store.py:{i}" for i in (8, 7, 6, 5, 4)]
    assert rows["function"].tolist() == ["f8", "f7", "f6", "f5", "f4"]
    assert rows["count"].tolist() == [8.0, 7.0, 6.0, 5.0, 4.0]


def test_retained_sites_come_after_the_peak_sites_of_their_endpoint() -> None:
    sites = {
        "peak": [site(1), site(2)],
        "retained": [site(3, kind_bytes=1e9)],  # larger than any peak site, still listed last
    }
    rows = pf.probe_site_rows(sites)
    assert rows["kind"].tolist() == ["peak", "peak", "retained"]
    assert rows["bytes"].tolist() == [200.0, 100.0, 1e9]


def test_retained_sites_are_listed_without_peak_sites() -> None:
    for peak in (None, [], [{"bytes": 1}]):
        rows = pf.probe_site_rows({"peak": peak, "retained": [site(3)]})
        assert rows["kind"].tolist() == ["retained"]


def test_equal_sites_keep_the_files_order() -> None:
    sites = [site(i, kind_bytes=64.0 * (1 + i % 3)) for i in range(30)]
    rows = pf.probe_site_rows({"peak": sites}, n=30)
    expected = [i for b in (2, 1, 0) for i in range(30) if i % 3 == b]  # largest first, then
    assert rows["location"].tolist() == [f"app/store.py:{i}" for i in expected]  # file order


def test_a_site_row_tolerates_missing_and_junk_cells() -> None:
    raw = [
        {"location": "app/a.py:1", "history_len": 1, "bytes": 10},  # no endpoint, function, count
        {"location": "app/b.py:2", "history_len": 1, "bytes": 9, "count": "many"},
        {"location": "app/c.py:3", "history_len": 1, "bytes": "n/a"},
        {"location": "app/d.py:4", "history_len": "n/a", "bytes": 8},
        {"location": "app/e.py:5", "history_len": 1},
    ]
    rows = pf.probe_site_rows({"peak": raw})
    assert rows["location"].tolist() == ["app/a.py:1", "app/b.py:2"]
    assert rows["endpoint"].tolist() == ["?", "?"]
    assert rows["function"].tolist() == ["", ""]
    assert rows["count"].isna().all()


def test_short_location_reads_windows_paths() -> None:
    path = "C:\\venv\\Lib\\site-packages\\httpx\\_client.py:9"
    assert pf.short_location(path) == "httpx/_client.py:9"


@pytest.mark.parametrize("location", ["app/store.py:1", ""])
def test_short_location_keeps_the_services_paths(location: str) -> None:
    assert pf.short_location(location) == location
