"""Markdown and HTML rendering (jinja2 templates in harness/report/templates/).

`RunReport.build(run_dir)` reads the run directory, computes the tables and draws the
charts in memory; `RunReport.render()` is the only step that writes. `CompareReport` does
the same for two runs. The Markdown references figures/*.png relatively; the HTML embeds
them as data: URIs and carries its CSS inline, so it is one file that opens offline. The one
relative link the HTML keeps is to each design's memray flamegraph
(`<design>/profile/flamegraph.html`), which lives next to the report in the run directory.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.headline import (
    CEILING,
    PHASES,
    PhaseState,
    compare_table,
    headline_table,
    phase_status,
    ratio_base,
    ratio_column,
    records,
    run_warnings,
    scale_notes,
    verdict,
)
from harness.history import trend_link
from harness.report._capacity import CAPACITY_NOTES, CAPACITY_TITLE, capacity_charts, capacity_notes
from harness.report._figures import Chart, all_charts, design_colour
from harness.report._frames import probe_site_rows
from harness.report._header import phases_that_ran, profile_text, target_rows
from harness.report._model import RunData, dump_config, load_run
from harness.report._server_errors import server_errors_view
from harness.report._sizing import (
    SIZING_NOTES,
    SIZING_TITLE,
    sizing_charts,
    sizing_notes,
    sizing_table,
)
from harness.report._timeline import COMPARE_PREFIX, compare_over_time_charts, peak_drift
from harness.report._units import (
    MISSING,
    format_bytes,
    format_count,
    format_percent,
    format_ratio,
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
    "and after a run of requests, which name no function). Via: the innermost frame, when a "
    "library or the standard library allocated on the site's behalf. Unlike memray's top sites "
    "in the profile section, which are the whole process's (import-time code included), these "
    "are one request's own."
)
PROFILE_SITES_NOTE = (
    "The top sites below are the whole process's at its heap's high-water mark, which for a lean "
    "design is often at start-up (import-time code). Where one request's memory goes is in the "
    f'probe section: "{SITES_TITLE}".'
)
TEMPLATES = "templates"


# --- small shared pieces ---------------------------------------------------------------------


@dataclass(frozen=True)
class ChartView:
    name: str
    title: str
    phase: str
    caption: str
    file: str  # relative to the report: figures/<name>.png
    data_uri: str
    design: str | None

    @classmethod
    def of(cls, chart: Chart) -> ChartView:
        encoded = base64.b64encode(chart.png).decode("ascii")
        return cls(
            name=chart.name,
            title=chart.title,
            phase=chart.phase,
            caption=chart.caption,
            file=f"figures/{chart.name}.png",
            data_uri=f"data:image/png;base64,{encoded}",
            design=chart.design,
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


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = md_cell
    return env


def render_template(name: str, context: Mapping[str, Any]) -> str:
    text: str = _environment().get_template(name).render(**context)
    return text


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def _write_figures(figures: Path, charts: Sequence[Chart], stale: str = "*.png") -> list[Path]:
    """figures/<name>.png for each chart; the PNGs matching `stale` (an earlier render's) go."""
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob(stale):
        old.unlink()
    written: list[Path] = []
    for chart in charts:
        path = figures / f"{chart.name}.png"
        _write_bytes(path, chart.png)
        written.append(path)
    return written


def _when(text: object) -> str:
    if not isinstance(text, str) or not text:
        return MISSING
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return text
    return stamp.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _wall(start: object, end: object) -> str:
    try:
        took = (
            datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
        ).total_seconds()
    except ValueError:
        return ""
    minutes, seconds = divmod(int(took), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _metric_title(title: str, better: str) -> str:
    return f"{title} {'↓' if better == 'lower' else '↑'}"


def _run_meta(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    env = run.get("environment") if isinstance(run.get("environment"), Mapping) else {}
    env = env or {}
    cfg = run.get("config") if isinstance(run.get("config"), Mapping) else {}
    cfg = cfg or {}
    meta: list[tuple[str, str]] = [
        ("Run", str(run.get("run_id", MISSING))),
        ("Status", str(run.get("status", MISSING))),
        ("Command", str(run.get("command", MISSING))),
    ]
    started = _when(run.get("started_at"))
    wall = _wall(run.get("started_at"), run.get("finished_at"))
    meta.append(("Date", f"{started} (took {wall})" if wall else started))
    meta.append(("Git", str(env.get("git_sha", MISSING))))
    machine = [str(env.get("cpu_model") or "unknown CPU")]
    if env.get("cpu_count"):
        machine.append(f"{env['cpu_count']} CPUs")
    if isinstance(env.get("memory_bytes"), int | float):
        machine.append(f"{format_bytes(float(env['memory_bytes']))} RAM")
    if env.get("platform"):
        machine.append(str(env["platform"]))
    meta.append(("Machine", ", ".join(machine)))
    python = str(env.get("python", MISSING))
    if env.get("python_implementation"):
        python += f" ({env['python_implementation']})"
    meta.append(("Python", python))
    packages = env.get("packages") if isinstance(env.get("packages"), Mapping) else {}
    if packages:
        meta.append(("Packages", ", ".join(f"{k} {v}" for k, v in packages.items())))
    phases = [p for p in run.get("phases") or [] if isinstance(p, Mapping)]
    meta.append(("Profile", profile_text(cfg, phases_that_ran(phases))))
    designs = [str(d) for d in cfg.get("designs") or []]
    designs += [str(p.get("design")) for p in phases if p.get("design") != CEILING]
    meta += target_rows(cfg, list(dict.fromkeys(designs)))
    return meta


# --- one run ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    data: RunData
    headline: pd.DataFrame
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

    def headline_view(self) -> dict[str, Any]:
        designs = [d for d in self.data.designs if d in self.headline.columns]
        base = ratio_base(designs)
        ratios = [ratio_column(d, base) for d in designs if d != base]
        rows = []
        for rec in records(self.headline):
            rows.append(
                {
                    "title": _metric_title(str(rec["title"]), str(rec["better"])),
                    "figures": [format_value(_num(rec.get(d)), str(rec["unit"])) for d in designs],
                    "ratios": [format_ratio(_num(rec.get(r))) for r in ratios],
                    "phase": str(rec["phase"]),
                }
            )
        return {
            "designs": [{"name": d, "colour": design_colour(d)} for d in designs],
            "ratios": ratios,
            "ratio_base": base,
            "rows": rows,
        }

    def sections(self) -> list[Section]:
        views = [ChartView.of(c) for c in self.charts]
        out: list[Section] = []
        for phase in ("load", "capacity", "probe", "profile", "integrity", "size"):
            if phase not in self._phases():
                continue
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
            section.charts = [v for v in views if CHART_SECTION.get(v.name) == phase]
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
            "headline": self.headline_view(),
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


def _num(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    return math.nan


# --- two runs --------------------------------------------------------------------------------


@dataclass
class CompareReport:
    run_a: dict[str, Any]
    run_b: dict[str, Any]
    root_b: Path
    table: pd.DataFrame
    designs: list[str]
    notes: list[str]
    charts: list[Chart] = field(default_factory=list)

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
        return cls(meta_a, meta_b, data_b.root, table, designs, notes, charts)

    def default_out(self) -> Path:
        return self.root_b / f"compare-{self.run_a['run_id']}"

    def context(self) -> dict[str, Any]:
        rows = []
        for rec in records(self.table):
            unit = str(rec["unit"])
            delta, pct = float(rec["delta"]), float(rec["delta_pct"])
            rows.append(
                {
                    "title": _metric_title(str(rec["title"]), str(rec["better"])),
                    "design": str(rec["design"]),
                    "colour": design_colour(str(rec["design"])),
                    "a": format_value(float(rec["a"]), unit),
                    "b": format_value(float(rec["b"]), unit),
                    "delta": format_value(delta, unit, signed=True) if delta != 0 else "0",
                    "pct": (
                        "n/a"
                        if math.isnan(pct) and not math.isnan(delta)
                        else format_percent(pct, signed=True)
                    ),
                    "verdict": verdict(str(rec["better"]), delta, pct),
                    "phase": str(rec["phase"]),
                }
            )
        meta_a, meta_b = dict(_run_meta(self.run_a)), dict(_run_meta(self.run_b))
        keys = list(dict.fromkeys([*meta_a, *meta_b]))
        return {
            "a": {"id": self.run_a["run_id"]},
            "b": {"id": self.run_b["run_id"]},
            "meta": [(k, meta_a.get(k, MISSING), meta_b.get(k, MISSING)) for k in keys],
            "rows": rows,
            "notes": self.notes,
            "charts": [ChartView.of(c) for c in self.charts],
        }

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
