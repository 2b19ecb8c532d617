"""Probe analysis at its edges (from mutation testing): two history lengths are enough for a
slope, two repetitions for a CV; a zero mean; unknown endpoints sort last."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.analysis.probe import (
    REQUEST_COLUMNS,
    coefficient_of_variation,
    least_squares_slope,
    per_point,
    slopes,
    summary_rows,
)


def _requests(peaks: dict[tuple[str, int], list[int]]) -> pd.DataFrame:
    rows = [
        (endpoint, history_len, rep, value, value // 10, 3, 0.01, 200)
        for (endpoint, history_len), values in peaks.items()
        for rep, value in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))


def test_two_history_lengths_give_a_slope() -> None:
    points = per_point(_requests({("chat", 0): [100, 100], ("chat", 1000): [2100, 2100]}))
    assert slopes(points) == {"chat": pytest.approx(2.0)}


def test_two_reps_give_a_cv() -> None:
    points = per_point(_requests({("chat", 0): [100, 300]}))
    assert points["alloc_cv"].iloc[0] == pytest.approx(coefficient_of_variation([100, 300]))
    assert not math.isnan(points["alloc_cv"].iloc[0])
    rows = summary_rows("d", _requests({("chat", 0): [100, 300]}))
    assert "alloc_cv" in [r.metric for r in rows]


def test_cv_of_a_zero_mean_is_infinite_and_of_ones_is_zero() -> None:
    assert coefficient_of_variation([-1.0, 1.0]) == math.inf
    assert coefficient_of_variation([1.0, 1.0]) == 0.0
    assert coefficient_of_variation([1.0, 3.0]) == pytest.approx(math.sqrt(2) / 2)
    assert coefficient_of_variation(["1", "3"]) == pytest.approx(math.sqrt(2) / 2)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least two values"):
        coefficient_of_variation([1.0])


def test_slope_takes_text_numbers_and_big_values() -> None:
    assert least_squares_slope(["0", "10"], ["5", "25"]) == pytest.approx(2.0)  # type: ignore[list-item]
    assert least_squares_slope([0, 1e6], [0, 3e12]) == pytest.approx(3e6)


def test_endpoints_order_known_first_then_by_name() -> None:
    frame = _requests(
        {
            ("zeta", 0): [1, 1],
            ("history", 0): [1, 1],
            ("alpha", 0): [1, 1],
            ("chat", 10): [5, 5],
            ("chat", 0): [4, 4],
            ("alpha", 10): [3, 3],
            ("zeta", 10): [3, 3],
            ("history", 10): [3, 3],
        }
    )
    points = per_point(frame)
    assert list(points.columns) == [
        "endpoint", "history_len", "reps", "alloc_peak_bytes", "alloc_net_bytes", "alloc_cv",
        "alloc_peak_spread", "alloc_peak_low", "alloc_peak_high",
    ]  # fmt: skip
    assert points["endpoint"].tolist() == [
        "chat", "chat", "history", "history", "alpha", "alpha", "zeta", "zeta",
    ]  # fmt: skip
    assert points["history_len"].tolist() == [0, 10] * 4
    assert list(slopes(points)) == ["chat", "history", "alpha", "zeta"]
    assert points["alloc_net_bytes"].tolist()[:2] == [0.0, 0.0]
    assert per_point(_requests({("chat", 0): [205, 215]}))["alloc_net_bytes"].tolist() == [20.5]


def test_missing_columns_are_named_and_no_requests_keep_the_columns() -> None:
    with pytest.raises(ValueError, match=r"lack columns: alloc_net_bytes, alloc_peak_bytes$"):
        per_point(pd.DataFrame({"endpoint": ["chat"], "history_len": [0]}))
    empty = per_point(pd.DataFrame(columns=list(REQUEST_COLUMNS)))
    assert empty.empty and list(empty.columns) == [
        "endpoint", "history_len", "reps", "alloc_peak_bytes", "alloc_net_bytes", "alloc_cv",
        "alloc_peak_spread", "alloc_peak_low", "alloc_peak_high",
    ]  # fmt: skip
