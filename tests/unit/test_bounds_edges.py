"""Bounds' edges found by `make mutation`: a ratio over a ratio of two bounds, and the cells
that say there is no figure, which no qualifier may prefix."""

from __future__ import annotations

from harness.analysis.bounds import AT_LEAST, AT_MOST, TWO_BOUNDS, combine, qualified


def test_an_exact_figure_over_two_bounds_is_two_bounds() -> None:
    assert combine("", TWO_BOUNDS) == TWO_BOUNDS
    assert combine(AT_LEAST, TWO_BOUNDS) == TWO_BOUNDS


def test_no_figure_takes_no_qualifier() -> None:
    assert [qualified(text, AT_MOST) for text in ("", "–", "n/a")] == ["", "–", "n/a"]
    assert qualified("3", AT_MOST) == "at most 3"
