"""Figures that are bounds: a capacity found without a knee is "at least" its figure, one
that missed the objective at the search's first step is "below" that step's rate.

Pure (pandas, no I/O). The capacity search proves a rate when it finds no knee (every step met
the objective, or the load generator saturated first): `capacity_lower_bound` = 1 in the
summary rows. Every place that shows such a figure must say so, and so must every ratio with
such a figure in it: the headline (harness.analysis.headline), the console, the report's
capacity section and `harness compare` take their qualifiers from `bounds` and `combine`,
and write them with `qualified`.
"""

from __future__ import annotations

import pandas as pd

CEILING = "ceiling"  # the pseudo-design (and phase) of the ceiling: the health path's capacity
AT_LEAST = "at least"
AT_MOST = "at most"
BELOW = "below"  # under the capacity search's first step: strictly less than its rate
TWO_BOUNDS = "two bounds"  # a ratio of two bounds: no bound at all
QUALIFIERS_COLUMN = "qualifiers"
_FLIP = {AT_LEAST: AT_MOST, AT_MOST: AT_LEAST, BELOW: AT_LEAST}
_UPPER = (AT_MOST, BELOW)


def _value(frame: pd.DataFrame, design: str, metric: str) -> float | None:
    hit = frame[(frame["design"] == design) & (frame["metric"] == metric) & (frame["labels"] == "")]
    return None if hit.empty else float(hit["value"].iloc[-1])


def below_first_step(frame: pd.DataFrame) -> dict[str, float]:
    """design -> its search's first rate, for the searches that missed the objective even there
    (capacity_rps 0 and knee_rps the first step's rate): the capacity is below that rate."""
    if frame.empty:
        return {}
    out = {}
    for design in {str(d) for d in frame["design"]}:
        if _value(frame, design, "capacity_rps") == 0:
            first = _value(frame, design, "knee_rps")
            if first is not None and first > 0:
                out[design] = first
    return out


def shown(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` as the displays show it: a capacity below the first step is that step's rate
    (qualified "below" by `bounds`), and so is its fraction of the ceiling, instead of 0."""
    below = below_first_step(frame)
    if not below:
        return frame
    frame = frame.copy()
    ceiling = _value(frame, CEILING, "capacity_rps")
    for design, first in below.items():
        mine = (frame["design"] == design) & (frame["labels"] == "")
        frame.loc[mine & (frame["metric"] == "capacity_rps"), "value"] = first
        if ceiling:
            fraction = mine & (frame["metric"] == "capacity_ceiling_fraction")
            frame.loc[fraction, "value"] = first / ceiling
    return frame


def bounds(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(design, metric) -> "at least" / "at most" for the figures that are bounds.

    A capacity search that found no knee (`capacity_lower_bound` = 1) gives at least its
    figure; its fraction of the ceiling is at least too. One that missed at its first step
    is below that step's rate (`shown`). A ceiling found without a knee makes every design's
    fraction of it at most (or no bound, when both are bounds)."""
    if frame.empty:
        return {}
    flagged = frame[(frame["metric"] == "capacity_lower_bound") & (frame["value"] > 0)]
    lower = {str(d) for d in flagged["design"]}
    below = below_first_step(frame)
    ceiling_lower = CEILING in lower
    out: dict[tuple[str, str], str] = {}
    for design in {str(d) for d in frame["design"]} - {CEILING}:
        mine = AT_LEAST if design in lower else BELOW if design in below else ""
        if mine:
            out[(design, "capacity_rps")] = mine
        fraction = combine(mine, AT_LEAST if ceiling_lower else "")
        if fraction:
            out[(design, "capacity_ceiling_fraction")] = fraction
    if ceiling_lower:
        out[(CEILING, "capacity_rps")] = AT_LEAST
    return out


def combine(numerator: str, denominator: str) -> str:
    """The qualifier of a / b from those of a and b ("" for an exact figure)."""
    if not denominator:
        return numerator
    flipped = _FLIP.get(denominator, TWO_BOUNDS)
    if not numerator or numerator == flipped or (numerator in _UPPER and flipped == AT_MOST):
        return flipped
    return TWO_BOUNDS


def qualified(text: str, qualifier: str) -> str:
    """'at least 101 req/s', 'below 0.5 req/s'; a ratio of two bounds says so instead of a
    number."""
    if not qualifier or text in ("", "–", "n/a"):
        return text
    if qualifier == TWO_BOUNDS:
        return f"? ({TWO_BOUNDS})"
    return f"{qualifier} {text}"
