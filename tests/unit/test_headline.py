"""Headline analysis: summary rows -> tidy frame -> headline and comparison tables (pure)."""

import math

import pandas as pd
import pytest

from harness.analysis.headline import (
    HEADLINE,
    HeadlineMetric,
    PhaseState,
    change,
    compare_table,
    describe_labels,
    headline_table,
    labels_key,
    parse_labels,
    phase_status,
    ratio,
    ratio_base,
    run_warnings,
    summary_frame,
    verdict,
)
from harness.results import SummaryRow


def rows(design: str, scale: float = 1.0) -> list[SummaryRow]:
    return [
        SummaryRow(design, "load", "rps", 10.0 * scale, "req/s"),
        SummaryRow(design, "load", "rps", 4.0 * scale, "req/s", {"endpoint": "chat"}),
        SummaryRow(design, "load", "rss_peak_bytes", 100.0 * 2**20 * scale, "bytes"),
        SummaryRow(design, "load", "latency_p95_ms", 80.0 * scale, "ms", {"endpoint": "history"}),
        SummaryRow(design, "load", "latency_p95_ms", 700.0 * scale, "ms", {"endpoint": "chat"}),
        *[
            SummaryRow(
                design,
                "probe",
                "alloc_peak_bytes",
                (1000 + 10 * h) * scale,
                "bytes",
                {"endpoint": ep, "history_len": str(h)},
            )
            for ep in ("chat", "history")
            for h in (0, 100, 1000)
        ],
    ]


def test_labels_round_trip() -> None:
    labels = {"history_len": "100", "endpoint": "chat"}
    assert labels_key(labels) == "endpoint=chat,history_len=100"
    assert parse_labels(labels_key(labels)) == labels
    assert parse_labels("") == {}
    assert describe_labels("endpoint=chat,history_len=5000") == "chat, history 5,000"


def test_summary_frame_is_tidy() -> None:
    frame = summary_frame(rows("naive"))
    assert list(frame.columns[:6]) == ["design", "phase", "metric", "labels", "value", "unit"]
    assert {"endpoint", "history_len"} <= set(frame.columns)
    total = frame[(frame["metric"] == "rps") & (frame["labels"] == "")]
    assert total["endpoint"].tolist() == [""]
    # JSON rows (as summary.json holds them) give the same frame
    as_json = summary_frame([r.to_json() for r in rows("naive")])
    pd.testing.assert_frame_equal(frame, as_json)


def test_summary_frame_of_nothing_has_the_columns() -> None:
    frame = summary_frame([])
    assert frame.empty
    assert {"design", "metric", "value"} <= set(frame.columns)
    assert headline_table(frame).empty


def test_headline_one_column_per_design_and_ratio() -> None:
    frame = summary_frame(rows("naive", 2.0) + rows("optimized", 1.0))
    table = headline_table(frame, ["naive", "optimized"])
    assert "naive / optimized" in table.columns
    rps = table[table["key"] == "rps"].iloc[0]
    assert rps["naive"] == 20.0
    assert rps["optimized"] == 10.0
    assert rps["naive / optimized"] == pytest.approx(2.0)
    assert rps["phase"] == "load"
    # rps is a total: the per-endpoint rows stay out of the headline
    assert not table["key"].str.startswith("rps{").any()
    # one line per endpoint, in the usual endpoint order
    latency = table[table["metric"] == "latency_p95_ms"]["labels"].tolist()
    assert latency == ["endpoint=chat", "endpoint=history"]


def test_headline_keeps_the_largest_history_len_only() -> None:
    frame = summary_frame(rows("naive") + rows("optimized"))
    table = headline_table(frame, ["naive", "optimized"])
    peak = table[table["metric"] == "alloc_peak_bytes"]
    assert peak["labels"].tolist() == [
        "endpoint=chat,history_len=1000",
        "endpoint=history,history_len=1000",
    ]
    assert peak["title"].iloc[0] == "Peak per request (chat, history 1,000)"
    assert peak["phase"].tolist() == ["probe", "probe"]


def test_headline_with_a_missing_design_value_is_nan() -> None:
    frame = summary_frame([*rows("naive"), SummaryRow("optimized", "load", "rps", 5, "req/s")])
    table = headline_table(frame, ["naive", "optimized"])
    rss = table[table["key"] == "rss_peak_bytes"].iloc[0]
    assert math.isnan(rss["optimized"])
    assert math.isnan(rss["naive / optimized"])


def test_ratio_base() -> None:
    assert ratio_base(["naive", "optimized"]) == "optimized"
    assert ratio_base(["optimized", "naive", "x"]) == "optimized"
    assert ratio_base(["a", "b"]) == "a"
    assert ratio_base([]) == ""


def test_ratio_and_change_edge_cases() -> None:
    assert ratio(3.0, 1.5) == 2.0
    assert ratio(0.0, 0.0) == 1.0
    assert math.isnan(ratio(1.0, 0.0))
    assert math.isnan(ratio(None, 1.0))
    assert change(100.0, 125.0) == (25.0, 25.0)
    assert change(-50.0, -25.0) == (25.0, 50.0)
    assert change(0.0, 0.0) == (0.0, 0.0)
    delta, pct = change(0.0, 5.0)
    assert delta == 5.0
    assert math.isnan(pct)


def test_compare_table_deltas() -> None:
    a = summary_frame(rows("naive", 1.0) + rows("optimized", 1.0))
    b = summary_frame(rows("naive", 1.5) + rows("optimized", 0.9))
    table = compare_table(a, b, ["naive", "optimized"])
    rss = table[(table["key"] == "rss_peak_bytes")].set_index("design")
    assert rss.loc["naive", "a"] == 100.0 * 2**20
    assert rss.loc["naive", "b"] == 150.0 * 2**20
    assert rss.loc["naive", "delta"] == pytest.approx(50.0 * 2**20)
    assert rss.loc["naive", "delta_pct"] == pytest.approx(50.0)
    assert rss.loc["optimized", "delta_pct"] == pytest.approx(-10.0)
    # headline order: metrics as HEADLINE lists them, designs in the given order
    assert table["key"].iloc[0] == "rps"
    assert table["design"].iloc[:2].tolist() == ["naive", "optimized"]


def test_compare_table_metric_in_one_run_only() -> None:
    a = summary_frame(rows("naive"))
    b = summary_frame([*rows("naive"), SummaryRow("naive", "integrity", "lost", 2, "count")])
    table = compare_table(a, b, ["naive"])
    lost = table[table["key"] == "lost"].iloc[0]
    assert math.isnan(lost["a"])
    assert lost["b"] == 2.0
    assert math.isnan(lost["delta"])


def test_verdict_respects_direction_and_tolerance() -> None:
    assert verdict("lower", 10.0, 20.0) == "worse"
    assert verdict("lower", -10.0, -20.0) == "better"
    assert verdict("higher", 10.0, 20.0) == "better"
    assert verdict("lower", 1.0, 2.0) == "same"
    assert verdict("lower", math.nan, math.nan) == "same"


def test_custom_specs() -> None:
    frame = summary_frame(rows("naive"))
    specs = [HeadlineMetric("rps", "load", "Per endpoint", "higher", labels="each")]
    table = headline_table(frame, ["naive"], specs)
    assert table["labels"].tolist() == ["", "endpoint=chat"]
    assert all(
        spec.phase in {"load", "capacity", "profile", "probe", "integrity", "size"}
        for spec in HEADLINE
    )


def test_phase_status_says_what_did_not_run() -> None:
    frame = summary_frame(rows("naive") + rows("optimized"))
    phases = [
        {"design": "naive", "phase": "load", "status": "passed", "duration_s": 61.2},
        {"design": "naive", "phase": "probe", "status": "passed", "duration_s": 30},
        {"design": "optimized", "phase": "load", "status": "passed", "duration_s": 60},
        {"design": "optimized", "phase": "probe", "status": "failed", "detail": "server died"},
        {"design": "naive", "phase": "profile", "status": "skipped", "detail": "--phases load"},
    ]
    states = {
        (s.design, s.phase): s
        for s in phase_status(phases, frame, ["naive", "optimized"], ["load", "profile", "probe"])
    }
    assert states[("naive", "load")].sentence() == "load: passed in 61.2 s"
    assert states[("naive", "profile")].sentence() == "profile: not run (skipped: --phases load)"
    assert not states[("naive", "profile")].ran
    assert states[("optimized", "profile")].sentence() == (
        "profile: not run (no record in run.json)"
    )
    failed = states[("optimized", "probe")]
    assert not failed.ran
    assert failed.sentence() == "probe: failed: server died; partial results shown"


def test_warnings() -> None:
    frame = summary_frame(
        [
            SummaryRow("naive", "load", "loadgen_cpu_max", 95.0, "percent"),
            SummaryRow("optimized", "load", "loadgen_cpu_max", 50.0, "percent"),
            SummaryRow("naive", "probe", "alloc_cv", 0.08, "ratio", {"endpoint": "chat"}),
            SummaryRow("optimized", "probe", "alloc_cv", 0.01, "ratio", {"endpoint": "chat"}),
            SummaryRow("naive", "integrity", "lost", 3, "count"),
        ]
    )
    failed = PhaseState("optimized", "profile", "failed", "memray crashed", 3.0, False)
    out = run_warnings(frame, [failed], [{"design": "", "phase": "", "message": "from run.json"}])
    assert out[0] == "from run.json"
    assert any("optimized profile: failed: memray crashed" in w for w in out)
    assert any(w.startswith("naive load: the load generator reached 95%") for w in out)
    assert not any("optimized load: the load generator" in w for w in out)
    assert any("naive probe: allocation varies 8.0%" in w for w in out)
    assert not any("optimized probe" in w for w in out)
    assert any("naive integrity: 3 acknowledged messages lost" in w for w in out)


def test_warnings_do_not_repeat_the_runs_own() -> None:
    frame = summary_frame([SummaryRow("naive", "load", "loadgen_cpu_max", 95.0, "percent")])
    own = {"design": "naive", "phase": "load", "message": "the load generator saturated"}
    out = run_warnings(frame, [], [own])
    assert out == ["naive load: the load generator saturated"]


def retained(design: str, chat: float, history: float) -> list[SummaryRow]:
    return [
        SummaryRow(
            design,
            "probe",
            "retained_bytes_per_request",
            value,
            "bytes/request",
            {"endpoint": endpoint, "history_len": "100"},
        )
        for endpoint, value in (("chat", chat), ("history", history))
    ]


def test_headline_has_retained_per_request_per_endpoint() -> None:
    frame = summary_frame(retained("naive", 8192.0, 3.0) + retained("optimized", 1024.0, -5.0))
    table = headline_table(frame, ["naive", "optimized"])
    lines = table[table["metric"] == "retained_bytes_per_request"]
    assert lines["title"].tolist() == [
        "Retained per request (chat, history 100)",
        "Retained per request (history, history 100)",
    ]
    assert lines["unit"].tolist() == ["bytes/request", "bytes/request"]
    chat, history = lines.iloc[0], lines.iloc[1]
    assert chat["naive / optimized"] == pytest.approx(8.0)
    # 3 B vs -5 B per request is noise on both sides: no ratio
    assert history["naive"] == 3.0
    assert math.isnan(history["naive / optimized"])


def test_ratio_floor_hides_ratios_of_noise() -> None:
    assert ratio(8192.0, 1024.0, floor=64.0) == 8.0
    assert math.isnan(ratio(8192.0, 10.0, floor=64.0))  # the base is noise
    assert math.isnan(ratio(10.0, 8192.0, floor=64.0))  # the value is noise
    assert ratio(-128.0, 64.0, floor=64.0) == -2.0  # a real shrink is a figure too
    assert ratio(10.0, 5.0) == 2.0  # no floor: any ratio
