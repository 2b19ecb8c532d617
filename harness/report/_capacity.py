"""The report's capacity section: latency and RSS against the offered rate, knee marked.

Reads `<run>/<design>/capacity/capacity_steps.csv` (and the ceiling's,
`<run>/ceiling/ceiling/capacity_steps.csv`) and the capacity summary rows; draws one chart
with two panels, every design (and the ceiling) on both:

- left: the corrected p95 of the step's worst gated endpoint over its objective (1 = the
  objective), against the offered rate; a cross marks each design's knee;
- right: the largest RSS of the server's process tree during each step, same axis.

`capacity_notes` gives the section's sentences: each design's capacity, as a fraction of the
ceiling, and the naive/optimized ratio. The renderer (harness.report._render) only places
them; matplotlib is imported when a chart is drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from harness.analysis.bounds import CEILING, bounds, combine, qualified
from harness.report._figures import Chart, design_colour
from harness.report._plot import _figure, _png, _style

if TYPE_CHECKING:
    from harness.report._model import RunData

CAPACITY_CHART = "capacity"
CAPACITY_TITLE = "Capacity: an open-model load stepped up to the latency objective"
CAPACITY_NOTES = [
    "Requests arrive at a set rate whatever the replies do (open model), stepped up until the "
    "p95 of a gated endpoint, measured from each request's intended send time, exceeds its "
    "objective or more than 1% of requests fail. A design's capacity is the highest step that "
    "met the objective; the step after it is the knee. A step whose sends the load generator "
    "could not make on time is marked saturated and gives no figure (docs/capacity.md).",
]
CEILING_COLOUR = "#7F7F7F"
STEPS_CSV = "capacity_steps.csv"


@dataclass(frozen=True)
class Curve:
    name: str
    steps: pd.DataFrame
    knee_rps: float | None
    capacity_rps: float | None


def _steps(path: Path) -> pd.DataFrame | None:
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
        return None
    return frame if not frame.empty and "offered_rps" in frame else None


def _metric(data: RunData, design: str, phase: str, metric: str) -> float | None:
    frame = data.frame
    if frame.empty:
        return None
    rows = frame[
        (frame["design"] == design)
        & (frame["phase"] == phase)
        & (frame["metric"] == metric)
        & (frame["labels"] == "")
    ]
    return float(rows["value"].iloc[0]) if not rows.empty else None


def curves(data: RunData) -> list[Curve]:
    """The designs' searches, then the ceiling's, where their step tables exist."""
    out: list[Curve] = []
    for design, phase in [*((d, "capacity") for d in data.designs), (CEILING, CEILING)]:
        steps = _steps(data.root / design / phase / STEPS_CSV)
        if steps is not None:
            out.append(
                Curve(
                    design,
                    steps,
                    _metric(data, design, phase, "knee_rps"),
                    _metric(data, design, phase, "capacity_rps"),
                )
            )
    return out


def capacity_notes(data: RunData) -> list[str]:
    """Each design's capacity (at least, when no knee was found), as a fraction of the
    ceiling, and the naive/optimized ratio."""
    notes = []
    ceiling = _metric(data, CEILING, CEILING, "capacity_rps")
    flags = bounds(data.frame)

    def bounded(design: str) -> str:
        return flags.get((design, "capacity_rps"), "")

    figures: dict[str, float] = {}
    for design in [*data.designs, CEILING]:
        phase = CEILING if design == CEILING else "capacity"
        value = _metric(data, design, phase, "capacity_rps")
        if value is None:
            continue
        figures[design] = value
        bound = _metric(data, design, phase, "capacity_lower_bound")
        knee = _metric(data, design, phase, "knee_rps")
        if value == 0 and knee is not None:
            text = f"{design}: below {knee:g} req/s (it missed the objective at the first step)"
        else:
            text = f"{design}: {'at least ' if bound else ''}{value:g} req/s"
            if knee is None:
                text += " (no knee found)"
            elif bound:  # a lower bound with a knee rate: the generator, not the server, gave out
                text += f" (no knee: the load generator saturated at {knee:g} req/s)"
            else:
                text += f" (knee at {knee:g} req/s)"
        if design != CEILING and ceiling:
            both = combine(bounded(design), bounded(CEILING))
            of_ceiling = qualified(f"{value / ceiling:.1%}", both)
            text += f", {of_ceiling} of the ceiling"
        notes.append(text + ".")
    bare = _metric(data, CEILING, CEILING, "bare_locust_rps")
    if bare and ceiling:
        notes.append(
            f"A bare Locust (closed, no wait, the same processes) reached {bare:,.0f} req/s on "
            f"the same endpoint in the same run: the ceiling is "
            f"{qualified(f'{ceiling / bare:.0%}', bounded(CEILING))} of it."
        )
        delivered = _metric(data, CEILING, CEILING, "delivered_max_rps")
        if delivered:
            notes.append(
                f"The open-model generator itself delivered up to {delivered:,.0f} req/s in the "
                f"ceiling's search ({delivered / bare:.0%} of the bare Locust's), past the "
                "knee: the ceiling is where the server's p95 passed its objective, on a "
                "machine it shares with the generator, not where the generator gave out."
            )
    if figures.get("optimized") and "naive" in figures:
        ratio = figures["naive"] / figures["optimized"]
        both = combine(bounded("naive"), bounded("optimized"))
        notes.append(f"naive / optimized capacity: {qualified(f'{ratio:.2f}', both)}.")
    return notes


def capacity_charts(data: RunData) -> list[Chart]:
    """The capacity chart, or nothing when no search left a step table."""
    found = curves(data)
    if not found:
        return []
    return [
        Chart(
            name=CAPACITY_CHART,
            title="Latency and RSS against the offered rate",
            phase="capacity",
            caption=(
                "Left: corrected p95 of the worst gated endpoint over its objective (1 = the "
                "objective; log scale). Right: largest RSS of the server's process tree per "
                "step. x: offered rate (log scale). A cross marks the knee, a dotted line the "
                "capacity; the ceiling (grey) is the same search against the health endpoint."
            ),
            png=_draw(found),
        )
    ]


def _draw(found: Sequence[Curve]) -> bytes:
    with _style():
        fig = _figure(11, 4.2)
        latency, memory = fig.subplots(1, 2)
        for curve in found:
            colour = CEILING_COLOUR if curve.name == CEILING else design_colour(curve.name)
            style = "--" if curve.name == CEILING else "-"
            x = curve.steps["offered_rps"]
            ratio = pd.to_numeric(curve.steps["p95_objective_ratio"], errors="coerce")
            latency.plot(x, ratio, style, marker="o", color=colour, label=curve.name)
            if "rss_max_bytes" in curve.steps:
                rss = pd.to_numeric(curve.steps["rss_max_bytes"], errors="coerce") / 2**20
                memory.plot(x, rss, style, marker="o", color=colour, label=curve.name)
            knee = curve.steps[curve.steps["offered_rps"] == curve.knee_rps]
            if curve.knee_rps is not None and not knee.empty:
                latency.plot(
                    knee["offered_rps"],
                    pd.to_numeric(knee["p95_objective_ratio"], errors="coerce"),
                    "x",
                    color=colour,
                    markersize=12,
                    markeredgewidth=2.5,
                )
            if curve.capacity_rps:
                for ax in (latency, memory):
                    ax.axvline(curve.capacity_rps, color=colour, linestyle=":", linewidth=1.2)
        latency.axhline(1.0, color="black", linewidth=1, label="objective")
        latency.set_yscale("log")
        latency.set_ylabel("p95 (corrected) / objective")
        memory.set_ylabel("RSS, max per step (MiB)")
        rates = pd.concat([pd.to_numeric(c.steps["offered_rps"], errors="coerce") for c in found])
        one_rate = bool(rates.notna().any() and rates.min() == rates.max() > 0)
        for ax in (latency, memory):
            if one_rate:  # one rate (a single step): a range around it, not an empty one
                ax.set_xlim(rates.min() / 1.5, rates.max() * 1.5)
            ax.set_xscale("log")
            ax.set_xlabel("offered rate (req/s)")
            ax.legend(loc="best")
        latency.set_title("Latency vs offered rate")
        memory.set_title("RSS vs offered rate")
        return _png(fig)
