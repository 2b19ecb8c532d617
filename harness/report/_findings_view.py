"""The findings block as the templates show it: formatted figures, ratios and verdicts.

The findings themselves are computed in `harness.analysis.findings` (pure); this module only
words and formats them, for the run report (designs side by side) and for `harness compare`
(run A -> run B per design).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.analysis.findings import MAX_FINDINGS, CompareFinding, Figure, Finding, Ratio
from harness.report._page import _metric_title
from harness.report._plot import design_colour
from harness.report._units import MISSING, format_percent, format_ratio, format_value

FINDINGS_NOTE = "Verdict: each design against {base}; same: within ±5%."
UNCLEAR_NOTE = "Unclear: a figure is only a bound, and the bound does not decide."
AT_LEAST_NOTE = "At least: the capacity search found no knee; the true figure is higher."
PASSED_NOTE = "Passed: every design's figure is 0."
COMPARE_FINDINGS_NOTE = (
    "Run B against run A, per design: better, worse or same (within ±5%); unclear when a "
    "figure is only a bound. Passed or failed: run B's figure is 0 or not."
)


def figure_text(figure: Figure | None, unit: str) -> str:
    if figure is None:
        return MISSING
    text = format_value(figure.value, unit)
    return f"at least {text}" if figure.at_least else text


def ratio_text(ratio: Ratio) -> str:
    if math.isnan(ratio.value):
        return MISSING
    text = format_ratio(ratio.value)
    return f"{ratio.bound} {text}" if ratio.bound else text


def _verdict(finding: Finding) -> tuple[str, str]:
    """(text, mood) of a finding's verdict cell."""
    if finding.kind == "pass":
        if finding.verdict == "failed":
            return f"failed: {', '.join(finding.failed)}", "worse"
        return "passed", "better"
    words = [f"{r.design} {r.verdict}" for r in finding.ratios if r.verdict]
    moods = {r.verdict for r in finding.ratios}
    mood = "worse" if "worse" in moods else "better" if moods == {"better"} else ""
    return "; ".join(words), mood


def findings_view(findings: Sequence[Finding], designs: Sequence[str]) -> dict[str, Any]:
    """Rows of the run report's findings table: one column per design, the ratios, a verdict."""
    shown = [d for d in designs if any(f.design == d for x in findings for f in x.figures)]
    ratio_names = list(dict.fromkeys(f"{r.design} / {r.base}" for x in findings for r in x.ratios))
    base = next((r.base for x in findings for r in x.ratios), "")
    rows = []
    for finding in findings[:MAX_FINDINGS]:
        figures = {f.design: f for f in finding.figures}
        ratios = {f"{r.design} / {r.base}": r for r in finding.ratios}
        text, mood = _verdict(finding)
        rows.append(
            {
                "title": _metric_title(finding.title, finding.better),
                "figures": [figure_text(figures.get(d), finding.unit) for d in shown],
                "ratios": [
                    ratio_text(ratios[name]) if name in ratios else MISSING for name in ratio_names
                ],
                "verdict": text,
                "mood": mood,
            }
        )
    return {
        "designs": [{"name": d, "colour": design_colour(d)} for d in shown],
        "ratios": ratio_names,
        "rows": rows,
        "note": _note(findings, base),
    }


def _note(findings: Sequence[Finding], base: str) -> str:
    """Only the sentences the block's words need."""
    parts = [FINDINGS_NOTE.format(base=base)] if base else []
    if any(r.verdict == "unclear" for x in findings for r in x.ratios):
        parts.append(UNCLEAR_NOTE)
    if any(f.at_least for x in findings for f in x.figures):
        parts.append(AT_LEAST_NOTE)
    if any(x.kind == "pass" for x in findings):
        parts.append(PASSED_NOTE)
    return " ".join(parts)


def compare_findings_view(
    findings: Sequence[CompareFinding], designs: Sequence[str]
) -> dict[str, Any]:
    """Rows of compare's findings table: per design, A -> B, the change, the verdict."""
    shown = [d for d in designs if any(c.design == d for x in findings for c in x.changes)]
    rows = []
    for finding in findings[:MAX_FINDINGS]:
        changes = {c.design: c for c in finding.changes}
        cells = []
        for design in shown:
            c = changes.get(design)
            if c is None:
                cells.append({"figures": MISSING, "change": "", "verdict": "", "mood": ""})
                continue
            a, b = figure_text(c.a, finding.unit), figure_text(c.b, finding.unit)
            mood = {"better": "better", "passed": "better", "worse": "worse", "failed": "worse"}
            cells.append(
                {
                    "figures": f"{a} → {b}",
                    "change": (
                        format_percent(c.delta_pct, signed=True)
                        if not math.isnan(c.delta_pct)
                        else ""
                    ),
                    "verdict": c.verdict,
                    "mood": mood.get(c.verdict, ""),
                }
            )
        rows.append({"title": _metric_title(finding.title, finding.better), "cells": cells})
    return {
        "designs": [{"name": d, "colour": design_colour(d)} for d in shown],
        "rows": rows,
        "note": COMPARE_FINDINGS_NOTE,
    }
