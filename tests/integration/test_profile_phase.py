"""The profile phase end to end on the naive design's whale case (memray + Locust, loopback).

Kept short: a small data set (20 users, 2 whales of 2,000 messages), the whales scenario, 8 s
of load. The naive design parses the whole JSON file on every request, so the history-loading
code (`load_history` / json decoding) must be among the top allocation sites.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest
from schema_check import check_run_dir

from harness.analysis.profile import SITE_COLUMNS
from harness.config import Config, ProfileConfig, SeedConfig
from harness.phases.profile import CAPTURE, FLAMEGRAPH, TOP_SITES_CSV, run_profile
from harness.results import RunDir, SummaryRow

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]

HISTORY_LOADING = ("load_history", "raw_decode", "decode", "load", "loads")


@pytest.fixture(scope="module")
def profiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunDir, list[SummaryRow]]:
    run = RunDir.create(tmp_path_factory.mktemp("runs"))
    cfg = Config(
        path="test",
        seed=SeedConfig(users=20, whales=2, whale_history=2000, seed=1),
        profile=replace(
            ProfileConfig(), scenario="whales", users=4, spawn_rate=4, profile_duration_s=8
        ),
    )
    return run, run_profile(run, "naive", cfg)


def test_capture_opens_with_filereader(profiled: tuple[RunDir, list[SummaryRow]]) -> None:
    import memray

    run, _ = profiled
    capture = run.phase_dir("naive", "profile") / CAPTURE
    with memray.FileReader(str(capture)) as reader:
        meta = reader.metadata
        assert meta.trace_python_allocators
        assert meta.peak_memory > 0
        assert meta.total_allocations > 0
        assert "--probe" not in meta.command_line  # memray and tracemalloc never share a process


def test_flamegraph_written(profiled: tuple[RunDir, list[SummaryRow]]) -> None:
    run, _ = profiled
    html = run.phase_dir("naive", "profile") / FLAMEGRAPH
    assert html.is_file() and html.stat().st_size > 10_000
    assert "<html" in html.read_text(errors="replace")[:2000].lower()


def test_top_sites_name_the_history_loading_code(
    profiled: tuple[RunDir, list[SummaryRow]],
) -> None:
    run, _ = profiled
    table = pd.read_csv(run.phase_dir("naive", "profile") / TOP_SITES_CSV)
    assert list(table.columns) == list(SITE_COLUMNS)
    assert set(table["kind"]) == {"hwm", "allocated"}
    for kind in ("hwm", "allocated"):
        part = table[table["kind"] == kind]
        assert 0 < len(part) <= 20
        assert part["bytes"].is_monotonic_decreasing
        top5 = part.head(5)
        names = " ".join(
            f"{f} {loc}" for f, loc in zip(top5["function"], top5["location"], strict=True)
        )
        assert any(fn in names for fn in HISTORY_LOADING), (kind, top5.to_string())
    allocated = table[table["kind"] == "allocated"]
    # The top allocated site is in json decoding or the naive store itself.
    top = allocated.iloc[0]
    assert "json" in top["location"] or "naive/store.py" in top["location"], top.to_dict()


def test_rows(profiled: tuple[RunDir, list[SummaryRow]]) -> None:
    _, rows = profiled
    by_metric = {r.metric: r for r in rows}
    assert set(by_metric) == {
        "heap_peak_bytes",
        "bytes_allocated",
        "allocations",
        "requests",
        "bytes_allocated_per_request",
    }
    assert {r.phase for r in rows} == {"profile"}
    requests = by_metric["requests"].value
    assert requests > 0
    assert by_metric["bytes_allocated_per_request"].value == pytest.approx(
        by_metric["bytes_allocated"].value / requests
    )
    # A whale's history of 2,000 messages parsed per request: well over a megabyte each.
    assert by_metric["bytes_allocated_per_request"].value > 1_000_000
    assert by_metric["heap_peak_bytes"].value > by_metric["bytes_allocated"].value / 1e4


def test_profile_files_have_their_documented_format(
    profiled: tuple[RunDir, list[SummaryRow]],
) -> None:
    run, _rows = profiled
    assert "profile-timings" in check_run_dir(run.root).values()
