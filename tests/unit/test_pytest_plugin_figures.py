"""The pytest plugin's pure parts: the marker's limits, the failure messages, the gate rows."""

from __future__ import annotations

import pytest

from harness.analysis.sites import Site
from harness.gate import Thresholds, compare, parse_threshold
from harness.pytest_plugin._baseline import SessionFigures, verdict_lines
from harness.pytest_plugin._figures import (
    PeakGrowth,
    RequestMemory,
    Retained,
    parse_limits,
    peak_violation,
    retained_violation,
    slope_violation,
)


def test_limits_are_parsed_like_the_gate_sizes() -> None:
    limits = parse_limits({"peak": "64 KiB", "retained": "32 B/request", "slope": "16 B/item"})
    assert (limits.peak, limits.retained, limits.slope, limits.slope_unit) == (
        65536.0,
        32.0,
        16.0,
        "item",
    )


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"peek": "1 KiB"}, "unknown limit peek"),
        ({"peak": "64 KB/s"}, "peak='64 KB/s'"),
        ({"slope": "16 B"}, "needs its unit"),
        ({"retained": "32 B/item"}, "per request only"),
    ],
)
def test_a_bad_limit_names_its_key(kwargs: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_limits(kwargs)


def memory(peak: int) -> RequestMemory:
    site = Site("app.py:12", "handler", 4096.0, 1.0)
    return RequestMemory("GET", "/items", 200, peak, 0, 0, 0.01, sites_of=lambda: (site,))


def test_a_peak_over_its_limit_names_request_figure_limit_and_line() -> None:
    limits = parse_limits({"peak": "16 KiB"})
    assert peak_violation(memory(16 * 1024), limits) is None
    message = peak_violation(memory(20 * 1024), limits)
    assert message is not None
    assert "GET /items (status 200): peak 20 KiB > limit peak='16 KiB'" in message
    assert "4 KiB at app.py:12 in handler" in message


def test_retained_over_its_limit_lists_the_lines_per_request() -> None:
    result = Retained(
        "GET /leak", 256.0, 1.0, 40, 160, False, 0.0, (Site("app.py:7", "", 256.0, 1.0),)
    )
    message = retained_violation(result, parse_limits({"retained": "32 B"}))
    assert message is not None
    assert "retained 256 B/request > limit retained='32 B'" in message
    assert "256 B/req at app.py:7" in message
    assert retained_violation(result, parse_limits({"retained": "512 B"})) is None


def test_a_slope_limit_is_only_checked_in_its_own_unit() -> None:
    growth = PeakGrowth("GET /notes", "note", (0, 1000), (1000.0, 9000.0), (0.0, 0.0), 8.0)
    assert slope_violation(growth, parse_limits({"slope": "16 B/note"})) is None
    over = slope_violation(growth, parse_limits({"slope": "4 B/note"}))
    assert over is not None and "slope > limit slope='4 B/note'" in over
    other = slope_violation(growth, parse_limits({"slope": "16 B/item"}))
    assert other is not None and "is per item" in other


def test_session_figures_become_gate_rows_that_compare() -> None:
    figures = SessionFigures()
    for peak in (1000, 1010, 990):
        figures.add("t.py::test", "request", memory(peak))
    figures.add("t.py::test", "retained", Retained("GET /items", 4.0, 1.0, 40, 40, True, 0.0))
    rows = figures.summary_rows()
    by_metric = {r.metric: r for r in rows}
    assert by_metric["alloc_peak_bytes"].value == 1000.0
    assert by_metric["alloc_peak_bytes"].labels == {"endpoint": "t.py::test GET /items"}
    assert by_metric["retained_bytes_per_request"].value == 4.0
    thresholds = Thresholds(default=parse_threshold("+5% floor 1KiB"))
    assert compare(rows, rows, thresholds).regressions == []
    grown = SessionFigures()
    grown.add("t.py::test", "request", memory(9000))
    result = compare(rows, grown.summary_rows(), thresholds)
    lines = verdict_lines(result)
    assert lines[0].startswith("REGRESSION alloc_peak_bytes t.py::test GET /items")
    assert lines[-1].startswith("baseline comparison: 1 regressed")
