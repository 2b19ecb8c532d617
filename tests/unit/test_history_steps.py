"""Step detection (harness.history._steps): the L1 Potts fit on small synthetic series."""

from __future__ import annotations

import pytest

from harness.history import detect_steps
from harness.history._steps import fit_levels, min_step, noise_scale


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
