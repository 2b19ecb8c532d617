"""The leak estimator tells a cache that fills once from memory kept by every request."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.analysis.leak import estimate_leak, theil_sen_slope, warm_until_steady

CHECKPOINTS = np.arange(0, 41, 4, dtype=float)  # the probe's leak run: 40 requests, every 4th


def noise(size: int, sigma: float, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, sigma, size)


def test_a_steady_leak_is_its_rate_with_no_step() -> None:
    ys = 100_000 + 256 * CHECKPOINTS + noise(CHECKPOINTS.size, 40)
    estimate = estimate_leak(CHECKPOINTS, ys)
    assert estimate.rate_bytes_per_request == pytest.approx(256, abs=16)
    assert not estimate.has_step
    assert estimate.step_bytes == 0


def test_a_cache_filled_once_is_a_step_not_a_rate() -> None:
    # One 19 KB jump between the 8th and 12th request, as a SQLAlchemy cache fill read.
    ys = 100_000 + 19_000 * (CHECKPOINTS >= 12) + noise(CHECKPOINTS.size, 40)
    least_squares = np.polyfit(CHECKPOINTS, ys, 1)[0]
    assert least_squares > 400  # what the old estimate reported: a phantom leak
    estimate = estimate_leak(CHECKPOINTS, ys)
    assert abs(estimate.rate_bytes_per_request) <= 16
    assert estimate.step_bytes == pytest.approx(19_000, rel=0.02)
    assert estimate.step_after_requests == 12


def test_a_leak_behind_a_fill_is_still_measured() -> None:
    ys = 100_000 + 256 * CHECKPOINTS + 19_000 * (CHECKPOINTS >= 20) + noise(CHECKPOINTS.size, 40)
    estimate = estimate_leak(CHECKPOINTS, ys)
    assert estimate.rate_bytes_per_request == pytest.approx(256, abs=16)
    assert estimate.step_bytes == pytest.approx(19_000, rel=0.05)
    assert estimate.step_after_requests == 20


def test_one_odd_checkpoint_does_not_tilt_the_rate() -> None:
    ys = 100_000 + noise(CHECKPOINTS.size, 40)
    ys[-1] += 8_000  # a collection that had not run yet at the last reading
    estimate = estimate_leak(CHECKPOINTS, ys)
    assert abs(estimate.rate_bytes_per_request) <= 16


def test_a_small_jump_is_not_called_a_step() -> None:
    ys = 100_000 + 300 * (CHECKPOINTS >= 20) + noise(CHECKPOINTS.size, 5)
    assert not estimate_leak(CHECKPOINTS, ys, min_step_bytes=512).has_step
    assert estimate_leak(CHECKPOINTS, ys, min_step_bytes=100).has_step


def test_noise_gives_the_rate_a_standard_error() -> None:
    flat = estimate_leak(CHECKPOINTS, 100_000 + 0 * CHECKPOINTS)
    noisy = estimate_leak(CHECKPOINTS, 100_000 + noise(CHECKPOINTS.size, 400))
    assert flat.stderr_bytes == pytest.approx(0, abs=1e-6)
    assert noisy.stderr_bytes > 1


@given(
    rate=st.floats(min_value=0, max_value=16_384),
    start=st.floats(min_value=0, max_value=1e8),
)
def test_a_noise_free_leak_is_recovered_exactly(rate: float, start: float) -> None:
    estimate = estimate_leak(CHECKPOINTS, start + rate * CHECKPOINTS)
    assert estimate.rate_bytes_per_request == pytest.approx(rate, abs=1e-6 * max(start, 1))
    assert not estimate.has_step


def test_too_few_checkpoints_is_an_error() -> None:
    with pytest.raises(ValueError, match="3 distinct"):
        estimate_leak([0, 4], [1, 2])
    with pytest.raises(ValueError, match="differ in length"):
        estimate_leak([0, 4, 8], [1, 2])


def test_theil_sen_ignores_a_minority_of_outliers() -> None:
    xs = list(range(10))
    ys = [2.0 * x for x in xs]
    ys[3] = 1_000
    assert theil_sen_slope(xs, ys) == 2.0
    with pytest.raises(ValueError, match="distinct"):
        theil_sen_slope([1, 1], [0, 1])


class CacheService:
    """Grows by `fill` bytes per request for the first `filling` requests, then `leak` per
    request for ever."""

    def __init__(self, filling: int, fill: float, leak: float = 0.0) -> None:
        self.sent = 0
        self.filling, self.fill, self.leak = filling, fill, leak

    def send(self) -> None:
        self.sent += 1

    def read(self) -> float:
        return 50_000 + self.fill * min(self.sent, self.filling) + self.leak * self.sent


def test_warm_up_runs_until_a_cache_is_full() -> None:
    service = CacheService(filling=100, fill=200)
    warm = warm_until_steady(
        service.send, service.read, window=20, max_requests=400, tolerance_bytes=64
    )
    assert warm.steady
    assert warm.requests == 120  # the window after the fill ended is the first that agrees
    assert warm.growth_bytes == pytest.approx(100 * 200)


def test_warm_up_of_a_leak_ends_unsteady_at_its_maximum() -> None:
    service = CacheService(filling=0, fill=0, leak=256)
    warm = warm_until_steady(
        service.send, service.read, window=20, max_requests=200, tolerance_bytes=64
    )
    assert not warm.steady
    assert warm.requests == 200
    assert service.sent == 200


def test_warm_up_sends_at_least_its_minimum() -> None:
    service = CacheService(filling=0, fill=0)
    warm = warm_until_steady(
        service.send, service.read, window=10, max_requests=100, tolerance_bytes=0, min_requests=40
    )
    assert warm.steady
    assert warm.requests == 40
    with pytest.raises(ValueError, match="window"):
        warm_until_steady(service.send, service.read, window=0, max_requests=10, tolerance_bytes=0)


# --- edges: the exact figures of small, noise-free runs ---------------------------------------


def test_the_rate_error_is_the_least_squares_standard_error() -> None:
    xs = np.array([0.0, 4.0, 8.0, 12.0, 16.0])
    ys = 1000 + 10 * xs + np.array([3.0, -5.0, 4.0, -1.0, 2.0])
    slope, intercept = np.polyfit(xs, ys, 1)
    sse = float(((ys - (slope * xs + intercept)) ** 2).sum())
    expected = np.sqrt(sse / (xs.size - 2) / ((xs - xs.mean()) ** 2).sum())
    assert estimate_leak(xs, ys).stderr_bytes == pytest.approx(expected, rel=1e-9)


def test_the_error_of_a_stepped_run_is_that_of_the_step_model() -> None:
    xs = np.arange(0.0, 44.0, 4.0)
    wobble = np.array([3.0, -5.0, 4.0, -1.0, 2.0, 0.0, -3.0, 5.0, -2.0, 1.0, -4.0])
    step = 19_000 * (xs >= 20)
    estimate = estimate_leak(xs, 1000 + 10 * xs + step + wobble)
    design = np.column_stack([xs, np.ones_like(xs), (xs >= 20).astype(float)])
    coef, *_ = np.linalg.lstsq(design, 1000 + 10 * xs + step + wobble, rcond=None)
    sse = float(((1000 + 10 * xs + step + wobble - design @ coef) ** 2).sum())
    expected = np.sqrt(sse / (xs.size - 3) * np.linalg.inv(design.T @ design)[0, 0])
    assert estimate.stderr_bytes == pytest.approx(expected, rel=1e-9)
    assert estimate.step_bytes == pytest.approx(coef[2], rel=1e-9)


def test_three_checkpoints_on_a_line_give_its_slope_without_error() -> None:
    estimate = estimate_leak([0, 10, 20], [100.0, 150.0, 200.0])
    assert estimate.rate_bytes_per_request == 5.0
    assert estimate.stderr_bytes == pytest.approx(0.0, abs=1e-9)
    line = estimate_leak([0, 10, 20, 20], [100.0, 150.0, 210.0, 190.0])  # two readings at 20
    assert line.rate_bytes_per_request == 5.0


def test_a_step_needs_five_checkpoints() -> None:
    five = estimate_leak([0, 1, 2, 3, 4], [0.0, 0.0, 0.0, 50_000.0, 50_000.0])
    assert five.step_after_requests == 3.0
    assert five.step_bytes == pytest.approx(50_000.0)
    assert five.rate_bytes_per_request == pytest.approx(0.0, abs=1e-6)
    four = estimate_leak([0, 1, 2, 3], [0.0, 0.0, 50_000.0, 50_000.0])
    assert not four.has_step and four.step_bytes == 0.0


def test_a_step_is_looked_for_between_distinct_checkpoints_only() -> None:
    xs = [0, 4, 8, 8, 12, 16]
    ys = [0.0, 0.0, 0.0, 30_000.0, 30_000.0, 30_000.0]  # a jump between two readings at 8
    estimate = estimate_leak(xs, ys)
    assert estimate.step_after_requests != 8.0 or estimate.step_bytes < 30_000.0


def test_memory_freed_once_is_a_step_down() -> None:
    xs = np.arange(0.0, 44.0, 4.0)
    estimate = estimate_leak(xs, 100_000 - 20_000 * (xs >= 24))
    assert estimate.step_bytes == pytest.approx(-20_000.0)
    assert estimate.step_after_requests == 24.0
    assert estimate.rate_bytes_per_request == pytest.approx(0.0, abs=1e-6)


def test_a_step_exactly_at_the_minimum_is_a_step() -> None:
    xs = np.arange(0.0, 44.0, 4.0)
    ys = 100_000 + 5 * xs + 2_000 * (xs >= 16)
    found = estimate_leak(xs, ys, min_step_bytes=100)
    assert estimate_leak(xs, ys, min_step_bytes=abs(found.step_bytes)).has_step
    assert not estimate_leak(xs, ys, min_step_bytes=abs(found.step_bytes) + 1).has_step
    assert found.rate_bytes_per_request == pytest.approx(5.0)


def test_theil_sen_takes_every_pair() -> None:
    # slopes 1, 1, 1, 10/3, 9/2, 8: the median of all six, not of the pairs two apart
    assert theil_sen_slope([0, 1, 2, 3], [0, 1, 2, 10]) == pytest.approx((1 + 10 / 3) / 2)
    assert theil_sen_slope([0, 0, 1], [5, 7, 9]) == pytest.approx(3.0)  # equal x: no slope


def test_a_warm_up_longer_than_its_maximum_is_an_error() -> None:
    service = CacheService(filling=0, fill=0)
    with pytest.raises(ValueError, match="window"):
        warm_until_steady(service.send, service.read, window=20, max_requests=10, tolerance_bytes=0)
    warm = warm_until_steady(
        service.send, service.read, window=10, max_requests=10, tolerance_bytes=0
    )
    assert (warm.requests, warm.readings, warm.steady) == (10, (50_000.0, 50_000.0), True)


XS = np.arange(0.0, 44.0, 4.0)  # eleven checkpoints
WOBBLE = np.array([30.0, -50.0, 40.0, -10.0, 20.0, 0.0, -30.0, 50.0, -20.0, 10.0, -40.0])


def bic_gain(ys: np.ndarray) -> float:
    """n log(SSE_line / SSE_step) of the best single step, each SSE at least n (1 byte each)."""
    n = XS.size

    def sse(columns: list[np.ndarray]) -> float:
        design = np.column_stack(columns)
        coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
        return max(float(((ys - design @ coef) ** 2).sum()), float(n))

    line = sse([XS, np.ones(n)])
    step = min(sse([XS, np.ones(n), (np.arange(n) >= k).astype(float)]) for k in range(1, n))
    return n * math.log(line / step)


def test_a_step_is_kept_when_its_bic_beats_the_lines_by_two_parameters() -> None:
    penalty = math.log(XS.size)  # per parameter; the step model has two more
    kept = WOBBLE + 105.0 * (XS >= 20)
    assert 2 * penalty < bic_gain(kept) < 3 * penalty
    assert estimate_leak(XS, kept, min_step_bytes=0).has_step
    dropped = WOBBLE + 80.0 * (XS >= 20)
    assert penalty < bic_gain(dropped) < 2 * penalty
    assert not estimate_leak(XS, dropped, min_step_bytes=0).has_step


def test_the_criterion_counts_an_exact_fit_as_one_byte_of_error() -> None:
    shape = (XS >= 20).astype(float)
    slope, intercept = np.polyfit(XS, shape, 1)
    unit_sse = float(((shape - (slope * XS + intercept)) ** 2).sum())
    # a noise-free step whose line misses by 1.8 bytes per checkpoint (squared): the step fits
    # exactly (floored to 1 byte each), a gain of n log 1.8, more than the two parameters cost
    height = math.sqrt(1.8 * XS.size / unit_sse)
    assert estimate_leak(XS, height * shape, min_step_bytes=0).has_step
    # a noise-free line: the step model fits no better, and costs two parameters more
    assert not estimate_leak(XS, 1000 + 3 * XS, min_step_bytes=0).has_step


def test_a_step_right_after_the_first_checkpoint_is_found() -> None:
    estimate = estimate_leak([0, 4, 8, 12, 16], [0.0, 50_000.0, 50_000.0, 50_000.0, 50_000.0])
    assert estimate.step_after_requests == 4.0
    assert estimate.step_bytes == pytest.approx(50_000.0)


def test_a_step_after_repeated_checkpoints_is_found() -> None:
    xs = [0, 4, 4, 8, 12, 16, 20]
    ys = [0.0, 0.0, 0.0, 0.0, 40_000.0, 40_000.0, 40_000.0]
    estimate = estimate_leak(xs, ys)
    assert estimate.step_after_requests == 12.0


def test_three_checkpoints_off_a_line_have_an_error() -> None:
    # residuals -10/3, 20/3, -10/3: SSE 200/3 over one degree of freedom, / Sxx = 200
    assert estimate_leak([0, 10, 20], [100.0, 160.0, 200.0]).stderr_bytes == pytest.approx(
        math.sqrt(1 / 3)
    )


def test_a_window_of_one_request_and_the_readings_of_an_unsteady_warm_up() -> None:
    service = CacheService(filling=0, fill=0)
    warm = warm_until_steady(
        service.send, service.read, window=1, max_requests=5, tolerance_bytes=0
    )
    assert (warm.requests, warm.steady) == (1, True)
    leaking = CacheService(filling=0, fill=0, leak=100)
    warm = warm_until_steady(
        leaking.send, leaking.read, window=2, max_requests=4, tolerance_bytes=0
    )
    assert warm.steady is False
    assert warm.readings == (50_000.0, 50_200.0, 50_400.0)
