"""Findings: the few figures a reviewer acts on, each with its design ratio and a verdict.

Pure pandas, no I/O. The report opens with them (at most `MAX_FINDINGS` lines), before any
chart or table, the way Gatling's and k6's reports open with the verdict and the key numbers.

`FINDINGS` is a declarative list, in the order the lines appear: one more finding is one more
`FindingSpec`. A finding whose metric no design has is left out (never shown as a blank); when
more than `MAX_FINDINGS` are present, the first ones in list order are kept.

- `run_findings(frame, designs)`: one run; each other design against the ratio base
  (`harness.analysis.headline.ratio_base`: naive against optimized). The verdict says how the
  numerator design does: better, worse, same (within 5%), or unclear (a bound does not decide).
- `compare_findings(frame_a, frame_b, designs)`: run B against run A, per design.

Pass/fail findings (lost writes, failed requests) have no ratio: they pass when every
design's figure is 0. A figure that is only a bound ("at least": a capacity search that found
no knee, `capacity_lower_bound` = 1) says so, and so does a ratio it makes a bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from harness.analysis.headline import (
    RETAINED_NOISE_BYTES,
    _endpoint_rank,
    _keep_at_max,
    change,
    describe_labels,
    designs_in,
    ratio,
    ratio_base,
    verdict,
)

MAX_FINDINGS = 8
TOLERANCE_PCT = 5.0  # as harness compare: a change within ±5% is "same"

Verdict = Literal["better", "worse", "same", "unclear", "passed", "failed", ""]
Bound = Literal["at least", "at most", ""]


@dataclass(frozen=True)
class FindingSpec:
    """One line of the findings block.

    kind "compare": a figure per design, the ratio between designs and a better/worse verdict;
    kind "pass": passed when every design's figure is 0 (no ratio).
    labels "none": the row without labels; "worst": the one label set (after `at_max`) that
    holds the worst figure of any design, so that every design is shown on the same one.
    bound: a metric of the same design and phase whose value 1 makes the figure a lower bound.
    phase None: the metric from whichever phase has it.
    """

    metric: str
    title: str
    better: Literal["lower", "higher"]
    kind: Literal["compare", "pass"] = "compare"
    phase: str | None = None
    labels: Literal["none", "worst"] = "none"
    at_max: str | None = None
    bound: str | None = None
    ratio_floor: float = 0.0


FINDINGS: tuple[FindingSpec, ...] = (
    FindingSpec(
        "capacity_rps",
        "Capacity at the latency objective",
        "higher",
        phase="capacity",
        bound="capacity_lower_bound",
    ),
    FindingSpec(
        "alloc_peak_bytes",
        "Memory per request",
        "lower",
        phase="probe",
        labels="worst",
        at_max="history_len",
    ),
    FindingSpec("rss_at_capacity_bytes", "RSS at capacity", "lower", phase="capacity"),
    FindingSpec("memory_limit_bytes", "Recommended memory limit", "lower"),
    FindingSpec(
        "retained_bytes_per_request",
        "Leak: retained per request",
        "lower",
        phase="probe",
        labels="worst",
        at_max="history_len",
        ratio_floor=RETAINED_NOISE_BYTES,
    ),
    FindingSpec("lost", "Lost writes", "lower", kind="pass", phase="integrity"),
    FindingSpec("failure_ratio", "Failed requests", "lower", kind="pass", phase="load"),
    FindingSpec("rss_peak_bytes", "RSS peak under load", "lower", phase="load"),
)


@dataclass(frozen=True)
class Figure:
    """One design's figure; `at_least`: the true value may be higher (a lower bound)."""

    design: str
    value: float
    at_least: bool = False


@dataclass(frozen=True)
class Ratio:
    """`design` / `base`; bound 'at least' or 'at most' when a figure is a bound."""

    design: str
    base: str
    value: float
    bound: Bound
    verdict: Verdict  # how `design` does against `base`


@dataclass(frozen=True)
class Finding:
    metric: str
    title: str  # with the label set, when one: "Memory per request (chat, history 5,000)"
    unit: str
    better: str
    kind: str
    figures: tuple[Figure, ...]  # in design order; a design without the figure is left out
    ratios: tuple[Ratio, ...]
    verdict: Verdict  # pass kind: passed | failed; compare kind: "" (see ratios)
    failed: tuple[str, ...] = ()  # pass kind: the designs whose figure is not 0


@dataclass(frozen=True)
class Change:
    """One design's figure in run A and run B, and how B does against A."""

    design: str
    a: Figure | None
    b: Figure | None
    delta_pct: float
    verdict: Verdict


@dataclass(frozen=True)
class CompareFinding:
    metric: str
    title: str
    unit: str
    better: str
    kind: str
    changes: tuple[Change, ...]


# --- picking the figures ---------------------------------------------------------------------


def _rows(frame: pd.DataFrame, spec: FindingSpec) -> pd.DataFrame:
    """The spec's rows (every design), narrowed to one label set; empty when none."""
    if frame.empty:
        return frame
    sub = frame[frame["metric"] == spec.metric]
    if spec.phase is not None:
        sub = sub[sub["phase"] == spec.phase]
    if spec.labels == "none":
        return pd.DataFrame(sub[sub["labels"] == ""])
    if spec.at_max:
        sub = _keep_at_max(sub, spec.at_max)
    if sub.empty:
        return sub
    worst = sub["value"].max() if spec.better == "lower" else sub["value"].min()
    keys = sorted(pd.unique(sub[sub["value"] == worst]["labels"]), key=_endpoint_rank)
    return pd.DataFrame(sub[sub["labels"] == keys[0]])


def _figures(
    frame: pd.DataFrame, spec: FindingSpec, designs: Sequence[str]
) -> tuple[list[Figure], str, str]:
    """(figures in design order, the label set's text, the unit)."""
    rows = _rows(frame, spec)
    if rows.empty:
        return [], "", ""
    labels = str(rows["labels"].iloc[0])
    return _figures_at(frame, spec, designs, labels), labels, str(rows["unit"].iloc[0])


def _bound(frame: pd.DataFrame, spec: FindingSpec, design: str, phase: str) -> bool:
    if spec.bound is None:
        return False
    hit = frame[
        (frame["design"] == design) & (frame["phase"] == phase) & (frame["metric"] == spec.bound)
    ]
    return bool(not hit.empty and float(hit["value"].iloc[-1]) >= 1)


def _title(spec: FindingSpec, labels: str) -> str:
    described = describe_labels(labels)
    return f"{spec.title} ({described})" if described else spec.title


# --- how one figure does against another -----------------------------------------------------


def judge(x: Figure, y: Figure, better: str, floor: float = 0.0) -> Verdict:
    """How `x` does against `y`: better, worse, same (within 5%), or unclear.

    A lower bound is the interval [value, inf): a verdict is given only when every value the
    intervals allow gives the same one. Below `floor` (noise) on both sides: same.
    """
    if floor > 0 and abs(x.value) < floor and abs(y.value) < floor:
        return "same"
    if not x.at_least and not y.at_least:
        delta, pct = change(y.value, x.value)
        word = verdict(better, delta, pct, TOLERANCE_PCT)
        return "better" if word == "better" else "worse" if word == "worse" else "same"
    tol = TOLERANCE_PCT / 100
    x_high = math.inf if x.at_least else x.value
    y_high = math.inf if y.at_least else y.value
    if x.value > y_high * (1 + tol):  # x is higher whatever the bounds hide
        return "better" if better == "higher" else "worse"
    if x_high < y.value * (1 - tol):  # x is lower whatever the bounds hide
        return "worse" if better == "higher" else "better"
    return "unclear"


def bounded_ratio(x: Figure, y: Figure, floor: float = 0.0) -> tuple[float, Bound]:
    """x / y and whether it is a bound: 'at least' (x is one), 'at most' (y is), NaN (both)."""
    if x.at_least and y.at_least:
        return math.nan, ""
    value = ratio(x.value, y.value, floor)
    if math.isnan(value):
        return value, ""
    return value, "at least" if x.at_least else "at most" if y.at_least else ""


# --- one run ---------------------------------------------------------------------------------


def run_findings(
    frame: pd.DataFrame,
    designs: Sequence[str] = (),
    specs: Sequence[FindingSpec] = FINDINGS,
    limit: int = MAX_FINDINGS,
) -> list[Finding]:
    """The findings of one run, in `specs` order, at most `limit`; missing ones left out."""
    order = designs_in(frame, designs)
    base = ratio_base(order)
    out: list[Finding] = []
    for spec in specs:
        figures, labels, unit = _figures(frame, spec, order)
        if not figures:
            continue
        ratios: list[Ratio] = []
        verdict_word: Verdict = ""
        failed: tuple[str, ...] = ()
        if spec.kind == "pass":
            failed = tuple(f.design for f in figures if f.value != 0)
            verdict_word = "failed" if failed else "passed"
        else:
            by_design = {f.design: f for f in figures}
            for figure in figures:
                if figure.design == base or base not in by_design:
                    continue
                value, bound = bounded_ratio(figure, by_design[base], spec.ratio_floor)
                word = judge(figure, by_design[base], spec.better, spec.ratio_floor)
                ratios.append(Ratio(figure.design, base, value, bound, word))
        out.append(
            Finding(
                spec.metric,
                _title(spec, labels),
                unit,
                spec.better,
                spec.kind,
                tuple(figures),
                tuple(ratios),
                verdict_word,
                failed,
            )
        )
        if len(out) >= limit:
            break
    return out


# --- two runs --------------------------------------------------------------------------------


def compare_findings(
    frame_a: pd.DataFrame,
    frame_b: pd.DataFrame,
    designs: Sequence[str] = (),
    specs: Sequence[FindingSpec] = FINDINGS,
    limit: int = MAX_FINDINGS,
) -> list[CompareFinding]:
    """Run B against run A, per design: the same findings, in `specs` order, at most `limit`.

    A 'worst' label set is chosen on run B (the one under review) and looked up in run A.
    """
    order = list(designs)
    for frame in (frame_a, frame_b):
        order += [d for d in designs_in(frame) if d not in order]
    out: list[CompareFinding] = []
    for spec in specs:
        figures_b, labels, unit = _figures(frame_b, spec, order)
        if figures_b:
            figures_a = _figures_at(frame_a, spec, order, labels)
        else:
            figures_a, labels, unit = _figures(frame_a, spec, order)
            if not figures_a:
                continue
        changes: list[Change] = []
        a_of = {f.design: f for f in figures_a}
        b_of = {f.design: f for f in figures_b}
        for design in order:
            a, b = a_of.get(design), b_of.get(design)
            if a is None and b is None:
                continue
            pct = change(a.value, b.value)[1] if a is not None and b is not None else math.nan
            if spec.kind == "pass":
                word: Verdict = "" if b is None else "failed" if b.value != 0 else "passed"
            elif a is None or b is None:
                word = ""
            else:
                word = judge(b, a, spec.better, spec.ratio_floor)
            changes.append(Change(design, a, b, pct, word))
        out.append(
            CompareFinding(
                spec.metric, _title(spec, labels), unit, spec.better, spec.kind, tuple(changes)
            )
        )
        if len(out) >= limit:
            break
    return out


def _figures_at(
    frame: pd.DataFrame, spec: FindingSpec, designs: Sequence[str], labels: str
) -> list[Figure]:
    """The spec's figures at one given label set: run A's, where run B's worst is."""
    if frame.empty:
        return []
    sub = frame[(frame["metric"] == spec.metric) & (frame["labels"] == labels)]
    if spec.phase is not None:
        sub = sub[sub["phase"] == spec.phase]
    figures: list[Figure] = []
    for design in designs:
        hit = sub[sub["design"] == design]
        value = float(hit["value"].iloc[-1]) if not hit.empty else math.nan
        if not math.isnan(value):
            phase = str(hit["phase"].iloc[-1])
            figures.append(Figure(design, value, _bound(frame, spec, design, phase)))
    return figures
