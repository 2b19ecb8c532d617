"""The report's charts: matplotlib with the Agg canvas, drawn to PNG bytes in memory.

No pyplot and no global backend switch: each chart is a `matplotlib.figure.Figure` given
a `FigureCanvasAgg` in the function that draws it, so importing this module (or the report
package) never touches matplotlib. Writing the PNGs to disk is the renderer's job.

The pieces every chart shares (colours, `Chart`, the figure and PNG helpers) are in `_plot`;
the over-time charts are in `_timeline`, which this module calls and which never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from harness.analysis.headline import records, value_of
from harness.report import _frames as fr
from harness.report import _probe_frames as pf

# Chart, STYLE and design_colour are re-exported: the other chart modules import them from here
from harness.report._plot import (
    STAGE_GREY,
    _bytes_axis,
    _figure,
    _origin,
    _png,
    _shade_stages,
    _style,
)
from harness.report._plot import STYLE as STYLE
from harness.report._plot import Chart as Chart
from harness.report._plot import design_colour as design_colour
from harness.report._timeline import timeline_charts
from harness.report._units import format_bytes, format_value

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from harness.report._model import RunData


def _compact_int(value: float) -> str:
    if value >= 1000 and value % 1000 == 0:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


# --- the load phase --------------------------------------------------------------------------


def _load_series(data: RunData) -> tuple[dict[str, pd.DataFrame], list[fr.Stage], str]:
    """Tree totals per design, the user-count stages, and which design's stages they are."""
    series: dict[str, pd.DataFrame] = {}
    stages: list[fr.Stage] = []
    stage_source = ""
    for design in data.designs:
        d = data.per_design[design]
        totals = fr.tree_total(d.samples)
        if len(totals) > 0 and len(totals.columns) > 1:
            series[design] = totals
        if not stages and d.history is not None:
            counts = fr.user_counts(d.history, origin=_origin(d))
            stages = fr.user_stages(counts)
            stage_source = design
    return series, stages, stage_source


def resources_chart(data: RunData) -> Chart | None:
    series, stages, _source = _load_series(data)
    rows = [
        (col, title)
        for col, title in (
            ("num_fds", "open file descriptors"),
            ("num_threads", "threads"),
            ("connections", "connections"),
        )
        if any(col in s.columns and s[col].notna().any() for s in series.values())
    ]
    if not rows:
        return None
    with _style():
        fig = _figure(11, 1.0 + 2.0 * len(rows))
        axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
        for ax, (col, title) in zip(axes, rows, strict=True):
            _shade_stages(
                ax, stages, label_min_frac=1.1
            )  # bands only: labels are on the first chart
            top = 0.0
            for design, frame in series.items():
                if col not in frame.columns:
                    continue
                ax.plot(frame["t_s"], frame[col], color=design_colour(design), lw=1.5, label=design)
                top = max(top, float(frame[col].max()))
            ax.set_ylabel(title)
            ax.set_ylim(bottom=0, top=max(1.0, top * 1.2))
            ax.yaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(loc="upper left", ncols=len(series), fontsize=8)
        axes[-1].set_xlabel("seconds since the start of the load phase")
        axes[-1].set_xlim(left=0)
        png = _png(fig)
    caption = (
        "File descriptors, threads and network connections of each design's server process "
        "tree (psutil, plain load phase); grey bands as in the first chart."
    )
    return Chart(
        "resources_over_time", "Files, threads and connections over time", "load", caption, png
    )


def _grouped_bars(
    ax: Axes,
    groups: Sequence[str],
    designs: Sequence[str],
    values: Mapping[tuple[str, str], float],
    fmt: Any,
) -> None:
    width = 0.8 / max(1, len(designs))
    x = np.arange(len(groups))
    for i, design in enumerate(designs):
        heights = [values.get((g, design), math.nan) for g in groups]
        bars = ax.bar(
            x + (i - (len(designs) - 1) / 2) * width,
            [0 if math.isnan(h) else h for h in heights],
            width * 0.92,
            color=design_colour(design),
            label=design,
        )
        ax.bar_label(
            bars,
            labels=["n/a" if math.isnan(h) else fmt(h) for h in heights],
            fontsize=7.5,
            padding=2,
        )
    ax.set_xticks(x, list(groups))
    ax.margins(y=0.18)


def latency_chart(data: RunData) -> Chart | None:
    frame = fr.percentile_frame(data.frame, fr.PERCENTILE_METRICS)
    frame = frame[frame["endpoint"] != ""] if (frame["endpoint"] != "").any() else frame
    if frame.empty:
        return None
    designs = [d for d in data.designs if d in set(frame["design"])]
    endpoints = fr.endpoints_sorted([str(e) for e in pd.unique(frame["endpoint"])])
    percentiles = [p for p in ("p50", "p95", "p99") if p in set(frame["percentile"])]
    with _style():
        fig = _figure(11, 3.8)
        axes = fig.subplots(1, len(percentiles), squeeze=False)[0]
        for ax, pct in zip(axes, percentiles, strict=True):
            sub = frame[frame["percentile"] == pct]
            values = {
                (str(r["endpoint"]) or "all", str(r["design"])): float(r["value"])
                for r in records(sub)
            }
            _grouped_bars(ax, [e or "all" for e in endpoints], designs, values, _short_ms)
            ax.set_title(f"latency {pct}")
            ax.set_ylabel("ms")
            ax.grid(axis="x", visible=False)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=len(designs), frameon=False)
        png = _png(fig)
    caption = (
        "Response-time percentiles per endpoint from Locust, plain load phase only "
        "(the profile and probe phases run under memray or tracemalloc, which slow the server). "
        "For chat_stream the response time is the whole stream, to its last event (the scenario "
        "times it so); the time to the first token is the next chart."
    )
    return Chart("latency", "Latency percentiles per endpoint", "load", caption, png)


def _short_ms(value: float) -> str:
    """Bar labels in ms: whole numbers from 10 ms up, one decimal below."""
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:.1f}"


def ttft_chart(data: RunData) -> Chart | None:
    frame = fr.percentile_frame(data.frame, fr.TTFT_METRICS)
    if frame.empty:
        return None
    designs = [d for d in data.designs if d in set(frame["design"])]
    frame = frame.assign(
        group=[
            f"{e} {p}".strip() for e, p in zip(frame["endpoint"], frame["percentile"], strict=True)
        ]
    )
    groups = list(dict.fromkeys(sorted(frame["group"], key=lambda g: (g.split()[:-1], g))))
    values = {(str(r["group"]), str(r["design"])): float(r["value"]) for r in records(frame)}
    with _style():
        fig = _figure(max(5.0, 1.6 + 1.5 * len(groups) * max(1, len(designs)) / 2), 3.4)
        ax = fig.add_subplot()
        _grouped_bars(ax, groups, designs, values, _short_ms)
        ax.set_ylabel("ms")
        ax.set_title("time to first token")
        ax.grid(axis="x", visible=False)
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper center", ncols=len(designs), frameon=False)
        png = _png(fig)
    caption = (
        "Time from sending a streamed chat request to receiving its first token, measured by "
        "the Locust scenario (plain load phase). A design that does not stream delivers its "
        "first token with the whole reply."
    )
    return Chart("ttft", "Time to first token", "load", caption, png)


# --- the probe -------------------------------------------------------------------------------


def probe_chart(data: RunData) -> Chart | None:
    points = {
        d: fr.probe_points(data.per_design[d].probe)
        for d in data.designs
        if data.per_design[d].probe is not None
    }
    points = {d: p for d, p in points.items() if not p.empty}
    if not points:
        return None
    endpoints = fr.endpoints_sorted(
        sorted({str(e) for p in points.values() for e in p["endpoint"]})
    )
    lens = sorted({float(h) for p in points.values() for h in p["history_len"]})
    largest = max(float(p["max"].max()) for p in points.values())
    with _style():
        fig = _figure(11, 4.6)
        axes = fig.subplots(1, len(endpoints), squeeze=False, sharey=True)[0]
        div = _bytes_axis(axes[0], largest, "peak allocated per request")
        for ax, endpoint in zip(axes, endpoints, strict=True):
            for design, frame in points.items():
                sub = frame[frame["endpoint"] == endpoint]
                if sub.empty:
                    continue
                colour = design_colour(design)
                x = sub["history_len"].to_numpy(dtype=float)
                y = sub["median"].to_numpy(dtype=float)
                slope = _slope(data, design, endpoint, x, y)
                label = (
                    design if slope is None else f"{design}: {format_value(slope, 'bytes/message')}"
                )
                ax.errorbar(
                    x,
                    y / div,
                    yerr=[
                        (y - sub["min"].to_numpy(dtype=float)) / div,
                        (sub["max"].to_numpy(dtype=float) - y) / div,
                    ],
                    color=colour,
                    marker="o",
                    ms=5,
                    lw=0,
                    elinewidth=1,
                    capsize=3,
                    label=label,
                )
                fit = fr.fit_line(x, y)
                if fit is not None:
                    low, high = float(min(x)), float(max(x))
                    grid = np.union1d(
                        np.linspace(low, high, 100), np.geomspace(max(low, 1.0), high, 100)
                    )
                    ax.plot(grid, (fit[0] * grid + fit[1]) / div, color=colour, lw=1.2, ls=":")
            for design in points:
                failed = fr.probe_failures(data.per_design[design].probe)
                for rec in records(failed[failed["endpoint"] == endpoint]):
                    ax.annotate(
                        f"{design}: no 2xx\n(HTTP {rec['status']})",
                        (float(rec["history_len"]), 0),
                        xytext=(4, 8),
                        textcoords="offset points",
                        ha="left",
                        va="bottom",
                        fontsize=7.5,
                        color=design_colour(design),
                    )
            ax.set_xscale("symlog", linthresh=10, linscale=0.5)
            ax.set_xticks(lens, [_compact_int(v) for v in lens])
            ax.minorticks_off()
            ax.set_xlim(-2 if 0 in lens else None, max(lens) * 1.6 if lens else None)
            ax.set_title(endpoint)
            ax.set_xlabel("history length (messages)")
            ax.set_ylim(bottom=0, top=largest / div * 1.12)
            # below the axes: the points may sit anywhere in the panel
            ax.legend(
                title="fitted slope",
                loc="upper center",
                bbox_to_anchor=(0.5, -0.17),
                fontsize=8,
                title_fontsize=8,
                frameon=False,
            )
        png = _png(fig)
    caption = (
        "Peak bytes allocated by one request (tracemalloc, median over repetitions; bars show "
        "min-max) against the user's history length, probe phase: one request at a time; only "
        "successful (2xx) requests are plotted. "
        "The x axis is symmetric-log (linear below 10 messages) so that history length 0 can be "
        "shown; dotted lines are the least-squares fit, its slope in the legend (a straight line "
        "bends on this axis: the growth is linear in the history length, not exponential)."
    )
    return Chart(
        "alloc_vs_history", "Allocation per request vs history length", "probe", caption, png
    )


def _slope(data: RunData, design: str, endpoint: str, x: Any, y: Any) -> float | None:
    found = value_of(data.frame, design, "alloc_slope_bytes_per_unit", {"endpoint": endpoint})
    if found is not None:
        return found
    fit = fr.fit_line(x, y)
    return None if fit is None else fit[0]


ENDPOINT_STYLES = ("-", "--", ":", "-.")
ENDPOINT_MARKERS = ("o", "s", "^", "D")


def retained_chart(data: RunData) -> Chart | None:
    """Traced memory against requests sent, from the probe's leak runs."""
    curves = {
        d: pf.retained_curves(data.per_design[d].probe_retained)
        for d in data.designs
        if data.per_design[d].probe_retained is not None
    }
    curves = {d: c for d, c in curves.items() if not c.empty}
    if not curves:
        return None
    endpoints = fr.endpoints_sorted(
        sorted({str(e) for c in curves.values() for e in c["endpoint"]})
    )
    several_sizes = any(c["history_len"].nunique() > 1 for c in curves.values())
    largest = max(float(c["retained_bytes"].abs().max()) for c in curves.values())
    with _style():
        fig = _figure(11, 4.4)
        ax = fig.add_subplot()
        div = _bytes_axis(ax, largest, "traced memory retained since the first checkpoint")
        ax.axhline(0, color=STAGE_GREY, lw=0.8, zorder=1)
        for design, frame in curves.items():
            for key, run in frame.groupby(["endpoint", "history_len"], sort=False):
                endpoint, history_len = cast(tuple[str, float], key)
                i = endpoints.index(str(endpoint)) % len(ENDPOINT_STYLES)
                figure = value_of(
                    data.frame,
                    design,
                    "retained_bytes_per_request",
                    {"endpoint": str(endpoint), "history_len": f"{float(history_len):.0f}"},
                )
                x = run["requests"].to_numpy(dtype=float)
                y = run["retained_bytes"].to_numpy(dtype=float)
                if figure is None:
                    fit = fr.fit_line(x, y)
                    figure = None if fit is None else fit[0]
                size = f" @ {float(history_len):,.0f}" if several_sizes else ""
                rate = "" if figure is None else f": {format_value(figure, 'bytes/request')}"
                ax.plot(
                    x,
                    y / div,
                    color=design_colour(design),
                    ls=ENDPOINT_STYLES[i],
                    marker=ENDPOINT_MARKERS[i],
                    ms=4,
                    lw=1.5,
                    label=f"{design} {endpoint}{size}{rate}",
                )
        ax.set_xlabel("requests sent in the leak run")
        ax.set_xlim(left=0)
        bottom, top = ax.get_ylim()
        span = max(top - bottom, 1.0 / div)  # a flat line still gets an axis a byte high
        ax.set_ylim(min(bottom, -0.05 * span), max(top, 0.05 * span))
        ax.legend(
            title="design endpoint: retained per request",
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            title_fontsize=8,
            frameon=False,
        )
        png = _png(fig)
    subtracted = fr.endpoints_sorted(
        sorted({str(e) for c in curves.values() for e in c[c["reset_subtracted"]]["endpoint"]})
    )
    reset_note = f" (here {', '.join(subtracted)})" if subtracted else " (none here)"
    caption = (
        "The probe's leak runs (tracemalloc, one request at a time): consecutive requests of one "
        "endpoint at one history length, traced memory read after a gc.collect() at each "
        "checkpoint, drawn as the growth since the run's first checkpoint. The slope of each "
        "line is the retained_bytes_per_request figure in the legend: what each request leaves "
        "behind for good. For endpoints whose requests are each followed by the probe's own "
        f"reset of the history{reset_note}, the growth of a run of resets alone is subtracted, "
        "so the probe's bookkeeping does not count. A flat line is no leak; a one-off "
        "allocation is one step, a leak a steady climb."
    )
    return Chart(
        "retained_over_requests",
        "Memory retained over a run of requests",
        "probe",
        caption,
        png,
    )


# --- the profile -----------------------------------------------------------------------------


def top_sites_chart(data: RunData, design: str, n: int = 10) -> Chart | None:
    sites, kind = fr.top_sites(data.per_design[design].top_sites, n)
    if sites.empty:
        return None
    what = {
        "hwm": "held at the heap's high-water mark",
        "allocated": "allocated over the whole profile run",
    }.get(kind, kind or "allocated")
    with _style():
        fig = _figure(11, 1.2 + 0.36 * len(sites))
        ax = fig.add_subplot()
        div = _bytes_axis(ax, float(sites["bytes"].max()), f"bytes {what}", axis="x")
        y = np.arange(len(sites))[::-1]
        bars = ax.barh(y, sites["bytes"] / div, color=design_colour(design), height=0.7)
        ax.bar_label(
            bars, labels=[format_bytes(float(b)) for b in sites["bytes"]], fontsize=8, padding=3
        )
        ax.set_yticks(y, list(sites["label"]), fontsize=8.5)
        ax.set_xlim(right=float(sites["bytes"].max()) / div * 1.18)
        ax.grid(axis="y", visible=False)
        ax.set_title(f"{design}: top {len(sites)} allocation sites, {what}")
        png = _png(fig)
    caption = (
        f"{design}: the {len(sites)} call sites with the most bytes {what}, from memray "
        "(profile phase; memray slows the server 2-5x, so its timings are not reported)."
    )
    return Chart(
        f"top_sites_{design}", f"Top allocation sites: {design}", "profile", caption, png, design
    )


def all_charts(data: RunData) -> list[Chart]:
    """Every chart the run's data allows, in report order."""
    charts: list[Chart | None] = [
        *timeline_charts(data),
        resources_chart(data),
        latency_chart(data),
        ttft_chart(data),
        probe_chart(data),
        retained_chart(data),
    ]
    charts += [top_sites_chart(data, d) for d in data.designs]
    return [c for c in charts if c is not None]
