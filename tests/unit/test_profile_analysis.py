"""harness.analysis.profile and the pure parts of harness.sampling.memray_capture."""

from __future__ import annotations

import pytest

from harness.analysis.profile import (
    SITE_COLUMNS,
    SiteRecord,
    sites_table,
    summary_rows,
    top_sites,
)
from harness.sampling.memray_capture import parse_location, parse_stats


def test_top_sites_sums_stacks_per_site_and_sorts_by_bytes() -> None:
    records = [
        SiteRecord("load", "/app/store.py", 40, 1_000, 10),
        SiteRecord("load", "/app/store.py", 40, 3_000, 5),  # another stack, same site
        SiteRecord("raw_decode", "json/decoder.py", 353, 2_500, 100),
        SiteRecord("small", "x.py", 1, 10, 1),
    ]
    table = top_sites(records, "hwm", n=2)
    assert list(table.columns) == list(SITE_COLUMNS)
    assert table.to_dict("records") == [
        {
            "kind": "hwm",
            "function": "load",
            "location": "/app/store.py:40",
            "bytes": 4_000,
            "count": 15,
        },
        {
            "kind": "hwm",
            "function": "raw_decode",
            "location": "json/decoder.py:353",
            "bytes": 2_500,
            "count": 100,
        },
    ]


def test_ties_are_deterministic() -> None:
    records = [SiteRecord("b", "b.py", 1, 5, 1), SiteRecord("a", "a.py", 1, 5, 1)]
    assert top_sites(records, "allocated")["function"].tolist() == ["a", "b"]
    assert top_sites(list(reversed(records)), "allocated")["function"].tolist() == ["a", "b"]


def test_sites_table_has_both_kinds_and_handles_empty() -> None:
    table = sites_table([SiteRecord("f", "f.py", 2, 8, 1)], [])
    assert table["kind"].tolist() == ["hwm"]
    assert list(sites_table([], []).columns) == list(SITE_COLUMNS)


def test_unknown_kind_is_an_error() -> None:
    with pytest.raises(ValueError):
        top_sites([], "leaks")


def test_summary_rows_per_request() -> None:
    rows = summary_rows(
        "naive",
        heap_peak_bytes=50_000_000,
        bytes_allocated=8_000_000_000,
        allocations=9,
        requests=400,
    )
    by_metric = {r.metric: r for r in rows}
    assert by_metric["bytes_allocated_per_request"].value == 20_000_000
    assert by_metric["bytes_allocated_per_request"].unit == "bytes"
    assert by_metric["requests"].value == 400 and by_metric["requests"].unit == "count"
    assert by_metric["allocations"].unit == "count"
    assert by_metric["heap_peak_bytes"].value == 50_000_000
    assert {r.phase for r in rows} == {"profile"}


def test_no_requests_no_per_request_figure() -> None:
    rows = summary_rows("d", heap_peak_bytes=1, bytes_allocated=2, allocations=3, requests=0)
    assert "bytes_allocated_per_request" not in {r.metric for r in rows}


def test_parse_location() -> None:
    assert parse_location("raw_decode:/usr/lib/python3.11/json/decoder.py:353") == (
        "raw_decode",
        "/usr/lib/python3.11/json/decoder.py",
        353,
    )
    assert parse_location("<stack trace unavailable>") == ("<unknown>", "<unknown>", 0)
    assert parse_location("<module>:<frozen importlib._bootstrap>:241") == (
        "<module>",
        "<frozen importlib._bootstrap>",
        241,
    )


def test_parse_stats_joins_sizes_and_counts() -> None:
    raw = {
        "total_num_allocations": 12,
        "total_bytes_allocated": 3_000,
        "top_allocations_by_size": [
            {"location": "load:/app/store.py:40", "size": 2_000},
            {"location": "dump:/app/store.py:60", "size": 1_000},
        ],
        "top_allocations_by_count": [
            {"location": "dump:/app/store.py:60", "count": 9},
            {"location": "load:/app/store.py:40", "count": 3},
        ],
        "metadata": {"peak_memory": 2_500},
    }
    stats = parse_stats(raw)
    assert stats.bytes_allocated == 3_000
    assert stats.allocations == 12
    assert stats.heap_peak_bytes == 2_500
    assert stats.sites == [
        SiteRecord("load", "/app/store.py", 40, 2_000, 3),
        SiteRecord("dump", "/app/store.py", 60, 1_000, 9),
    ]


# --- the edges (from mutation testing) --------------------------------------------------------


def test_summary_rows_in_full() -> None:
    rows = summary_rows(
        "naive", heap_peak_bytes=100, bytes_allocated=1000, allocations=7, requests=4
    )
    assert [(r.design, r.phase, r.metric, r.value, r.unit, dict(r.labels)) for r in rows] == [
        ("naive", "profile", "heap_peak_bytes", 100.0, "bytes", {}),
        ("naive", "profile", "bytes_allocated", 1000.0, "bytes", {}),
        ("naive", "profile", "allocations", 7.0, "count", {}),
        ("naive", "profile", "requests", 4.0, "count", {}),
        ("naive", "profile", "bytes_allocated_per_request", 250.0, "bytes", {}),
    ]


def test_top_sites_ranking_in_full() -> None:
    records = [
        SiteRecord("b", "y.py", 2, 50, 3),
        SiteRecord("a", "x.py", 1, 50, 3),  # same bytes and count: by location
        SiteRecord("c", "x.py", 1, 50, 9),  # same bytes, more allocations: first
        SiteRecord("d", "x.py", 1, 50, 3),  # same location: by function
        SiteRecord("a", "x.py", 1, 10, 1),  # summed into a@x.py:1
    ]
    table = top_sites(records, "allocated", n=3)
    assert list(table.columns) == list(SITE_COLUMNS)
    assert table.values.tolist() == [
        ["allocated", "a", "x.py:1", 60, 4],
        ["allocated", "c", "x.py:1", 50, 9],
        ["allocated", "d", "x.py:1", 50, 3],
    ]
    assert list(table.index) == [0, 1, 2]


def test_sites_table_keeps_n_of_each_kind_with_a_fresh_index() -> None:
    hwm = [SiteRecord(f"h{i}", "h.py", i, 100 - i, 1) for i in range(5)]
    allocated = [SiteRecord(f"a{i}", "a.py", i, 100 - i, 1) for i in range(5)]
    table = sites_table(hwm, allocated, n=2)
    assert table["kind"].tolist() == ["hwm", "hwm", "allocated", "allocated"]
    assert table["function"].tolist() == ["h0", "h1", "a0", "a1"]
    assert list(table.index) == [0, 1, 2, 3]
    assert len(sites_table(hwm * 10, allocated * 10)) == 2 * 5  # 5 sites each, under TOP_N


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown site kind 'peak' \(known: hwm, allocated\)"):
        top_sites([], "peak")


def test_top_sites_ties_at_one_location_go_by_function_name() -> None:
    records = [SiteRecord("zeta", "x.py", 1, 5, 1), SiteRecord("alpha", "x.py", 1, 5, 1)]
    assert top_sites(records, "hwm")["function"].tolist() == ["alpha", "zeta"]


def test_one_request_has_a_per_request_figure() -> None:
    rows = summary_rows("d", heap_peak_bytes=1, bytes_allocated=10, allocations=1, requests=1)
    assert rows[-1].metric == "bytes_allocated_per_request" and rows[-1].value == 10.0
