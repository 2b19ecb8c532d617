"""The trend page: history.html (charts embedded as PNG data: URIs), history.md, history.json
and history-figures/*.png. Charts are drawn in memory first; only `HistoryPage.render` writes.
"""

from __future__ import annotations

import base64
import io
import json
import os
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._clock import now_iso
from harness.gate import format_value
from harness.history._collect import environment_change
from harness.history._trend import History, SeriesTrend, short_labels

if TYPE_CHECKING:
    from matplotlib.axes import Axes

HTML_NAME = "history.html"
MD_NAME = "history.md"
JSON_NAME = "history.json"
FIGURES = "history-figures"
HISTORY_KIND = "memload-history"
HISTORY_SCHEMA_VERSION = 1
DPI = 100
MAX_TICKS = 14
COLOURS = {"naive": "#D55E00", "optimized": "#0072B2"}
OTHER_COLOUR = "#009E73"
UP, DOWN, BASELINE = "#b3261e", "#1a7f37", "#9a6700"


@dataclass(frozen=True)
class ChartView:
    slug: str
    title: str
    png: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")

    @property
    def file(self) -> str:
        return f"{FIGURES}/{self.slug}.png"


@dataclass
class HistoryPage:
    history: History
    charts: list[ChartView]
    generated_at: str

    @classmethod
    def build(cls, history: History) -> HistoryPage:
        charts = [draw_chart(t, history) for t in history.series]
        return cls(history, charts, now_iso())

    def render(self, out_dir: Path) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for chart in self.charts:
            path = out_dir / chart.file
            _write(path, chart.png)
            written.append(path)
        ctx = self.context()
        for name, template in ((HTML_NAME, "history.html.j2"), (MD_NAME, "history.md.j2")):
            path = out_dir / name
            _write(path, _template(template).render(**ctx).encode("utf-8"))
            written.append(path)
        path = out_dir / JSON_NAME
        _write(path, (json.dumps(history_json(self.history), indent=2) + "\n").encode("utf-8"))
        written.append(path)
        return written

    def context(self) -> dict[str, Any]:
        h = self.history
        groups: dict[str, list[dict[str, Any]]] = {}
        for trend, chart in zip(h.series, self.charts, strict=True):
            group = f"{trend.key.design}: {trend.key.metric}"
            groups.setdefault(group, []).append({"title": str(trend.key), "chart": chart})
        steps = [step_row(t, s, h) for t in h.series for s in t.steps]
        return {
            "generated_at": self.generated_at,
            "commits": [
                {"label": c.label, "subject": c.subject, "runs": len(c.points)} for c in h.commits
            ],
            "runs": h.runs,
            "baselines": h.baselines,
            "rows": [table_row(t, h) for t in h.series],
            "steps": steps,
            "creep": [f.message() for f in h.creep],
            "creep_note": h.creep_note,
            "skipped": h.skipped,
            "groups": groups,
            "figures": FIGURES,
        }


# --- table rows ------------------------------------------------------------------------------


def _ratio(value: float | None) -> str:
    return "" if value is None else f" ({value:+.1%})"


def _signed(value: float, unit: str) -> str:
    text = format_value(abs(value), unit)
    return ("-" if value < 0 else "+") + text


def table_row(t: SeriesTrend, h: History) -> dict[str, Any]:
    step = t.largest_step
    step_text = commit = ""
    if step is not None:
        step_text = _signed(step.change, t.unit) + _ratio(step.ratio)
        commit = h.commits[t.step_commit(step)].label
    return {
        "series": str(t.key),
        "first": format_value(t.first, t.unit),
        "last": format_value(t.last, t.unit),
        "change": _signed(t.change, t.unit) + _ratio(t.change_ratio),
        "worse": t.change > 0 and bool(t.steps),
        "step": step_text,
        "step_up": step is not None and step.change > 0,
        "commit": commit,
        "spark": t.sparkline(),
        "points": len(t.values),
        "updates": len(t.baseline_updates),
    }


def step_row(t: SeriesTrend, step: Any, h: History) -> dict[str, Any]:
    commit = h.commits[t.step_commit(step)]
    before = h.commits[t.commits[step.index - 1]]
    return {
        "series": str(t.key),
        "change": _signed(step.change, t.unit) + _ratio(step.ratio),
        "before": format_value(step.before, t.unit),
        "after": format_value(step.after, t.unit),
        "commit": commit.label,
        "subject": commit.subject,
        "previous": before.label,
        "up": step.change > 0,
        "spark": t.sparkline(),
        "environment": environment_change(before, commit),
    }


def history_json(h: History) -> dict[str, Any]:
    """Machine-readable trend (for scripts, CI and the run report's link)."""
    return {
        "kind": HISTORY_KIND,
        "schema_version": HISTORY_SCHEMA_VERSION,
        "commits": [
            {"sha": c.sha, "subject": c.subject, "points": [p.name for p in c.points]}
            for c in h.commits
        ],
        "runs": sorted({p.name for c in h.commits for p in c.points if p.kind == "run"}),
        "series": [
            {
                "series": str(t.key),
                "metric": t.key.metric,
                "design": t.key.design,
                "labels": dict(t.key.labels),
                "unit": t.unit,
                "values": [
                    {"sha": h.commits[i].sha, "value": v}
                    for i, v in zip(t.commits, t.values, strict=True)
                ],
                "baseline_updates": [h.commits[i].sha for i in t.baseline_updates],
                "steps": [
                    {"sha": h.commits[t.step_commit(s)].sha, "before": s.before, "after": s.after}
                    for s in t.steps
                ],
            }
            for t in h.series
        ],
        "creep": [f.message() for f in h.creep],
    }


# --- charts ----------------------------------------------------------------------------------


def _slug(t: SeriesTrend) -> str:
    parts = [t.key.design, t.key.metric, *(v for _k, v in t.key.labels)]
    return "-".join(p.replace("/", "_") for p in parts)


def draw_chart(t: SeriesTrend, h: History) -> ChartView:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    colour = COLOURS.get(t.key.design, OTHER_COLOUR)
    with matplotlib.rc_context({"font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False}):  # fmt: skip
        fig = Figure(figsize=(7.2, 2.8), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.grid(True, alpha=0.3)
        scale, unit = _scale(t)
        runs = [m for m in t.measures if m.kind == "run"]
        bases = [m for m in t.measures if m.kind == "baseline"]
        if runs:
            ax.scatter([m.commit for m in runs], [m.value / scale for m in runs], s=14,
                       color=colour, alpha=0.5, label="runs", zorder=3)  # fmt: skip
        if bases:
            ax.scatter([m.commit for m in bases], [m.value / scale for m in bases], s=24,
                       marker="^", color=BASELINE, label="ledger baseline", zorder=3)  # fmt: skip
        ax.plot(t.commits, [v / scale for v in t.values], color=colour, linewidth=1, alpha=0.8,
                zorder=2)  # fmt: skip
        for seg in t.segments:
            ax.hlines(seg.level / scale, t.commits[seg.start] - 0.3, t.commits[seg.end - 1] + 0.3,
                      colors="#1f2328", linewidth=2, zorder=4,
                      label="fitted level" if seg is t.segments[0] else "_nolegend_")  # fmt: skip
        if t.baseline_levels:
            xs = [c for c, _v in t.baseline_levels] + [len(h.commits) - 1]
            ys = [v / scale for _c, v in t.baseline_levels]
            ax.step(xs, [*ys, ys[-1]], where="post", color=BASELINE, linestyle="--",
                    linewidth=1, label="baseline in force")  # fmt: skip
        for n, idx in enumerate(t.baseline_updates):
            ax.axvline(idx, color=BASELINE, linestyle=":", linewidth=1.2,
                       label="baseline update" if n == 0 else "_nolegend_")  # fmt: skip
        _annotate_steps(ax, t, h, scale)
        _x_axis(ax, t, h)
        ax.yaxis.set_major_formatter(ScalarFormatter(useOffset=False))
        ax.margins(y=0.18)  # room for the step labels
        _min_span(ax, t, scale)
        ax.set_ylabel(unit, fontsize=8)
        ax.set_title(str(t.key), fontsize=9, loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return ChartView(_slug(t), str(t.key), buf.getvalue())


MIN_SPAN = 0.05  # the y axis spans at least 5% of the level: sub-percent jitter looks flat


def _min_span(ax: Axes, t: SeriesTrend, scale: float) -> None:
    low, high = ax.get_ylim()
    level = abs(statistics.median(t.values)) / scale
    if high - low < MIN_SPAN * level:
        centre, half = (low + high) / 2, MIN_SPAN * level / 2
        ax.set_ylim(centre - half, centre + half)


def _scale(t: SeriesTrend) -> tuple[float, str]:
    """One binary unit per chart (the one that fits the largest figure), so ticks stay distinct."""
    if not t.unit.startswith("bytes"):
        return 1.0, t.unit
    per = "/" + t.unit.split("/", 1)[1] if "/" in t.unit else ""  # bytes/note -> KiB/note
    largest = max((abs(m.value) for m in t.measures), default=0.0)
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if largest >= factor:
            return float(factor), unit + per
    return 1.0, "bytes" + per


def _annotate_steps(ax: Axes, t: SeriesTrend, h: History, scale: float) -> None:
    for step in t.steps:
        idx = t.step_commit(step)
        up = step.change > 0
        text = f"{step.ratio:+.1%}" if step.ratio is not None else _signed(step.change, t.unit)
        ax.annotate(
            f"{text} at {short_labels([c.sha for c in h.commits])[idx]}",
            xy=(idx, step.after / scale),
            xytext=(6, 8),  # above the new level: room there whether it rose or fell
            textcoords="offset points",
            fontsize=8,
            color=UP if up else DOWN,
            fontweight="bold",
            arrowprops={"arrowstyle": "-", "color": UP if up else DOWN, "linewidth": 0.8},
        )
        ax.axvline(idx - 0.5, color=UP if up else DOWN, linewidth=0.8, alpha=0.6)


def _x_axis(ax: Axes, t: SeriesTrend, h: History) -> None:
    total = len(h.commits)
    ax.set_xlim(-0.6, max(total - 1, 0) + 0.6)
    every = max(1, -(-total // MAX_TICKS))
    ticks = set(range(0, total, every)) | {t.step_commit(s) for s in t.steps}
    ticks.add(total - 1)
    chosen = sorted(i for i in ticks if 0 <= i < total)
    ax.set_xticks(chosen)
    labels = short_labels([c.sha for c in h.commits])
    ax.set_xticklabels([labels[i] for i in chosen], rotation=35, ha="right",
                       fontsize=7, family="monospace")  # fmt: skip
    ax.set_xlabel("commit (oldest left)", fontsize=8)


# --- writing ---------------------------------------------------------------------------------


def _template(name: str) -> Any:
    import jinja2
    import markupsafe

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.history", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = lambda v: " ".join(str(v).replace("|", "\\|").split())
    # a series name may break after its commas: <wbr> in HTML, the rest escaped
    env.filters["breakable"] = lambda v: markupsafe.Markup(",<wbr>").join(
        markupsafe.escape(part) for part in str(v).split(",")
    )
    return env.get_template(name)


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
