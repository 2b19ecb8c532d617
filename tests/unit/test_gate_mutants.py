"""The gate's edges that its main tests (test_gate.py) leave open, found by `make mutation`:
what a baseline records in full, the environment fingerprint stored in every baseline, the
exact words of the warnings, and the allocation sites an explanation draws on."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from harness.analysis.sites import Site
from harness.gate import (
    GateResult,
    SeriesKey,
    Threshold,
    Thresholds,
    Verdict,
    build_baseline,
    build_sites,
    compare,
    environment_warnings,
    explain,
    format_change,
    parse_baseline,
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
