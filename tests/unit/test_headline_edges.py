"""Headline analysis at its edges: the cases mutation testing showed no test could tell apart
(limits, ties, empty frames, label order, the ceiling's notes, one lost message)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.analysis.headline import (
    CEILING,
    FRAME_COLUMNS,
    LOADGEN_CPU_LIMIT,
    PROBE_CV_LIMIT,
    HeadlineMetric,
    PhaseState,
    change,
    compare_table,
    describe_labels,
    designs_in,
    headline_table,
    parse_labels,
    phase_status,
    ratio,
    records,
    run_warnings,
    scale_notes,
    summary_frame,
    value_of,
    verdict,
    warning_text,
)
from harness.results import SummaryRow


def frame_of(*rows: SummaryRow) -> pd.DataFrame:
    return summary_frame(list(rows))


# --- labels ----------------------------------------------------------------------------------


def test_a_label_value_may_hold_an_equals_sign() -> None:
    assert parse_labels("query=a=b,endpoint=chat") == {"query": "a=b", "endpoint": "chat"}
    assert parse_labels("") == {}


def test_described_labels_put_the_endpoint_first() -> None:
    assert describe_labels("history_len=5000,endpoint=chat") == "chat, history 5,000"
    assert describe_labels("a=1,endpoint=chat") == "chat, a=1"
    assert describe_labels("history_len=all") == "history all"
    assert describe_labels("region=eu,zone=b") == "region=eu, zone=b"


# --- the frame -------------------------------------------------------------------------------


def test_an_empty_frame_has_typed_columns() -> None:
    empty = summary_frame([])
    assert list(empty.columns) == FRAME_COLUMNS
    assert empty["value"].dtype == float
    assert empty["design"].dtype == object


def test_records_are_plain_dicts() -> None:
    frame = frame_of(SummaryRow("a", "load", "rps", 1.0, "req/s"))
    assert records(frame) == [
        {"design": "a", "phase": "load", "metric": "rps", "labels": "", "value": 1.0,
         "unit": "req/s"}
    ]  # fmt: skip


def test_designs_in_leaves_out_the_ceiling_and_keeps_preferred_order() -> None:
    frame = frame_of(
        SummaryRow(CEILING, CEILING, "rps", 100.0, "req/s"),
        SummaryRow("b", "load", "rps", 1.0, "req/s"),
        SummaryRow("a", "load", "rps", 1.0, "req/s"),
        SummaryRow("c", "load", "rps", 1.0, "req/s"),
    )
    assert designs_in(frame) == ["b", "a", "c"]
    assert designs_in(frame, ["a", "missing", CEILING]) == ["a", "b", "c"]
    assert designs_in(summary_frame([]), ["x", CEILING, "y"]) == ["x", "y"]


def test_value_of_matches_design_metric_and_labels_and_takes_the_last() -> None:
    frame = frame_of(
        SummaryRow("a", "load", "rps", 1.0, "req/s"),
        SummaryRow("a", "load", "rps", 2.0, "req/s", {"endpoint": "chat"}),
        SummaryRow("b", "load", "rps", 3.0, "req/s"),
        SummaryRow("a", "load", "fds_max", 4.0, "count"),
        SummaryRow("a", "load", "rps", 5.0, "req/s"),
    )
    assert value_of(frame, "a", "rps") == 5.0
    assert value_of(frame, "a", "rps", {"endpoint": "chat"}) == 2.0
    assert value_of(frame, "b", "rps") == 3.0
    assert value_of(frame, "a", "fds_max") == 4.0
    assert value_of(frame, "a", "rps", {"endpoint": "history"}) is None
    assert value_of(frame, "c", "rps") is None
    assert value_of(summary_frame([]), "a", "rps") is None


# --- ratio, change, verdict ------------------------------------------------------------------


def test_ratio_is_nan_when_either_side_is_nan() -> None:
    assert math.isnan(ratio(1.0, math.nan))
    assert math.isnan(ratio(math.nan, 1.0))
    assert math.isnan(ratio(None, 1.0))
    assert math.isnan(ratio(1.0, None))
    assert ratio(0.0, 0.0) == 1.0
    assert math.isnan(ratio(1.0, 0.0))
    assert ratio(3.0, 2.0) == 1.5


def test_change_is_nan_when_one_side_is_nan() -> None:
    assert all(math.isnan(x) for x in change(1.0, math.nan))
    assert all(math.isnan(x) for x in change(math.nan, 1.0))
    assert change(2.0, 3.0) == (1.0, 50.0)
    assert change(-2.0, -1.0) == (1.0, 50.0)
    assert change(0.0, 0.0) == (0.0, 0.0)


def test_verdict_at_the_tolerance_edge_and_at_small_deltas() -> None:
    # exactly at ±tolerance is "same"; just beyond it is not
    assert verdict("lower", 5.0, 5.0) == "same"
    assert verdict("lower", 5.01, 5.01) == "worse"
    assert verdict("higher", -5.0, -5.0) == "same"
    assert verdict("higher", -5.01, -5.01) == "worse"
    assert verdict("lower", 1.0, 50.0) == "worse"  # a delta of 1 is still a change
    assert verdict("lower", 0.5, 50.0) == "worse"
    assert verdict("lower", -0.5, -50.0) == "better"
    assert verdict("higher", 0.5, 50.0) == "better"
    assert verdict("higher", -0.5, -50.0) == "worse"
    assert verdict("lower", 0.0, 0.0) == "same"
    # no percentage (from 0): the sign decides
    assert verdict("lower", 3.0, math.nan) == "worse"
    assert verdict("lower", 3.0, 1.0, tolerance_pct=0.5) == "worse"


# --- the headline table ----------------------------------------------------------------------


def test_headline_lines_are_ordered_total_then_endpoints_then_history() -> None:
    spec = [HeadlineMetric("lat", "load", "Latency", "lower")]
    frame = frame_of(
        *[
            SummaryRow("a", "load", "lat", 1.0, "ms", labels)
            for labels in (
                {"endpoint": "zzz"},
                {"endpoint": "history"},
                {"endpoint": "chat", "history_len": "100"},
                {"endpoint": "chat", "history_len": "20"},
                {"endpoint": "chat", "history_len": "all"},
                {"endpoint": "chat_stream"},
                {},
            )
        ]
    )
    table = headline_table(frame, ["a"], spec)
    assert table["labels"].tolist() == [
        "",
        "endpoint=chat,history_len=all",
        "endpoint=chat,history_len=20",
        "endpoint=chat,history_len=100",
        "endpoint=chat_stream",
        "endpoint=history",
        "endpoint=zzz",
    ]
    assert table["title"].iloc[0] == "Latency"
    assert table["title"].iloc[2] == "Latency (chat, history 20)"
    assert table["key"].iloc[1] == "lat{endpoint=chat,history_len=all}"


def test_headline_rows_carry_unit_better_and_the_ratio_per_design() -> None:
    spec = [HeadlineMetric("rss", "load", "RSS", "lower", labels="none")]
    frame = frame_of(
        SummaryRow("optimized", "load", "rss", 10.0, "bytes"),
        SummaryRow("naive", "load", "rss", 30.0, "bytes"),
        SummaryRow("third", "load", "rss", 5.0, "bytes"),
        SummaryRow("naive", "profile", "rss", 99.0, "bytes"),  # another phase: not this line
    )
    table = headline_table(frame, ["naive", "optimized", "third"], spec)
    assert list(table.columns) == [
        "key", "metric", "labels", "title", "phase", "unit", "better",
        "naive", "optimized", "third", "naive / optimized", "third / optimized", "qualifiers",
    ]  # fmt: skip
    row = table.iloc[0]
    assert (row["unit"], row["better"], row["phase"]) == ("bytes", "lower", "load")
    assert row["naive / optimized"] == 3.0 and row["third / optimized"] == 0.5


def test_headline_of_an_empty_frame_has_the_columns() -> None:
    table = headline_table(summary_frame([]), ["a", "b"])
    assert table.empty and list(table.columns)[-4:] == ["a", "b", "b / a", "qualifiers"]


def test_keep_at_max_works_per_endpoint_and_ignores_non_numbers() -> None:
    spec = [HeadlineMetric("peak", "probe", "Peak", "lower", at_max="history_len")]
    frame = frame_of(
        SummaryRow("a", "probe", "peak", 1.0, "bytes", {"endpoint": "chat", "history_len": "9"}),
        SummaryRow("a", "probe", "peak", 2.0, "bytes", {"endpoint": "chat", "history_len": "10"}),
        SummaryRow("a", "probe", "peak", 3.0, "bytes", {"endpoint": "hist", "history_len": "5"}),
        SummaryRow("a", "probe", "peak", 4.0, "bytes", {"endpoint": "hist", "history_len": "x"}),
    )
    table = headline_table(frame, ["a"], spec)
    assert table["labels"].tolist() == [
        "endpoint=chat,history_len=10",
        "endpoint=hist,history_len=5",
    ]
    assert table["a"].tolist() == [2.0, 3.0]
    # a metric without that label keeps all its rows
    no_label = frame_of(SummaryRow("a", "probe", "peak", 7.0, "bytes", {"endpoint": "chat"}))
    assert headline_table(no_label, ["a"], spec)["a"].tolist() == [7.0]


# --- two runs --------------------------------------------------------------------------------


def test_compare_table_orders_by_spec_then_labels_and_keeps_meta() -> None:
    specs = [
        HeadlineMetric("second", "load", "Second", "lower"),
        HeadlineMetric("first", "probe", "First", "higher"),
    ]
    a = frame_of(
        SummaryRow("x", "probe", "first", 1.0, "count", {"endpoint": "history"}),
        SummaryRow("x", "probe", "first", 1.0, "count", {"endpoint": "chat"}),
    )
    b = frame_of(
        SummaryRow("x", "load", "second", 2.0, "ms"),
        SummaryRow("y", "load", "second", 4.0, "ms"),
        SummaryRow("x", "probe", "first", 3.0, "count", {"endpoint": "chat"}),
    )
    table = compare_table(a, b, ["x"], specs)
    assert table[["key", "design"]].values.tolist() == [
        ["second", "x"],
        ["second", "y"],
        ["first{endpoint=chat}", "x"],
        ["first{endpoint=history}", "x"],
    ]
    chat = table.iloc[2]
    assert (chat["title"], chat["phase"], chat["unit"], chat["better"]) == (
        "First (chat)", "probe", "count", "higher",
    )  # fmt: skip
    assert (chat["a"], chat["b"], chat["delta"], chat["delta_pct"]) == (1.0, 3.0, 2.0, 200.0)
    assert math.isnan(table.iloc[3]["b"])


def test_compare_table_of_an_empty_run() -> None:
    a = frame_of(SummaryRow("x", "load", "rps", 5.0, "req/s"))
    table = compare_table(a, summary_frame([]), ["x"])
    assert table[["key", "design", "a"]].values.tolist() == [["rps", "x", 5.0]]
    assert math.isnan(table["b"].iloc[0])
    table = compare_table(summary_frame([]), a)
    assert table["b"].tolist() == [5.0]


# --- what ran ----------------------------------------------------------------------------------


def test_sentences_of_every_status() -> None:
    def s(status: str, detail: str = "", took: float | None = None, has: bool = False) -> str:
        return PhaseState("d", "probe", status, detail, took, has).sentence()

    assert s("passed") == "probe: passed"
    assert s("passed", took=2.25) == "probe: passed in 2.2 s"
    assert s("no record", has=True) == "probe: results present (no record in run.json)"
    assert s("failed") == "probe: failed"
    assert s("failed", has=True) == "probe: failed; partial results shown"
    assert s("interrupted", "stopped\nmore") == "probe: interrupted: stopped …"
    assert s("skipped") == "probe: not run (skipped)"
    assert s("skipped", "skipped") == "probe: not run (skipped)"
    assert s("not run") == "probe: not run (no record in run.json)"
    assert s("not run", "not in the phases") == "probe: not run (not in the phases)"
    assert s("odd", "why") == "probe: not run (odd: why)"
    assert s("odd") == "probe: not run (odd)"


def test_phase_status_records_extra_phases_first_and_says_why_not_run() -> None:
    frame = frame_of(SummaryRow("a", "integrity", "lost", 0.0, "count"))
    phases = [
        {"design": "a", "phase": "seed", "status": "passed", "duration_s": 1},
        {"design": "a", "phase": "load", "status": None, "detail": None, "duration_s": "x"},
    ]
    states = phase_status(
        phases, frame, ["a"], ["load", "probe", "integrity", "profile"], ["load", "profile"],
        profile="tiny",
    )  # fmt: skip
    by_phase = {s.phase: s for s in states}
    assert [s.phase for s in states] == ["seed", "load", "probe", "integrity", "profile"]
    assert by_phase["seed"].duration_s == 1.0
    load = by_phase["load"]
    assert (load.status, load.detail, load.duration_s) == ("unknown", "", None)
    assert (by_phase["probe"].status, by_phase["probe"].detail) == (
        "not run", "not in the phases of profile tiny",
    )  # fmt: skip
    assert by_phase["probe"].duration_s is None
    assert (by_phase["integrity"].status, by_phase["integrity"].detail) == (
        "no record", "results present",
    )  # fmt: skip
    assert by_phase["integrity"].has_results and by_phase["integrity"].ran
    assert (by_phase["profile"].status, by_phase["profile"].detail) == (
        "not run", "no record in run.json",
    )  # fmt: skip
    unnamed = phase_status([], summary_frame([]), ["a"], ["probe"], [])
    assert unnamed[0].detail == "not in the phases of profile"
    assert not unnamed[0].has_results


# --- warnings ------------------------------------------------------------------------------


def test_warning_text_of_each_shape() -> None:
    assert warning_text({"design": "a", "phase": "load", "message": "slow"}) == "a load: slow"
    assert warning_text({"design": "", "phase": "load", "message": "slow"}) == "load: slow"
    assert warning_text({"message": None}) == ""
    assert warning_text("plain") == "plain"
    assert warning_text(3) == "3"


def test_an_interrupted_phase_is_a_warning() -> None:
    stopped = PhaseState("a", "load", "interrupted", "", 1.0, False)
    skipped = PhaseState("a", "probe", "skipped", "", None, False)
    assert run_warnings(summary_frame([]), [stopped, skipped]) == ["a load: interrupted"]


def test_the_load_generator_limit_is_exclusive_and_per_design() -> None:
    at = frame_of(SummaryRow("a", "load", "loadgen_cpu_max", LOADGEN_CPU_LIMIT, "percent"))
    assert run_warnings(at, []) == []
    over = frame_of(
        SummaryRow("a", "load", "loadgen_cpu_max", LOADGEN_CPU_LIMIT + 1, "percent"),
        SummaryRow("b", "load", "loadgen_cpu_max", LOADGEN_CPU_LIMIT + 1, "percent"),
    )
    # the run's own warning about a's generator does not silence b's, nor a warning on a
    # that is about something else
    own = [
        {"design": "a", "phase": "load", "message": "the load generator saturated"},
        {"design": "b", "phase": "load", "message": "slow sampler"},
    ]
    out = run_warnings(over, [], own)
    assert len(out) == 3 and out[2].startswith("b load: the load generator reached 91%")


@pytest.mark.parametrize(
    ("value", "unit", "warned"),
    [
        (PROBE_CV_LIMIT, "ratio", False),
        (PROBE_CV_LIMIT + 0.001, "ratio", True),
        (PROBE_CV_LIMIT * 100, "percent", False),
        (PROBE_CV_LIMIT * 100 + 0.01, "percent", True),
        (1.0, "percent", False),  # 1% is within a 5% limit, though 1.0 > 0.05
        (float("nan"), "ratio", False),  # a CV that could not be computed is no warning
    ],
)
def test_the_cv_limit_in_ratio_and_in_percent(value: float, unit: str, warned: bool) -> None:
    frame = frame_of(SummaryRow("a", "probe", "alloc_cv", value, unit, {"endpoint": "chat"}))
    out = run_warnings(frame, [])
    assert bool(out) == warned
    if warned:
        shown = value if unit == "percent" else value * 100
        assert out == [
            f"a probe: allocation varies {shown:.1f}% across repetitions (chat; limit 5%): "
            "the per-request figure is not stable"
        ]


def test_a_single_lost_or_unexpected_message_warns() -> None:
    frame = frame_of(
        SummaryRow("a", "integrity", "lost", 1.0, "count"),
        SummaryRow("a", "integrity", "unexpected", 0.0, "count"),
        SummaryRow("b", "integrity", "lost", 0.0, "count"),
        SummaryRow("b", "integrity", "unexpected", 1.0, "count"),
    )
    out = run_warnings(frame, [])
    assert out == [
        "a integrity: 1 acknowledged messages lost "
        "(the client saw them succeed; the store does not hold them)",
        "b integrity: 1 unexpected messages (stored but never acknowledged to the client, "
        "e.g. requests in flight when Locust stopped)",
    ]


def test_failed_requests_warn_from_the_total_only() -> None:
    frame = frame_of(
        SummaryRow("a", "load", "failures", 3.0, "count"),
        SummaryRow("a", "load", "failures", 2.0, "count", {"endpoint": "chat"}),
        SummaryRow("b", "load", "failures", 0.0, "count"),
    )
    assert run_warnings(frame, []) == ["a load: 3 failed requests"]


# --- scale notes -----------------------------------------------------------------------------


def test_scale_notes_name_the_ceiling_and_the_process_counts() -> None:
    frame = frame_of(
        SummaryRow(CEILING, CEILING, "capacity_rps", 812.34, "req/s"),
        SummaryRow(CEILING, CEILING, "capacity_lower_bound", 1.0, "count"),
        SummaryRow("a", "load", "app_workers", 2.0, "count"),
        SummaryRow("a", "load", "load_workers", 3.0, "count"),
        SummaryRow("b", "load", "app_workers", 4.0, "count"),
        SummaryRow("b", "probe", "load_workers", 9.0, "count"),
    )
    ceiling, counts = scale_notes(frame)
    assert "held at least 812.3 req/s" in ceiling and ceiling.startswith("Ceiling:")
    assert counts.startswith("The load phase ran 4 app worker process(es) and 3 Locust process(es)")


def test_scale_notes_calibrate_the_ceiling_by_the_bare_locust_and_what_was_delivered() -> None:
    ceiling = SummaryRow(CEILING, CEILING, "capacity_rps", 2070.0, "req/s")
    bare = SummaryRow(CEILING, CEILING, "bare_locust_rps", 3288.0, "req/s")
    delivered = SummaryRow(CEILING, CEILING, "delivered_max_rps", 3138.4, "req/s")
    _, calibration = scale_notes(frame_of(ceiling, bare, delivered))
    assert "reached 3,288 req/s" in calibration and "the ceiling is 63% of it." in calibration
    assert "delivered up to 3,138 req/s in the search (95% of it)" in calibration
    _, without = scale_notes(frame_of(ceiling, bare))
    assert without.endswith("the ceiling is 63% of it.")


def test_scale_notes_without_counts_default_to_one_and_a_failed_ceiling_is_said() -> None:
    frame = frame_of(SummaryRow("a", "load", "app_workers", 0.0, "count"))
    phases = [
        {"design": CEILING, "phase": CEILING, "status": "failed", "detail": "no server"},
        {"design": CEILING, "phase": CEILING, "status": "skipped"},
        {"design": CEILING, "phase": CEILING, "status": "passed"},
        {"design": "a", "phase": "load", "status": "failed"},
    ]
    notes = scale_notes(frame, phases)
    assert notes[0] == "Ceiling: failed (no server)."
    assert notes[1] == "Ceiling: skipped (no detail)."
    assert notes[2].startswith("The load phase ran 1 app worker process(es) and 1 Locust")
    assert len(notes) == 3
    assert scale_notes(summary_frame([]), phases[:1]) == ["Ceiling: failed (no server)."]
    assert scale_notes(frame_of(SummaryRow("a", "load", "rps", 1.0, "req/s"))) == []


def test_keep_at_max_with_rows_of_other_metrics_before() -> None:
    spec = [HeadlineMetric("peak", "probe", "Peak", "lower", at_max="history_len")]
    frame = frame_of(
        SummaryRow("a", "load", "rps", 1.0, "req/s"),
        SummaryRow("a", "load", "rps", 1.0, "req/s", {"endpoint": "chat"}),
        SummaryRow("a", "probe", "peak", 1.0, "bytes", {"endpoint": "chat", "history_len": "9"}),
        SummaryRow("a", "probe", "peak", 2.0, "bytes", {"endpoint": "chat", "history_len": "10"}),
    )
    assert headline_table(frame, ["a"], spec)["a"].tolist() == [2.0]


def test_unnumbered_history_sorts_before_history_zero() -> None:
    spec = [HeadlineMetric("lat", "load", "Latency", "lower")]
    frame = frame_of(
        SummaryRow("a", "load", "lat", 1.0, "ms", {"endpoint": "chat", "history_len": "0"}),
        SummaryRow("a", "load", "lat", 1.0, "ms", {"endpoint": "chat", "history_len": "all"}),
    )
    assert headline_table(frame, ["a"], spec)["labels"].tolist() == [
        "endpoint=chat,history_len=all",
        "endpoint=chat,history_len=0",
    ]


def test_compare_table_follows_the_spec_order_over_label_order() -> None:
    specs = [
        HeadlineMetric("first", "load", "First", "lower"),
        HeadlineMetric("second", "load", "Second", "lower"),
    ]
    a = frame_of(
        SummaryRow("x", "load", "second", 1.0, "ms"),
        SummaryRow("x", "load", "first", 1.0, "ms", {"endpoint": "chat"}),
    )
    table = compare_table(a, a, ["x"], specs)
    assert table["key"].tolist() == ["first{endpoint=chat}", "second"]
    # same metric in two phases: each keeps its own rank
    b = frame_of(
        SummaryRow("x", "probe", "first", 1.0, "ms"),
        SummaryRow("x", "load", "second", 1.0, "ms", {"endpoint": "chat"}),
    )
    specs_by_phase = [
        HeadlineMetric("second", "load", "Second", "lower"),
        HeadlineMetric("first", "probe", "First", "lower"),
    ]
    assert compare_table(b, b, ["x"], specs_by_phase)["key"].tolist() == [
        "second{endpoint=chat}",
        "first",
    ]


def test_compare_table_skips_a_design_absent_from_both_runs_and_goes_on() -> None:
    a = frame_of(SummaryRow("y", "load", "rps", 2.0, "req/s"))
    b = frame_of(SummaryRow("y", "load", "rps", 3.0, "req/s"))
    table = compare_table(a, b, ["x", "y"])
    assert table[["design", "a", "b"]].values.tolist() == [["y", 2.0, 3.0]]
    empty = compare_table(summary_frame([]), summary_frame([]))
    assert empty.empty and list(empty.columns) == [
        "key", "title", "phase", "unit", "better", "design", "a", "b", "delta", "delta_pct",
        "a_qualifier", "b_qualifier",
    ]  # fmt: skip


def test_a_single_failed_request_warns() -> None:
    frame = frame_of(SummaryRow("a", "load", "failures", 1.0, "count"))
    assert run_warnings(frame, []) == ["a load: 1 failed requests"]


def test_compare_table_orders_labels_from_both_runs() -> None:
    spec = [HeadlineMetric("lat", "load", "Latency", "lower")]
    a = frame_of(SummaryRow("x", "load", "lat", 1.0, "ms", {"endpoint": "history"}))
    b = frame_of(
        SummaryRow("x", "load", "lat", 1.0, "ms", {"endpoint": "history"}),
        SummaryRow("x", "load", "lat", 2.0, "ms", {"endpoint": "chat"}),
        SummaryRow("x", "load", "lat", 3.0, "ms"),
    )
    assert compare_table(a, b, ["x"], spec)["key"].tolist() == [
        "lat",
        "lat{endpoint=chat}",
        "lat{endpoint=history}",
    ]
