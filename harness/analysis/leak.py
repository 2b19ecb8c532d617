"""Leak rate from a run of identical requests: a one-time fill apart from a per-request growth.

Pure: numbers in, numbers out (the warm-up driver takes the request and the reading as callables).

Why not a least-squares line through the checkpoints: library caches fill once, at some request,
and stop (SQLAlchemy's compiled statements, Jinja's templates, ``re``, ``functools.lru_cache``).
A line through 40 requests turns one 19 KB jump at the 10th request into ~450 B/request, a
"leak" of 450 MB per million requests that does not exist. So the estimate is in two parts:

1. **Warm up until steady** (:func:`warm_until_steady`): send the request in windows until two
   consecutive windows' readings agree within the noise, bounded by a maximum. Whatever grew
   during the warm-up is reported as one-time growth, not as a rate.
2. **A step-and-slope fit** (:func:`estimate_leak`) of the run that follows: the model
   ``y = a + b·x + s·[x ≥ x_k]`` (one jump of ``s`` bytes at checkpoint ``k``, plus a steady rate
   ``b``) is fitted for every ``k``; the best one is kept only when it explains the run better
   than a plain line by more than its two extra parameters are worth (the Bayesian information
   criterion) and the jump is at least ``min_step_bytes``. The rate is then the Theil–Sen slope
   (the median of the pairwise slopes) of the run with the jump taken out: one odd checkpoint
   cannot tilt it, and a real leak, which adds the same bytes between every pair, is recovered
   whole.

A leak is the same growth at every request, so it never fits a single jump better than a line:
it survives both steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

# Traced memory is counted in bytes: no fit is asked to be exacter than that. This keeps the
# information criterion finite on noise-free data (the unit tests, a planted leak).
RESOLUTION_BYTES = 1.0
# A jump smaller than this is noise or a leak's own growth between two checkpoints, not a fill.
DEFAULT_MIN_STEP_BYTES = 512.0


@dataclass(frozen=True)
class LeakEstimate:
    """What a run of identical requests left behind.

    ``rate_bytes_per_request`` is kept by every request; ``step_bytes`` was kept once, between
    checkpoints ``step_after_requests`` - 1 interval and ``step_after_requests`` (None without a
    step); ``stderr_bytes`` is the standard error of the rate (its resolution, the gate's noise).
    """

    rate_bytes_per_request: float
    stderr_bytes: float
    step_bytes: float = 0.0
    step_after_requests: float | None = None

    @property
    def has_step(self) -> bool:
        return self.step_after_requests is not None


def theil_sen_slope(xs: ArrayLike, ys: ArrayLike) -> float:
    """The median of the slopes between every pair of points with distinct x."""
    x, y = _arrays(xs, ys)
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not keep.any():
        raise ValueError("a slope needs at least two distinct x values")
    return float(np.median((y[j] - y[i])[keep] / dx[keep]))


def estimate_leak(
    xs: ArrayLike, ys: ArrayLike, *, min_step_bytes: float = DEFAULT_MIN_STEP_BYTES
) -> LeakEstimate:
    """The rate and one-time step of traced memory ``ys`` read after ``xs`` requests.

    Needs at least three checkpoints at distinct request counts; a step is only looked for with
    five or more (fewer cannot tell a jump from a slope).
    """
    x, y = _arrays(xs, ys)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    if np.unique(x).size < 3:
        raise ValueError(f"a leak estimate needs at least 3 distinct checkpoints, got {x.size}")
    line = _fit(x, y, None)
    best = line
    if x.size >= 5:
        for k in range(1, x.size):
            if x[k] == x[k - 1]:
                continue
            candidate = _fit(x, y, k)
            if candidate.sse < best.sse:
                best = candidate
    n = x.size
    if best.k is not None and (
        abs(best.step) < min_step_bytes or _bic(best.sse, n, 4) >= _bic(line.sse, n, 2)
    ):
        best = line
    if best.k is None:
        return LeakEstimate(theil_sen_slope(x, y), line.stderr)
    stepped = y - best.step * (np.arange(n) >= best.k)
    return LeakEstimate(
        theil_sen_slope(x, stepped), best.stderr, float(best.step), float(x[best.k])
    )


@dataclass(frozen=True)
class _Fit:
    k: int | None  # index of the first checkpoint after the step
    slope: float
    step: float
    sse: float
    stderr: float  # of the slope


def _fit(x: np.ndarray, y: np.ndarray, k: int | None) -> _Fit:
    columns = [x, np.ones_like(x)]
    if k is not None:
        columns.append((np.arange(x.size) >= k).astype(float))
    design = np.column_stack(columns)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residuals = y - design @ coef
    sse = float((residuals**2).sum())
    dof = x.size - design.shape[1]
    stderr = 0.0
    if dof > 0:
        # The slope's variance is sigma^2 times its diagonal entry of (X^T X)^-1.
        inverse = np.linalg.pinv(design.T @ design)
        stderr = math.sqrt(max(sse / dof * float(inverse[0, 0]), 0.0))
    return _Fit(k, float(coef[0]), float(coef[2]) if k is not None else 0.0, sse, stderr)


def _bic(sse: float, n: int, parameters: int) -> float:
    floor = n * RESOLUTION_BYTES**2
    return n * math.log(max(sse, floor) / n) + parameters * math.log(n)


def _arrays(xs: ArrayLike, ys: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"xs and ys differ in length: {x.size} vs {y.size}")
    return x, y


@dataclass(frozen=True)
class WarmUp:
    """A warm-up run: ``readings`` after each window of ``window`` requests (the first before
    any). ``steady`` says whether two windows agreed before ``max_requests``; ``growth_bytes`` is
    what the traced memory grew by meanwhile (a cache filling, when steady)."""

    requests: int
    readings: tuple[float, ...]
    steady: bool

    @property
    def growth_bytes(self) -> float:
        return self.readings[-1] - self.readings[0]


def windows_agree(previous: float, current: float, tolerance_bytes: float) -> bool:
    """Two consecutive readings, one window apart, differ by no more than the tolerance."""
    return abs(current - previous) <= tolerance_bytes


def warm_until_steady(
    send: Callable[[], object],
    read: Callable[[], float],
    *,
    window: int,
    max_requests: int,
    tolerance_bytes: float,
    min_requests: int = 0,
) -> WarmUp:
    """Send requests in windows until the traced memory stops growing (two consecutive windows
    agree within ``tolerance_bytes``), at least ``min_requests`` and at most ``max_requests``.

    A leaking request never agrees: the warm-up then ends at its maximum, unsteady, and the run
    that follows measures the leak.
    """
    if window < 1 or max_requests < window:
        raise ValueError(f"a warm-up needs 1 <= window <= max_requests: {window}, {max_requests}")
    readings = [read()]
    sent = 0
    while sent + window <= max_requests:
        for _ in range(window):
            send()
        sent += window
        readings.append(read())
        if sent >= min_requests and windows_agree(readings[-2], readings[-1], tolerance_bytes):
            return WarmUp(sent, tuple(readings), True)
    return WarmUp(sent, tuple(readings), False)
