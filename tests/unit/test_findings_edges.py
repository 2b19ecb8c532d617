"""The findings' edges that the main tests leave open (found by `make mutation`): the exact
bounds of a verdict between a figure and a lower bound, the noise floor, the bound a ratio
carries, designs in the order asked, and a comparison where only one run has a figure."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from harness.analysis.findings import (
    Change,
    CompareFinding,
    Figure,
    FindingSpec,
    bounded_ratio,
    compare_findings,
    judge,
    run_findings,
)
from harness.analysis.headline import summary_frame


def row(design: str, phase: str, metric: str, value: float, **labels: Any) -> dict[str, Any]:
    unit = "bytes"
    return {
        "design": design,
        "phase": phase,
        "metric": metric,
        "value": value,
        "unit": unit,
        "labels": {k: str(v) for k, v in labels.items()},
    }


def fig(value: float, at_least: bool = False) -> Figure:
    return Figure("d", value, at_least)


def test_below_the_floor_on_both_sides_is_the_same() -> None:
    assert judge(fig(0.5), fig(0.4), "lower", floor=1.0) == "same"
    # at the floor is not below it: the figures are compared
    assert judge(fig(10), fig(5), "lower", floor=10.0) == "worse"
    assert judge(fig(5), fig(10), "lower", floor=10.0) == "better"


def test_a_bound_decides_only_beyond_the_tolerance() -> None:
    # x is at least 104.96, y is 100: 5% higher would be 105, so it is not decided
    assert judge(fig(104.96, at_least=True), fig(100), "higher") == "unclear"
    assert judge(fig(210, at_least=True), fig(200), "higher") == "unclear"  # exactly +5%
    assert judge(fig(211, at_least=True), fig(200), "higher") == "better"
    assert judge(fig(211, at_least=True), fig(200), "lower") == "worse"
    # x is at least 50: it may be anything above, so against 100 it is not decided
    assert judge(fig(50, at_least=True), fig(100), "higher") == "unclear"
    # y is at least 200: x at 190 is exactly 5% under it, x at 189 is lower whatever y is
    assert judge(fig(190), fig(200, at_least=True), "higher") == "unclear"
    assert judge(fig(189), fig(200, at_least=True), "higher") == "worse"
    assert judge(fig(189), fig(200, at_least=True), "lower") == "better"


def test_a_ratio_says_which_side_is_a_bound() -> None:
    assert bounded_ratio(fig(4), fig(2)) == (2.0, "")
    assert bounded_ratio(fig(4, at_least=True), fig(2)) == (2.0, "at least")
    assert bounded_ratio(fig(4), fig(2, at_least=True)) == (2.0, "at most")
    both = bounded_ratio(fig(4, at_least=True), fig(2, at_least=True))
    assert math.isnan(both[0]) and both[1] == ""
    no_base = bounded_ratio(fig(4, at_least=True), fig(0))  # 4 / 0: no ratio, no bound
    assert math.isnan(no_base[0]) and no_base[1] == ""


RETAINED = FindingSpec(
    "retained_bytes_per_request", "Leak", "lower", phase="probe", ratio_floor=128.0
)


def test_a_finding_in_full_with_designs_in_the_order_asked() -> None:
    frame = summary_frame(
        [
            row("naive", "probe", "retained_bytes_per_request", 100.0),
            row("optimized", "probe", "retained_bytes_per_request", 50.0),
            row("mine", "probe", "retained_bytes_per_request", 4000.0),
        ]
    )
    (found,) = run_findings(frame, ["optimized", "naive", "mine"], specs=[RETAINED])
    # naive and optimized both under the noise floor of 128 B: no ratio, and the same
    assert (found.metric, found.title, found.unit, found.better, found.kind) == (
        "retained_bytes_per_request",
        "Leak",
        "bytes",
        "lower",
        "compare",
    )
    assert found.figures == (
        Figure("optimized", 50.0),
        Figure("naive", 100.0),
        Figure("mine", 4000.0),
    )
    assert [(r.design, r.base, r.bound, r.verdict) for r in found.ratios] == [
        ("naive", "optimized", "", "same"),
        ("mine", "optimized", "", "worse"),
    ]
    assert all(math.isnan(r.value) for r in found.ratios)
    assert (found.verdict, found.failed) == ("", ())


def test_a_label_less_finding_ignores_labelled_rows() -> None:
    spec = FindingSpec("rss_peak_bytes", "RSS", "lower", phase="load")
    frame = summary_frame(
        [
            row("naive", "load", "rss_peak_bytes", 10.0),
            row("naive", "load", "rss_peak_bytes", 99.0, endpoint="chat"),
        ]
    )
    (found,) = run_findings(frame, ["naive"], specs=[spec])
    assert (found.title, found.figures) == ("RSS", (Figure("naive", 10.0),))


def test_the_worst_label_set_of_a_higher_is_better_figure_is_its_lowest() -> None:
    spec = FindingSpec("rps", "Throughput", "higher", phase="load", labels="worst")
    frame = summary_frame(
        [
            row("naive", "load", "rps", 50.0, endpoint="chat"),
            row("naive", "load", "rps", 20.0, endpoint="history"),
            row("optimized", "load", "rps", 90.0, endpoint="chat"),
            row("optimized", "load", "rps", 80.0, endpoint="history"),
        ]
    )
    (found,) = run_findings(frame, ["naive", "optimized"], specs=[spec])
    assert found.title == "Throughput (history)"
    assert found.figures == (Figure("naive", 20.0), Figure("optimized", 80.0))


def test_the_worst_label_set_is_taken_at_the_largest_history() -> None:
    spec = FindingSpec("alloc_peak_bytes", "Peak", "lower", phase="probe", labels="worst",
                       at_max="history_len")  # fmt: skip
    frame = summary_frame(
        [
            row("naive", "probe", "alloc_peak_bytes", 900.0, endpoint="chat", history_len=0),
            row("naive", "probe", "alloc_peak_bytes", 500.0, endpoint="chat", history_len=50),
            row("naive", "probe", "alloc_peak_bytes", 300.0, endpoint="notes", history_len=50),
        ]
    )
    (found,) = run_findings(frame, ["naive"], specs=[spec])
    assert (found.title, found.figures) == ("Peak (chat, history 50)", (Figure("naive", 500.0),))


def _frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return summary_frame(list(rows))


def test_compare_when_only_run_a_has_the_figure_and_designs_join_in_order() -> None:
    a = _frame(
        row("naive", "load", "rss_peak_bytes", 10.0),
        row("naive", "integrity", "lost", 0.0),
    )
    b = _frame(row("optimized", "integrity", "lost", 2.0))
    specs = [
        FindingSpec("absent", "Nowhere", "lower"),  # in neither run: skipped, not the end
        FindingSpec("lost", "Lost writes", "lower", kind="pass", phase="integrity"),
        FindingSpec("rss_peak_bytes", "RSS", "lower", phase="load"),
    ]
    lost, rss = compare_findings(a, b, specs=specs)
    assert [(c.design, c.a, c.b, c.verdict) for c in lost.changes] == [
        ("naive", Figure("naive", 0.0), None, ""),
        ("optimized", None, Figure("optimized", 2.0), "failed"),
    ]
    assert (lost.title, lost.better, lost.kind) == ("Lost writes", "lower", "pass")
    assert rss.title == "RSS" and rss.unit == "bytes"
    (only,) = rss.changes
    assert (only.design, only.a, only.b, only.verdict) == ("naive", Figure("naive", 10.0), None, "")
    assert math.isnan(only.delta_pct)
    assert len(compare_findings(a, b, specs=specs, limit=1)) == 1


def test_compare_below_the_noise_floor_is_the_same() -> None:
    a = _frame(row("naive", "probe", "retained_bytes_per_request", 50.0, endpoint="chat"))
    b = _frame(row("naive", "probe", "retained_bytes_per_request", 100.0, endpoint="chat"))
    spec = FindingSpec("retained_bytes_per_request", "Leak", "lower", phase="probe",
                       labels="worst", ratio_floor=128.0)  # fmt: skip
    (found,) = compare_findings(a, b, specs=[spec])
    assert found == CompareFinding(
        "retained_bytes_per_request",
        "Leak (chat)",
        "bytes",
        "lower",
        "compare",
        (Change("naive", Figure("naive", 50.0), Figure("naive", 100.0), 100.0, "same"),),
    )


def test_a_tie_for_the_worst_goes_to_the_first_endpoint_in_the_report_s_order() -> None:
    spec = FindingSpec("alloc_peak_bytes", "Peak", "lower", phase="probe", labels="worst")
    frame = summary_frame(
        [
            row("naive", "probe", "alloc_peak_bytes", 500.0, endpoint="aaa"),
            row("naive", "probe", "alloc_peak_bytes", 500.0, endpoint="chat"),
        ]
    )
    (found,) = run_findings(frame, ["naive"], specs=[spec])
    assert found.title == "Peak (chat)"  # chat is a known endpoint: before "aaa" (not by name)


def test_without_a_floor_small_figures_are_compared() -> None:
    assert judge(fig(0.5), fig(0.4), "lower") == "worse"
    assert bounded_ratio(fig(0.5), fig(0.25)) == (2.0, "")


def test_compare_skips_a_design_neither_run_has() -> None:
    a = _frame(row("naive", "load", "rss_peak_bytes", 10.0))
    b = _frame(row("naive", "load", "rss_peak_bytes", 12.0))
    spec = FindingSpec("rss_peak_bytes", "RSS", "lower", phase="load")
    (found,) = compare_findings(a, b, ["ghost", "naive"], specs=[spec])
    assert [(c.design, c.delta_pct, c.verdict) for c in found.changes] == [("naive", 20.0, "worse")]
