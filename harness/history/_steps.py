"""Step detection: an L1 Potts fit (piecewise-constant levels), solved exactly.

The model is the one asv's step detection uses (Friedrich et al. 2008, "Complexity penalized
M-estimation"): choose levels x_1..x_n, constant between steps, minimising

    sum_i |y_i - x_i|  +  gamma * (number of steps)

The L1 loss makes each level the median of its segment, so one odd run moves nothing, and
dynamic programming finds the exact optimum in O(n^2 log n) time and O(n) memory for n commits.

asv picks gamma with an information criterion fitted to the noise of timings. The probe's
figures are nearly deterministic (the same code allocates the same bytes; reps differ by less
than 1%), so a noise estimate is close to zero and such a criterion would call every byte a
step. Here gamma is instead the smallest step worth reporting:

    min_step = max(rel_step * |median level|, abs_floor, NOISE_K * noise)

where noise is a robust estimate from consecutive differences (1.4826 * median |dy| / sqrt 2),
which is zero for a deterministic series and grows for a noisy one (alloc_net_bytes). It needs
at least NOISE_MIN_POINTS commits: with fewer, the median difference is the step itself. The
caller's abs_floor is half the gate's floor for the series (the gate calls smaller moves noise).
A step of
height h supported by k commits lowers the L1 cost by about k * h, so with gamma = min_step any
step of at least min_step that persists is kept, and a single-commit blip must be twice as large
(it costs two steps). Steps smaller than min_step after the fit are dropped.
"""

from __future__ import annotations

import heapq
import itertools
import math
import statistics
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

NOISE_K = 3.0
NOISE_MIN_POINTS = 6
_MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class Segment:
    start: int  # index of the first point (inclusive)
    end: int  # index after the last point (exclusive)
    level: float  # the segment's median


@dataclass(frozen=True)
class Step:
    index: int  # first point at the new level: the commit that made the step
    before: float
    after: float

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def ratio(self) -> float | None:
        return self.change / abs(self.before) if self.before else None


def noise_scale(values: Sequence[float]) -> float:
    """A robust standard deviation of the noise, from consecutive differences (0 when there are
    too few for the median difference to ignore a step)."""
    if len(values) < NOISE_MIN_POINTS:
        return 0.0
    diffs = [abs(b - a) for a, b in itertools.pairwise(values)]
    return _MAD_TO_SIGMA * statistics.median(diffs) / math.sqrt(2)


def min_step(values: Sequence[float], rel_step: float, abs_floor: float = 0.0) -> float:
    """The smallest step reported for this series (also the fit's penalty per step)."""
    if not values:
        return abs_floor
    level = abs(statistics.median(values))
    return max(rel_step * level, abs_floor, NOISE_K * noise_scale(values), 1e-12)


def _costs_from(y: Sequence[float], left: int) -> Iterator[float]:
    """sum |y_i - median(y_left..y_right)| for right = left, left + 1, ...: a running median
    (two heaps with their sums) gives each in O(log n)."""
    low: list[float] = []  # max-heap (negated): the lower half, its top is the median
    high: list[float] = []  # min-heap: the upper half
    low_sum = high_sum = 0.0
    for v in y[left:]:
        if not low or v <= -low[0]:
            heapq.heappush(low, -v)
            low_sum += v
        else:
            heapq.heappush(high, v)
            high_sum += v
        if len(low) > len(high) + 1:
            moved = -heapq.heappop(low)
            low_sum -= moved
            heapq.heappush(high, moved)
            high_sum += moved
        elif len(high) > len(low):
            moved = heapq.heappop(high)
            high_sum -= moved
            heapq.heappush(low, -moved)
            low_sum += moved
        med = -low[0]
        yield (med * len(low) - low_sum) + (high_sum - med * len(high))


def fit_levels(y: Sequence[float], gamma: float) -> list[Segment]:
    """The exact minimiser of sum |y - x| + gamma * steps, as segments in order.

    Forward dynamic programming in O(n) memory: best[r] is the optimal cost of y[:r], final
    once every segment ending before r has been tried, i.e. when the outer loop reaches r.
    """
    n = len(y)
    if n == 0:
        return []
    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)  # left edge of the last segment of best[r]'s optimum
    for left in range(n):
        base = best[left] + (gamma if left else 0.0)
        for right, cost in enumerate(_costs_from(y, left), start=left + 1):
            if base + cost < best[right]:
                best[right], start[right] = base + cost, left
    segments: list[Segment] = []
    right = n
    while right > 0:
        left = start[right]
        segments.append(Segment(left, right, statistics.median_low(y[left:right])))
        right = left
    segments.reverse()
    return segments


def detect_steps(
    y: Sequence[float], rel_step: float = 0.02, abs_floor: float = 0.0
) -> tuple[list[Segment], list[Step]]:
    """Fitted levels and the steps between them that are at least min_step high."""
    threshold = min_step(y, rel_step, abs_floor)
    segments = _merge_small(fit_levels(y, threshold), y, threshold)
    steps = [
        Step(b.start, a.level, b.level)
        for a, b in itertools.pairwise(segments)
        if abs(b.level - a.level) >= threshold
    ]
    return segments, steps


def _merge_small(segments: list[Segment], y: Sequence[float], threshold: float) -> list[Segment]:
    """Join neighbours whose levels differ by less than the threshold (their step is not one)."""
    out: list[Segment] = []
    for seg in segments:
        if out and abs(seg.level - out[-1].level) < threshold:
            prev = out.pop()
            seg = Segment(prev.start, seg.end, statistics.median_low(y[prev.start : seg.end]))
        out.append(seg)
    return out
