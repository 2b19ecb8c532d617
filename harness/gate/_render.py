"""Rendering of a GateResult: a rich table, Markdown for a PR comment, JUnit XML for CI.

Pure: every function returns an object or a string; the CLI prints and writes them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from harness.analysis.sites import step_site
from harness.gate._explain import Explanation
from harness.gate._format import format_change, format_limit, format_size, format_value
from harness.gate._metrics import (
    PROBE_PHASE,
    RATE_METRIC,
    STEP_METRIC,
    STEP_SHOWN_BYTES,
    UPDATE_HINT,
    Status,
)
from harness.gate._verdicts import GateResult, SeriesKey, Verdict
from harness.results import SummaryRow

__all__ = [
    "HEADERS",
    "RenderContext",
    "breach",
    "format_change",
    "format_limit",
    "headline",
    "junit_xml",
    "markdown",
    "one_time_growth_lines",
    "outcome_lines",
    "rich_table",
    "verdict_cells",
]

RULE_TEXT = (
    "A series regresses when current - baseline > max(|baseline| x tolerance, "
    "noise_k x noise, floor), or when it exceeds its cap; noise is the series' own measured "
    "spread; thresholds come from [gate] in loadtest.toml (docs/gate.md)."
)

_VERDICT_TEXT: dict[Status, str] = {
    "pass": "pass",
    "regression": "REGRESSION",
    "improved": "improved",
    "missing": "MISSING",
    "new": "new",
    "off": "off",
}
_VERDICT_STYLE: dict[Status, str] = {
    "pass": "green",
    "regression": "bold red",
    "improved": "bold green",
    "missing": "bold red",
    "new": "cyan",
    "off": "dim",
}
_MD_ICON: dict[Status, str] = {
    "pass": "✅",
    "regression": "❌",
    "improved": "🟢",
    "missing": "⚠️",
    "new": "🆕",
    "off": "➖",
}
HEADERS = ("design", "metric", "labels", "baseline", "current", "change", "limit", "verdict")


@dataclass(frozen=True)
class RenderContext:
    baseline_path: str = ""
    baseline_sha: str = "unknown"
    baseline_date: str = ""
    run_dir: str = ""
    current_sha: str = "unknown"
    one_time: tuple[str, ...] = ()  # one_time_growth_lines of the current run
    update_hint: str = UPDATE_HINT  # the command that refreshes this baseline


def verdict_cells(v: Verdict) -> tuple[str, ...]:
    """One table row as plain strings, in HEADERS order."""
    return (
        v.key.design,
        v.key.metric,
        " ".join(f"{k}={val}" for k, val in v.key.labels),
        format_value(v.baseline, v.unit) if v.baseline is not None else "-",
        format_value(v.current, v.unit) if v.current is not None else "-",
        format_change(v),
        format_limit(v),
        _VERDICT_TEXT[v.status],
    )


def breach(v: Verdict) -> str:
    """Why a regression failed: its change beyond the limit, or, within it, its cap."""
    limit, cap = v.limit, v.threshold.cap if v.threshold else None
    if (
        v.over_cap
        and cap is not None
        and v.current is not None
        and (limit is None or v.change is None or v.change <= limit)
    ):
        return f"{format_value(v.current, v.unit)} > cap {format_value(cap, v.unit)}"
    high, excess = v.reference_high, v.excess
    current, base = v.current, v.baseline
    if high is not None and base is not None and high > base and excess is not None and current:
        return (
            f"{format_value(current, v.unit)}, +{format_value(excess, v.unit)} above the "
            f"highest the baseline saw ({format_value(high, v.unit)}) > limit {format_limit(v)}"
        )
    return f"{format_change(v)} > limit {format_limit(v)}"


_HEADLINE_WORDS: tuple[tuple[Status, str], ...] = (
    ("pass", "pass"),
    ("regression", "regressed"),
    ("improved", "improved"),
    ("missing", "missing"),
    ("new", "new"),
    ("off", "off"),
)


def one_time_growth_lines(
    rows: Iterable[SummaryRow],
    designs: Sequence[str] | None = None,
    sites: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """'notes get at history_len=1000: one-time growth of 19.5 KiB (a cache filling) at
    notes_app.py:41, then 0.2 B/request', for every leak run whose one-time growth is at least
    STEP_SHOWN_BYTES: what a cache filled once, said apart from the rate the gate judges. The
    line is the run's largest step site (`sites`: each design's probe_sites.json), when known."""
    rows = [r for r in rows if r.phase == PROBE_PHASE and "process" not in r.labels]
    rates = {
        (r.design, tuple(sorted(r.labels.items()))): r.value
        for r in rows
        if r.metric == RATE_METRIC
    }
    lines: list[str] = []
    for r in rows:
        if r.metric != STEP_METRIC or r.value < STEP_SHOWN_BYTES:
            continue
        if designs is not None and r.design not in designs:
            continue
        rate = rates.get((r.design, tuple(sorted(r.labels.items()))))
        where = f"{r.design} {r.labels.get('endpoint', '')}"
        if "history_len" in r.labels:
            where += f" at history_len={r.labels['history_len']}"
        then = f", then {format_size(rate)}/request" if rate is not None else ""
        at = _step_site_text(r, (sites or {}).get(r.design))
        lines.append(
            f"{where}: one-time growth of {format_size(r.value)} (a cache filling){at}{then}"
        )
    return lines


def _step_site_text(row: SummaryRow, design_sites: Mapping[str, Any] | None) -> str:
    """' at file:line' of the leak run's largest step site ('' when not known)."""
    records = design_sites.get("step") if isinstance(design_sites, Mapping) else None
    if not isinstance(records, list):
        return ""
    labels = row.labels
    site = step_site(records, labels.get("endpoint", ""), int(labels.get("history_len", "0")))
    if site is None:
        return ""
    via = f" via {site.via}" if site.via else ""
    return f" at {site.location}{via} ({format_size(site.bytes)} of it)"


def headline(result: GateResult) -> str:
    counts = ", ".join(
        f"{result.count(s)} {name}"
        for s, name in _HEADLINE_WORDS
        if result.count(s) or s in ("pass", "regression")
    )
    return f"{len(result.verdicts)} series: {counts}"


def outcome_lines(result: GateResult, hint: str = UPDATE_HINT) -> list[str]:
    """What to do next, in plain sentences (console and Markdown)."""
    lines: list[str] = []
    if result.missing:
        lines.append(
            f"{len(result.missing)} series of the baseline were not measured: the comparison is "
            "incomplete (exit 2). If an endpoint, design or history length was removed on "
            f"purpose, refresh the baseline: `{hint}`."
        )
    if result.regressions:
        lines.append(
            f"{len(result.regressions)} series regressed beyond their threshold (exit 1). "
            "If the increase is intended, refresh the baseline in the same change: "
            f"`{hint}`."
        )
    if result.suggests_update:
        lines.append(
            f"Some series improved by more than twice their limit: lock the gain in with `{hint}`."
        )
    if any(v.status == "new" for v in result.verdicts):
        lines.append(
            "New series (not in the baseline) are not gated until the baseline is refreshed."
        )
    return lines


def rich_table(result: GateResult, title: str = "Memory gate") -> Table:
    table = Table(title=f"{title}: {headline(result)}", title_justify="left")
    for header in HEADERS:
        numeric = header in ("baseline", "current", "change", "limit")
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    for v in result.verdicts:
        cells = list(verdict_cells(v))
        verdict = Text(cells.pop(), style=_VERDICT_STYLE[v.status])
        change_style = _VERDICT_STYLE[v.status] if v.status in ("regression", "improved") else ""
        row: list[str | Text] = [*cells[:5], Text(cells[5], style=change_style), cells[6], verdict]
        table.add_row(*row)
    return table


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def _md_table(verdicts: Sequence[Verdict]) -> list[str]:
    lines = [_md_row(HEADERS), _md_row(["---"] * 3 + ["---:"] * 4 + ["---"])]
    for v in verdicts:
        cells = list(verdict_cells(v))
        cells[1] = f"`{cells[1]}`"
        cells[-1] = f"{_MD_ICON[v.status]} {cells[-1]}"
        lines.append(_md_row(cells))
    return lines


def _md_explanations(
    result: GateResult, explanations: Mapping[SeriesKey, Explanation]
) -> list[str]:
    lines: list[str] = []
    for v in result.regressions:
        explanation = explanations.get(v.key)
        if explanation is None:
            continue
        what = "retained per request" if explanation.kind == "retained" else "at the peak"
        lines.append(f"- `{v.key}` {format_change(v)}, {what}:")
        lines += [f"  - `{line}`" for line in explanation.lines()] or ["  - no site grew"]
    return ["### Where it came from", "", *lines, ""] if lines else []


def markdown(
    result: GateResult,
    ctx: RenderContext,
    explanations: Mapping[SeriesKey, Explanation] | None = None,
) -> str:
    """A PR comment / job summary: verdict first, the series that need a look, all in <details>."""
    title = {
        "passed": "✅ Memory gate passed",
        "regression": "❌ Memory gate: regression",
        "error": "⚠️ Memory gate: incomplete comparison",
    }[result.outcome]
    lines = [f"## {title}", "", headline(result) + ".", ""]
    where = []
    if ctx.baseline_path:
        base = f"Baseline `{ctx.baseline_path}` (git `{ctx.baseline_sha}`"
        where.append(base + (f", {ctx.baseline_date})" if ctx.baseline_date else ")"))
    if ctx.run_dir:
        where.append(f"this run `{ctx.run_dir}` (git `{ctx.current_sha}`)")
    if where:
        lines += ["; ".join(where) + ".", ""]
    for line in outcome_lines(result, ctx.update_hint):
        lines += [f"- {line}"]
    if outcome_lines(result, ctx.update_hint):
        lines.append("")
    notable = [v for v in result.verdicts if v.status not in ("pass", "off")]
    if notable:
        lines += ["### Needs a look", "", *_md_table(notable), ""]
    lines += _md_explanations(result, explanations or {})
    lines += [
        f"<details><summary>All {len(result.verdicts)} series</summary>",
        "",
        *_md_table(result.verdicts),
        "",
        "</details>",
        "",
    ]
    if ctx.one_time:
        lines += ["### One-time growth (not gated)", ""] + [f"- {w}" for w in ctx.one_time] + [""]
    if result.warnings:
        lines += ["### Warnings", ""] + [f"- {w}" for w in result.warnings] + [""]
    lines += [f"<sub>{RULE_TEXT}</sub>", ""]
    return "\n".join(lines)


def junit_xml(
    result: GateResult,
    suite: str = "memory-gate",
    explanations: Mapping[SeriesKey, Explanation] | None = None,
) -> str:
    """JUnit XML: one testcase per gated series; <failure> for a regression, <error> for a
    series missing from the current run, <skipped> for a threshold set to off."""
    failures = result.count("regression")
    errors = result.count("missing")
    skipped = result.count("off")
    attrs = {
        "name": suite,
        "tests": str(len(result.verdicts)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": str(skipped),
    }
    root = ET.Element("testsuites", attrs)
    ts = ET.SubElement(root, "testsuite", attrs)
    for v in result.verdicts:
        cells = dict(zip(HEADERS, verdict_cells(v), strict=True))
        case = ET.SubElement(
            ts,
            "testcase",
            {
                "classname": f"{suite}.{v.key.design}.{v.key.metric}",
                "name": str(v.key),
                "time": "0",
            },
        )
        detail = (
            f"{v.key}: baseline {cells['baseline']}, current {cells['current']}, "
            f"change {cells['change']}, limit {cells['limit']} ({v.rule}: "
            f"{v.threshold.describe() if v.threshold else '-'})"
        )
        if v.status == "regression":
            message = breach(v)
            explanation = (explanations or {}).get(v.key)
            if explanation is not None:
                message += f": {explanation.summary()}"
                detail += "\n" + "\n".join(explanation.lines())
            failure = ET.SubElement(case, "failure", {"type": "regression", "message": message})
            failure.text = detail
        elif v.status == "missing":
            error = ET.SubElement(
                case, "error", {"type": "missing", "message": "in the baseline, not measured"}
            )
            error.text = detail
        elif v.status == "off":
            ET.SubElement(case, "skipped", {"message": "threshold off"})
        else:
            out = ET.SubElement(case, "system-out")
            out.text = f"{v.status}: {detail}"
    if result.warnings:
        err = ET.SubElement(ts, "system-err")
        err.text = "\n".join(result.warnings)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
