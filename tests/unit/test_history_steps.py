"""Step detection (harness.history._steps): the L1 Potts fit on small synthetic series."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from harness.history import detect_steps
from harness.history._steps import Step, _costs_from, fit_levels, min_step, noise_scale


def test_one_step_is_found_at_the_first_point_of_the_new_level() -> None:
    y = [100.0, 100.1, 99.9, 100.0, 130.0, 130.1, 129.9, 130.0]
    segments, steps = detect_steps(y, rel_step=0.02)
    assert [(s.start, s.end) for s in segments] == [(0, 4), (4, 8)]
    assert len(steps) == 1
    assert steps[0].index == 4
    assert steps[0].ratio == pytest.approx(0.30, abs=0.01)


def test_a_flat_series_with_jitter_below_the_minimum_step_has_no_step() -> None:
    y = [100.0, 101.0, 99.5, 100.5, 100.0, 101.5, 99.0, 100.0]
    assert detect_steps(y, rel_step=0.05)[1] == []


def test_a_single_commit_blip_is_not_a_step_but_a_lasting_change_is() -> None:
    blip = [100.0, 100.0, 100.0, 103.0, 100.0, 100.0, 100.0]
    assert detect_steps(blip, rel_step=0.02)[1] == []  # 3% blip < 2 x 2% (it costs two steps)
    lasting = [100.0, 100.0, 100.0, 103.0, 103.0, 103.0, 103.0]
    assert [s.index for s in detect_steps(lasting, rel_step=0.02)[1]] == [3]


def test_two_steps_up_then_down() -> None:
    y = [50.0] * 4 + [80.0] * 4 + [60.0] * 4
    steps = detect_steps(y, rel_step=0.05)[1]
    assert [(s.index, s.before, s.after) for s in steps] == [(4, 50.0, 80.0), (8, 80.0, 60.0)]


def test_an_absolute_floor_hides_steps_smaller_than_it() -> None:
    y = [1000.0] * 4 + [1100.0] * 4
    assert len(detect_steps(y, rel_step=0.02)[1]) == 1
    assert detect_steps(y, rel_step=0.02, abs_floor=200.0)[1] == []


def test_noise_scale_needs_enough_points_and_ignores_rare_steps() -> None:
    assert noise_scale([100.0, 130.0, 130.0]) == 0.0  # too few: the difference is the step
    assert noise_scale([100.0] * 5 + [130.0] * 5) == 0.0  # one step among nine differences
    noisy = [100.0, 110.0, 100.0, 110.0, 100.0, 110.0, 100.0]
    assert noise_scale(noisy) > 5.0
    assert min_step(noisy, rel_step=0.02) > 15.0  # noise, not the 2%, sets the minimum step


def test_fit_levels_is_the_exact_l1_optimum_on_a_small_case() -> None:
    # cost of one segment: |1-2|+|2-2|+|9-2| = 8; split before 9: 1 + 0 + gamma
    assert len(fit_levels([1.0, 2.0, 9.0], gamma=10.0)) == 1
    assert [s.level for s in fit_levels([1.0, 2.0, 9.0], gamma=2.0)] == [1.0, 9.0]


def test_empty_and_single_point_series() -> None:
    assert detect_steps([], rel_step=0.02) == ([], [])
    segments, steps = detect_steps([5.0], rel_step=0.02)
    assert len(segments) == 1 and steps == []


def test_sparkline_spans_the_range_but_not_sub_percent_jitter() -> None:
    from harness.history._trend import sparkline

    assert sparkline([100.0, 100.0, 200.0]) == "▁▁█"
    assert sparkline([100_000.0, 100_100.0, 99_900.0]) == "▂▂▁"  # 0.2% of the level: low bars
    assert sparkline([5.0, 5.0]) == "▁▁" and sparkline([]) == ""


def test_short_labels_grow_until_the_commits_differ() -> None:
    from harness.history._trend import short_labels

    assert short_labels(["c0ffee0001", "c0ffee0002"]) == ["c0ffee0001", "c0ffee0002"]
    assert short_labels(["abcdef0123", "1234567890"]) == ["abcdef0", "1234567"]


# --- edges: the exact figures the fit and its threshold rest on ------------------------------


def test_noise_scale_is_the_mad_of_the_differences_as_a_standard_deviation() -> None:
    alternating = [0.0, 1.0] * 3  # six points: every difference is 1
    assert noise_scale(alternating) == pytest.approx(1.4826 / math.sqrt(2))
    assert noise_scale(alternating[:5]) == 0.0  # five points are too few
    assert noise_scale([0.0, 2.0, 0.0, 3.0, 0.0, 1.0]) == pytest.approx(1.4826 * 2 / math.sqrt(2))


def test_min_step_is_the_largest_of_its_three_bounds() -> None:
    assert min_step([100.0, 100.0, 100.0], rel_step=0.02) == pytest.approx(2.0)
    assert min_step([-100.0, -100.0, -100.0], rel_step=0.02) == pytest.approx(2.0)
    assert min_step([100.0, 100.0, 100.0], rel_step=0.02, abs_floor=5.0) == 5.0
    assert min_step([], rel_step=0.02, abs_floor=5.0) == 5.0
    assert min_step([], rel_step=0.02) == 0.0
    assert min_step([0.0, 0.0], rel_step=0.02) == 1e-12  # never zero: the fit needs a penalty
    alternating = [0.0, 1.0] * 3
    assert min_step(alternating, rel_step=0.0) == pytest.approx(3 * 1.4826 / math.sqrt(2))


def brute_cost(y: list[float], left: int, right: int) -> float:
    segment = y[left:right]
    middle = statistics.median(segment)
    return sum(abs(v - middle) for v in segment)


@pytest.mark.parametrize("seed", range(8))
def test_running_costs_match_the_sum_of_distances_to_the_median(seed: int) -> None:
    rng = random.Random(seed)
    y = [float(rng.choice([rng.randint(0, 9), rng.randint(0, 100)])) for _ in range(12)]
    for left in (0, 3, 11):
        costs = list(_costs_from(y, left))
        assert len(costs) == len(y) - left
        for offset, cost in enumerate(costs):
            assert cost == pytest.approx(brute_cost(y, left, left + offset + 1))


def partitions(n: int) -> list[list[int]]:
    """Every way to cut range(n) into segments, as the list of cut points."""
    return [
        [i for i, bit in enumerate(bits, start=1) if bit]
        for bits in itertools.product((0, 1), repeat=n - 1)
    ]


def total_cost(y: list[float], cuts: list[int], gamma: float) -> float:
    edges = [0, *cuts, len(y)]
    fit = sum(brute_cost(y, a, b) for a, b in itertools.pairwise(edges))
    return fit + gamma * len(cuts)


@pytest.mark.parametrize("seed", range(6))
def test_fit_levels_is_the_exact_optimum(seed: int) -> None:
    rng = random.Random(seed)
    y = [float(rng.choice([10, 11, 30, 31, 60])) for _ in range(7)]
    for gamma in (0.5, 5.0, 25.0):
        segments = fit_levels(y, gamma)
        assert segments[0].start == 0 and segments[-1].end == len(y)
        assert all(a.end == b.start for a, b in itertools.pairwise(segments))
        assert all(s.level == statistics.median_low(y[s.start : s.end]) for s in segments)
        best = min(total_cost(y, cuts, gamma) for cuts in partitions(len(y)))
        assert total_cost(y, [s.start for s in segments[1:]], gamma) == pytest.approx(best)


def test_the_first_segment_costs_no_step() -> None:
    # one segment of [0, 10] costs 10; gamma = 10 for the step makes the split cost 10 too:
    # the first segment is free, so a tie keeps the single level
    assert len(fit_levels([0.0, 10.0], gamma=10.0)) == 1
    assert len(fit_levels([0.0, 10.0], gamma=9.0)) == 2


def test_a_step_exactly_at_the_minimum_is_kept_and_merges_below_it() -> None:
    exact = [100.0] * 4 + [110.0] * 4  # the minimum step is the floor: 10
    assert [s.index for s in detect_steps(exact, rel_step=0.0, abs_floor=10.0)[1]] == [4]
    below = [100.0] * 4 + [109.9] * 4
    segments, steps = detect_steps(below, rel_step=0.0, abs_floor=10.0)
    assert steps == [] and [(s.start, s.end) for s in segments] == [(0, 8)]


def test_step_change_and_ratio() -> None:
    up = Step(3, 200.0, 250.0)
    assert (up.change, up.ratio) == (50.0, 0.25)
    assert Step(3, -200.0, -150.0).ratio == 0.25  # relative to the size of the old level
    assert Step(3, 0.0, 5.0).ratio is None
