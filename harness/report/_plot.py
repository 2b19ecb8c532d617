"""What every chart of the report shares: the design colours, the figure and PNG helpers.

Split from `_figures` so that `_figures` (the per-phase charts) and `_timeline` (the
over-time charts) both build on it without importing each other. No pyplot and no global
backend switch: a figure gets a `FigureCanvasAgg` where it is made, so importing this module
never touches matplotlib.

One colour per design everywhere (`design_colour`): naive and optimized are fixed, other
design names get a palette colour chosen from a hash of the name, so a design keeps its
colour from one report to the next.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.report import _frames as fr
from harness.report._units import byte_scale

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

FIXED_COLOURS = {"naive": "#D55E00", "optimized": "#0072B2"}  # Okabe-Ito vermillion, blue
PALETTE = ("#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F7F7F", "#000000", "#8C564B")
DPI = 100
STYLE: dict[Any, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "memload",
}
STAGE_GREY = "#4D4D4D"


def design_colour(design: str) -> str:
    if design in FIXED_COLOURS:
        return FIXED_COLOURS[design]
    return PALETTE[zlib.crc32(design.encode()) % len(PALETTE)]


@dataclass(frozen=True)
class Chart:
    """One drawn figure: `name` is the file stem under figures/."""

    name: str
    title: str
    phase: str
    caption: str
    png: bytes
    design: str | None = None


# --- drawing helpers -------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    with matplotlib.rc_context(STYLE):
        yield


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _bytes_axis(ax: Axes, largest: float, label: str, axis: str = "y") -> float:
    """Label the axis in the binary unit that fits `largest`; return the divisor."""
    divisor, unit = byte_scale(largest if largest > 0 else 1)
    text = f"{label} ({unit})"
    if axis == "y":
        ax.set_ylabel(text)
    else:
        ax.set_xlabel(text)
    return divisor


def _shade_stages(ax: Axes, stages: Sequence[fr.Stage], label_min_frac: float = 0.07) -> None:
    """Grey bands, darker with more users; the user count written on the wider bands."""
    if not stages:
        return
    most = max(s.users for s in stages) or 1
    span = (stages[-1].end_s - stages[0].start_s) or 1.0
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for stage in stages:
        if stage.users <= 0:
            continue
        ax.axvspan(
            stage.start_s,
            stage.end_s,
            color=STAGE_GREY,
            alpha=0.04 + 0.16 * stage.users / most,
            linewidth=0,
            zorder=0,
        )
        if (stage.end_s - stage.start_s) / span >= label_min_frac:
            ax.text(
                (stage.start_s + stage.end_s) / 2,
                0.98,
                f"{stage.users} user{'' if stage.users == 1 else 's'}",
                transform=trans,
                ha="center",
                va="top",
                fontsize=8,
                color=STAGE_GREY,
            )


def _origin(d: Any) -> float | None:
    """The unix time of t_s = 0 in the process samples, when the samples say it."""
    samples = d.samples
    if samples is not None and not samples.empty:
        abs_col = fr.pick_column(samples, fr.ABSOLUTE_TIME_COLUMNS)
        rel_col = fr.pick_column(samples, fr.TIME_COLUMNS)
        if abs_col is not None and rel_col is not None:
            absolute = pd.to_numeric(samples[abs_col], errors="coerce")
            relative = pd.to_numeric(samples[rel_col], errors="coerce")
            offset = (absolute - relative).dropna()
            if not offset.empty:
                return float(offset.median())
    started: float | None = d.load_started_unix
    return started
