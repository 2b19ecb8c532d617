"""Markdown and HTML rendering (jinja2 templates in harness/report/templates/).

`RunReport.build(run_dir)` reads the run directory, computes the tables and draws the
charts in memory; `RunReport.render()` is the only step that writes (`_compare.CompareReport` does
the same for two runs). The Markdown references figures/*.png relatively; the HTML embeds
them as data: URIs and carries its CSS inline, so it is one file that opens offline. The one
relative link the HTML keeps is to each design's memray flamegraph
(`<design>/profile/flamegraph.html`), which lives next to the report in the run directory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.findings import Finding, run_findings
from harness.analysis.headline import (
    CEILING,
    PHASES,
    PhaseState,
    headline_table,
    phase_status,
    records,
    run_warnings,
    scale_notes,
)
from harness.history import trend_link
from harness.report._capacity import CAPACITY_NOTES, CAPACITY_TITLE, capacity_charts, capacity_notes
from harness.report._figures import Chart, all_charts, design_colour
from harness.report._findings_view import findings_view
from harness.report._headline_view import phase_rows, split_headline, table_view
from harness.report._model import RunData, dump_config, load_run
from harness.report._page import (
    ChartView,
    _run_meta,
    _write_figures,
    _write_text,
    render_template,
)
from harness.report._probe_frames import probe_site_rows
from harness.report._server_errors import server_errors_view
from harness.report._sizing import (
    SIZING_NOTES,
    SIZING_TITLE,
    sizing_charts,
    sizing_notes,
    sizing_table,
)
from harness.report._timeline import peak_drift
from harness.report._units import (
    MISSING,
    format_count,
    format_percent,
    format_value,
)

PHASE_TITLES = {
    "load": "Load phase: plain server under Locust",
    "probe": "Probe phase: tracemalloc, one request at a time",
    "profile": "Profile phase: memray under load",
    "integrity": "Integrity: acknowledged writes vs what the store holds",
    "capacity": CAPACITY_TITLE,
    "size": SIZING_TITLE,
}
PHASE_NOTES = {
    "load": [
        "Throughput, latency and time to first token come only from this phase: the server runs "
        "without any profiler. Memory here is what the operating system sees (psutil), native "
        "allocations included.",
    ],
    "probe": [
        "tracemalloc sees only memory allocated through Python's allocators. Memory a C library "
        "takes with plain malloc (SQLite's page cache, for one) is invisible to the probe, so the "
        "probe is not the whole story: read it together with the load phase's RSS and memray's "
        "figures. tracemalloc slows the server about 8x; the probe's figures are bytes, never "
        "timings.",
    ],
    "profile": [
        "memray slows a request-heavy server 2-5x: this phase gives bytes and allocation sites, "
        "not latency. The flamegraph link opens memray's own page, which sits next to this report "
        "in the run directory.",
    ],
    "integrity": [],
    "capacity": CAPACITY_NOTES,
    "size": SIZING_NOTES,
}
SECTION_ORDER = ("load", "capacity", "probe", "profile", "integrity", "size")
TOP_CHART = "load_over_time"
TOP_CHART_NOTE = (
    "The memory, latency and throughput chart of this phase is at the top of the report, "
    "under the findings."
)
CHART_SECTION = {
    "load_over_time": "load",
    "latency_over_time": "load",
    "resources_over_time": "load",
    "latency": "load",
    "ttft": "load",
    "alloc_vs_history": "probe",
    "retained_over_requests": "probe",
    "capacity": "capacity",
    "sizing": "size",
}
# summary metric -> (column heading, integrity.json key)
INTEGRITY_FIELDS = {
    "acknowledged": ("acknowledged exchanges", "acknowledged_exchanges"),
    "expected": ("expected messages", "expected_messages"),
    "stored": ("stored messages", "stored_messages"),
    "lost": ("lost", "lost_messages"),
    "unexpected": ("unexpected", "unexpected_messages"),
}
INTEGRITY_NOTE = (
    "An acknowledged exchange is a POST /chat the client saw succeed; each stores two messages "
    "(the user's and the reply), so expected = seeded messages + 2 x acknowledged exchanges. "
    "Lost: expected messages the store does not hold (any loss fails the phase). Unexpected: "
    "messages stored beyond that, e.g. a request in flight when Locust stopped."
)
SITES_TITLE = "Where a request's memory goes (probe)"
SITES_NOTE = (
    "Per endpoint: the sites (the first line of the service's own code on the stack) that held "
    "the most bytes at one request's high-water mark, at the largest history length probed "
    "(kind peak; memray tracking that one request); then, where the leak run kept more per "
    "request than the probe's threshold for looking, the sites of what it kept, at the leak run's "
    "history length (kind retained, bytes and blocks per request; tracemalloc snapshots before "
    "and after a run of requests, which name no function); then the line where the leak run's "
    "one-time growth was allocated (kind one-time, bytes in total from the endpoint's first "
    "request: a cache filling; tracemalloc one frame deep, so a library's cache shows at the "
    "library's line). Via: the innermost frame, when a "
    "library or the standard library allocated on the site's behalf. Unlike memray's top sites "
    "in the profile section, which are the whole process's (import-time code included), these "
    "are one request's own."
)
PROFILE_SITES_NOTE = (
    "The top sites below are the whole process's at its heap's high-water mark, which for a lean "
    "design is often at start-up (import-time code). Where one request's memory goes is in the "
    f'probe section: "{SITES_TITLE}".'
)


@dataclass
class Section:
    id: str
    title: str
    phase: str
    notes: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    charts: list[ChartView] = field(default_factory=list)
    # per-design blocks (profile): design, chart or None, flamegraph link or None, remark
    designs: list[dict[str, Any]] = field(default_factory=list)
    table: dict[str, Any] | None = None
    # per-design tables of a request's allocation sites (probe): design, colour, rows, remark
    sites: list[dict[str, Any]] = field(default_factory=list)
    # the phase's figures the headline table leaves out (`_headline_view.split_headline`)
    figures: dict[str, Any] | None = None


# --- one run ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    data: RunData
    headline: pd.DataFrame
    findings: list[Finding]
    states: list[PhaseState]
    warnings: list[str]
    charts: list[Chart]

    @classmethod
    def build(cls, run_dir: Path) -> RunReport:
        data = load_run(run_dir)
        phases = [
            p
            for p in data.run.get("phases", []) or []
            if isinstance(p, Mapping) and p.get("design") != CEILING
        ]
        states = phase_status(
            phases,
            data.frame,
            data.designs,
            PHASES,
            configured=data.expected_phases,
            profile=data.profile_name,
        )
        extra = data.run.get("warnings") or []
        warnings = run_warnings(data.frame, states, list(extra) if isinstance(extra, list) else [])
        return cls(
            data=data,
            headline=headline_table(data.frame, data.designs),
            findings=run_findings(data.frame, data.designs),
            states=states,
            warnings=warnings,
            charts=all_charts(data) + capacity_charts(data) + sizing_charts(data),
        )

    # -- context ------------------------------------------------------------------------------
    def _state(self, design: str, phase: str) -> PhaseState | None:
        for state in self.states:
            if state.design == design and state.phase == phase:
                return state
        return None

    def _phases(self) -> list[str]:
        return list(dict.fromkeys(s.phase for s in self.states))

    def phase_table(self) -> dict[str, Any]:
        rows = []
        for phase in self._phases():
            cells = []
            for design in self.data.designs:
                state = self._state(design, phase)
                text = state.sentence().removeprefix(f"{phase}: ") if state else MISSING
                if state is None:
                    mood = "skip"
                elif state.ran:
                    mood = "ok"
                elif state.status in ("failed", "interrupted"):
                    mood = "bad"
                else:
                    mood = "skip"
                cells.append({"text": text, "mood": mood})
            rows.append({"phase": phase, "cells": cells})
        return {"designs": self.data.designs, "rows": rows}

    def _section_phases(self) -> list[str]:
        return [p for p in SECTION_ORDER if p in self._phases()]

    def _headline_split(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        return split_headline(self.headline, self.data.designs, self._section_phases())

    def top_chart(self) -> ChartView | None:
        """The memory, latency and throughput chart: right under the findings."""
        chart = next((c for c in self.charts if c.name == TOP_CHART), None)
        return ChartView.of(chart) if chart is not None else None

    def sections(self) -> list[Section]:
        views = [ChartView.of(c) for c in self.charts]
        out: list[Section] = []
        _head, rest = self._headline_split()
        for phase in self._section_phases():
            section = Section(
                id=phase,
                title=PHASE_TITLES[phase],
                phase=phase,
                notes=list(PHASE_NOTES[phase]),
            )
            if phase == "capacity":
                section.notes += capacity_notes(self.data)
            if phase == "size":
                section.notes += sizing_notes(self.data)
                section.table = sizing_table(self.data)
            for design in self.data.designs:
                state = self._state(design, phase)
                if state is not None and not state.ran:
                    section.missing.append(f"{design} {state.sentence()}")
            section.charts = [
                v for v in views if CHART_SECTION.get(v.name) == phase and v.name != TOP_CHART
            ]
            if phase == "load" and any(v.name == TOP_CHART for v in views):
                section.notes.append(TOP_CHART_NOTE)
            figures = phase_rows(rest, phase)
            if not figures.empty:
                section.figures = table_view(figures, self.data.designs)
            if phase == "profile":
                section.designs = self._profile_blocks(views)
                if section.designs and self._probe_sites():
                    section.notes.append(PROFILE_SITES_NOTE)
            if phase == "probe":
                section.sites = self._probe_sites()
            if phase == "integrity":
                section.table = self._integrity_table()
            if phase == "load":
                section.table = self._drift_table()
            ran = any((s := self._state(d, phase)) is not None and s.ran for d in self.data.designs)
            if ran and phase in ("load", "probe") and not section.charts:
                section.missing.append(
                    f"{phase}: the phase ran but left no data to chart in the run directory"
                )
            out.append(section)
        return out

    def _profile_blocks(self, views: Sequence[ChartView]) -> list[dict[str, Any]]:
        blocks = []
        for design in self.data.designs:
            state = self._state(design, "profile")
            if state is not None and not state.ran and not state.has_results:
                continue  # already said in the section's "missing" list
            chart = next((v for v in views if v.name == f"top_sites_{design}"), None)
            flame = self.data.per_design[design].flamegraph
            blocks.append(
                {
                    "design": design,
                    "colour": design_colour(design),
                    "chart": chart,
                    "flamegraph": flame,
                    "remark": (
                        ""
                        if chart is not None
                        else f"no top_sites.csv in {design}/profile/: no allocation sites to show"
                    ),
                }
            )
        return blocks

    def _probe_sites(self) -> list[dict[str, Any]]:
        """One table per design with probe_sites.json: a request's peak and retained sites."""
        blocks = []
        for design in self.data.designs:
            raw = self.data.per_design[design].probe_sites
            if raw is None:
                continue
            sites = probe_site_rows(raw)
            rows = []
            for rec in records(sites):
                retained = rec["kind"] == "retained"
                rows.append(
                    {
                        "endpoint": str(rec["endpoint"]),
                        "history": format_count(float(rec["history_len"])),
                        "kind": str(rec["kind"]),
                        "location": str(rec["location"]),
                        "function": str(rec["function"]) or MISSING,
                        "bytes": format_value(
                            float(rec["bytes"]), "bytes/request" if retained else "bytes"
                        ),
                        "count": format_count(float(rec["count"])),
                        "via": str(rec["via"]) or MISSING,
                    }
                )
            blocks.append(
                {
                    "design": design,
                    "colour": design_colour(design),
                    "title": f"{SITES_TITLE}: {design}",
                    "rows": rows,
                    "remark": "" if rows else f"{design}/probe/probe_sites.json lists no sites",
                    "note": SITES_NOTE,
                }
            )
        return blocks

    def _integrity_table(self) -> dict[str, Any] | None:
        rows = []
        for design in self.data.designs:
            values: dict[str, float] = {}
            frame = self.data.frame
            if not frame.empty:
                sub = frame[(frame["design"] == design) & (frame["phase"] == "integrity")]
                values = {str(r["metric"]): float(r["value"]) for r in records(sub)}
            raw = self.data.per_design[design].integrity or {}
            for key, (_heading, json_key) in INTEGRITY_FIELDS.items():
                for candidate in (key, json_key):
                    if key not in values and isinstance(raw.get(candidate), int | float):
                        values[key] = float(raw[candidate])
            if values:
                cells = []
                for key in INTEGRITY_FIELDS:
                    number = values.get(key, math.nan)
                    mood = ""
                    if key == "lost" and number > 0:
                        mood = "bad"
                    elif key == "unexpected" and number > 0:
                        mood = "warn"
                    cells.append({"text": format_value(number, "count"), "mood": mood})
                rows.append({"design": design, "cells": cells})
        if not rows:
            return None
        headings = [heading for heading, _key in INTEGRITY_FIELDS.values()]
        return {"title": "", "label": "", "columns": headings, "rows": rows, "note": INTEGRITY_NOTE}

    def _drift_table(self) -> dict[str, Any] | None:
        """What the over-time curves show: the peak stage's first and last seconds."""
        windows, drifts = peak_drift(self.data)
        if not drifts:
            return None
        rows = []
        for drift in drifts:
            change = (
                (drift.last - drift.first) / abs(drift.first) * 100 if drift.first else math.nan
            )
            rows.append(
                {
                    "design": drift.design,
                    "label": drift.what,
                    "cells": [
                        {"text": format_value(drift.first, drift.unit), "mood": ""},
                        {"text": format_value(drift.last, drift.unit), "mood": ""},
                        {"text": format_percent(change, signed=True), "mood": ""},
                    ],
                }
            )
        stages = "; ".join(
            f"{w.design}: {w.stage.users} users from {w.stage.start_s:.0f} s to "
            f"{w.stage.end_s:.0f} s, windows of {w.window_s:.0f} s"
            for w in windows
        )
        note = (
            "What the curves above show while the load stayed at its peak: the median of each "
            "series over the first and the last seconds of the longest stretch at the highest "
            f"user count ({stages}). Latency and requests/s are Locust's trailing-window "
            "figures, so the first seconds still carry some of the ramp-up. Change: last minus "
            "first, in percent of first."
        )
        return {
            "title": "What the curves show",
            "label": "series",
            "columns": ["first seconds at peak", "last seconds at peak", "change"],
            "rows": rows,
            "note": note,
        }

    def failures(self) -> list[dict[str, str]]:
        """The full detail of each failed phase whose sentence had to shorten it."""
        out = []
        for state in self.states:
            if state.status in ("failed", "interrupted") and "\n" in state.detail.strip():
                out.append({"title": f"{state.design} {state.phase}", "text": state.detail.strip()})
        return out

    def context(self) -> dict[str, Any]:
        cfg = self.data.config
        return {
            "failures": self.failures(),
            "server_errors": server_errors_view(self.data.root),
            "run_id": self.data.run_id,
            "meta": _run_meta(self.data.run),
            "config_json": dump_config(cfg) if cfg else "",
            "warnings": self.warnings,
            "phase_table": self.phase_table(),
            "headline": table_view(self._headline_split()[0], self.data.designs),
            "findings": findings_view(self.findings, self.data.designs),
            "top_chart": self.top_chart(),
            "summary_line": _summary_line(self.data.run),
            "scale_notes": scale_notes(self.data.frame, self.data.run.get("phases") or []),
            "sections": self.sections(),
            "trend_page": trend_link(self.data.root),  # issue 14: harness history's page
        }

    # -- the only writer ----------------------------------------------------------------------
    def render(self, out_dir: Path | None = None) -> list[Path]:
        root = Path(out_dir) if out_dir is not None else self.data.root
        context = self.context()
        written = _write_figures(root / "figures", self.charts)
        md = root / "report.md"
        _write_text(md, render_template("report.md.j2", context))
        html = root / "report.html"
        _write_text(html, render_template("report.html.j2", context))
        return [md, html, *written]


def _summary_line(run: Mapping[str, Any]) -> str:
    """One line under the title: the run's status and date; the rest folds away at the end."""
    meta = dict(_run_meta(run))
    return f"Run {meta.get('Status', MISSING)}, {meta.get('Date', MISSING)}."
