"""The findings block: the figures a reviewer acts on, their ratio and verdict (pure)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harness.analysis.findings import (
    FINDINGS,
    MAX_FINDINGS,
    Figure,
    FindingSpec,
    bounded_ratio,
    compare_findings,
    judge,
    run_findings,
)
from harness.analysis.headline import summary_frame

DESIGNS = ["naive", "optimized"]


def row(
    design: str, phase: str, metric: str, value: float, unit: str, **labels: Any
) -> dict[str, Any]:
    return {
        "design": design,
        "phase": phase,
        "metric": metric,
        "value": value,
        "unit": unit,
        "labels": {k: str(v) for k, v in labels.items()},
    }


def full_run(naive_lost: float = 0, optimized_bound: float = 1) -> list[dict[str, Any]]:
    rows = [
        row("naive", "capacity", "capacity_rps", 2.5, "req/s"),
        row("naive", "capacity", "capacity_lower_bound", 0, "bool"),
        row("optimized", "capacity", "capacity_rps", 101.0, "req/s"),
        row("optimized", "capacity", "capacity_lower_bound", optimized_bound, "bool"),
        row("naive", "capacity", "rss_at_capacity_bytes", 200e6, "bytes"),
        row("optimized", "capacity", "rss_at_capacity_bytes", 60e6, "bytes"),
        row("naive", "size", "memory_limit_bytes", 512e6, "bytes"),
        row("optimized", "size", "memory_limit_bytes", 128e6, "bytes"),
        row("naive", "load", "failure_ratio", 0.0, "ratio"),
        row("optimized", "load", "failure_ratio", 0.0, "ratio"),
        row("naive", "load", "rss_peak_bytes", 128e6, "bytes"),
        row("optimized", "load", "rss_peak_bytes", 64e6, "bytes"),
        row("naive", "integrity", "lost", naive_lost, "count"),
        row("optimized", "integrity", "lost", 0, "count"),
    ]
    for design, scale in (("naive", 10.0), ("optimized", 1.0)):
        for endpoint, size in (("chat", 3.0), ("chat_stream", 2.0), ("history", 1.0)):
            for history in (0, 1000, 5000):
                value = scale * size * (1000 + history)
                rows.append(
                    row(
                        design,
                        "probe",
                        "alloc_peak_bytes",
                        value,
                        "bytes",
                        endpoint=endpoint,
                        history_len=history,
                    )
                )
            retained = {"naive": 4096.0, "optimized": 20.0}[design]
            rows.append(
                row(
                    design,
                    "probe",
                    "retained_bytes_per_request",
                    retained / size,
                    "bytes/request",
                    endpoint=endpoint,
                    history_len=100,
                )
            )
    return rows


def test_findings_come_in_list_order_at_most_eight() -> None:
    found = run_findings(summary_frame(full_run()), DESIGNS)
    assert len(FINDINGS) <= MAX_FINDINGS
    assert [f.metric for f in found] == [s.metric for s in FINDINGS]
    assert len(found) <= MAX_FINDINGS


def test_capacity_that_is_a_bound_says_at_least_and_its_ratio_is_a_bound() -> None:
    capacity = run_findings(summary_frame(full_run()), DESIGNS)[0]
    assert capacity.metric == "capacity_rps"
    figures = {f.design: f for f in capacity.figures}
    assert figures["optimized"].at_least and not figures["naive"].at_least
    (only,) = capacity.ratios
    assert (only.design, only.base) == ("naive", "optimized")
    assert only.value == pytest.approx(2.5 / 101.0)
    assert only.bound == "at most"  # the base is at least 101: naive / optimized is at most this
    assert only.verdict == "worse"  # 2.5 < 101 <= the true figure: worse whatever it is


def test_worst_label_set_is_the_same_for_every_design() -> None:
    found = {f.metric: f for f in run_findings(summary_frame(full_run()), DESIGNS)}
    memory = found["alloc_peak_bytes"]
    assert memory.title == "Memory per request (chat, history 5,000)"
    assert {f.design: f.value for f in memory.figures} == {
        "naive": 10 * 3 * 6000,
        "optimized": 3 * 6000,
    }
    assert memory.ratios[0].value == pytest.approx(10.0) and memory.ratios[0].verdict == "worse"
    leak = found["retained_bytes_per_request"]
    assert leak.title == "Leak: retained per request (history, history 100)"  # 4096 / 1
    # optimized's figure is below the noise floor: no ratio, but naive is still worse
    assert math.isnan(leak.ratios[0].value) and leak.ratios[0].verdict == "worse"


def test_pass_findings_fail_on_any_design() -> None:
    found = {f.metric: f for f in run_findings(summary_frame(full_run(naive_lost=3)), DESIGNS)}
    assert found["lost"].verdict == "failed" and found["lost"].failed == ("naive",)
    assert found["lost"].ratios == ()
    assert found["failure_ratio"].verdict == "passed"


def test_missing_figures_are_left_out() -> None:
    rows = [r for r in full_run() if r["phase"] in ("load",)]
    found = run_findings(summary_frame(rows), DESIGNS)
    assert [f.metric for f in found] == ["failure_ratio", "rss_peak_bytes"]
    assert run_findings(summary_frame([]), DESIGNS) == []


def test_one_more_finding_is_one_more_spec_and_the_limit_holds() -> None:
    extra = (*FINDINGS, FindingSpec("uss_peak_bytes", "USS peak", "lower", phase="load"))
    rows = [
        *full_run(),
        row("naive", "load", "uss_peak_bytes", 9000000.0, "bytes"),
        row("optimized", "load", "uss_peak_bytes", 3000000.0, "bytes"),
    ]
    assert len(run_findings(summary_frame(rows), DESIGNS, extra)) == MAX_FINDINGS
    found = run_findings(summary_frame(rows), DESIGNS, extra, limit=20)
    assert found[-1].metric == "uss_peak_bytes"


def test_one_design_has_no_ratio() -> None:
    rows = [r for r in full_run() if r["design"] == "naive"]
    for finding in run_findings(summary_frame(rows), ["naive"]):
        assert finding.ratios == ()
        assert [f.design for f in finding.figures] == ["naive"]


def test_judge_with_bounds() -> None:
    exact = Figure("x", 100.0)
    bound = Figure("y", 100.0, at_least=True)
    assert judge(Figure("x", 50.0), bound, "higher") == "worse"
    assert judge(Figure("x", 200.0), bound, "higher") == "unclear"  # the bound may be higher
    assert judge(bound, Figure("y", 50.0), "higher") == "better"
    assert judge(bound, exact, "higher") == "unclear"
    assert judge(Figure("x", 103.0), exact, "lower") == "same"
    assert judge(Figure("x", 120.0), exact, "lower") == "worse"
    assert judge(Figure("x", 100.0), Figure("y", 50.0, at_least=True), "lower") == "unclear"
    assert judge(Figure("x", 50.0), Figure("y", 90.0), "lower", floor=128) == "same"
    assert bounded_ratio(bound, exact) == (1.0, "at least")
    assert bounded_ratio(exact, bound) == (1.0, "at most")
    assert math.isnan(bounded_ratio(bound, bound)[0])


def test_compare_findings_run_b_against_run_a() -> None:
    frame_a = summary_frame(full_run(naive_lost=0))
    rows_b = full_run(naive_lost=2, optimized_bound=0)
    for r in rows_b:
        if r["metric"] == "rss_peak_bytes" and r["design"] == "naive":
            r["value"] = 64e6
    found = {f.metric: f for f in compare_findings(frame_a, summary_frame(rows_b), DESIGNS)}
    assert len(found) <= MAX_FINDINGS
    rss = {c.design: c for c in found["rss_peak_bytes"].changes}
    assert rss["naive"].verdict == "better" and rss["naive"].delta_pct == pytest.approx(-50.0)
    assert rss["optimized"].verdict == "same"
    lost = {c.design: c for c in found["lost"].changes}
    assert lost["naive"].verdict == "failed" and lost["optimized"].verdict == "passed"
    capacity = {c.design: c for c in found["capacity_rps"].changes}
    # A's 101 was a bound, B's 101 is exact: B cannot be told apart from A
    assert capacity["optimized"].a is not None and capacity["optimized"].a.at_least
    assert capacity["optimized"].verdict == "unclear"


def test_compare_findings_with_a_figure_in_one_run_only() -> None:
    rows_a = [r for r in full_run() if r["metric"] != "memory_limit_bytes"]
    found = {
        f.metric: f
        for f in compare_findings(summary_frame(rows_a), summary_frame(full_run()), DESIGNS)
    }
    limit = {c.design: c for c in found["memory_limit_bytes"].changes}
    assert limit["naive"].a is None and limit["naive"].b is not None
    assert limit["naive"].verdict == "" and math.isnan(limit["naive"].delta_pct)


def test_the_block_says_at_least_and_at_most_in_words() -> None:
    from harness.report._findings_view import compare_findings_view, findings_view

    found = run_findings(summary_frame(full_run()), DESIGNS)
    view = findings_view(found, DESIGNS)
    capacity = view["rows"][0]
    assert capacity["title"] == "Capacity at the latency objective ↑"
    assert capacity["figures"] == ["2.50 req/s", "at least 101 req/s"]
    assert capacity["ratios"] == ["at most 0.025×"]
    assert (capacity["verdict"], capacity["mood"]) == ("naive worse", "worse")
    assert "At least:" in view["note"] and "Passed:" in view["note"]
    lost = next(r for r in view["rows"] if r["title"].startswith("Lost writes"))
    assert (lost["verdict"], lost["ratios"]) == ("passed", ["–"])
    frame = summary_frame(full_run())
    cells = compare_findings_view(compare_findings(frame, frame, DESIGNS), DESIGNS)["rows"][0]
    assert cells["cells"][1]["figures"] == "at least 101 req/s → at least 101 req/s"
    assert cells["cells"][1]["verdict"] == "unclear"
