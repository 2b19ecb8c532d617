"""The load phase over time: memory, latency, throughput and failures on one time axis.

Every chart here stacks panels that share the x axis (seconds since the start of the load
phase, the process samples' clock), so that a reader sees memory and latency move together.
Each panel is drawn by its own function from a list of `Trace`s (one per design, or per run
in `harness compare`), so a chart is a choice of panels:

- `load_over_time_chart`: RSS, p95 latency per endpoint, requests/s, failed requests/s;
- `latency_over_time_chart`: p50 and p95 of each endpoint, and of the time to first token;
- `compare_over_time_charts`: per design, run A laid over run B.

Colour is the design (as in every chart of the report); in `harness compare` run A is grey
and run B the design's colour. Line style is the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from harness.report import _frames as fr
from harness.report._plot import (
    Chart,
    _bytes_axis,
    _figure,
    _origin,
    _png,
    _shade_stages,
    _style,
    design_colour,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from harness.report._model import DesignData, RunData

RUN_A_GREY = "#8C8C8C"
ENDPOINT_STYLES = {"chat": "-", "chat_stream": "--", "history": ":", fr.ALL_REQUESTS: "-."}
OTHER_STYLES = ((0, (5, 1, 1, 1, 1, 1)), (0, (1, 3)), (0, (8, 3)), (0, (3, 1, 1, 1)))
FAILURE_RED = "#C00000"
LOG_RATIO = 20.0  # a latency panel switches to a log axis when max / min exceeds this
X_LABEL = "seconds since the start of the load phase"
COMPARE_PREFIX = "over_time_"  # harness compare's figures: over_time_<design>.png


@dataclass(frozen=True)
class Trace:
    """One design's series in one run, and how to draw them."""

    label: str
    colour: str
    totals: pd.DataFrame  # fr.tree_total: t_s, rss_bytes, uss_bytes, ...
    requests: pd.DataFrame  # fr.locust_timeline(kind="request")
    ttft: pd.DataFrame  # fr.locust_timeline(kind="ttft")
    width: float = 1.6

    @property
    def throughput(self) -> pd.DataFrame:
        return fr.throughput_timeline(self.requests)

    @property
    def failures(self) -> int:
        return fr.failure_count(self.requests)

    @property
    def end_s(self) -> float:
        ends = [float(f["t_s"].max()) for f in (self.totals, self.requests) if not f.empty]
        return max(ends, default=0.0)


def design_trace(
    d: DesignData, label: str | None = None, colour: str | None = None, width: float = 1.6
) -> Trace:
    origin = _origin(d)
    return Trace(
        label=label or d.name,
        colour=colour or design_colour(d.name),
        totals=fr.tree_total(d.samples),
        requests=fr.locust_timeline(d.history, origin, "request"),
        ttft=fr.locust_timeline(d.history, origin, "ttft"),
        width=width,
    )


def stages_of(d: DesignData) -> list[fr.Stage]:
    return fr.user_stages(fr.user_counts(d.history, origin=_origin(d)))


def endpoint_style(endpoint: str, known: Sequence[str]) -> object:
    if endpoint in ENDPOINT_STYLES:
        return ENDPOINT_STYLES[endpoint]
    others = [e for e in known if e not in ENDPOINT_STYLES]
    return OTHER_STYLES[others.index(endpoint) % len(OTHER_STYLES)] if endpoint in others else "-"


def _endpoints(traces: Sequence[Trace], kind: str) -> list[str]:
    names = {str(e) for t in traces for e in getattr(t, kind)["endpoint"]}
    return fr.endpoints_sorted(sorted(names))


# --- panels: each draws one axes from the traces, and says whether it drew anything ---------

Panel = Callable[["Axes", Sequence[Trace]], bool]


def rss_panel(ax: Axes, traces: Sequence[Trace]) -> bool:
    drawn = [t for t in traces if "rss_bytes" in t.totals.columns]
    if not drawn:
        return False
    largest = max(float(t.totals["rss_bytes"].max()) for t in drawn)
    div = _bytes_axis(ax, largest, "RSS")
    for t in drawn:
        ax.plot(t.totals["t_s"], t.totals["rss_bytes"] / div, color=t.colour, lw=t.width)
        if "uss_bytes" in t.totals.columns and t.totals["uss_bytes"].notna().any():
            ax.plot(t.totals["t_s"], t.totals["uss_bytes"] / div, color=t.colour, lw=0.9, ls="--")
    ax.set_ylim(bottom=0, top=largest / div * 1.18)
    return True


def latency_panel(column: str, kind: str = "requests", title: str = "") -> Panel:
    """One percentile column ('p50_ms', 'p95_ms') of each endpoint, line style per endpoint."""

    def draw(ax: Axes, traces: Sequence[Trace]) -> bool:
        endpoints = _endpoints(traces, kind)
        values: list[float] = []
        for t in traces:
            frame = getattr(t, kind)
            for endpoint in endpoints:
                sub = frame[frame["endpoint"] == endpoint]
                if sub[column].notna().any():
                    ax.plot(
                        sub["t_s"],
                        sub[column],
                        color=t.colour,
                        lw=t.width,
                        ls=endpoint_style(endpoint, endpoints),
                    )
                    values += [float(v) for v in sub[column].dropna() if v > 0]
        if not values:
            return False
        _latency_axis(ax, values, title)
        return True

    return draw


def _latency_axis(ax: Axes, values: Sequence[float], title: str) -> None:
    low, high = min(values), max(values)
    if high / max(low, 1e-9) > LOG_RATIO:
        from matplotlib.ticker import FuncFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        ax.set_ylabel(f"{title} ms (log)")
    else:
        ax.set_ylim(bottom=0, top=high * 1.18)
        ax.set_ylabel(f"{title} ms")


def throughput_panel(ax: Axes, traces: Sequence[Trace]) -> bool:
    drawn = False
    top = 0.0
    for t in traces:
        frame = t.throughput
        if frame["rps"].notna().any():
            ax.plot(frame["t_s"], frame["rps"], color=t.colour, lw=t.width)
            top = max(top, float(frame["rps"].max()))
            drawn = True
    ax.set_ylabel("requests/s")
    ax.set_ylim(bottom=0, top=max(1.0, top * 1.18))
    return drawn


def failures_panel(ax: Axes, traces: Sequence[Trace]) -> bool:
    """Failed requests/s, a red cross at each second a failure was counted, and the totals."""
    if all(t.requests.empty for t in traces):
        return False
    top = 0.0
    lines = []
    for t in traces:
        frame = t.throughput
        ax.plot(frame["t_s"], frame["fail_per_s"], color=t.colour, lw=t.width)
        top = max(top, float(frame["fail_per_s"].max() or 0.0))
        hit = frame[frame["new_failures"] > 0]
        ax.scatter(
            hit["t_s"],
            hit["fail_per_s"].clip(lower=0),
            marker="x",
            s=36,
            color=FAILURE_RED,
            linewidths=1.6,
            zorder=5,
            clip_on=False,
        )
        lines.append(f"{t.label}: {t.failures:,} failed")
    failed = any(t.failures for t in traces)
    ax.set_ylabel("failed/s", color=FAILURE_RED if failed else "black")
    ax.set_ylim(bottom=0, top=max(1.0, top * 1.3))
    ax.text(
        0.995,
        0.92,
        "; ".join(lines) if failed else "no failed requests",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=8.5,
        color=FAILURE_RED if failed else "#4D4D4D",
        fontweight="bold" if failed else "normal",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.5},
    )
    return True


# --- the figure ------------------------------------------------------------------------------


def draw_panels(
    traces: Sequence[Trace],
    panels: Sequence[tuple[Panel, float]],
    stages: Sequence[fr.Stage],
    legend: Callable[[Figure, Sequence[Trace]], None],
) -> bytes | None:
    """Stack the panels (each with its relative height) that have something to draw."""
    with _style():
        fig, kept = _stack(traces, panels, stages)
        if not kept:
            return None
        if len(kept) < len(panels):  # rare: draw again without the empty panels
            fig, kept = _stack(traces, [panels[i] for i in kept], stages)
        legend(fig, traces)
        return _png(fig)


def _stack(
    traces: Sequence[Trace], panels: Sequence[tuple[Panel, float]], stages: Sequence[fr.Stage]
) -> tuple[Figure, list[int]]:
    heights = [height for _panel, height in panels]
    fig = _figure(11, 1.3 + 1.9 * sum(heights))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False, height_ratios=heights)[:, 0]
    right = max((t.end_s for t in traces), default=0.0) or 1.0
    kept = []
    for n, (ax, (panel, _height)) in enumerate(zip(axes, panels, strict=True)):
        if panel(ax, traces):
            kept.append(n)
        # the user counts are written on the top panel only; the bands are on every one
        _shade_stages(ax, stages, label_min_frac=0.07 if n == 0 else 1.1)
        ax.set_xlim(left=0, right=right)
    axes[-1].set_xlabel(X_LABEL)
    return fig, kept


def _legend(fig: Figure, traces: Sequence[Trace]) -> None:
    """Colours (designs or runs), USS dashed, line styles (endpoints), the failure mark."""
    from matplotlib.lines import Line2D

    endpoints = _endpoints(traces, "requests")
    uss = _has_uss(traces)
    handles = [Line2D([], [], color=t.colour, lw=2.2, label=t.label) for t in traces]
    if uss:
        handles.append(Line2D([], [], color="#4D4D4D", lw=0.9, ls="--", label="USS"))
    handles += [
        Line2D([], [], color="#4D4D4D", lw=1.4, ls=endpoint_style(e, endpoints), label=e)
        for e in endpoints
    ]
    handles.append(Line2D([], [], color=FAILURE_RED, marker="x", lw=0, label="failure counted"))
    fig.legend(
        handles=handles, loc="outside upper center", ncols=min(len(handles), 8), frameon=False
    )


def _has_uss(traces: Sequence[Trace]) -> bool:
    return any(
        "uss_bytes" in t.totals.columns and t.totals["uss_bytes"].notna().any() for t in traces
    )


# --- the charts ------------------------------------------------------------------------------


def _window_note(traces: Sequence[Trace]) -> str:
    note = (
        f" Locust's percentiles here are its current ones, over about the last "
        f"{fr.PERCENTILE_WINDOW_S} s (not the whole run), and its requests/s and failures/s are "
        f"averages over {fr.RATE_WINDOW_S} s ending 2 s before each point: the latency and "
        "throughput lines are smoothed and lag the memory line by a few seconds. A red cross "
        "marks each second in which Locust counted a failed request."
    )
    if any((t.requests["endpoint"] == fr.ALL_REQUESTS).any() for t in traces):
        note += (
            f" '{fr.ALL_REQUESTS}': the history holds only Locust's Aggregated rows (no "
            "per-endpoint rows), which also count the time-to-first-token events."
        )
    return note


def _failure_note(traces: Sequence[Trace]) -> str:
    failed = [t for t in traces if t.failures]
    if not failed:
        return " No request failed."
    parts = []
    for t in failed:
        hits = t.throughput
        first = float(hits[hits["new_failures"] > 0]["t_s"].min())
        parts.append(f"{t.label} {t.failures:,} failed requests (the first at {first:.0f} s)")
    return " Failures: " + "; ".join(parts) + "."


def load_over_time_chart(data: RunData) -> Chart | None:
    """RSS, p95 latency, requests/s and failed requests/s of every design, one time axis."""
    traces = [design_trace(data.per_design[d]) for d in data.designs]
    traces = [t for t in traces if not (t.totals.empty and t.requests.empty)]
    if not traces:
        return None
    source = next((d for d in data.designs if data.per_design[d].history is not None), "")
    stages = stages_of(data.per_design[source]) if source else []
    panels: list[tuple[Panel, float]] = [
        (rss_panel, 1.2),
        (latency_panel("p95_ms", title="p95 latency"), 1.2),
        (throughput_panel, 0.9),
        (failures_panel, 0.6),
    ]
    png = draw_panels(traces, panels, stages, _legend)
    if png is None:
        return None
    caption = (
        "The plain load phase on one time axis: resident set size of each design's server "
        "process tree (psutil; unique set size dashed), Locust's p95 response time per endpoint "
        "(line style), requests/s over every endpoint, and failed requests/s."
    )
    if stages:
        caption += (
            f" Grey bands: Locust's user count (the load shape's stages, from {source}'s "
            "history); darker means more users."
        )
    caption += _window_note(traces) + _failure_note(traces)
    return Chart("load_over_time", "Memory, latency and throughput over time", "load", caption, png)


def latency_over_time_chart(data: RunData) -> Chart | None:
    """p50 (dashed) and p95 (solid) of each endpoint, then of the time to first token."""
    traces = [design_trace(data.per_design[d]) for d in data.designs]
    traces = [t for t in traces if not t.requests.empty]
    if not traces:
        return None
    source = next((d for d in data.designs if data.per_design[d].history is not None), "")
    stages = stages_of(data.per_design[source]) if source else []
    panels: list[tuple[Panel, float]] = []
    for kind, what in (("requests", "latency"), ("ttft", "first token")):
        for endpoint in _endpoints(traces, kind):
            panels.append((_one_endpoint_panel(kind, endpoint, f"{endpoint} {what}"), 1.0))
    png = draw_panels(traces, panels, stages, _percentile_legend)
    if png is None:
        return None
    has_ttft = any(not t.ttft.empty for t in traces)
    caption = (
        "Locust's response-time percentiles of each endpoint over the plain load phase: p95 "
        "solid, p50 dashed, one colour per design."
    )
    if has_ttft:
        caption += (
            " The 'first token' panels are the streamed endpoints' time to the first token, "
            "measured by the scenario (it fires a Locust event of type TTFT per stream)."
        )
    else:
        caption += " No time-to-first-token events in the history (no streamed endpoint)."
    caption += _window_note(traces)
    return Chart("latency_over_time", "Latency per endpoint over time", "load", caption, png)


def _one_endpoint_panel(kind: str, endpoint: str, title: str) -> Panel:
    def draw(ax: Axes, traces: Sequence[Trace]) -> bool:
        values: list[float] = []
        for t in traces:
            frame = getattr(t, kind)
            sub = frame[frame["endpoint"] == endpoint]
            for column, style in (("p95_ms", "-"), ("p50_ms", "--")):
                if sub[column].notna().any():
                    ax.plot(sub["t_s"], sub[column], color=t.colour, lw=t.width, ls=style)
                    values += [float(v) for v in sub[column].dropna() if v > 0]
        if not values:
            return False
        _latency_axis(ax, values, "")
        ax.set_title(title, loc="left", fontsize=9.5)
        return True

    return draw


def _percentile_legend(fig: Figure, traces: Sequence[Trace]) -> None:
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=t.colour, lw=2.2, label=t.label) for t in traces]
    handles += [
        Line2D([], [], color="#4D4D4D", lw=1.4, ls="-", label="p95"),
        Line2D([], [], color="#4D4D4D", lw=1.4, ls="--", label="p50"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncols=len(handles), frameon=False)


def compare_over_time_charts(a: RunData, b: RunData) -> list[Chart]:
    """Per design present in both runs: run A (grey) laid over run B (the design's colour)."""
    charts = []
    for design in [d for d in b.designs if d in a.designs]:
        traces = [
            design_trace(a.per_design[design], "run A", RUN_A_GREY, width=1.3),
            design_trace(b.per_design[design], "run B", width=1.6),
        ]
        traces = [t for t in traces if not (t.totals.empty and t.requests.empty)]
        if not traces:
            continue
        panels: list[tuple[Panel, float]] = [
            (rss_panel, 1.2),
            (latency_panel("p95_ms", title="p95 latency"), 1.2),
            (latency_panel("p95_ms", kind="ttft", title="p95 first token"), 0.9),
            (throughput_panel, 0.9),
            (failures_panel, 0.6),
        ]
        stages = stages_of(b.per_design[design])
        png = draw_panels(traces, panels, stages, _legend)
        if png is None:
            continue
        caption = (
            f"{design}: run A ({a.run_id}, grey) laid over run B ({b.run_id}, colour), each on "
            "its own load phase's "
            "clock: RSS of the server process tree (USS dashed), Locust's p95 response time and "
            "time to first token per endpoint (line style), requests/s and failed requests/s. "
            "Grey bands: run B's user count."
        )
        caption += _window_note(traces) + _failure_note(traces)
        charts.append(
            Chart(
                f"{COMPARE_PREFIX}{design}",
                f"{design}: A and B over time",
                "load",
                caption,
                png,
                design,
            )
        )
    return charts


def timeline_charts(data: RunData) -> list[Chart]:
    """The load phase's over-time charts, in report order."""
    charts = [load_over_time_chart(data), latency_over_time_chart(data)]
    return [c for c in charts if c is not None]


# --- what the curves show -------------------------------------------------------------------


@dataclass(frozen=True)
class Drift:
    """One series of one design: its median over the first and the last seconds at peak load."""

    design: str
    what: str
    unit: str  # a harness.report._units unit: bytes, req/s, ms
    first: float
    last: float


@dataclass(frozen=True)
class PeakWindow:
    design: str
    stage: fr.Stage
    window_s: float


def peak_drift(data: RunData) -> tuple[list[PeakWindow], list[Drift]]:
    """Per design, how memory, throughput and p95 moved while the user count stayed at its peak."""
    windows: list[PeakWindow] = []
    drifts: list[Drift] = []
    for design in data.designs:
        d = data.per_design[design]
        stage = fr.peak_stage(stages_of(d))
        if stage is None:
            continue
        window = fr.drift_window_s(stage)
        windows.append(PeakWindow(design, stage, window))
        trace = design_trace(d)
        series: list[tuple[str, str, pd.DataFrame, str]] = [
            ("RSS", "bytes", trace.totals, "rss_bytes"),
            ("requests/s", "req/s", trace.throughput, "rps"),
        ]
        for kind, what in (("requests", "p95 {}"), ("ttft", "p95 first token {}")):
            frame = getattr(trace, kind)
            for endpoint in _endpoints([trace], kind):
                sub = frame[frame["endpoint"] == endpoint]
                series.append((what.format(endpoint), "ms", sub, "p95_ms"))
        for what, unit, frame, column in series:
            first, last = fr.first_and_last(frame, column, stage, window)
            if not (pd.isna(first) and pd.isna(last)):
                drifts.append(Drift(design, what, unit, first, last))
    return windows, drifts
