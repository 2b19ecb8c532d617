"""`harness compare`: two runs' headline figures side by side, and the load phase over time.

`CompareReport.build(run_a, run_b)` reads both run directories and computes; only `render()`
writes (compare.md, compare.html and figures/over_time_<design>.png).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.bounds import qualified
from harness.analysis.findings import CompareFinding, compare_findings
from harness.analysis.headline import compare_table, headline_table, records, verdict
from harness.report._findings_view import compare_findings_view
from harness.report._headline_view import MAX_HEADLINE_ROWS, split_headline
from harness.report._model import load_run
from harness.report._page import (
    ChartView,
    _metric_title,
    _run_meta,
    _write_figures,
    _write_text,
    render_template,
)
from harness.report._plot import Chart, design_colour
from harness.report._timeline import COMPARE_PREFIX, compare_over_time_charts
from harness.report._units import MISSING, format_percent, format_value


@dataclass
class CompareReport:
    run_a: dict[str, Any]
    run_b: dict[str, Any]
    root_b: Path
    table: pd.DataFrame
    designs: list[str]
    notes: list[str]
    charts: list[Chart] = field(default_factory=list)
    findings: list[CompareFinding] = field(default_factory=list)
    # the headline's lines (key -> title), at most MAX_HEADLINE_ROWS; every line is in `table`
    headline: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, run_a: Path, run_b: Path) -> CompareReport:
        data_a, data_b = load_run(run_a), load_run(run_b)
        meta_a, meta_b = data_a.run, data_b.run
        frame_a, frame_b = data_a.frame, data_b.frame
        preferred: list[str] = []
        for meta in (meta_a, meta_b):
            cfg = meta.get("config") if isinstance(meta.get("config"), Mapping) else {}
            preferred += [str(d) for d in (cfg or {}).get("designs", []) or []]
        designs = list(dict.fromkeys(preferred))
        table = compare_table(frame_a, frame_b, designs)
        designs = [d for d in designs if d in set(table["design"])] + [
            d for d in dict.fromkeys(table["design"]) if d not in designs
        ]
        meta_a.setdefault("run_id", data_a.run_id)
        meta_b.setdefault("run_id", data_b.run_id)
        notes = _compare_notes(meta_a, meta_b)
        charts = compare_over_time_charts(data_a, data_b)
        findings = compare_findings(frame_a, frame_b, designs)
        headline = _headline_lines(frame_a, frame_b, designs)
        return cls(meta_a, meta_b, data_b.root, table, designs, notes, charts, findings, headline)

    def default_out(self) -> Path:
        return self.root_b / f"compare-{self.run_a['run_id']}"

    def context(self) -> dict[str, Any]:
        rows = [_long_row(rec) for rec in records(self.table)]
        phases = list(dict.fromkeys(r["phase"] for r in rows))
        meta_a, meta_b = dict(_run_meta(self.run_a)), dict(_run_meta(self.run_b))
        keys = list(dict.fromkeys([*meta_a, *meta_b]))
        return {
            "a": {"id": self.run_a["run_id"]},
            "b": {"id": self.run_b["run_id"]},
            "meta": [(k, meta_a.get(k, MISSING), meta_b.get(k, MISSING)) for k in keys],
            "findings": compare_findings_view(self.findings, self.designs),
            "headline": self.headline_view(),
            "per_phase": [
                {"phase": p, "rows": [r for r in rows if r["phase"] == p]} for p in phases
            ],
            "rows": rows,
            "notes": self.notes,
            "charts": [ChartView.of(c) for c in self.charts],
        }

    def headline_view(self) -> dict[str, Any]:
        """One row per headline line, per design: A -> B, the change in percent, the verdict."""
        shown = [d for d in self.designs if d in set(self.table["design"])]
        rows = []
        for key in [k for k in dict.fromkeys(self.table["key"]) if k in self.headline]:
            title = self.headline[key]
            lines = {str(r["design"]): r for r in records(self.table[self.table["key"] == key])}
            if not lines:
                continue
            first = next(iter(lines.values()))
            cells = []
            for design in shown:
                rec = lines.get(design)
                if rec is None:
                    cells.append({"figures": MISSING, "change": "", "verdict": "", "mood": ""})
                    continue
                row = _long_row(rec)
                cells.append(
                    {
                        "figures": f"{row['a']} → {row['b']}",
                        "change": row["pct"] if row["pct"] != MISSING else "",
                        "verdict": row["verdict"] if row["verdict"] != "same" else "",
                        "mood": row["verdict"],
                    }
                )
            rows.append(
                {
                    "title": _metric_title(title, str(first["better"])),
                    "cells": cells,
                    "phase": str(first["phase"]),
                }
            )
        return {"designs": [{"name": d, "colour": design_colour(d)} for d in shown], "rows": rows}

    def render(self, out_dir: Path | None = None) -> list[Path]:
        root = out_dir if out_dir is not None else self.default_out()
        context = self.context()
        # only its own figures: --out may be a directory that holds a run report's
        written = _write_figures(root / "figures", self.charts, stale=f"{COMPARE_PREFIX}*.png")
        md = root / "compare.md"
        html = root / "compare.html"
        _write_text(md, render_template("compare.md.j2", context))
        _write_text(html, render_template("compare.html.j2", context))
        return [md, html, *written]


def _long_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One (metric line, design) of the long table, formatted."""
    unit = str(rec["unit"])
    delta, pct = float(rec["delta"]), float(rec["delta_pct"])
    return {
        "title": _metric_title(str(rec["title"]), str(rec["better"])),
        "design": str(rec["design"]),
        "colour": design_colour(str(rec["design"])),
        "a": qualified(format_value(float(rec["a"]), unit), str(rec.get("a_qualifier") or "")),
        "b": qualified(format_value(float(rec["b"]), unit), str(rec.get("b_qualifier") or "")),
        "delta": format_value(delta, unit, signed=True) if delta != 0 else "0",
        "pct": (
            "n/a" if math.isnan(pct) and not math.isnan(delta) else format_percent(pct, signed=True)
        ),
        "verdict": verdict(str(rec["better"]), delta, pct),
        "phase": str(rec["phase"]),
    }


def _headline_lines(
    frame_a: pd.DataFrame, frame_b: pd.DataFrame, designs: list[str]
) -> dict[str, str]:
    """The headline's lines (key -> title) as the run report picks them: run B's, then those
    of run A's metrics that run B lacks; at most MAX_HEADLINE_ROWS."""
    lines: dict[str, str] = {}
    metrics: set[str] = set()
    for frame in (frame_b, frame_a):
        head = headline_table(frame, designs)
        if head.empty:
            continue
        phases = [str(p) for p in pd.unique(head["phase"])]  # each has its table at the end
        top, _rest = split_headline(head, designs, phases)
        found = records(top)
        for rec in found:
            if str(rec["metric"]) not in metrics:
                lines.setdefault(str(rec["key"]), str(rec["title"]))
        metrics |= {str(rec["metric"]) for rec in found}
    return dict(list(lines.items())[:MAX_HEADLINE_ROWS])


def _compare_notes(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Differences that make the two runs' figures not directly comparable."""
    notes: list[str] = []
    cfg_a = a.get("config") if isinstance(a.get("config"), Mapping) else {}
    cfg_b = b.get("config") if isinstance(b.get("config"), Mapping) else {}
    prof_a = (cfg_a or {}).get("profile")
    prof_b = (cfg_b or {}).get("profile")
    if prof_a != prof_b:
        name_a = prof_a.get("name", "?") if isinstance(prof_a, Mapping) else prof_a
        name_b = prof_b.get("name", "?") if isinstance(prof_b, Mapping) else prof_b
        notes.append(
            f"the runs used different load profiles ({name_a} vs {name_b}, or the same name with "
            "other settings): load-phase figures are not directly comparable"
        )
    env_a = a.get("environment") if isinstance(a.get("environment"), Mapping) else {}
    env_b = b.get("environment") if isinstance(b.get("environment"), Mapping) else {}
    for key, what in (("cpu_model", "CPU"), ("python", "Python version"), ("packages", "packages")):
        if (env_a or {}).get(key) != (env_b or {}).get(key):
            notes.append(f"the runs differ in {what}")
    for name, run in (("A", a), ("B", b)):
        for phase in run.get("phases", []) or []:
            if isinstance(phase, Mapping) and phase.get("status") not in ("passed", None):
                notes.append(
                    f"run {name}: {phase.get('design')} {phase.get('phase')} "
                    f"{phase.get('status')}"
                    + (f": {phase.get('detail')}" if phase.get("detail") else "")
                )
    return notes
