"""The probe's leak runs and allocation sites as the report draws and lists them (pure frames).

The synthetic checkpoints are made so that the retained figure is known: each endpoint leaks a
fixed number of bytes per request on top of what the probe's own resets leave, and the report's
curve must have the slope the analysis gives (harness.analysis.probe.retention).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.analysis.probe import retention
from harness.report import _probe_frames as pf
from harness.report._model import load_run
from harness.results import SCHEMA_VERSION

START = 5_000_000  # traced bytes at a run's first checkpoint
RESET_GROWTH = 300.0  # bytes per request the reset run alone keeps (the probe's bookkeeping)


def checkpoints_csv(leaks: dict[str, float], resets: tuple[str, ...] = ("chat",)) -> str:
    """probe_retained.csv of leak runs at history 100, checkpoints every 4 of 20 requests."""
    lines = ["endpoint,history_len,requests,traced_bytes,blocks,resets_after"]
    wobble = [0, 40, -25, 10, -5, 30]
    for endpoint, leak in {"reset": 0.0, **leaks}.items():
        per_request = leak + (RESET_GROWTH if endpoint in (*resets, "reset") else 0.0)
        flag = int(endpoint in resets)
        for i, n in enumerate(range(0, 24, 4)):
            traced = START + i * 1000 + per_request * n + wobble[i]
            lines.append(f"{endpoint},100,{n},{traced:.0f},{9000 + n},{flag}")
    return "\n".join(lines) + "\n"


def test_retained_curves_start_at_zero_and_have_the_analysis_slope() -> None:
    raw = pd.read_csv(io.StringIO(checkpoints_csv({"chat": 256.0, "history": 1024.0})))
    curves = pf.retained_curves(raw)
    assert list(curves.columns) == pf.RETAINED_COLUMNS
    assert sorted(set(curves["endpoint"])) == ["chat", "history"]  # the reset run is no curve
    figures = retention(raw)
    for endpoint, run in curves.groupby("endpoint"):
        assert run["retained_bytes"].iloc[0] == 0.0
        assert run["requests"].tolist() == [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]
        slope = float(np.polyfit(run["requests"], run["retained_bytes"], 1)[0])
        # the figure is a robust (Theil-Sen) rate: within 1% of the line's on this wobble
        assert slope == pytest.approx(figures[(str(endpoint), 100)].bytes_per_request, rel=0.01)
    chat = curves[curves["endpoint"] == "chat"]
    assert chat["reset_subtracted"].all()
    assert float(np.polyfit(chat["requests"], chat["retained_bytes"], 1)[0]) == pytest.approx(256.0)
    # history does not reset: its own growth, the 1000 B per checkpoint step included
    history = curves[curves["endpoint"] == "history"]
    assert not history["reset_subtracted"].any()
    assert history["retained_bytes"].iloc[1] == pytest.approx(1000 + 1024 * 4 + 40)


def test_retained_curves_without_the_reset_run_keep_the_raw_growth() -> None:
    raw = pd.read_csv(io.StringIO(checkpoints_csv({"chat": 0.0})))
    raw = raw[raw["endpoint"] != "reset"]
    chat = pf.retained_curves(raw)
    assert not chat["reset_subtracted"].any()
    assert float(np.polyfit(chat["requests"], chat["retained_bytes"], 1)[0]) == pytest.approx(
        RESET_GROWTH + 1000 / 4, rel=0.02
    )


def test_retained_curves_of_nothing_or_of_other_columns_are_empty() -> None:
    assert pf.retained_curves(None).empty
    assert list(pf.retained_curves(None).columns) == pf.RETAINED_COLUMNS
    assert pf.retained_curves(pd.DataFrame({"endpoint": ["chat"], "x": [1]})).empty


SITES = {
    "peak": [
        {"endpoint": "chat", "history_len": 0, "location": "app/store.py:10", "function": "load",
         "bytes": 99_999, "count": 1},
        *[
            {"endpoint": "chat", "history_len": 1000, "location": f"app/store.py:{i}",
             "function": f"f{i}", "bytes": 1000 * i, "count": i, "via": "json/decoder.py:353"}
            for i in range(1, 8)
        ],
        {"endpoint": "history", "history_len": 1000, "location": "app/api.py:5",
         "function": "history", "bytes": 512, "count": 2},
        {"endpoint": "history", "history_len": 1000, "function": "no location", "bytes": 1},
    ],
    "retained": [
        {"endpoint": "chat", "history_len": 100, "location": "app/cache.py:7",
         "function": "remember", "bytes": 8192.0, "count": 1.0},
    ],
}  # fmt: skip


def test_probe_site_rows_top_peak_sites_at_the_largest_size_then_retained() -> None:
    rows = pf.probe_site_rows(SITES, n=5)
    assert list(rows.columns) == pf.SITE_COLUMNS
    chat = rows[rows["endpoint"] == "chat"]
    peak = chat[chat["kind"] == "peak"]
    # the five largest at history 1000; the larger site at history 0 is not the largest size
    assert peak["location"].tolist() == [f"app/store.py:{i}" for i in (7, 6, 5, 4, 3)]
    assert set(peak["history_len"]) == {1000.0}
    assert peak["via"].iloc[0] == "json/decoder.py:353"
    kept = chat[chat["kind"] == "retained"]
    assert kept[["location", "bytes"]].values.tolist() == [["app/cache.py:7", 8192.0]]
    assert rows["endpoint"].tolist() == ["chat"] * 6 + ["history"]  # chat first, retained last
    history = rows[rows["endpoint"] == "history"].iloc[0]
    assert (history["location"], history["via"]) == ("app/api.py:5", "")


def test_probe_site_rows_end_with_the_line_of_each_one_time_growth() -> None:
    step = [
        {"endpoint": "chat", "history_len": 100, "location": "app/cache.py:3",
         "function": "", "bytes": 820_000.0, "count": 100.0},
        {"endpoint": "chat", "history_len": 100, "location": "app/cache.py:4",
         "function": "", "bytes": 9_000.0, "count": 2.0},
        {"endpoint": "history", "history_len": 100, "location": "app/api.py:9",
         "function": "", "bytes": 900.0, "count": 2.0},  # under 1 KiB: free lists, not shown
    ]  # fmt: skip
    rows = pf.probe_site_rows({**SITES, "step": step}, n=5)
    chat = rows[rows["endpoint"] == "chat"]
    assert chat["kind"].tolist() == ["peak"] * 5 + ["retained", pf.ONE_TIME]
    assert chat.iloc[-1][["location", "bytes"]].tolist() == ["app/cache.py:3", 820_000.0]
    assert pf.ONE_TIME not in rows[rows["endpoint"] == "history"]["kind"].tolist()


def test_probe_site_rows_of_nothing_is_empty() -> None:
    assert pf.probe_site_rows(None).empty
    assert pf.probe_site_rows({"peak": "not a list", "retained": []}).empty
    assert list(pf.probe_site_rows({}).columns) == pf.SITE_COLUMNS


def test_the_report_reads_the_probe_files_of_a_run(tmp_path: Path) -> None:
    run_json = {"schema_version": SCHEMA_VERSION, "run_id": "r", "config": {"designs": ["x"]}}
    (tmp_path / "run.json").write_text(json.dumps(run_json))
    probe = tmp_path / "x" / "probe"
    probe.mkdir(parents=True)
    (probe / "probe_retained.csv").write_text(checkpoints_csv({"chat": 64.0}))
    (probe / "probe_sites.json").write_text(json.dumps(SITES))
    data = load_run(tmp_path).per_design["x"]
    assert data.probe_retained is not None and len(data.probe_retained) == 12
    assert data.probe_sites == SITES
    (probe / "probe_sites.json").write_text("[1, 2]")  # not an object: no sites, no error
    assert load_run(tmp_path).per_design["x"].probe_sites is None


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        ("/root/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py:353", "json/decoder.py:353"),
        (".venv/lib/python3.11/site-packages/httpcore/_backends/anyio.py:115",
         "httpcore/_backends/anyio.py:115"),
        ("/usr/lib/python3/dist-packages/yaml/reader.py:9", "yaml/reader.py:9"),
        ("reference_app/naive/store.py:40", "reference_app/naive/store.py:40"),
        ("", ""),
    ],
)  # fmt: skip
def test_short_location_drops_the_interpreters_directories(location: str, shown: str) -> None:
    assert pf.short_location(location) == shown
