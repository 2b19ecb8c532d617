"""harness.gate (pure): threshold expressions, selectors, verdicts, baseline format, rendering."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from harness import config as config_mod
from harness._errors import ConfigError
from harness.analysis.sites import Site
from harness.gate import (
    BASELINE_KIND,
    SITES_KIND,
    SITES_SCHEMA_VERSION,
    BaselineError,
    Explanation,
    GateResult,
    Selector,
    SeriesKey,
    Threshold,
    Thresholds,
    Verdict,
    build_baseline,
    build_sites,
    compare,
    compile_thresholds,
    cv_warnings,
    environment_warnings,
    explain,
    format_change,
    format_limit,
    format_size,
    judge,
    parse_baseline,
    parse_selector,
    parse_sites,
    parse_size,
    parse_threshold,
    settings_mismatch,
)
from harness.gate import _render as render
from harness.results import SummaryRow

REPO = Path(__file__).resolve().parents[2]
KiB = 1024


def peak(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "alloc_peak_bytes", value, "bytes", labels)


def net(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "alloc_net_bytes", value, "bytes", labels)


def retained(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "retained_bytes_per_request", value, "bytes/request", labels)


def slope(design: str, endpoint: str, value: float) -> SummaryRow:
    return SummaryRow(
        design,
        "probe",
        "alloc_slope_bytes_per_unit",
        value,
        "bytes/message",
        {"endpoint": endpoint},
    )


PLAIN = Thresholds(default=Threshold(tolerance=0.10, floor=16 * KiB))


# --- sizes and expressions ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("16KiB", 16384),
        ("16 KiB", 16384),
        ("1MiB", 1024**2),
        ("1.5kib", 1536),
        ("2GiB", 2 * 1024**3),
        ("1MB", 1_000_000),
        ("4kB", 4000),
        ("4096", 4096),
        ("8", 8),
        ("512B", 512),
    ],
)
def test_parse_size(text: str, expected: float) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "KiB", "16XB", "-5KiB", "1e3", "16 K i B"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "tolerance", "floor"),
    [
        ("+10%", 0.10, 0.0),
        ("10%", 0.10, 0.0),
        ("+0%", 0.0, 0.0),
        ("+2.5%", 0.025, 0.0),
        ("+10% floor 16KiB", 0.10, 16 * KiB),
        ("  +5%   FLOOR   1MiB ", 0.05, 1024**2),
        ("+10% floor 8", 0.10, 8.0),
        ("+ 10 % floor 1.5 KiB", 0.10, 1536.0),
    ],
)
def test_parse_threshold_valid(text: str, tolerance: float, floor: float) -> None:
    t = parse_threshold(text)
    assert t.enabled
    assert math.isclose(t.tolerance, tolerance)
    assert t.floor == floor


@pytest.mark.parametrize("text", ["off", "OFF", " Off "])
def test_parse_threshold_off(text: str) -> None:
    assert not parse_threshold(text).enabled


@pytest.mark.parametrize(
    "text",
    ["", "10", "+10", "+10 %%", "-5%", "+10% floor", "+10% floor 16XB", "+10% ceil 1KiB",
     "floor 16KiB", "<10%", "+10% floor 1KiB floor 2KiB", "p(95)<200"],
)  # fmt: skip
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        parse_threshold(text)


def test_threshold_describe_round_trips() -> None:
    for text in ("+10%", "+10% floor 16KiB", "+5% floor 1MiB", "+2.5% floor 8 B", "off"):
        t = parse_threshold(text)
        assert parse_threshold(t.describe()) == t


# --- selectors --------------------------------------------------------------------------------


def test_parse_selector_forms() -> None:
    assert parse_selector("alloc_peak_bytes") == Selector("alloc_peak_bytes")
    s = parse_selector('alloc_peak_bytes{ endpoint="chat", design=optimized }')
    assert s.labels == (("design", "optimized"), ("endpoint", "chat"))
    assert str(s) == "alloc_peak_bytes{design=optimized,endpoint=chat}"
    assert parse_selector("retained_bytes_per_request{}").labels == ()
    assert parse_selector("retained_bytes_per_request{history_len=1000}").specificity == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("alloc_peek_bytes", "unknown metric"),
        ("rss_peak_bytes", "unknown metric"),
        ("alloc_cv", "informational"),
        ("alloc_net_bytes", "informational"),
        ("alloc_net_bytes{design=optimized}", "informational"),
        ("retained_blocks_per_request", "informational"),
        ("alloc_peak_spread_bytes", "unknown metric"),  # a noise figure, not a gated series
        ("retained_stderr_bytes", "unknown metric"),
        ("alloc_peak_bytes{host=a}", "unknown label"),
        ("alloc_peak_bytes{design}", "bad label"),
        ("alloc_peak_bytes{design=a,design=b}", "twice"),
        ("alloc_peak_bytes{design=a", "bad selector"),
        ("alloc peak", "bad selector"),
    ],
)
def test_parse_selector_rejects(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_selector(text)


def test_selector_matching_includes_design() -> None:
    s = parse_selector("alloc_peak_bytes{design=optimized,endpoint=chat}")
    assert s.matches(
        "alloc_peak_bytes", {"design": "optimized", "endpoint": "chat", "history_len": "0"}
    )
    assert not s.matches("alloc_peak_bytes", {"design": "naive", "endpoint": "chat"})
    assert not s.matches("retained_bytes_per_request", {"design": "optimized", "endpoint": "chat"})
    assert not s.matches("alloc_peak_bytes", {"design": "optimized"})


# --- compiling the [gate] table ---------------------------------------------------------------


def test_compile_unknown_metric_names_file_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        compile_thresholds({"alloc_peek_bytes": "+10%"}, "+10%", "loadtest.toml")
    assert str(info.value) == (
        'loadtest.toml: gate.thresholds."alloc_peek_bytes": unknown metric '
        "(gated metrics: alloc_peak_bytes, retained_bytes_per_request, "
        "alloc_slope_bytes_per_unit)"
    )
    assert info.value.key == 'gate.thresholds."alloc_peek_bytes"'


def test_compile_bad_expression_names_key() -> None:
    with pytest.raises(ConfigError) as info:
        compile_thresholds({"alloc_peak_bytes{endpoint=chat}": "10 percent"}, "+10%", "x.toml")
    assert info.value.path == "x.toml"
    assert info.value.key == 'gate.thresholds."alloc_peak_bytes{endpoint=chat}"'
    assert "bad expression" in info.value.problem


def test_compile_bad_default_names_gate_default() -> None:
    with pytest.raises(ConfigError) as info:
        compile_thresholds({}, "ten percent", "x.toml")
    assert info.value.key == "gate.default"


def test_most_specific_selector_wins() -> None:
    th = compile_thresholds(
        {
            "alloc_peak_bytes": "+10% floor 16KiB",
            "alloc_peak_bytes{design=optimized}": "+20%",
            "alloc_peak_bytes{design=optimized,endpoint=chat}": "+5% floor 1MiB",
            "retained_bytes_per_request{endpoint=history}": "off",
        },
        "+30%",
    )
    t, rule = th.lookup("alloc_peak_bytes", {"design": "optimized", "endpoint": "chat"})
    assert (t, rule) == (
        parse_threshold("+5% floor 1MiB"),
        "alloc_peak_bytes{design=optimized,endpoint=chat}",
    )
    t, rule = th.lookup("alloc_peak_bytes", {"design": "optimized", "endpoint": "history"})
    assert (t.tolerance, rule) == (0.20, "alloc_peak_bytes{design=optimized}")
    t, rule = th.lookup("alloc_peak_bytes", {"design": "naive", "endpoint": "chat"})
    assert rule == "alloc_peak_bytes"
    t, rule = th.lookup("alloc_slope_bytes_per_unit", {"design": "naive", "endpoint": "chat"})
    assert (t.tolerance, rule) == (0.30, "default")
    t, _ = th.lookup("retained_bytes_per_request", {"design": "naive", "endpoint": "history"})
    assert not t.enabled
    # the order of the keys in the file does not matter
    reordered = compile_thresholds(dict(reversed(list({
        "alloc_peak_bytes": "+10% floor 16KiB",
        "alloc_peak_bytes{design=optimized}": "+20%",
        "alloc_peak_bytes{design=optimized,endpoint=chat}": "+5% floor 1MiB",
    }.items()))), "+30%")  # fmt: skip
    assert reordered.lookup("alloc_peak_bytes", {"design": "optimized", "endpoint": "chat"})[1] == (
        "alloc_peak_bytes{design=optimized,endpoint=chat}"
    )


def test_equally_specific_overlapping_selectors_are_an_error() -> None:
    table = {"alloc_peak_bytes{design=optimized}": "+5%", "alloc_peak_bytes{endpoint=chat}": "+20%"}
    with pytest.raises(ConfigError, match=r"as specific as .*design=optimized,endpoint=chat"):
        compile_thresholds(table, "+10%")
    # resolved by a selector covering both
    table["alloc_peak_bytes{design=optimized,endpoint=chat}"] = "+1%"
    th = compile_thresholds(table, "+10%")
    assert (
        th.lookup("alloc_peak_bytes", {"design": "optimized", "endpoint": "chat"})[0].tolerance
        == 0.01
    )
    # the same selector spelt twice
    with pytest.raises(ConfigError, match="as specific as"):
        compile_thresholds(
            {
                "retained_bytes_per_request{design=a,endpoint=b}": "+1%",
                "retained_bytes_per_request{endpoint=b,design=a}": "+2%",
            },
            "+10%",
        )


def test_disjoint_selectors_are_fine() -> None:
    compile_thresholds(
        {"alloc_peak_bytes{design=naive}": "+5%", "alloc_peak_bytes{design=optimized}": "+20%",
         "retained_bytes_per_request{design=naive}": "+5%"},
        "+10%",
    )  # fmt: skip


def test_shipped_loadtest_toml_compiles() -> None:
    cfg = config_mod.load(REPO / "loadtest.toml")
    th = compile_thresholds(cfg.gate.thresholds, cfg.gate.default, cfg.path)
    assert th.rules


# --- verdicts ---------------------------------------------------------------------------------


def test_judge_tolerance_and_floor() -> None:
    t = Threshold(tolerance=0.10, floor=16 * KiB)
    assert judge(1_000_000, 1_099_000, t) == "pass"  # +9.9%
    assert judge(1_000_000, 1_101_000, t) == "regression"  # +10.1%
    assert judge(100 * KiB, 115 * KiB, t) == "pass"  # +15%, but below the 16 KiB floor
    assert judge(100 * KiB, 117 * KiB, t) == "regression"  # beyond both
    assert judge(1_000_000, 1_100_000, t) == "pass"  # exactly at the limit passes
    assert judge(1_000_000, 850_000, t) == "improved"
    assert judge(1_000_000, 950_000, t) == "pass"  # a small decrease is just a pass


def test_zero_baseline_only_the_floor_applies() -> None:
    t = Threshold(tolerance=0.10, floor=64 * KiB)
    assert judge(0, 1, t) == "pass"
    assert judge(0, 64 * KiB, t) == "pass"
    assert judge(0, 64 * KiB + 1, t) == "regression"
    assert judge(0, 1, Threshold(tolerance=0.10, floor=0)) == "regression"  # no floor: any increase


def test_negative_baseline_uses_its_magnitude() -> None:
    # retained memory per request can be negative (requests free what warm-up kept); the
    # tolerance is |baseline|
    t = Threshold(tolerance=0.10, floor=0)
    assert judge(-100_000, -91_000, t) == "pass"
    assert judge(-100_000, -89_000, t) == "regression"


def test_compare_statuses_and_exit_codes() -> None:
    base = [
        peak("optimized", "chat", 1000, 100_000),
        peak("optimized", "history", 1000, 50_000),
        retained("optimized", "chat", 1000, 200),
        slope("optimized", "chat", 40.0),
    ]
    cur = [
        peak("optimized", "chat", 1000, 150_000),  # regression
        peak("optimized", "history", 1000, 51_000),  # pass
        retained("optimized", "chat", 1000, 9_000),  # near-zero value, the floor absorbs it
        slope("optimized", "chat", 40.5),  # pass
    ]
    result = compare(base, cur, PLAIN)
    statuses = {str(v.key): v.status for v in result.verdicts}
    assert statuses == {
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}": "regression",
        "alloc_peak_bytes{design=optimized,endpoint=history,history_len=1000}": "pass",
        "retained_bytes_per_request{design=optimized,endpoint=chat,history_len=1000}": "pass",
        "alloc_slope_bytes_per_unit{design=optimized,endpoint=chat}": "pass",
    }
    assert result.exit_code == 1
    assert result.outcome == "regression"
    reg = result.regressions[0]
    assert reg.change == 50_000
    assert reg.change_ratio == pytest.approx(0.5)
    assert reg.limit == 16 * KiB


def test_metric_missing_from_current_is_an_error() -> None:
    base = [peak("optimized", "chat", 0, 100_000), peak("optimized", "chat", 1000, 200_000)]
    cur = [peak("optimized", "chat", 0, 100_000)]
    result = compare(base, cur, PLAIN)
    assert [v.status for v in result.verdicts] == ["pass", "missing"]
    assert result.exit_code == 2
    assert result.outcome == "error"
    # missing outranks a regression: the comparison is incomplete
    cur = [peak("optimized", "chat", 0, 900_000)]
    assert compare(base, cur, PLAIN).exit_code == 2


def test_metric_missing_from_baseline_is_new_and_informational() -> None:
    base = [peak("optimized", "chat", 0, 100_000)]
    cur = [peak("optimized", "chat", 0, 100_000), peak("optimized", "chat", 5000, 9e9)]
    result = compare(base, cur, PLAIN)
    assert [v.status for v in result.verdicts] == ["pass", "new"]
    assert result.verdicts[1].change is None and result.verdicts[1].limit is None
    assert result.exit_code == 0


def test_improvement_passes_and_large_ones_suggest_a_new_baseline() -> None:
    small = compare([peak("d", "chat", 0, 1_000_000)], [peak("d", "chat", 0, 880_000)], PLAIN)
    assert small.verdicts[0].status == "improved"
    assert small.exit_code == 0
    assert not small.suggests_update  # 120 kB < 2 x 100 kB limit
    big = compare([peak("d", "chat", 0, 1_000_000)], [peak("d", "chat", 0, 500_000)], PLAIN)
    assert big.suggests_update
    assert any("--update-baseline" in line for line in render.outcome_lines(big))


def test_off_threshold_is_never_judged() -> None:
    th = compile_thresholds({"retained_bytes_per_request": "off"}, "+10%")
    result = compare([retained("d", "chat", 0, 1)], [retained("d", "chat", 0, 9e9)], th)
    assert result.verdicts[0].status == "off"
    assert result.exit_code == 0
    assert compare([retained("d", "chat", 0, 1)], [], th).exit_code == 0  # not missing either


def test_compare_filters_designs_phases_metrics_and_non_finite() -> None:
    base = [peak("naive", "chat", 0, 1e6), peak("optimized", "chat", 0, 1e5)]
    cur = [
        peak("optimized", "chat", 0, 1e5),
        SummaryRow("optimized", "load", "alloc_peak_bytes", 9e9, "bytes", {"endpoint": "chat"}),
        SummaryRow("optimized", "probe", "rss_peak_bytes", 9e9, "bytes", {}),
        SummaryRow("optimized", "probe", "alloc_cv", 0.01, "ratio", {"endpoint": "chat"}),
        peak("optimized", "history", 0, math.nan),
    ]
    result = compare(base, cur, PLAIN, designs=["optimized"])
    assert [(v.key.design, v.status) for v in result.verdicts] == [("optimized", "pass")]


def test_compare_orders_by_design_then_metric_then_history() -> None:
    rows = [
        slope("optimized", "chat", 1),
        peak("optimized", "chat", 1000, 1),
        peak("optimized", "chat", 100, 1),
        retained("naive", "chat", 0, 1),
        peak("naive", "chat", 5000, 1),
    ]
    result = compare(rows, rows, PLAIN, designs=["optimized", "naive"])
    assert [str(v.key) for v in result.verdicts] == [
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=100}",
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}",
        "alloc_slope_bytes_per_unit{design=optimized,endpoint=chat}",
        "alloc_peak_bytes{design=naive,endpoint=chat,history_len=5000}",
        "retained_bytes_per_request{design=naive,endpoint=chat,history_len=0}",
    ]


def cv(value: float, unit: str, endpoint: str, hist: int) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow("d", "probe", "alloc_cv", value, unit, labels)


def test_cv_warnings_above_five_percent() -> None:
    rows = [
        cv(0.02, "ratio", "chat", 0),
        cv(0.08, "ratio", "chat", 1),
        cv(7.0, "percent", "history", 0),
    ]
    warnings = cv_warnings(rows)
    assert len(warnings) == 2
    assert "8.0%" in warnings[0] and "history_len=1" in warnings[0]
    assert compare([], rows, PLAIN).warnings == tuple(warnings)


# --- the baseline file ------------------------------------------------------------------------


ENV = {
    "git_sha": "abc1234567",
    "python": "3.11.7",
    "python_implementation": "CPython",
    "platform": "Linux",
    "packages": {"fastapi": "0.115.0", "uvicorn": "0.54.0"},
}


def test_baseline_round_trip_keeps_only_gated_rows() -> None:
    rows = [
        peak("optimized", "chat", 0, 1e5),
        slope("optimized", "chat", 12.5),
        SummaryRow("optimized", "probe", "alloc_cv", 0.01, "ratio", {"endpoint": "chat"}),
        net("optimized", "chat", 0, 300),  # informational now: not kept
        SummaryRow("optimized", "load", "rps", 100, "req/s", {}),
    ]
    probe = {"designs": ["optimized"], "history_lens": [0], "reps": 5, "warmup": 2}
    payload = build_baseline(
        rows, created_at="2026-11-22T00:00:00+00:00", environment=ENV, probe=probe, source_run="r"
    )
    assert payload["schema_version"] == 3
    assert payload["kind"] == BASELINE_KIND
    assert payload["provenance"]["git_sha"] == "abc1234567"
    assert payload["provenance"]["python"] == "3.11.7"
    assert payload["provenance"]["packages"] == ENV["packages"]
    baseline = parse_baseline(payload, "b.json")
    assert [r.metric for r in baseline.rows] == [
        "alloc_peak_bytes",
        "alloc_slope_bytes_per_unit",
    ]
    assert baseline.probe["reps"] == 5
    assert baseline.created_at.startswith("2026-11-22")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "not a gate baseline"),
        ({"kind": "something-else", "schema_version": 3, "rows": []}, "not a gate baseline"),
        ({"kind": BASELINE_KIND, "schema_version": 2, "rows": []}, "schema_version 2 is not 3"),
        ({"kind": BASELINE_KIND, "schema_version": 4, "rows": []}, "schema_version 4 is not 3"),
        ({"kind": BASELINE_KIND, "rows": []}, "schema_version None"),
        ({"kind": BASELINE_KIND, "schema_version": 3, "rows": [{"x": 1}]}, "malformed rows"),
    ],
)
def test_parse_baseline_rejects(raw: object, problem: str) -> None:
    with pytest.raises(BaselineError, match=problem) as info:
        parse_baseline(raw, "baselines/ci.json")
    assert info.value.exit_code == 2
    assert "baselines/ci.json" in str(info.value)


def test_environment_warnings() -> None:
    same = {**ENV, "python": "3.11.9"}  # another patch release: no warning
    assert environment_warnings(ENV, same) == []
    other = {**ENV, "python": "3.12.1", "packages": {"fastapi": "0.116.0", "uvicorn": "0.54.0"}}
    warnings = environment_warnings(ENV, other)
    assert len(warnings) == 2
    assert "Python 3.12.1" in warnings[0] and "3.11.7" in warnings[0]
    assert "fastapi 0.115.0 -> 0.116.0" in warnings[1]


def test_settings_mismatch() -> None:
    payload = build_baseline(
        [],
        created_at="",
        environment=ENV,
        probe={"designs": ["naive", "optimized"], "history_lens": [0, 100, 1000, 5000]},
        source_run="",
    )
    baseline = parse_baseline(payload, "b")
    assert settings_mismatch(baseline, ["naive", "optimized"], [5000, 1000, 100, 0]) == ""
    assert "history_lens" in settings_mismatch(baseline, ["naive", "optimized"], [0, 1000])
    assert "naive" in settings_mismatch(baseline, ["optimized"], [0, 100, 1000, 5000])
    assert settings_mismatch(baseline, ["naive", "optimized", "mine"], [0, 100, 1000, 5000]) == ""


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0 B"), (0.123456, "0.123 B"), (12.34, "12.3 B"), (512, "512 B"), (1023.5, "1023.5 B"),
     (16 * KiB, "16 KiB"), (1536, "1.5 KiB"), (123_456, "121 KiB"),
     (5 * 1024**2 + 300 * KiB, "5.29 MiB"), (-2048, "-2 KiB")],
)  # fmt: skip
def test_format_size(value: float, text: str) -> None:
    assert format_size(value) == text


def _mixed_result() -> GateResult:
    base = [
        peak("optimized", "chat", 1000, 100_000),
        peak("optimized", "chat", 5000, 100_000),
        peak("naive", "chat", 1000, 1_000_000),
        retained("naive", "chat", 1000, 0),
    ]
    cur = [
        peak("optimized", "chat", 1000, 200_000),  # regression
        peak("optimized", "chat", 5000, 400_000),  # regression
        peak("naive", "chat", 1000, 1_000_500),  # pass
        slope("naive", "chat", 3.0),  # new
    ]  # retained naive missing
    result = compare(base, cur, PLAIN, designs=["optimized", "naive"])
    return GateResult(result.verdicts, ("alloc_cv{...}: 8% variation between reps",))


def test_junit_xml_is_well_formed_with_one_failure_per_regression() -> None:
    result = _mixed_result()
    xml = render.junit_xml(result)
    assert xml.startswith("<?xml")
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(result.verdicts) == 5
    assert suite.get("tests") == "5"
    assert suite.get("failures") == "2" == root.get("failures")
    assert suite.get("errors") == "1"
    assert len(suite.findall("testcase/failure")) == 2
    assert len(suite.findall("testcase/error")) == 1
    failing = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failing == [
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}",
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=5000}",
    ]
    assert cases[0].get("classname") == "memory-gate.optimized.alloc_peak_bytes"
    failure = cases[0].find("failure")
    assert failure is not None and "limit" in (failure.get("message") or "")
    assert "8% variation" in (suite.findtext("system-err") or "")


def test_junit_xml_all_pass() -> None:
    rows = [peak("d", "chat", 0, 1e5)]
    root = ET.fromstring(render.junit_xml(compare(rows, rows, PLAIN)))
    assert root.get("failures") == "0" and root.find("testsuite/testcase/failure") is None


def test_markdown_has_the_table_and_the_verdict() -> None:
    result = _mixed_result()
    md = render.markdown(
        result,
        render.RenderContext(
            baseline_path="baselines/ci.json",
            baseline_sha="abc",
            baseline_date="2026-11-22",
            run_dir="reports/x",
            current_sha="def",
        ),
    )
    assert md.startswith("## ⚠️ Memory gate: incomplete comparison")  # a series is missing
    assert "| design | metric | labels | baseline | current | change | limit | verdict |" in md
    assert "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |" in md
    assert (
        "| optimized | `alloc_peak_bytes` | endpoint=chat history_len=1000 | 97.7 KiB "
        "| 195 KiB | +97.7 KiB (+100.0%) | +16 KiB | ❌ REGRESSION |"
    ) in md
    assert "🆕 new" in md and "⚠️ MISSING" in md
    assert "make gate ARGS=--update-baseline" in md
    assert "<details>" in md and "All 5 series" in md
    assert "8% variation" in md
    assert "`baselines/ci.json` (git `abc`, 2026-11-22)" in md


def test_markdown_passed_headline() -> None:
    rows = [peak("d", "chat", 0, 1e5)]
    md = render.markdown(compare(rows, rows, PLAIN), render.RenderContext())
    assert md.startswith("## ✅ Memory gate passed")
    assert "Needs a look" not in md


def test_rich_table_has_every_series() -> None:
    from rich.console import Console

    console = Console(width=200, record=True)
    console.print(render.rich_table(_mixed_result()))
    text = console.export_text()
    assert "REGRESSION" in text and "MISSING" in text
    assert "+97.7 KiB (+100.0%)" in text
    assert text.count("alloc_peak_bytes") == 3


def test_change_and_limit_text() -> None:
    def verdict(base: float, cur: float, unit: str = "bytes") -> str:
        row = SummaryRow("d", "probe", "alloc_slope_bytes_per_unit", 0, unit, {"endpoint": "c"})
        v = compare([replace(row, value=base)], [replace(row, value=cur)], PLAIN).verdicts[0]
        return f"{format_change(v)} | {format_limit(v)}"

    assert verdict(1024, 2048) == "+1 KiB (+100.0%) | +16 KiB"
    assert verdict(0.5, 0.46, "bytes/message") == "-0.04 B/msg (-8.0%) | +16 KiB/msg"
    assert verdict(3, 3, "bytes/message") == "+0 B/msg (+0.0%) | +16 KiB/msg"
    assert verdict(0, 100) == "+100 B | +16 KiB"  # no percentage of a zero baseline
    assert verdict(-1000, -3048) == "-2 KiB (-204.8%) | +16 KiB"


# --- noise-aware limits (gate 2) --------------------------------------------------------------


def spread(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "alloc_peak_spread_bytes", value, "bytes", labels)


def stderr(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "retained_stderr_bytes", value, "bytes/request", labels)


FIVE = Thresholds(default=Threshold(tolerance=0.05, floor=1024))


def _one(
    base: list[SummaryRow],
    cur: list[SummaryRow],
    thresholds: Thresholds = FIVE,
    noise_k: float = 4.0,
) -> Verdict:
    (verdict,) = compare(base, cur, thresholds, noise_k=noise_k).verdicts
    return verdict


def test_tolerance_term_wins() -> None:
    # 5% of 100 kB = 5000 > 4 x 100 noise > 1 KiB floor
    v = _one([peak("o", "chat", 0, 100_000), spread("o", "chat", 0, 100)],
             [peak("o", "chat", 0, 105_000), spread("o", "chat", 0, 100)])  # fmt: skip
    assert v.limit == pytest.approx(5000)
    assert v.limit_source == "tolerance"
    assert v.status == "pass"  # exactly at the limit
    v = _one([peak("o", "chat", 0, 100_000)], [peak("o", "chat", 0, 105_001)])
    assert (v.status, v.limit_source) == ("regression", "tolerance")


def test_noise_term_wins_and_widens_the_limit() -> None:
    base = [peak("o", "chat", 0, 100_000), spread("o", "chat", 0, 2000)]
    # 4 x 2000 = 8000 > 5% of 100 kB: +7000 passes though it is beyond the tolerance
    v = _one(base, [peak("o", "chat", 0, 107_000)])
    assert (v.status, v.limit, v.limit_source, v.noise) == ("pass", 8000, "noise", 2000)
    assert _one(base, [peak("o", "chat", 0, 108_000)]).status == "pass"  # at the limit
    assert _one(base, [peak("o", "chat", 0, 108_001)]).status == "regression"
    # noise_k scales it: 2 x 2000 < 5000, the tolerance is back in charge
    v = _one(base, [peak("o", "chat", 0, 105_001)], noise_k=2.0)
    assert (v.status, v.limit, v.limit_source) == ("regression", 5000, "tolerance")
    # noise_k = 0 turns the term off
    assert _one(base, [peak("o", "chat", 0, 105_001)], noise_k=0.0).status == "regression"


def test_floor_term_wins() -> None:
    # 5% of 10 kB = 500, 4 x 100 = 400, floor 1024
    v = _one([peak("o", "chat", 0, 10_000), spread("o", "chat", 0, 100)],
             [peak("o", "chat", 0, 11_024)])  # fmt: skip
    assert (v.status, v.limit, v.limit_source) == ("pass", 1024, "floor")
    v = _one([peak("o", "chat", 0, 10_000)], [peak("o", "chat", 0, 11_025)])
    assert (v.status, v.limit_source) == ("regression", "floor")


def test_no_limit_source_without_a_baseline_or_when_off() -> None:
    v = _one([], [peak("o", "chat", 0, 1)])
    assert (v.status, v.limit, v.limit_source) == ("new", None, "")
    off = compile_thresholds({"alloc_peak_bytes": "off"}, "+5%")
    v = _one([peak("o", "chat", 0, 1)], [peak("o", "chat", 0, 2)], off)
    assert (v.status, v.limit_source) == ("off", "")


@pytest.mark.parametrize(("base_noise", "cur_noise"), [(500.0, 3000.0), (3000.0, 500.0)])
def test_noise_is_the_larger_of_baseline_and_current(base_noise: float, cur_noise: float) -> None:
    v = _one([peak("o", "chat", 0, 100_000), spread("o", "chat", 0, base_noise)],
             [peak("o", "chat", 0, 111_000), spread("o", "chat", 0, cur_noise)])  # fmt: skip
    assert v.noise == 3000
    assert v.limit == 12_000
    assert v.status == "pass"


def test_noise_only_from_the_same_series() -> None:
    base = [
        peak("o", "chat", 0, 100_000),
        spread("o", "chat", 100, 9e9),  # another history length
        spread("o", "history", 0, 9e9),  # another endpoint
        spread("n", "chat", 0, 9e9),  # another design
        stderr("o", "chat", 0, 9e9),  # the noise of retained_bytes_per_request, not of a peak
        net("o", "chat", 0, 9e9),  # not a noise figure at all
    ]
    v = _one(base, [peak("o", "chat", 0, 105_001)])
    assert v.noise == 0.0
    assert v.status == "regression"


def test_retained_stderr_is_the_noise_of_retained_bytes() -> None:
    t = Thresholds(default=Threshold(tolerance=0.25, floor=128))
    base = [retained("o", "chat", 0, 100.0), stderr("o", "chat", 0, 50.0)]
    v = _one(base, [retained("o", "chat", 0, 300.0)], t)
    assert (v.noise, v.limit, v.limit_source, v.status) == (50.0, 200.0, "noise", "pass")
    assert _one(base, [retained("o", "chat", 0, 300.5)], t).status == "regression"


def test_non_finite_and_negative_noise() -> None:
    base = [peak("o", "chat", 0, 100_000), spread("o", "chat", 0, -2000)]  # magnitude counts
    v = _one(base, [peak("o", "chat", 0, 100_000), spread("o", "chat", 0, math.nan)])
    assert v.noise == 2000  # a NaN figure now does not erase the baseline's
    v = _one([peak("o", "chat", 0, 100_000), spread("o", "chat", 0, math.inf)],
             [peak("o", "chat", 0, 100_000)])  # fmt: skip
    assert v.noise == 0.0


def test_noise_rows_of_other_designs_are_ignored() -> None:
    base = [peak("o", "chat", 0, 100_000), spread("o", "chat", 0, 2000)]
    result = compare(base, [peak("o", "chat", 0, 106_000)], FIVE, designs=["n"], noise_k=4.0)
    assert result.verdicts == ()
    result = compare(base, [peak("o", "chat", 0, 106_000)], FIVE, designs=["o"], noise_k=4.0)
    assert result.verdicts[0].noise == 2000 and result.verdicts[0].status == "pass"


def test_threshold_limit_is_the_largest_term() -> None:
    t = Threshold(tolerance=0.10, floor=300)
    assert t.limit(1000) == 300
    assert t.limit(1000, noise=100, noise_k=4) == 400
    assert t.limit(-5000, noise=100, noise_k=4) == 500
    assert t.limit(1000, noise=100) == 300  # noise_k defaults to 0: no noise term


# --- caps -------------------------------------------------------------------------------------


CAPPED = Threshold(tolerance=0.25, floor=128, cap=512)


def test_cap_fails_above_it_even_within_the_limit() -> None:
    assert judge(400, 513, CAPPED) == "regression"  # +113 < 128 floor, but above the cap
    assert judge(400, 512, CAPPED) == "pass"  # exactly at the cap passes
    assert judge(600, 600, CAPPED) == "regression"  # an unchanged leak is still a leak
    assert judge(600, 500, CAPPED) == "pass"  # back under the cap
    assert judge(400, 513, replace(CAPPED, cap=None)) == "pass"
    # the cap does not loosen the relative limit
    assert judge(100, 400, CAPPED) == "regression"


def test_cap_regression_in_compare() -> None:
    th = compile_thresholds({"retained_bytes_per_request": "+25% floor 128B cap 512B"}, "+5%")
    v = _one([retained("o", "chat", 0, 400)], [retained("o", "chat", 0, 513)], th)
    assert v.status == "regression" and v.over_cap
    v = _one([retained("o", "chat", 0, 400)], [retained("o", "chat", 0, 512)], th)
    assert v.status == "pass" and not v.over_cap
    # a cap on one metric does not apply to another
    v = _one([peak("o", "chat", 0, 400)], [peak("o", "chat", 0, 5000)], th)
    assert v.threshold is not None and v.threshold.cap is None


def test_a_new_series_over_its_cap_fails() -> None:
    """A cap holds whatever the baseline says, none included: a new endpoint that leaks."""
    th = compile_thresholds({"retained_bytes_per_request": "+25% floor 128B cap 512B"}, "+5%")
    v = _one([], [retained("o", "chat", 0, 513)], th)
    assert v.status == "regression" and v.baseline is None
    assert _one([], [retained("o", "chat", 0, 512)], th).status == "new"


def test_over_cap_needs_a_cap_and_a_current_value() -> None:
    key = SeriesKey("retained_bytes_per_request", "o", ())
    assert not Verdict(key, "bytes/request", "pass", 1, 9e9, Threshold(), "default").over_cap
    assert not Verdict(key, "bytes/request", "missing", 1, None, CAPPED, "default").over_cap
    assert Verdict(key, "bytes/request", "regression", 1, 513, CAPPED, "default").over_cap


@pytest.mark.parametrize(
    ("text", "tolerance", "floor", "cap"),
    [
        ("+25% floor 128B cap 512B", 0.25, 128.0, 512.0),
        ("+25% floor 128 cap 1KiB", 0.25, 128.0, 1024.0),
        ("+25% cap 512", 0.25, 0.0, 512.0),
        ("  +5%  FLOOR 1KiB  CAP 2 KiB ", 0.05, 1024.0, 2048.0),
        ("+5% floor 1KiB", 0.05, 1024.0, None),
    ],
)
def test_parse_threshold_with_cap(
    text: str, tolerance: float, floor: float, cap: float | None
) -> None:
    t = parse_threshold(text)
    assert (t.enabled, t.floor, t.cap) == (True, floor, cap)
    assert math.isclose(t.tolerance, tolerance)
    assert parse_threshold(t.describe()) == t


@pytest.mark.parametrize(
    "text",
    ["+25% cap", "+25% cap 512XB", "+25% cap -5", "+25% cap 512 floor 128", "cap 512",
     "+25% floor 128 cap 1 cap 2", "+25% floor 128 cap 512 B B"],
)  # fmt: skip
def test_parse_threshold_rejects_bad_caps(text: str) -> None:
    with pytest.raises(ValueError, match="bad"):
        parse_threshold(text)


def test_threshold_describe_shows_the_cap() -> None:
    assert parse_threshold("+25% floor 128 cap 512").describe() == "+25% floor 128 B cap 512 B"


def test_compile_bad_cap_names_the_key() -> None:
    with pytest.raises(ConfigError) as info:
        compile_thresholds({"retained_bytes_per_request": "+25% cap lots"}, "+5%", "x.toml")
    assert info.value.key == 'gate.thresholds."retained_bytes_per_request"'
    assert "bad expression" in info.value.problem


def test_shipped_config_caps_retained_memory() -> None:
    cfg = config_mod.load(REPO / "loadtest.toml")
    th = compile_thresholds(cfg.gate.thresholds, cfg.gate.default, cfg.path)
    t, _ = th.lookup("retained_bytes_per_request", {"design": "optimized", "endpoint": "chat"})
    assert t.cap is not None and t.cap > 0


# --- the baseline keeps the noise -------------------------------------------------------------


def test_build_baseline_keeps_noise_rows() -> None:
    rows = [
        spread("optimized", "chat", 0, 120.0),
        peak("optimized", "chat", 0, 1e5),
        retained("optimized", "chat", 0, 8.0),
        stderr("optimized", "chat", 0, 3.5),
        net("optimized", "chat", 0, 300),
        SummaryRow("optimized", "probe", "retained_blocks_per_request", 0.1, "blocks/request",
                   {"endpoint": "chat", "history_len": "0"}),
        SummaryRow("optimized", "load", "alloc_peak_spread_bytes", 1, "bytes", {}),
    ]  # fmt: skip
    payload = build_baseline(rows, created_at="", environment=ENV, probe={}, source_run="")
    baseline = parse_baseline(payload, "b.json")
    assert [(r.metric, r.value) for r in baseline.rows] == [
        ("alloc_peak_bytes", 1e5),
        ("retained_bytes_per_request", 8.0),
        ("alloc_peak_spread_bytes", 120.0),
        ("retained_stderr_bytes", 3.5),
    ]
    # and the stored noise is used when the current run has none
    v = compare(
        baseline.rows, [peak("optimized", "chat", 0, 1e5 + 480)], FIVE, noise_k=4.0
    ).verdicts[0]
    assert v.noise == 120.0


# --- where a regression came from ------------------------------------------------------------


def site_row(
    endpoint: str, hist: int, location: str, nbytes: float, function: str = "f", via: str = ""
) -> dict[str, object]:
    row = Site(location, function, nbytes, 1.0, via).to_json()
    return {"endpoint": endpoint, "history_len": hist, **row}


def _regressed(*keys_and_values: tuple[SummaryRow, float]) -> GateResult:
    base = [row for row, _ in keys_and_values]
    cur = [replace(row, value=value) for row, value in keys_and_values]
    return compare(base, cur, Thresholds(default=Threshold(tolerance=0.0)))


def test_explain_peak_uses_the_nearest_history_length_with_sites() -> None:
    current = {
        "o": {
            "peak": [
                site_row("chat", 0, "app.py:1", 100),
                site_row("chat", 5000, "app.py:2", 900),
                site_row("history", 1000, "app.py:3", 900),  # another endpoint
            ]
        }
    }
    base = {
        "o": {
            "peak": [site_row("chat", 0, "app.py:1", 50), site_row("chat", 5000, "app.py:2", 100)]
        }
    }
    result = _regressed((peak("o", "chat", 1000, 1), 2), (peak("o", "chat", 4000, 1), 2))
    out = explain(result, base, current)
    near_0 = out[SeriesKey.of(peak("o", "chat", 1000, 0))]
    assert [(c.location, c.change) for c in near_0.changes] == [("app.py:1", 50)]
    near_5000 = out[SeriesKey.of(peak("o", "chat", 4000, 0))]
    assert [(c.location, c.change) for c in near_5000.changes] == [("app.py:2", 800)]
    assert near_0.kind == near_5000.kind == "peak"


def test_explain_ties_go_to_the_larger_history_length() -> None:
    current = {"o": {"peak": [site_row("chat", 0, "small.py:1", 10),
                              site_row("chat", 2000, "large.py:1", 10)]}}  # fmt: skip
    out = explain(_regressed((peak("o", "chat", 1000, 1), 2)), {}, current)
    (explanation,) = out.values()
    assert [c.location for c in explanation.changes] == ["large.py:1"]


def test_explain_slope_uses_the_largest_history_length() -> None:
    current = {"o": {"peak": [site_row("chat", 0, "small.py:1", 10),
                              site_row("chat", 5000, "large.py:1", 10),
                              site_row("chat", 100, "mid.py:1", 10)]}}  # fmt: skip
    out = explain(_regressed((slope("o", "chat", 1), 2)), {}, current)
    assert [c.location for c in out[SeriesKey.of(slope("o", "chat", 0))].changes] == ["large.py:1"]


def test_explain_retained_uses_the_retained_sites() -> None:
    current = {
        "o": {
            "peak": [site_row("chat", 100, "peak.py:1", 9e9)],
            "retained": [site_row("chat", 100, "reference_app/leak.py:7", 8192, "keep")],
        }
    }
    base = {"o": {"retained": [site_row("chat", 100, "reference_app/leak.py:7", 0.0, "keep")]}}
    out = explain(_regressed((retained("o", "chat", 100, 1), 8193)), base, current)
    (explanation,) = out.values()
    assert explanation.kind == "retained"
    assert [(c.location, c.change) for c in explanation.changes] == [
        ("reference_app/leak.py:7", 8192)
    ]
    assert explanation.summary() == "+8 KiB/req at reference_app/leak.py:7 in keep"


def test_explain_only_growths_largest_first_and_top() -> None:
    base = {
        "o": {
            "peak": [
                site_row("chat", 0, "a.py:1", 1000),
                site_row("chat", 0, "b.py:1", 10),
                site_row("chat", 0, "c.py:1", 10),
                site_row("chat", 0, "d.py:1", 10),
            ]
        }
    }
    current = {"o": {"peak": [site_row("chat", 0, "a.py:1", 100),  # shrank
                              site_row("chat", 0, "b.py:1", 20),  # +10
                              site_row("chat", 0, "c.py:1", 510),  # +500
                              site_row("chat", 0, "d.py:1", 10),  # unchanged
                              site_row("chat", 0, "e.py:1", 40)]}}  # new: +40  # fmt: skip
    result = _regressed((peak("o", "chat", 0, 1), 2))
    (explanation,) = explain(result, base, current).values()
    assert [(c.location, c.change) for c in explanation.changes] == [
        ("c.py:1", 500), ("e.py:1", 40), ("b.py:1", 10)
    ]  # fmt: skip
    (top1,) = explain(result, base, current, top=1).values()
    assert [c.location for c in top1.changes] == ["c.py:1"]


def test_explain_only_regressions_and_only_with_current_sites() -> None:
    current = {"o": {"peak": [site_row("chat", 0, "a.py:1", 10)]}}
    passing = compare([peak("o", "chat", 0, 1)], [peak("o", "chat", 0, 1)], PLAIN)
    assert explain(passing, {}, current) == {}
    regressed = _regressed((peak("o", "chat", 0, 1), 2))
    assert explain(regressed, current, {}) == {}  # nothing measured now: nothing to say
    assert explain(regressed, {}, {"other": current["o"]}) == {}
    nothing_grew = explain(regressed, current, current)
    (explanation,) = nothing_grew.values()
    assert explanation.changes == () and explanation.summary() == "no allocation site grew"


def test_explanation_lines_show_function_and_via() -> None:
    current = {"o": {"peak": [site_row("chat", 0, "reference_app/store.py:88", 14_336, "load",
                                       via="json/decoder.py:353")]}}  # fmt: skip
    (explanation,) = explain(_regressed((peak("o", "chat", 0, 1), 2)), {}, current).values()
    assert explanation.lines() == [
        "+14 KiB at reference_app/store.py:88 in load (via json/decoder.py:353)"
    ]


def test_sites_file_round_trips() -> None:
    sites = {"o": {"peak": [site_row("chat", 0, "a.py:1", 10)], "retained": []}}
    payload = build_sites(sites, created_at="2026-11-30", git_sha="abc")
    assert payload["kind"] == SITES_KIND and payload["schema_version"] == SITES_SCHEMA_VERSION
    assert parse_sites(payload, "s.json") == sites


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ([], "not a gate sites file"),
        ({"kind": BASELINE_KIND, "schema_version": 1, "designs": {}}, "not a gate sites file"),
        ({"kind": SITES_KIND, "schema_version": 99, "designs": {}}, "schema_version 99 is not 1"),
        ({"kind": SITES_KIND, "designs": {}}, "schema_version None"),
        ({"kind": SITES_KIND, "schema_version": 1, "designs": []}, "malformed designs"),
        ({"kind": SITES_KIND, "schema_version": 1}, "malformed designs"),
    ],
)
def test_parse_sites_rejects(raw: object, problem: str) -> None:
    with pytest.raises(BaselineError, match=problem) as info:
        parse_sites(raw, "baselines/ci.sites.json")
    assert "baselines/ci.sites.json" in str(info.value)


def _explained() -> tuple[GateResult, dict[SeriesKey, Explanation]]:
    result = _mixed_result()
    base = {
        "optimized": {
            "peak": [site_row("chat", 1000, "reference_app/optimized/store.py:88", 1000, "recent")]
        }
    }
    current = {"optimized": {"peak": [site_row("chat", 1000,
                                               "reference_app/optimized/store.py:88",
                                               1000 + 14_336, "recent")]}}  # fmt: skip
    return result, explain(result, base, current)


def test_junit_failure_message_names_the_top_site() -> None:
    result, explanations = _explained()
    root = ET.fromstring(render.junit_xml(result, explanations=explanations))
    failures = {
        c.get("name"): failure
        for c in root.iter("testcase")
        if (failure := c.find("failure")) is not None
    }
    first = failures["alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}"]
    message = first.get("message") or ""
    assert message.endswith(": +14 KiB at reference_app/optimized/store.py:88 in recent")
    assert "> limit" in message
    assert "+14 KiB at reference_app/optimized/store.py:88" in (first.text or "")
    # the series at 5000 is explained too: its nearest sites are those measured at 1000
    assert "store.py:88" in (
        failures["alloc_peak_bytes{design=optimized,endpoint=chat,history_len=5000}"].get("message")
        or ""
    )
    # without explanations the message is the plain one
    plain = ET.fromstring(render.junit_xml(result))
    assert all(":" not in (f.get("message") or "") for f in plain.iter("failure"))


def test_markdown_has_where_it_came_from() -> None:
    result, explanations = _explained()
    md = render.markdown(result, render.RenderContext(), explanations)
    assert "### Where it came from" in md
    assert (
        "- `alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}` "
        "+97.7 KiB (+100.0%), at the peak:"
    ) in md
    assert "  - `+14 KiB at reference_app/optimized/store.py:88 in recent`" in md
    assert md.index("### Where it came from") < md.index("<details>")
    assert "Where it came from" not in render.markdown(result, render.RenderContext())


def test_markdown_says_when_no_site_grew() -> None:
    result = _regressed((retained("o", "chat", 0, 1), 2))
    same = {"o": {"retained": [site_row("chat", 0, "a.py:1", 10)]}}
    md = render.markdown(result, render.RenderContext(), explain(result, same, same))
    assert "retained per request:" in md and "  - no site grew" in md


def test_a_cap_regression_says_it_is_over_the_cap() -> None:
    # +113 B is within the 128 B floor: the message must not claim "> limit +128 B"
    th = compile_thresholds({"retained_bytes_per_request": "+25% floor 128B cap 512B"}, "+5%")
    result = compare([retained("o", "chat", 0, 400)], [retained("o", "chat", 0, 513)], th)
    (v,) = result.regressions
    assert render.breach(v) == "513 B/req > cap 512 B/req"
    failure = ET.fromstring(render.junit_xml(result)).find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "513 B/req > cap 512 B/req"
    # beyond the limit as well: the change is what is reported
    result = compare([retained("o", "chat", 0, 16)], [retained("o", "chat", 0, 1040)], th)
    (v,) = result.regressions
    assert render.breach(v) == "+1 KiB/req (+6400.0%) > limit +128 B/req"


def test_one_time_growth_is_said_apart_from_the_rate() -> None:
    labels = {"endpoint": "get", "history_len": "1000"}
    rows = [
        SummaryRow("notes", "probe", "retained_step_bytes", 19_968.0, "bytes", labels),
        SummaryRow("notes", "probe", "retained_bytes_per_request", 0.2, "bytes/request", labels),
        SummaryRow("notes", "probe", "retained_step_bytes", 300.0, "bytes", {"endpoint": "list"}),
    ]
    lines = render.one_time_growth_lines(rows)
    assert lines == [
        "notes get at history_len=1000: one-time growth of 19.5 KiB (a cache filling), "
        "then 0.2 B/request"
    ]
    result = compare(rows, rows, PLAIN)
    md = render.markdown(result, render.RenderContext(one_time=tuple(lines)))
    assert "One-time growth (not gated)" in md and "19.5 KiB (a cache filling)" in md
    assert not any(v.key.metric == "retained_step_bytes" for v in result.verdicts)


def _seen_rows(value: float, low: float, high: float) -> list[SummaryRow]:
    labels = {"endpoint": "get", "history_len": "1000"}
    return [
        SummaryRow("notes", "probe", "alloc_peak_bytes", value, "bytes", labels),
        SummaryRow("notes", "probe", "alloc_peak_low_bytes", low, "bytes", labels),
        SummaryRow("notes", "probe", "alloc_peak_high_bytes", high, "bytes", labels),
    ]


def test_a_value_the_baseline_saw_is_not_a_regression() -> None:
    """The Flask example's get: 23.0 KiB in most processes, 24.2 KiB in some; a baseline that
    saw both passes a run whose figure is the higher one, within +5% floor 1 KiB."""
    thresholds = compile_thresholds({}, "+5% floor 1KiB")
    baseline = _seen_rows(23_552, 23_541, 24_794)
    assert compare(baseline, _seen_rows(24_794, 24_794, 24_806), thresholds).exit_code == 0
    without_range = [r for r in baseline if r.metric == "alloc_peak_bytes"]
    assert compare(without_range, _seen_rows(24_794, 24_794, 24_806), thresholds).exit_code == 1
    # beyond the limit above the highest value seen: a regression, said as such
    result = compare(baseline, _seen_rows(26_200, 26_100, 26_300), thresholds)
    (v,) = result.regressions
    assert v.excess == 26_200 - 24_794 and v.fraction_of_limit is not None
    assert v.fraction_of_limit > 1
    assert "above the highest the baseline saw (24.2 KiB)" in render.breach(v)


def test_judge_with_a_range_is_judged_from_its_ends() -> None:
    t = Threshold(tolerance=0.0, floor=100.0)
    assert judge(1000, 1150, t, seen=(990, 1100)) == "pass"
    assert judge(1000, 1201, t, seen=(990, 1100)) == "regression"
    assert judge(1000, 891, t, seen=(990, 1100)) == "pass"
    assert judge(1000, 889, t, seen=(990, 1100)) == "improved"
    assert judge(1000, 1101, t) == "regression"


def test_seen_metrics_are_the_probe_s() -> None:
    from harness.analysis.probe import SEEN_METRICS as PROBE_SEEN
    from harness.gate import SEEN_METRICS

    assert dict(PROBE_SEEN) == dict(SEEN_METRICS)


def test_the_baseline_keeps_the_range_rows() -> None:
    payload = build_baseline(
        _seen_rows(23_552, 23_541, 24_794),
        created_at="2026-12-04T00:00:00+00:00",
        environment={},
        probe={},
        source_run="r",
    )
    metrics = [r["metric"] for r in payload["rows"]]
    assert "alloc_peak_high_bytes" in metrics and "alloc_peak_low_bytes" in metrics


def test_the_baseline_records_its_environment_s_fingerprint() -> None:
    from harness.gate import environment_fingerprint

    env = {"python": "3.11.7", "python_implementation": "CPython", "packages": {"httpx": "0.28.1"}}
    payload = build_baseline([], created_at="", environment=env, probe={}, source_run="r")
    fingerprint = payload["provenance"]["environment_fingerprint"]
    assert fingerprint == environment_fingerprint(env) and fingerprint.startswith("sha256:")
    moved = {**env, "packages": {"httpx": "0.29.0"}}
    assert environment_fingerprint(moved) != fingerprint


def test_one_time_growth_names_the_line_that_grew() -> None:
    labels = {"endpoint": "report", "history_len": "100"}
    rows = [
        SummaryRow("cache", "probe", "retained_step_bytes", 835_000.0, "bytes", labels),
        SummaryRow("cache", "probe", "retained_bytes_per_request", 4.0, "bytes/request", labels),
    ]
    sites = {
        "cache": {
            "step": [
                {"endpoint": "report", "history_len": 100, "location": "cache_app.py:46",
                 "function": "render_report", "bytes": 824_100.0, "count": 100.0},
                {"endpoint": "report", "history_len": 100, "location": "json/encoder.py:9",
                 "function": "", "bytes": 1_000.0, "count": 1.0},
            ]
        }
    }  # fmt: skip
    (line,) = render.one_time_growth_lines(rows, sites=sites)
    assert line == (
        "cache report at history_len=100: one-time growth of 815 KiB (a cache filling) "
        "at cache_app.py:46 (805 KiB of it), then 4 B/request"
    )
    # without step sites (an older run, another design) the line is as before
    (plain,) = render.one_time_growth_lines(rows, sites={"other": sites["cache"]})
    assert "at cache_app.py" not in plain
