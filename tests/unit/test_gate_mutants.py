"""The gate's edges that its main tests (test_gate.py) leave open, found by `make mutation`:
what a baseline records in full, the environment fingerprint stored in every baseline, the
exact words of the warnings, and the allocation sites an explanation draws on."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import pytest

from harness._errors import ConfigError
from harness.analysis.sites import Site
from harness.gate import (
    BaselineError,
    GateResult,
    Rule,
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
    judge,
    parse_baseline,
    parse_selector,
    parse_threshold,
    settings_mismatch,
)
from harness.gate._baseline import environment_fingerprint
from harness.results import SummaryRow

ENV = {
    "git_sha": "abc1234567",
    "python": "3.11.7",
    "python_implementation": "CPython",
    "platform": "Linux",
    "cpu_model": "Xeon",
    "packages": {"uvicorn": "0.54.0", "fastapi": "0.115.0"},
}


def peak(design: str, endpoint: str, hist: int, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": str(hist)}
    return SummaryRow(design, "probe", "alloc_peak_bytes", value, "bytes", labels)


# --- the baseline file ---------------------------------------------------------------------


def test_the_baseline_s_provenance_in_full() -> None:
    payload = build_baseline(
        [], created_at="t", environment=ENV, probe={}, source_run="run-1", git_dirty=True
    )
    assert payload["provenance"] == {
        "git_sha": "abc1234567",
        "git_dirty": True,
        "python": "3.11.7",
        "python_implementation": "CPython",
        "platform": "Linux",
        "cpu_model": "Xeon",
        "packages": {"uvicorn": "0.54.0", "fastapi": "0.115.0"},
        "environment_fingerprint": environment_fingerprint(ENV),
        "source_run": "run-1",
    }


def test_an_unknown_environment_is_recorded_as_unknown() -> None:
    payload = build_baseline([], created_at="t", environment={}, probe={}, source_run="")
    provenance = payload["provenance"]
    assert {
        k: provenance[k] for k in ("git_sha", "python", "platform", "cpu_model")
    } == dict.fromkeys(("git_sha", "python", "platform", "cpu_model"), "unknown")
    assert provenance["python_implementation"] == "unknown"
    assert provenance["packages"] == {} and provenance["git_dirty"] is None


def test_the_environment_fingerprint_is_stable() -> None:
    """Every stored baseline carries it: the text it hashes must not change, or every baseline
    would look as if made in another environment."""
    text = "python=3.11.7\nimplementation=CPython\nfastapi==0.115.0\nuvicorn==0.54.0"
    expected = "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
    assert environment_fingerprint(ENV) == expected
    unknown = "python=unknown\nimplementation=unknown"
    assert environment_fingerprint({}) == (
        "sha256:" + hashlib.sha256(unknown.encode()).hexdigest()[:16]
    )


def test_settings_mismatch_names_every_problem() -> None:
    payload = build_baseline(
        [],
        created_at="",
        environment=ENV,
        probe={"designs": ["naive", "optimized", "mine"], "history_lens": [0, 100]},
        source_run="",
    )
    baseline = parse_baseline(payload, "b")
    assert settings_mismatch(baseline, ["mine"], [0]) == (
        "history_lens [0, 100] in the baseline, [0] now; "
        "design(s) naive, optimized in the baseline but not gated now"
    )


def test_environment_warnings_in_full() -> None:
    assert environment_warnings({}, {}) == []  # nothing known on either side: nothing to say
    baseline = {"python": "3.11.7", "packages": {"a": "1", "b": "2", "gone": "absent"}}
    current = {"python": "3.12.0", "packages": {"a": "1.1"}}
    assert environment_warnings(baseline, current) == [
        "Python 3.12.0 here, the baseline was made with Python 3.11.7",
        "package versions differ from the baseline's: a 1 -> 1.1, b 2 -> absent "
        "(install from the lock file, or refresh the baseline)",
    ]


# --- the sites an explanation draws on -----------------------------------------------------


def site_row(
    endpoint: str, hist: int, location: str, nbytes: float, function: str = "f"
) -> dict[str, object]:
    row = Site(location, function, nbytes, 1.0).to_json()
    return {"endpoint": endpoint, "history_len": hist, **row}


def _regressed(*rows: SummaryRow) -> GateResult:
    current = [replace(r, value=r.value * 2) for r in rows]
    return compare(list(rows), current, Thresholds(default=Threshold(tolerance=0.0)))


def test_explain_shows_three_sites_by_default_with_their_key() -> None:
    current = {"o": {"peak": [site_row("chat", 0, f"a.py:{i}", 10 * i) for i in range(1, 6)]}}
    result = _regressed(peak("o", "chat", 0, 1))
    (key,) = [v.key for v in result.regressions]
    explanation = explain(result, {}, current)[key]
    assert explanation.key == key
    assert [c.location for c in explanation.changes] == ["a.py:5", "a.py:4", "a.py:3"]


def test_explain_compares_with_the_baseline_at_the_same_history_length() -> None:
    base = {"o": {"peak": [site_row("chat", 0, "a.py:1", 100), site_row("chat", 50, "a.py:1", 10)]}}
    current = {"o": {"peak": [site_row("chat", 0, "a.py:1", 130)]}}
    (explanation,) = explain(_regressed(peak("o", "chat", 0, 1)), base, current).values()
    assert [(c.location, c.change) for c in explanation.changes] == [("a.py:1", 30)]


def test_a_series_without_an_endpoint_uses_the_sites_without_one() -> None:
    series = SummaryRow("o", "probe", "retained_bytes_per_request", 8.0, "bytes/request")
    current = {"o": {"retained": [site_row("", 0, "a.py:1", 4096, function="")]}}
    (explanation,) = explain(_regressed(series), {}, current).values()
    assert explanation.lines() == ["+4 KiB/req at a.py:1"]  # no function: no " in "


def test_the_sites_file_in_full() -> None:
    sites: dict[str, dict[str, list[dict[str, object]]]] = {"o": {"peak": [], "retained": []}}
    assert build_sites(sites, created_at="2026-12-04", git_sha="abc") == {
        "schema_version": 1,
        "kind": "memload-gate-sites",
        "created_at": "2026-12-04",
        "git_sha": "abc",
        "designs": {"o": {"peak": [], "retained": []}},
    }


def test_series_key_text() -> None:
    key = SeriesKey.of(peak("o", "chat", 5, 1))
    assert str(key) == "alloc_peak_bytes{design=o,endpoint=chat,history_len=5}"


# --- changes as text -----------------------------------------------------------------------


def _verdict(baseline: float, current: float) -> Verdict:
    key = SeriesKey("alloc_peak_bytes", "o", ())
    return Verdict(key, "bytes", "pass", baseline, current, Threshold(), "default")


def test_a_change_too_small_to_show_has_no_minus_sign() -> None:
    assert format_change(_verdict(100.0, 100.0 - 1e-9)) == "+0 B (-0.0%)"
    assert format_change(_verdict(100.0, 100.5)) == "+0.5 B (+0.5%)"
    assert format_change(_verdict(100.0, 99.5)) == "-0.5 B (-0.5%)"


# --- verdicts ------------------------------------------------------------------------------


def _judged(baseline: float | None, current: float | None, **kw: object) -> Verdict:
    threshold = kw.pop("threshold", Threshold(tolerance=0.10))
    return Verdict(KEY, "bytes", "pass", baseline, current, threshold, "default", **kw)  # type: ignore[arg-type]


KEY = SeriesKey("alloc_peak_bytes", "o", (("endpoint", "chat"),))


def test_how_far_a_value_is_from_the_highest_the_baseline_saw() -> None:
    plain = _judged(100.0, 105.0)
    assert (plain.reference_high, plain.excess, plain.fraction_of_limit) == (100.0, 5.0, 0.5)
    seen = _judged(100.0, 105.0, seen=(90.0, 102.0))
    assert (seen.reference_high, seen.excess) == (102.0, 3.0)
    below = _judged(100.0, 105.0, seen=(90.0, 95.0))  # the baseline's figure is the highest
    assert below.reference_high == 100.0
    assert _judged(None, 105.0).excess is None and _judged(100.0, None).excess is None
    no_limit = _judged(0.0, 5.0, threshold=Threshold(tolerance=0.10))  # limit 0: no fraction
    assert no_limit.fraction_of_limit is None
    assert _judged(100.0, 105.0, threshold=None).fraction_of_limit is None


def test_a_cap_is_exceeded_only_above_it() -> None:
    assert not _judged(100.0, 200.0, threshold=Threshold(cap=200.0)).over_cap
    assert _judged(100.0, 200.5, threshold=Threshold(cap=200.0)).over_cap
    assert not _judged(100.0, None, threshold=Threshold(cap=200.0)).over_cap
    assert not _judged(100.0, 300.0, threshold=None).over_cap


def test_change_ratio_and_limit_source_edges() -> None:
    assert _judged(0.0, 5.0).change_ratio is None  # no ratio from a zero baseline
    assert _judged(-100.0, -50.0).change_ratio == 0.5  # of |baseline|
    # the three terms tie at 10: the first, tolerance, is named
    tie = _judged(100.0, 100.0, threshold=Threshold(0.10, floor=10.0), noise=2.5, noise_k=4.0)
    assert tie.limit_source == "tolerance"
    noisy = _judged(100.0, 100.0, threshold=Threshold(0.10, floor=10.0), noise=3.0, noise_k=4.0)
    assert (noisy.limit, noisy.limit_source) == (12.0, "noise")


def test_an_improvement_of_exactly_twice_the_limit_is_not_large() -> None:
    exactly = replace(_judged(100.0, 80.0), status="improved")
    assert exactly.limit == 10.0 and not exactly.large_improvement
    beyond = replace(_judged(100.0, 79.0), status="improved")
    assert beyond.large_improvement
    assert not replace(_judged(100.0, 79.0), status="pass").large_improvement


def test_judge_at_the_cap_and_under_the_lowest_seen() -> None:
    capped = Threshold(tolerance=1.0, cap=150.0)
    assert judge(100.0, 150.0, capped) == "pass" and judge(100.0, 150.5, capped) == "regression"
    # the baseline saw 80: a current value of 85 is within 10% of 80 (its lowest), not improved
    t = Threshold(tolerance=0.10)
    assert judge(100.0, 85.0, t) == "improved"
    assert judge(100.0, 85.0, t, seen=(80.0, 100.0)) == "pass"
    assert judge(100.0, 89.0, t) == "improved"  # 11 under 100 is beyond its limit of 10
    assert judge(100.0, 90.0, t) == "pass"  # exactly at the limit


def cv_row(value: float, unit: str, design: str = "o", phase: str = "probe") -> SummaryRow:
    return SummaryRow(design, phase, "alloc_cv", value, unit, {"endpoint": "chat"})


def test_cv_warnings_edges() -> None:
    assert cv_warnings([cv_row(0.05, "ratio"), cv_row(5.0, "percent")]) == []  # 5% is not above
    (only,) = cv_warnings([cv_row(6.0, "percent")])
    assert only.startswith("alloc_cv{design=o,endpoint=chat}: 6.0% variation between reps")
    rows = [cv_row(0.5, "ratio", design="x"), cv_row(0.5, "ratio", phase="load")]
    assert cv_warnings(rows, designs=["o"]) == []
    assert len(cv_warnings(rows)) == 1  # the probe's row only
    assert cv_warnings([cv_row(math.nan, "ratio")]) == []


def test_a_missing_series_keeps_its_baseline_s_unit_and_compare_keeps_its_seen_range() -> None:
    base = [SummaryRow("o", "probe", "alloc_slope_bytes_per_unit", 5.0, "bytes/note", {})]
    (verdict,) = compare(base, [], Thresholds()).verdicts
    assert (verdict.status, verdict.unit) == ("missing", "bytes/note")


def test_series_order_uses_the_history_length_as_a_number() -> None:
    rows = [peak("o", "chat", 1000, 1.0), peak("o", "chat", 200, 1.0), peak("o", "chat", 30, 1.0)]
    order = [dict(v.key.labels)["history_len"] for v in compare(rows, rows, Thresholds()).verdicts]
    assert order == ["30", "200", "1000"]


def test_parse_baseline_names_the_wrong_kind_and_malformed_sections() -> None:
    with pytest.raises(BaselineError, match=r"not a gate baseline \(kind 'other'\)"):
        parse_baseline({"kind": "other"}, "b.json")
    good = build_baseline([], created_at="", environment={}, probe={}, source_run="")
    with pytest.raises(BaselineError, match="malformed provenance/probe"):
        parse_baseline({**good, "provenance": ["x"]}, "b.json")
    undated = {k: v for k, v in good.items() if k != "created_at"}
    assert parse_baseline(undated, "b.json").created_at == ""


def test_judge_without_noise_or_with_the_threshold_off() -> None:
    t = Threshold(tolerance=0.10)
    assert judge(100.0, 115.0, t, noise_k=20.0) == "regression"  # no noise given: no noise term
    assert judge(100.0, 115.0, t, noise=20.0) == "regression"  # no noise_k given: none either
    assert judge(100.0, 1e9, Threshold(enabled=False)) == "off"


def test_the_current_run_s_noise_alone_is_the_series_noise() -> None:
    labels = {"endpoint": "chat", "history_len": "0"}
    spread = SummaryRow("o", "probe", "alloc_peak_spread_bytes", 0.5, "bytes", labels)
    rows = [peak("o", "chat", 0, 100.0)]
    (verdict,) = compare(rows, [*rows, spread], Thresholds()).verdicts
    assert verdict.noise == 0.5


def test_a_verdict_names_the_rule_that_set_its_threshold() -> None:
    rows = [peak("o", "chat", 0, 100.0), peak("o", "notes", 0, 100.0)]
    rules = compile_thresholds({"alloc_peak_bytes{endpoint=chat}": "+20%"}, "+10%")
    assert [v.rule for v in compare(rows, rows, rules).verdicts] == [
        "alloc_peak_bytes{endpoint=chat}",
        "default",
    ]


def test_compare_reads_past_rows_of_other_designs() -> None:
    labels = {"endpoint": "chat", "history_len": "0"}
    other = [
        peak("x", "chat", 0, 1.0),
        SummaryRow("x", "probe", "alloc_peak_spread_bytes", 9.0, "bytes", labels),
        SummaryRow("x", "probe", "alloc_peak_low_bytes", 1.0, "bytes", labels),
        SummaryRow("x", "probe", "alloc_cv", 0.5, "ratio", labels),
        SummaryRow("x", "probe", "rss_peak_bytes", 1.0, "bytes", {}),
    ]
    mine = [
        peak("o", "chat", 0, 100.0),
        SummaryRow("o", "probe", "alloc_peak_spread_bytes", 3.0, "bytes", labels),
        SummaryRow("o", "probe", "alloc_peak_low_bytes", 80.0, "bytes", labels),
        SummaryRow("o", "probe", "alloc_peak_high_bytes", 120.0, "bytes", labels),
        SummaryRow("o", "probe", "alloc_cv", 0.5, "ratio", labels),
    ]
    result = compare(other + mine, other + mine, Thresholds(), designs=["o"])
    (verdict,) = result.verdicts
    assert (verdict.key.design, verdict.noise, verdict.seen) == ("o", 3.0, (80.0, 120.0))
    assert len(result.warnings) == 1 and result.warnings[0].startswith("alloc_cv{design=o,")


def test_series_order_within_a_design() -> None:
    rows = [peak("o", "history", 5, 1.0), peak("o", "chat", 1000, 1.0)]
    no_history = SummaryRow("o", "probe", "alloc_peak_bytes", 1.0, "bytes", {"endpoint": "chat"})
    verdicts = compare([*rows, no_history], [*rows, no_history], Thresholds()).verdicts
    assert [
        (dict(v.key.labels).get("endpoint"), dict(v.key.labels).get("history_len"))
        for v in verdicts
    ] == [
        ("chat", None),  # no history length ranks before any
        ("chat", "1000"),
        ("history", "5"),  # endpoints before history lengths
    ]


def test_sizes_and_values_as_text() -> None:
    from harness.gate import format_size
    from harness.gate._format import format_value

    assert format_size(3 * 1024**3) == "3 GiB"
    assert format_size(1.234) == "1.23 B"  # 3 significant figures under 100 B
    assert format_size(512.25) == "512.2 B"  # one decimal from 100 B
    assert format_size(-1e-9) == "0 B"  # no "-0"
    assert format_value(0.25, "ratio") == "25.0%"
    assert format_value(12.5, "ms") == "12.5 ms"


def test_noise_widens_a_limit_only_with_its_multiplier() -> None:
    """The noise term is noise_k x noise: noise without a multiplier, or a multiplier without
    noise, leaves the limit at the tolerance and floor."""
    threshold = Threshold(tolerance=0.1, floor=2.0)
    assert threshold.limit(0.0, noise=50.0) == 2.0
    assert threshold.limit(0.0, noise_k=3.0) == 2.0
    assert threshold.limit(0.0, noise=50.0, noise_k=3.0) == 150.0


def test_off_is_a_disabled_threshold_with_nothing_allowed() -> None:
    """'off' turns the threshold off; its tolerance and floor are zero, not the defaults."""
    assert parse_threshold(" OFF ") == Threshold(tolerance=0.0, floor=0.0, enabled=False)
    with pytest.raises(ValueError, match="a tolerance is an allowed increase"):
        parse_threshold("-5%")


def test_a_label_value_keeps_its_own_letters_and_loses_only_quotes() -> None:
    """Quotes around a label value are dropped, nothing else (a value may end in any letter)."""
    selector = parse_selector("alloc_peak_bytes{design=XlargeX, endpoint='chat'}")
    assert selector.labels == (("design", "XlargeX"), ("endpoint", "chat"))
    with pytest.raises(ValueError, match=r"\(labels: design, endpoint, history_len\)"):
        parse_selector("alloc_peak_bytes{colour=red}")


def test_equally_specific_rules_the_first_matching_wins() -> None:
    """compile_thresholds refuses two equally specific rules that match one series; built by
    hand, the first one in order wins, so the outcome never depends on a later rule."""
    first = Rule(parse_selector("alloc_peak_bytes{design=d}"), parse_threshold("+1%"), "a")
    second = Rule(parse_selector("alloc_peak_bytes{endpoint=chat}"), parse_threshold("+2%"), "b")
    thresholds = Thresholds((first, second))
    got = thresholds.lookup("alloc_peak_bytes", {"design": "d", "endpoint": "chat"})
    assert got == (first.threshold, "alloc_peak_bytes{design=d}")


def test_config_errors_name_the_file_the_key_and_the_problem() -> None:
    """A bad default, a bad rule and an ambiguous pair each name loadtest.toml (or the given
    file), the key and what is wrong; each rule keeps its config key for later messages."""
    with pytest.raises(ConfigError) as bad_default:
        compile_thresholds({}, "+x%")
    assert (bad_default.value.path, bad_default.value.key) == ("loadtest.toml", "gate.default")
    assert bad_default.value.problem.startswith("bad expression '+x%'")
    rules = compile_thresholds({"alloc_peak_bytes{design=d}": "+3%"}, "+10%").rules
    assert [r.key for r in rules] == ['gate.thresholds."alloc_peak_bytes{design=d}"']
    with pytest.raises(ConfigError) as ambiguous:
        compile_thresholds(
            {"alloc_peak_bytes{design=d}": "+1%", "alloc_peak_bytes{endpoint=chat}": "+2%"},
            "+10%",
            config_path="gate.toml",
        )
    assert ambiguous.value.path == "gate.toml"
    assert ambiguous.value.key == 'gate.thresholds."alloc_peak_bytes{endpoint=chat}"'
    assert ambiguous.value.problem == (
        'as specific as gate.thresholds."alloc_peak_bytes{design=d}" and both match '
        "alloc_peak_bytes{design=d,endpoint=chat}; add a selector with both labels, or drop one"
    )


def test_an_ambiguous_pair_is_found_past_other_metrics_and_disjoint_rules() -> None:
    """The search for an ambiguous pair goes on past a rule of another metric and past a rule
    that cannot match the same series."""
    table = {
        "alloc_peak_bytes{endpoint=chat}": "+1%",
        "retained_bytes_per_request{endpoint=chat}": "+1%",
        "alloc_peak_bytes{endpoint=history}": "+1%",
        "alloc_peak_bytes{design=d}": "+1%",
        "alloc_peak_bytes{design=d,endpoint=history}": "+1%",
    }
    with pytest.raises(ConfigError) as ambiguous:
        compile_thresholds(table, "+10%")
    assert ambiguous.value.key == 'gate.thresholds."alloc_peak_bytes{design=d}"'
    assert 'as specific as gate.thresholds."alloc_peak_bytes{endpoint=chat}"' in str(
        ambiguous.value
    )
