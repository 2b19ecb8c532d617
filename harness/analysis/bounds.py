"""Figures that are bounds: a capacity found without a knee is "at least" its figure.

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
TWO_BOUNDS = "two bounds"  # a ratio of two bounds: no bound at all
QUALIFIERS_COLUMN = "qualifiers"
_FLIP = {AT_LEAST: AT_MOST, AT_MOST: AT_LEAST}


def bounds(frame: pd.DataFrame) -> dict[tuple[str, str], str]:
    """(design, metric) -> "at least" / "at most" for the figures that are bounds.

    A capacity search that found no knee (`capacity_lower_bound` = 1) gives at least its
    figure; its fraction of the ceiling is at least too. A ceiling found without a knee
    makes every design's fraction of it at most (or no bound, when both are bounds)."""
    if frame.empty:
        return {}
    flagged = frame[(frame["metric"] == "capacity_lower_bound") & (frame["value"] > 0)]
    lower = {str(d) for d in flagged["design"]}
    ceiling_lower = CEILING in lower
    out: dict[tuple[str, str], str] = {}
    for design in {str(d) for d in frame["design"]} - {CEILING}:
        if design in lower:
            out[(design, "capacity_rps")] = AT_LEAST
        fraction = combine(AT_LEAST if design in lower else "", AT_LEAST if ceiling_lower else "")
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
    if not numerator or numerator == flipped:
        return flipped
    return TWO_BOUNDS


def qualified(text: str, qualifier: str) -> str:
    """'at least 101 req/s'; a ratio of two bounds says so instead of a number."""
    if not qualifier or text in ("", "–", "n/a"):
        return text
    if qualifier == TWO_BOUNDS:
        return f"? ({TWO_BOUNDS})"
    return f"{qualifier} {text}"
