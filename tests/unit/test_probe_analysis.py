"""harness.analysis.probe: slope fit, coefficient of variation, summary rows (synthetic data)."""

from __future__ import annotations

import math

import numpy as np
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


def test_slope_of_an_exact_line() -> None:
    xs = [0, 100, 1000, 5000]
    ys = [12_000 + 250 * x for x in xs]
    assert least_squares_slope(xs, ys) == pytest.approx(250.0)


def test_slope_of_a_flat_line_is_zero() -> None:
    assert least_squares_slope([0, 100, 1000, 5000], [8_000] * 4) == pytest.approx(0.0, abs=1e-9)


def test_slope_matches_numpy_polyfit_on_noisy_data() -> None:
    rng = np.random.default_rng(7)
    xs = np.array([0, 10, 100, 1000, 2500, 5000], dtype=float)
    ys = 5_000 + 300 * xs + rng.normal(0, 2_000, xs.size)
    expected = np.polyfit(xs, ys, 1)[0]
    assert least_squares_slope(xs.tolist(), ys.tolist()) == pytest.approx(expected)
    assert least_squares_slope(xs.tolist(), ys.tolist()) == pytest.approx(300, rel=0.01)


def test_slope_is_least_squares_not_end_points() -> None:
    # (0,0), (1,2), (3,3): the end points give 1, least squares 39/42.
    assert least_squares_slope([0, 1, 3], [0, 2, 3]) == pytest.approx(39 / 42)


@pytest.mark.parametrize("xs", [[5], [3, 3, 3]])
def test_slope_needs_two_distinct_x(xs: list[int]) -> None:
    with pytest.raises(ValueError, match="two distinct"):
        least_squares_slope(xs, [1.0] * len(xs))


def test_slope_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="differ"):
        least_squares_slope([0, 1], [1.0])


def test_cv_is_sample_std_over_mean() -> None:
    values = [100.0, 102.0, 98.0, 101.0, 99.0]
    expected = np.std(values, ddof=1) / np.mean(values)
    assert coefficient_of_variation(values) == pytest.approx(expected)
    assert coefficient_of_variation(values) == pytest.approx(0.0158, abs=1e-4)


def test_cv_of_equal_values_is_zero() -> None:
    assert coefficient_of_variation([4096.0] * 5) == 0.0
    assert coefficient_of_variation([0.0, 0.0]) == 0.0


def test_cv_needs_two_values() -> None:
    with pytest.raises(ValueError):
        coefficient_of_variation([1.0])


def _requests(peaks: dict[tuple[str, int], list[int]], net: int = 0) -> pd.DataFrame:
    rows = []
    for (endpoint, history_len), values in peaks.items():
        for rep, value in enumerate(values, start=1):
            rows.append((endpoint, history_len, rep, value, net, 3, 0.01, 200))
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))


def test_per_point_takes_medians_and_orders_endpoints() -> None:
    frame = _requests(
        {
            ("history", 0): [10, 10, 10],
            ("chat", 100): [300, 100, 200],
            ("chat", 0): [50, 1000, 60],  # one odd rep: the median ignores it
            ("chat_stream", 0): [70, 70, 70],
        }
    )
    points = per_point(frame)
    assert list(zip(points["endpoint"], points["history_len"], strict=True)) == [
        ("chat", 0),
        ("chat", 100),
        ("chat_stream", 0),
        ("history", 0),
    ]
    assert points["alloc_peak_bytes"].tolist() == [60.0, 200.0, 70.0, 10.0]
    assert points["reps"].tolist() == [3, 3, 3, 3]


def test_summary_rows_metrics_units_and_labels() -> None:
    lens = [0, 100, 1000, 5000]
    peaks: dict[tuple[str, int], list[int]] = {}
    for h in lens:
        peaks[("chat", h)] = [20_000 + 400 * h + d for d in (-10, 0, 10)]
        peaks[("history", h)] = [9_000, 9_000, 9_000]
    rows = summary_rows("naive", _requests(peaks, net=128))
    by_key = {(r.metric, tuple(sorted(r.labels.items()))): r for r in rows}
    assert {r.phase for r in rows} == {"probe"}
    assert {r.design for r in rows} == {"naive"}
    assert all(isinstance(v, str) for r in rows for v in r.labels.values())

    peak = by_key[("alloc_peak_bytes", (("endpoint", "chat"), ("history_len", "1000")))]
    assert peak.value == 420_000 and peak.unit == "bytes"
    net = by_key[("alloc_net_bytes", (("endpoint", "history"), ("history_len", "5000")))]
    assert net.value == 128 and net.unit == "bytes"
    cv = by_key[("alloc_cv", (("endpoint", "history"), ("history_len", "0")))]
    assert cv.value == 0.0 and cv.unit == "ratio"
    chat_slope = by_key[("alloc_slope_bytes_per_message", (("endpoint", "chat"),))]
    assert chat_slope.value == pytest.approx(400.0)
    assert chat_slope.unit == "bytes/message"
    flat = by_key[("alloc_slope_bytes_per_message", (("endpoint", "history"),))]
    assert flat.value == pytest.approx(0.0, abs=1e-9)
    spread = by_key[("alloc_peak_spread_bytes", (("endpoint", "chat"), ("history_len", "100")))]
    assert spread.value == pytest.approx(1.4826 * 10) and spread.unit == "bytes"
    # 4 lens x 2 endpoints x (peak, net, spread, cv) + 2 slopes; no leak run, no retained rows
    assert len(rows) == 4 * 2 * 4 + 2
    assert not {r.metric for r in rows} & {
        "retained_bytes_per_request",
        "retained_blocks_per_request",
        "retained_stderr_bytes",
    }


def test_one_history_length_gives_no_slope_and_one_rep_no_cv() -> None:
    rows = summary_rows("d", _requests({("chat", 0): [5]}))
    assert {r.metric for r in rows} == {
        "alloc_peak_bytes",
        "alloc_net_bytes",
        "alloc_peak_spread_bytes",
    }
    assert slopes(per_point(_requests({("chat", 0): [5, 6]}))) == {}


def test_rows_are_json_safe() -> None:
    rows = summary_rows("d", _requests({("chat", 0): [5, 7], ("chat", 10): [9, 9]}))
    assert all(math.isfinite(r.value) for r in rows)


def test_missing_columns_are_an_error() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        per_point(pd.DataFrame({"endpoint": ["chat"]}))
