"""The over-time frames of the report: Locust's per-second history in, the charts' series out.

A run directory is written with a known history (and process samples), read back as the
report reads it, and the series each chart draws are checked value by value.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from harness.report import _frames as fr
from harness.report._model import load_run
from harness.report._timeline import design_trace, peak_drift, stages_of
from harness.results import SCHEMA_VERSION

HEADER = [
    "Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s",
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
    "Total Request Count", "Total Failure Count",
]  # fmt: skip
T0 = 1_800_000_000  # Locust's first timestamp
SAMPLES_START = T0 - 2.0  # the sampler started two seconds before Locust's first row


def row(
    ts: int,
    users: int,
    rtype: str,
    name: str,
    rps: float,
    fps: float,
    p50: object,
    p95: object,
    total: int,
    failed: int,
) -> list[object]:
    # 66% .. 90% sit between p50 and p95, 98% .. 100% at p95: enough for the frames
    mid = p50 if p50 in ("N/A", 0) else p95
    percentiles = [p50, mid, mid, mid, mid, p95, p95, p95, p95, p95, p95]
    return [ts, users, rtype, name, rps, fps, *percentiles, total, failed]


def known_history() -> list[list[object]]:
    """Four seconds: 4 users, then 2. chat fails twice at T0+2; the stream has TTFT events."""
    rows = [row(T0, 0, "", "Aggregated", 0, 0, "N/A", "N/A", 0, 0)]
    # second 1: requests done but nothing in Locust's window yet (every percentile 0)
    rows += [
        row(T0 + 1, 4, "POST", "POST /chat", 0, 0, 0, 0, 3, 0),
        row(T0 + 1, 4, "POST", "POST /chat [stream]", 0, 0, 0, 0, 1, 0),
        row(T0 + 1, 4, "TTFT", "POST /chat [stream]", 0, 0, 0, 0, 1, 0),
        row(T0 + 1, 4, "", "Aggregated", 0, 0, 0, 0, 5, 0),
    ]
    rows += [
        row(T0 + 2, 4, "POST", "POST /chat", 3.0, 1.0, 100, 400, 7, 2),
        row(T0 + 2, 4, "POST", "POST /chat [stream]", 1.0, 0, 200, 900, 3, 0),
        row(T0 + 2, 4, "TTFT", "POST /chat [stream]", 1.0, 0, 50, 80, 3, 0),
        row(T0 + 2, 4, "", "Aggregated", 5.0, 1.0, 120, 800, 13, 2),
    ]
    rows += [
        row(T0 + 3, 2, "POST", "POST /chat", 2.0, 0.5, 150, 600, 9, 2),
        row(T0 + 3, 2, "POST", "POST /chat [stream]", 0.5, 0, 250, 1000, 4, 0),
        row(T0 + 3, 2, "TTFT", "POST /chat [stream]", 0.5, 0, 60, 90, 4, 0),
        row(T0 + 3, 2, "", "Aggregated", 3.0, 0.5, 160, 900, 17, 2),
    ]
    return rows


def history_frame(rows: list[list[object]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=HEADER)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run directory with one design, `naive`: run.json, Locust's history, process samples."""
    root = tmp_path / "run"
    load = root / "naive" / "load"
    load.mkdir(parents=True)
    run = {
        "schema_version": SCHEMA_VERSION,
        "run_id": "known",
        "config": {"designs": ["naive"], "profile": {"name": "t", "phases": ["load"]}},
        "phases": [{"design": "naive", "phase": "load", "status": "passed"}],
    }
    (root / "run.json").write_text(json.dumps(run))
    with (load / "locust_stats_history.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(known_history())
    with (load / "process_samples.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t_s", "unix_s", "pid", "rss_bytes", "uss_bytes"])
        for i in range(7):  # one sample a second, RSS growing by 1 MiB a second
            t = float(i)
            writer.writerow([t, SAMPLES_START + t, "total", (100 + i) * 2**20, 80 * 2**20])
    return root


def test_request_series_per_endpoint_on_the_samples_clock(run_dir: Path) -> None:
    trace = design_trace(load_run(run_dir).per_design["naive"])
    chat = trace.requests[trace.requests["endpoint"] == "chat"]
    # Locust's T0 is 2 s after the samples' t = 0
    assert chat["t_s"].tolist() == [3.0, 4.0, 5.0]
    assert chat["rps"].tolist() == [0.0, 3.0, 2.0]
    assert chat["fail_per_s"].tolist() == [0.0, 1.0, 0.5]
    # the all-zero row (nothing in Locust's window yet) is no data, not 0 ms
    assert math.isnan(chat["p50_ms"].iloc[0]) and math.isnan(chat["p95_ms"].iloc[0])
    assert chat["p50_ms"].tolist()[1:] == [100.0, 150.0]
    assert chat["p95_ms"].tolist()[1:] == [400.0, 600.0]
    assert set(trace.requests["endpoint"]) == {"chat", "chat_stream"}  # no Aggregated, no TTFT


def test_ttft_series_are_the_ttft_events_only(run_dir: Path) -> None:
    trace = design_trace(load_run(run_dir).per_design["naive"])
    assert set(trace.ttft["endpoint"]) == {"chat_stream"}
    assert trace.ttft["p95_ms"].tolist()[1:] == [80.0, 90.0]
    stream = trace.requests[trace.requests["endpoint"] == "chat_stream"]
    assert stream["p95_ms"].tolist()[1:] == [900.0, 1000.0]  # the request's own, not TTFT's


def test_throughput_sums_the_endpoints_and_leaves_ttft_out(run_dir: Path) -> None:
    trace = design_trace(load_run(run_dir).per_design["naive"])
    flow = trace.throughput
    assert flow["t_s"].tolist() == [3.0, 4.0, 5.0]
    assert flow["rps"].tolist() == [0.0, 4.0, 2.5]  # Aggregated says 5.0 and 3.0: TTFT counted
    assert flow["fail_per_s"].tolist() == [0.0, 1.0, 0.5]
    assert flow["new_failures"].tolist() == [0.0, 2.0, 0.0]  # both failures in one second
    assert trace.failures == 2


def test_memory_and_stages_share_the_clock(run_dir: Path) -> None:
    d = load_run(run_dir).per_design["naive"]
    trace = design_trace(d)
    assert trace.totals["rss_bytes"].tolist()[:2] == [100 * 2**20, 101 * 2**20]
    stages = stages_of(d)
    assert [(s.start_s, s.end_s, s.users) for s in stages] == [
        (2.0, 3.0, 0),
        (3.0, 5.0, 4),
        (5.0, 6.0, 2),
    ]
    assert trace.end_s == 6.0


def test_aggregated_only_history_gives_one_series() -> None:
    rows = [r for r in known_history() if r[3] == "Aggregated"]
    timeline = fr.locust_timeline(history_frame(rows))
    assert set(timeline["endpoint"]) == {fr.ALL_REQUESTS}
    assert timeline["t_s"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert timeline["p95_ms"].tolist()[2:] == [800.0, 900.0]
    assert fr.locust_timeline(history_frame(rows), kind="ttft").empty


def test_no_history_gives_empty_frames() -> None:
    for history in (None, pd.DataFrame(), pd.DataFrame({"Name": ["x"]})):
        timeline = fr.locust_timeline(history)
        assert timeline.empty and list(timeline.columns) == fr.TIMELINE_COLUMNS
        assert fr.throughput_timeline(timeline).empty
        assert fr.failure_count(timeline) == 0


def test_a_clean_run_counts_no_failure() -> None:
    rows = [[*r[:18], 0] for r in known_history()]
    timeline = fr.locust_timeline(history_frame(rows))
    assert fr.failure_count(timeline) == 0
    assert (fr.throughput_timeline(timeline)["new_failures"] == 0).all()


def test_peak_drift_compares_the_first_and_last_seconds_at_peak(run_dir: Path) -> None:
    windows, drifts = peak_drift(load_run(run_dir))
    (window,) = windows
    assert (window.stage.start_s, window.stage.end_s, window.stage.users) == (3.0, 5.0, 4)
    assert window.window_s == fr.PERCENTILE_WINDOW_S  # a short stage: Locust's window
    found = {d.what: (d.first, d.last, d.unit) for d in drifts}
    # a 2 s stage with 10 s windows: both windows cover the whole stage
    assert found["p95 chat"] == (400.0, 400.0, "ms")  # 3 s had no data, 5 s is the next stage
    assert found["RSS"] == (103.5 * 2**20, 103.5 * 2**20, "bytes")  # samples at 3 and 4 s
    assert found["p95 first token chat_stream"] == (80.0, 80.0, "ms")


def test_first_and_last_windows_of_a_long_stage() -> None:
    frame = pd.DataFrame(
        {"t_s": [float(t) for t in range(100)], "v": [float(t) for t in range(100)]}
    )
    stage = fr.Stage(20.0, 80.0, 10)
    window = fr.drift_window_s(stage)
    assert window == 15.0  # a quarter of 60 s
    first, last = fr.first_and_last(frame, "v", stage, window)
    assert first == pytest.approx(27.0)  # median of 20 .. 34
    assert last == pytest.approx(72.0)  # median of 65 .. 79
    assert fr.drift_window_s(fr.Stage(0.0, 1000.0, 5)) == 60.0


def test_peak_stage_is_the_longest_at_the_most_users() -> None:
    stages = [fr.Stage(0, 5, 10), fr.Stage(5, 10, 20), fr.Stage(10, 12, 15), fr.Stage(12, 40, 20)]
    assert fr.peak_stage(stages) == fr.Stage(12, 40, 20)
    assert fr.peak_stage([fr.Stage(0, 5, 0)]) is None
