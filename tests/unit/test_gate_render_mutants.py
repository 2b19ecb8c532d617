"""The gate's renderings in full (Markdown for a PR comment, JUnit XML for CI, the console
table), found wanting by `make mutation`: the main tests check pieces of them, so a lost blank
line, separator or attribute went unseen. One result holds every status: two regressions (one
explained by two sites, one not), a pass, a new series, a missing one, a large improvement, a
threshold set to off, and two warnings. The expected lines are the rendered text, as wide as it is."""

# ruff: noqa: E501

from __future__ import annotations

from rich.text import Text

from harness.analysis.sites import Site
from harness.gate import GateResult, Threshold, Verdict, compare, compile_thresholds, explain
from harness.gate import _render as render
from harness.gate._verdicts import SeriesKey
from harness.results import SummaryRow

KiB = 1024


def peak(design: str, endpoint: str, value: float) -> SummaryRow:
    labels = {"endpoint": endpoint, "history_len": "0"}
    return SummaryRow(design, "probe", "alloc_peak_bytes", value, "bytes", labels)


def slope(design: str, value: float) -> SummaryRow:
    labels = {"endpoint": "chat"}
    return SummaryRow(design, "probe", "alloc_slope_bytes_per_unit", value, "bytes/message", labels)


def cv(design: str, value: float, unit: str) -> SummaryRow:
    labels = {"endpoint": "chat", "history_len": "0"}
    return SummaryRow(design, "probe", "alloc_cv", value, unit, labels)


BASE = [
    peak("optimized", "chat", 100 * KiB),
    peak("optimized", "a|b", 100 * KiB),
    peak("optimized", "history", 100 * KiB),
    peak("optimized", "stream", 100 * KiB),
    peak("naive", "chat", 1024 * KiB),
    slope("naive", 10.0),
]
CURRENT = [
    peak("optimized", "chat", 200 * KiB),
    peak("optimized", "a|b", 150 * KiB),
    peak("optimized", "history", 100 * KiB),
    peak("optimized", "notes", 50 * KiB),
    peak("naive", "chat", 500 * KiB),
    slope("naive", 99.0),
    cv("optimized", 0.1, "ratio"),
    cv("naive", 20.0, "percent"),
]
RESULT = compare(
    BASE,
    CURRENT,
    compile_thresholds({"alloc_slope_bytes_per_unit": "off"}, "+10% floor 16KiB"),
    designs=["optimized", "naive"],
)


def site(location: str, nbytes: float) -> dict[str, object]:
    return {"endpoint": "chat", "history_len": 0, **Site(location, "f", nbytes, 1.0).to_json()}


EXPLANATIONS = explain(
    RESULT,
    {"optimized": {"peak": [site("s.py:1", 10 * KiB)]}},
    {"optimized": {"peak": [site("s.py:1", 90 * KiB), site("t.py:2", 4 * KiB)]}},
)
CONTEXT = render.RenderContext(
    baseline_path="baselines/ci.json",
    baseline_sha="abc",
    baseline_date="2026-12-01",
    run_dir="reports/r1",
    current_sha="def",
    one_time=("optimized chat: one-time growth of 2 KiB (a cache filling)",),
    update_hint="make gate X",
)

MARKDOWN = [
    "## ⚠️ Memory gate: incomplete comparison",
    "",
    "7 series: 1 pass, 2 regressed, 1 improved, 1 missing, 1 new, 1 off.",
    "",
    "Baseline `baselines/ci.json` (git `abc`, 2026-12-01); this run `reports/r1` (git `def`).",
    "",
    "- 1 series of the baseline were not measured: the comparison is incomplete (exit 2). If an endpoint, design or history length was removed on purpose, refresh the baseline: `make gate X`.",
    "- 2 series regressed beyond their threshold (exit 1). If the increase is intended, refresh the baseline in the same change: `make gate X`.",
    "- Some series improved by more than twice their limit: lock the gain in with `make gate X`.",
    "- New series (not in the baseline) are not gated until the baseline is refreshed.",
    "",
    "### Needs a look",
    "",
    "| design | metric | labels | baseline | current | change | limit | verdict |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    "| optimized | `alloc_peak_bytes` | endpoint=a\\|b history_len=0 | 100 KiB | 150 KiB | +50 KiB (+50.0%) | +16 KiB | ❌ REGRESSION |",
    "| optimized | `alloc_peak_bytes` | endpoint=chat history_len=0 | 100 KiB | 200 KiB | +100 KiB (+100.0%) | +16 KiB | ❌ REGRESSION |",
    "| optimized | `alloc_peak_bytes` | endpoint=notes history_len=0 | - | 50 KiB | - | +10% floor 16 KiB | 🆕 new |",
    "| optimized | `alloc_peak_bytes` | endpoint=stream history_len=0 | 100 KiB | - | - | +16 KiB | ⚠️ MISSING |",
    "| naive | `alloc_peak_bytes` | endpoint=chat history_len=0 | 1 MiB | 500 KiB | -524 KiB (-51.2%) | +102 KiB | 🟢 improved |",
    "",
    "### Where it came from",
    "",
    "- `alloc_peak_bytes{design=optimized,endpoint=chat,history_len=0}` +100 KiB (+100.0%), at the peak:",
    "  - `+80 KiB at s.py:1 in f`",
    "  - `+4 KiB at t.py:2 in f`",
    "",
    "<details><summary>All 7 series</summary>",
    "",
    "| design | metric | labels | baseline | current | change | limit | verdict |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
    "| optimized | `alloc_peak_bytes` | endpoint=a\\|b history_len=0 | 100 KiB | 150 KiB | +50 KiB (+50.0%) | +16 KiB | ❌ REGRESSION |",
    "| optimized | `alloc_peak_bytes` | endpoint=chat history_len=0 | 100 KiB | 200 KiB | +100 KiB (+100.0%) | +16 KiB | ❌ REGRESSION |",
    "| optimized | `alloc_peak_bytes` | endpoint=history history_len=0 | 100 KiB | 100 KiB | +0 B (+0.0%) | +16 KiB | ✅ pass |",
    "| optimized | `alloc_peak_bytes` | endpoint=notes history_len=0 | - | 50 KiB | - | +10% floor 16 KiB | 🆕 new |",
    "| optimized | `alloc_peak_bytes` | endpoint=stream history_len=0 | 100 KiB | - | - | +16 KiB | ⚠️ MISSING |",
    "| naive | `alloc_peak_bytes` | endpoint=chat history_len=0 | 1 MiB | 500 KiB | -524 KiB (-51.2%) | +102 KiB | 🟢 improved |",
    "| naive | `alloc_slope_bytes_per_unit` | endpoint=chat | 10 B/msg | 99 B/msg | +89 B/msg (+890.0%) | off | ➖ off |",
    "",
    "</details>",
    "",
    "### One-time growth (not gated)",
    "",
    "- optimized chat: one-time growth of 2 KiB (a cache filling)",
    "",
    "### Warnings",
    "",
    "- alloc_cv{design=optimized,endpoint=chat,history_len=0}: 10.0% variation between reps (> 5%); its figures are less reliable",
    "- alloc_cv{design=naive,endpoint=chat,history_len=0}: 20.0% variation between reps (> 5%); its figures are less reliable",
    "",
    "<sub>A series regresses when current - baseline > max(|baseline| x tolerance, noise_k x noise, floor), or when it exceeds its cap; noise is the series' own measured spread; thresholds come from [gate] in loadtest.toml (docs/gate.md).</sub>",
]


def test_the_markdown_comment_in_full() -> None:
    assert render.markdown(RESULT, CONTEXT, EXPLANATIONS).split("\n") == [*MARKDOWN, ""]


JUNIT = [
    "<?xml version='1.0' encoding='utf-8'?>",
    '<testsuites name="memory-gate" tests="7" failures="2" errors="1" skipped="1">',
    '  <testsuite name="memory-gate" tests="7" failures="2" errors="1" skipped="1">',
    '    <testcase classname="memory-gate.optimized.alloc_peak_bytes" name="alloc_peak_bytes{design=optimized,endpoint=a|b,history_len=0}" time="0">',
    '      <failure type="regression" message="+50 KiB (+50.0%) &gt; limit +16 KiB">alloc_peak_bytes{design=optimized,endpoint=a|b,history_len=0}: baseline 100 KiB, current 150 KiB, change +50 KiB (+50.0%), limit +16 KiB (default: +10% floor 16 KiB)</failure>',
    "    </testcase>",
    '    <testcase classname="memory-gate.optimized.alloc_peak_bytes" name="alloc_peak_bytes{design=optimized,endpoint=chat,history_len=0}" time="0">',
    '      <failure type="regression" message="+100 KiB (+100.0%) &gt; limit +16 KiB: +80 KiB at s.py:1 in f">alloc_peak_bytes{design=optimized,endpoint=chat,history_len=0}: baseline 100 KiB, current 200 KiB, change +100 KiB (+100.0%), limit +16 KiB (default: +10% floor 16 KiB)',
    "+80 KiB at s.py:1 in f",
    "+4 KiB at t.py:2 in f</failure>",
    "    </testcase>",
    '    <testcase classname="memory-gate.optimized.alloc_peak_bytes" name="alloc_peak_bytes{design=optimized,endpoint=history,history_len=0}" time="0">',
    "      <system-out>pass: alloc_peak_bytes{design=optimized,endpoint=history,history_len=0}: baseline 100 KiB, current 100 KiB, change +0 B (+0.0%), limit +16 KiB (default: +10% floor 16 KiB)</system-out>",
    "    </testcase>",
    '    <testcase classname="memory-gate.optimized.alloc_peak_bytes" name="alloc_peak_bytes{design=optimized,endpoint=notes,history_len=0}" time="0">',
    "      <system-out>new: alloc_peak_bytes{design=optimized,endpoint=notes,history_len=0}: baseline -, current 50 KiB, change -, limit +10% floor 16 KiB (default: +10% floor 16 KiB)</system-out>",
    "    </testcase>",
    '    <testcase classname="memory-gate.optimized.alloc_peak_bytes" name="alloc_peak_bytes{design=optimized,endpoint=stream,history_len=0}" time="0">',
    '      <error type="missing" message="in the baseline, not measured">alloc_peak_bytes{design=optimized,endpoint=stream,history_len=0}: baseline 100 KiB, current -, change -, limit +16 KiB (default: +10% floor 16 KiB)</error>',
    "    </testcase>",
    '    <testcase classname="memory-gate.naive.alloc_peak_bytes" name="alloc_peak_bytes{design=naive,endpoint=chat,history_len=0}" time="0">',
    "      <system-out>improved: alloc_peak_bytes{design=naive,endpoint=chat,history_len=0}: baseline 1 MiB, current 500 KiB, change -524 KiB (-51.2%), limit +102 KiB (default: +10% floor 16 KiB)</system-out>",
    "    </testcase>",
    '    <testcase classname="memory-gate.naive.alloc_slope_bytes_per_unit" name="alloc_slope_bytes_per_unit{design=naive,endpoint=chat}" time="0">',
    '      <skipped message="threshold off" />',
    "    </testcase>",
    "    <system-err>alloc_cv{design=optimized,endpoint=chat,history_len=0}: 10.0% variation between reps (&gt; 5%); its figures are less reliable",
    "alloc_cv{design=naive,endpoint=chat,history_len=0}: 20.0% variation between reps (&gt; 5%); its figures are less reliable</system-err>",
    "  </testsuite>",
    "</testsuites>",
]


def test_the_junit_xml_in_full() -> None:
    assert render.junit_xml(RESULT, explanations=EXPLANATIONS).split("\n") == [*JUNIT, ""]


def test_the_headline_names_pass_and_regressed_even_at_zero() -> None:
    assert render.headline(RESULT) == (
        "7 series: 1 pass, 2 regressed, 1 improved, 1 missing, 1 new, 1 off"
    )
    passing = compare(BASE[:1], BASE[:1], compile_thresholds({}, "+10%"))
    assert render.headline(passing) == "1 series: 1 pass, 0 regressed"


def test_the_console_table_aligns_figures_right_and_colours_verdicts() -> None:
    table = render.rich_table(RESULT)
    assert str(table.title).startswith("Memory gate: 7 series: ")
    assert table.title_justify == "left"
    assert [c.header for c in table.columns] == list(render.HEADERS)
    assert [c.justify for c in table.columns] == ["left"] * 3 + ["right"] * 4 + ["left"]
    assert {c.overflow for c in table.columns} == {"fold"}
    changes = list(table.columns[5].cells)
    verdicts = list(table.columns[7].cells)
    assert all(isinstance(cell, Text) for cell in changes + verdicts)
    styles = [(str(v), str(c.style), str(v.style)) for c, v in zip(changes, verdicts, strict=True)]  # type: ignore[union-attr]
    assert styles == [
        ("REGRESSION", "bold red", "bold red"),
        ("REGRESSION", "bold red", "bold red"),
        ("pass", "", "green"),
        ("new", "", "cyan"),
        ("MISSING", "", "bold red"),
        ("improved", "bold green", "bold green"),
        ("off", "", "dim"),
    ]
    assert [str(c) for c in table.columns[4].cells][:2] == ["150 KiB", "200 KiB"]
    assert render.rich_table(RESULT, title="Gate").title.startswith("Gate: ")  # type: ignore[union-attr]


KEY = SeriesKey("alloc_peak_bytes", "o", (("endpoint", "chat"),))


def test_a_breach_over_its_cap_at_exactly_the_limit_says_cap() -> None:
    # +10 B is exactly the limit (10% of 100 B): within it, so the cap is what failed
    at_limit = Verdict(KEY, "bytes", "regression", 100.0, 110.0, Threshold(0.10, cap=105.0), "r")
    assert render.breach(at_limit) == "110 B > cap 105 B"
    off_with_cap = Verdict(
        KEY, "bytes", "regression", 100.0, 300.0, Threshold(enabled=False, cap=200.0), "r"
    )
    assert render.breach(off_with_cap) == "300 B > cap 200 B"
    no_threshold = Verdict(KEY, "bytes", "regression", 100.0, 300.0, None, "r")
    assert render.breach(no_threshold) == "+200 B (+200.0%) > limit -"


def step_row(value: float, phase: str = "probe", **labels: str) -> SummaryRow:
    return SummaryRow("o", phase, "retained_step_bytes", value, "bytes", labels)


def test_one_time_growth_lines_edges() -> None:
    rows = [
        step_row(10.0, endpoint="tiny"),  # under the shown size: skipped, the rest still read
        step_row(1024.0, endpoint="chat"),  # exactly the shown size: shown
        step_row(4096.0, phase="load", endpoint="load"),  # not the probe's
        step_row(4096.0, endpoint="chat", process="1"),  # one process of several
        step_row(2048.0),  # no endpoint, no rate
    ]
    lines = render.one_time_growth_lines(rows)
    assert lines[0] == "o chat: one-time growth of 1 KiB (a cache filling)"
    assert len(lines) == 2
    assert lines[1].split(":")[0].strip() == "o"
    assert lines[1].endswith("one-time growth of 2 KiB (a cache filling)")


def test_texts_of_a_result_without_passes_or_new_series() -> None:
    regressed = compare(BASE[:1], CURRENT[:1], compile_thresholds({}, "+10%"))
    assert render.headline(regressed) == "1 series: 0 pass, 1 regressed"
    passing = compare(BASE[:1], BASE[:1], compile_thresholds({}, "+10%"))
    assert render.outcome_lines(passing) == []


def test_the_markdown_without_a_baseline_date() -> None:
    ctx = render.RenderContext(baseline_path="b.json", baseline_sha="abc")
    lines = render.markdown(RESULT, ctx).split("\n")
    assert "Baseline `b.json` (git `abc`)." in lines


def test_junit_detail_without_a_threshold() -> None:
    verdict = Verdict(KEY, "bytes", "pass", 1.0, 1.0, None, "default")
    xml = render.junit_xml(GateResult((verdict,)))
    assert "limit - (default: -)</system-out>" in xml


def test_one_time_growth_lines_of_the_designs_asked_for() -> None:
    rows = [
        SummaryRow("x", "probe", "retained_step_bytes", 4096.0, "bytes", {"endpoint": "chat"}),
        SummaryRow("o", "probe", "retained_step_bytes", 4096.0, "bytes", {"endpoint": "chat"}),
    ]
    assert render.one_time_growth_lines(rows, designs=["o"]) == [
        "o chat: one-time growth of 4 KiB (a cache filling)"
    ]
