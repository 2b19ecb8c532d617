"""harness.analysis.probe: slope fit, coefficient of variation, summary rows (synthetic data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from harness.analysis.probe import (
    CHECKPOINT_COLUMNS,
    MAD_TO_SIGMA,
    REQUEST_COLUMNS,
    RESET,
    RUN_COLUMN,
    Retention,
    coefficient_of_variation,
    least_squares_slope,
    per_point,
    retention,
    retention_range,
    robust_spread,
    slope_with_stderr,
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
    chat_slope = by_key[("alloc_slope_bytes_per_unit", (("endpoint", "chat"),))]
    assert chat_slope.value == pytest.approx(400.0)
    assert chat_slope.unit == "bytes/message"
    flat = by_key[("alloc_slope_bytes_per_unit", (("endpoint", "history"),))]
    assert flat.value == pytest.approx(0.0, abs=1e-9)
    spread = by_key[("alloc_peak_spread_bytes", (("endpoint", "chat"), ("history_len", "100")))]
    assert spread.value == pytest.approx(1.4826 * 10) and spread.unit == "bytes"
    # 4 lens x 2 endpoints x (peak, net, spread, cv, lowest, highest) + 2 x (slope, its
    # lowest, its highest); no leak run, no retained rows
    assert len(rows) == 4 * 2 * 6 + 2 * 3
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
        "alloc_peak_low_bytes",
        "alloc_peak_high_bytes",
    }
    assert slopes(per_point(_requests({("chat", 0): [5, 6]}))) == {}


def test_rows_are_json_safe() -> None:
    rows = summary_rows("d", _requests({("chat", 0): [5, 7], ("chat", 10): [9, 9]}))
    assert all(math.isfinite(r.value) for r in rows)


def test_missing_columns_are_an_error() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        per_point(pd.DataFrame({"endpoint": ["chat"]}))


# --- robust spread, slope standard error ------------------------------------------------------


def test_robust_spread_is_scaled_mad() -> None:
    # median 100, deviations 0, 2, 2, 1, 1 -> MAD 1
    assert robust_spread([100.0, 102.0, 98.0, 101.0, 99.0]) == pytest.approx(1.4826)
    assert MAD_TO_SIGMA == 1.4826


def test_robust_spread_ignores_one_outlier() -> None:
    steady = [100.0, 102.0, 98.0, 101.0, 99.0]
    with_outlier = [100.0, 102.0, 98.0, 101.0, 1e9]
    assert robust_spread(with_outlier) == pytest.approx(robust_spread(steady))
    assert coefficient_of_variation(with_outlier) > 1  # what the std would have made of it


def test_robust_spread_of_equal_values_and_one_value() -> None:
    assert robust_spread([4096.0] * 5) == 0.0
    assert robust_spread([7.0]) == 0.0
    with pytest.raises(ValueError):
        robust_spread([])


def test_slope_with_stderr_of_an_exact_line() -> None:
    xs = [0, 4, 8, 12, 16]
    slope, se = slope_with_stderr(xs, [1000 + 256 * x for x in xs])
    assert slope == pytest.approx(256.0)
    assert se == pytest.approx(0.0, abs=1e-9)


def test_slope_with_stderr_of_two_points_is_exact() -> None:
    slope, se = slope_with_stderr([0, 4], [0, 100])
    assert (slope, se) == (pytest.approx(25.0), 0.0)


def test_slope_with_stderr_on_known_noisy_data() -> None:
    # x = 0..4, y = 0, 2, 1, 4, 3: Sxy 8, Sxx 10 -> slope 0.8; residuals -0.4, 0.8, -1, 1.2,
    # -0.6 -> SS 3.6, se = sqrt(3.6 / (5 - 2) / 10)
    slope, se = slope_with_stderr([0, 1, 2, 3, 4], [0, 2, 1, 4, 3])
    assert slope == pytest.approx(0.8)
    assert se == pytest.approx(math.sqrt(0.12))


def test_slope_with_stderr_matches_scipy_style_formula() -> None:
    rng = np.random.default_rng(11)
    xs = np.arange(0, 44, 4, dtype=float)
    ys = 50_000 + 1024 * xs + rng.normal(0, 300, xs.size)
    slope, se = slope_with_stderr(xs.tolist(), ys.tolist())
    coeffs, cov = np.polyfit(xs, ys, 1, cov="unscaled")
    residuals = ys - np.polyval(coeffs, xs)
    expected = math.sqrt(cov[0, 0] * (residuals**2).sum() / (xs.size - 2))
    assert slope == pytest.approx(coeffs[0])
    assert se == pytest.approx(expected)
    assert 0 < se < 100


# --- retention: the leak runs -----------------------------------------------------------------


def _checkpoints(
    runs: dict[tuple[str, int], tuple[float, float]],
    requests: int = 40,
    every: int = 4,
    wobble: tuple[float, ...] = (0.0,),
) -> pd.DataFrame:
    """(endpoint, history_len) -> (bytes/request, blocks/request); traced memory on a line,
    plus wobble[i % len(wobble)] bytes at the i-th checkpoint."""
    rows = []
    for (endpoint, history_len), (per_request, blocks) in runs.items():
        for i, n in enumerate(range(0, requests + 1, every)):
            traced = 1_000_000 + per_request * n + wobble[i % len(wobble)]
            rows.append((endpoint, history_len, n, traced, 5_000 + blocks * n))
    return pd.DataFrame(rows, columns=list(CHECKPOINT_COLUMNS))


def test_retention_is_the_slope_per_request() -> None:
    out = retention(_checkpoints({("history", 100): (1024.0, 2.0)}))
    assert list(out) == [("history", 100)]
    r = out[("history", 100)]
    assert r.bytes_per_request == pytest.approx(1024.0)
    assert r.blocks_per_request == pytest.approx(2.0)
    assert r.stderr_bytes == pytest.approx(0.0, abs=1e-9)


def test_retention_subtracts_the_resets_only_after_chat_endpoints() -> None:
    frame = _checkpoints(
        {
            ("chat", 100): (1100.0, 3.0),
            ("chat_stream", 100): (100.0, 1.0),
            ("history", 100): (100.0, 1.0),
            (RESET, 100): (100.0, 1.0),
            (RESET, 5000): (9999.0, 9.0),  # another history length: not used
        }
    )
    out = retention(frame)
    assert list(out) == [("chat", 100), ("chat_stream", 100), ("history", 100)]  # no RESET row
    assert out[("chat", 100)].bytes_per_request == pytest.approx(1000.0)
    assert out[("chat", 100)].blocks_per_request == pytest.approx(2.0)
    assert out[("chat_stream", 100)].bytes_per_request == pytest.approx(0.0, abs=1e-9)
    # GET /history is not followed by a reset: nothing subtracted
    assert out[("history", 100)].bytes_per_request == pytest.approx(100.0)
    assert out[("history", 100)].blocks_per_request == pytest.approx(1.0)


def test_retention_without_a_reset_run_subtracts_nothing() -> None:
    out = retention(_checkpoints({("chat", 100): (512.0, 1.0), (RESET, 0): (100.0, 1.0)}))
    assert out[("chat", 100)].bytes_per_request == pytest.approx(512.0)


def test_retention_combines_standard_errors_with_hypot() -> None:
    chat = _checkpoints({("chat", 100): (1000.0, 1.0)}, wobble=(0.0, 300.0, -200.0))
    reset = _checkpoints({(RESET, 100): (0.0, 0.0)}, wobble=(50.0, -400.0, 120.0, 0.0))
    alone = {
        key: r.stderr_bytes for frame in (chat, reset) for key, r in _raw_retention(frame).items()
    }
    assert alone[("chat", 100)] > 0 and alone[(RESET, 100)] > 0
    combined = retention(pd.concat([chat, reset], ignore_index=True))[("chat", 100)]
    assert combined.stderr_bytes == pytest.approx(
        math.hypot(alone[("chat", 100)], alone[(RESET, 100)])
    )
    # history has no reset subtracted, so keeps its own error
    history = _checkpoints({("history", 100): (0.0, 0.0)}, wobble=(0.0, 300.0, -200.0))
    both = retention(pd.concat([history, reset], ignore_index=True))
    assert both[("history", 100)].stderr_bytes == pytest.approx(alone[("chat", 100)])


def _raw_retention(frame: pd.DataFrame) -> dict[tuple[str, int], Retention]:
    """Each run's own slope and error (what retention() computes before subtracting)."""
    out = {}
    for (endpoint, history_len), group in frame.groupby(["endpoint", "history_len"]):
        b, se = slope_with_stderr(group["requests"].tolist(), group["traced_bytes"].tolist())
        out[(str(endpoint), int(history_len))] = Retention(b, 0.0, se)
    return out


def test_retention_a_one_off_allocation_barely_tilts_the_line() -> None:
    # a cache filled once, after the first request: one 64 KiB step, then flat
    rows = [("chat", 100, n, 1_000_000 + (65_536 if n else 0), 5_000) for n in range(0, 41, 4)]
    leak = [("history", 100, n, 1_000_000 + 256 * n, 5_000) for n in range(0, 41, 4)]
    out = retention(pd.DataFrame(rows + leak, columns=list(CHECKPOINT_COLUMNS)))
    # the step spreads over the whole run; a 256 B/request leak stands out plainly
    assert out[("history", 100)].bytes_per_request == pytest.approx(256.0)
    assert out[("chat", 100)].stderr_bytes > 0


def test_retention_needs_two_checkpoints() -> None:
    one = pd.DataFrame([("chat", 100, 0, 1_000, 5)], columns=list(CHECKPOINT_COLUMNS))
    assert retention(one) == {}


def test_retention_orders_endpoints() -> None:
    frame = _checkpoints({("history", 0): (1.0, 0.0), ("chat", 100): (1.0, 0.0),
                          ("chat", 0): (1.0, 0.0)})  # fmt: skip
    assert list(retention(frame)) == [("chat", 0), ("chat", 100), ("history", 0)]


def test_summary_rows_with_leak_runs() -> None:
    requests = _requests({("chat", 100): [5, 6, 7], ("history", 100): [5, 5, 5]})
    frame = _checkpoints(
        {("chat", 100): (1124.0, 3.0), ("history", 100): (64.0, 0.5), (RESET, 100): (100.0, 1.0)}
    )
    rows = summary_rows("optimized", requests, frame)
    retained = {
        (r.metric, r.labels["endpoint"]): r for r in rows if r.metric.startswith("retained_")
    }
    assert set(retained) == {
        (metric, endpoint)
        for metric in (
            "retained_bytes_per_request",
            "retained_blocks_per_request",
            "retained_stderr_bytes",
            "retained_step_bytes",
            "retained_low_bytes_per_request",
            "retained_high_bytes_per_request",
        )
        for endpoint in ("chat", "history")
    }
    assert retained[("retained_step_bytes", "chat")].value == pytest.approx(0.0, abs=1e-6)
    chat = retained[("retained_bytes_per_request", "chat")]
    assert chat.value == pytest.approx(1024.0)
    assert chat.unit == "bytes/request"
    assert chat.labels == {"endpoint": "chat", "history_len": "100"}
    assert chat.design == "optimized" and chat.phase == "probe"
    blocks = retained[("retained_blocks_per_request", "chat")]
    assert (blocks.value, blocks.unit) == (pytest.approx(2.0), "blocks/request")
    stderr = retained[("retained_stderr_bytes", "history")]
    assert stderr.unit == "bytes/request" and stderr.value == pytest.approx(0.0, abs=1e-9)
    assert retained[("retained_bytes_per_request", "history")].value == pytest.approx(64.0)
    # an empty leak-run frame (leak_requests = 0) adds nothing
    empty = pd.DataFrame(columns=list(CHECKPOINT_COLUMNS))
    assert summary_rows("optimized", requests, empty) == summary_rows("optimized", requests)


def test_a_cache_filled_in_the_warm_up_is_one_time_growth_not_a_rate() -> None:
    """Warm-up rows (run 0) that grew 40 KiB, then a flat run: no rate, 40 KiB one-time."""
    rows = []
    for i, requests in enumerate(range(0, 113, 8)):  # the warm-up: 5 KiB per window, then flat
        rows.append(("get", 100, requests, 100_000 + min(i, 8) * 5120, 10, 0))
    for requests in range(112, 153, 4):
        rows.append(("get", 100, requests, 100_000 + 8 * 5120, 10, 1))
    frame = pd.DataFrame(rows, columns=[*CHECKPOINT_COLUMNS, RUN_COLUMN])
    got = retention(frame)[("get", 100)]
    assert got.bytes_per_request == pytest.approx(0.0, abs=1e-9)
    assert got.step_bytes == pytest.approx(8 * 5120)
    assert not got.confirmed


def test_the_confirmation_run_s_rate_is_the_figure() -> None:
    """A first run that still saw a fill (steep), a longer confirmation that is flat."""
    rows = [("get", 100, r, 1000 + 300 * r, 0, 1) for r in range(0, 41, 4)]
    rows += [("get", 100, r, 1000 + 300 * 40 + 2 * (r - 40), 0, 2) for r in range(40, 121, 4)]
    frame = pd.DataFrame(rows, columns=[*CHECKPOINT_COLUMNS, RUN_COLUMN])
    got = retention(frame)[("get", 100)]
    assert got.confirmed
    assert got.bytes_per_request == pytest.approx(2.0)
    assert got.step_bytes == pytest.approx(300 * 40 + 2 * 80 - 2.0 * 120)


def _processes(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The frames of several fresh server processes, tagged 1, 2, ... in column ``process``."""
    return pd.concat(
        [f.assign(process=i) for i, f in enumerate(frames, start=1)], ignore_index=True
    )


def _three_processes_of_leak_runs() -> list[pd.DataFrame]:
    """chat at history 10 leaking 100, 400 and 200 B/request (blocks 1, 5, 2), each process with
    its own noise and last-reading jump, so every figure differs between processes; the third one
    was confirmed."""
    frames = [
        _checkpoints({("chat", 10): (rate, blocks)}, wobble=wobble)
        for rate, blocks, wobble in (
            (100.0, 1.0, (0.0, 30.0, -10.0)),
            (400.0, 5.0, (0.0, 500.0, 0.0, -200.0)),
            (200.0, 2.0, (0.0, 90.0)),
        )
    ]
    frames = [f.assign(run=1) for f in frames]
    for frame, jump in zip(frames, (1000.0, 5000.0, 2500.0), strict=True):
        frame.loc[frame.index[-1], "traced_bytes"] += jump  # a one-time growth of its own
    frames[2].loc[frames[2]["requests"] <= 8, RUN_COLUMN] = 0
    frames[2].loc[frames[2]["requests"] >= 20, RUN_COLUMN] = 2
    return frames


def test_retention_is_the_median_of_each_process_s_figures() -> None:
    """Each field of the pooled figure is the median over processes of that field (not the
    mean, nor one process's), and one confirmed process marks the figure confirmed."""
    frames = _three_processes_of_leak_runs()
    each = [retention(f)[("chat", 10)] for f in frames]
    assert [r.confirmed for r in each] == [False, False, True]
    pooled = retention(_processes(frames))
    assert list(pooled) == [("chat", 10)]
    got = pooled[("chat", 10)]
    for field in ("bytes_per_request", "blocks_per_request", "stderr_bytes", "step_bytes"):
        values = sorted(getattr(r, field) for r in each)
        assert values[0] < values[1] < values[2], field  # the median is told apart
        assert getattr(got, field) == pytest.approx(values[1]), field
    assert got.confirmed


def test_retention_range_is_the_lowest_and_highest_rate_of_one_process() -> None:
    """The range spans the processes' own rates; one process (or no process column) gives a
    range of its single rate."""
    frames = _three_processes_of_leak_runs()
    rates = [retention(f)[("chat", 10)].bytes_per_request for f in frames]
    low, high = retention_range(_processes(frames))[("chat", 10)]
    assert low == pytest.approx(min(rates))
    assert high == pytest.approx(max(rates))
    assert low < high
    assert retention_range(frames[1]) == {("chat", 10): (rates[1], rates[1])}
    assert retention_range(_processes([frames[1]])) == {("chat", 10): (rates[1], rates[1])}


def test_summary_rows_of_two_processes_every_row() -> None:
    """Every row of a two-process probe with leak runs: metric, value, unit, labels. The pooled
    slope is that of the pooled medians; its seen range, and the leak rate's, span the
    processes."""
    first = _requests({("chat", 0): [100, 100], ("chat", 10): [200, 200]}, net=7)
    second = _requests({("chat", 0): [100, 100], ("chat", 10): [400, 400]}, net=7)
    leak_frames = _three_processes_of_leak_runs()[:2]
    checkpoints = _processes(leak_frames)
    rows = summary_rows("lean", _processes([first, second]), checkpoints, size_unit="token")
    assert {(r.design, r.phase) for r in rows} == {("lean", "probe")}
    got = {(r.metric, tuple(sorted(r.labels.items()))): (r.value, r.unit) for r in rows}
    at0 = (("endpoint", "chat"), ("history_len", "0"))
    at10 = (("endpoint", "chat"), ("history_len", "10"))
    chat = (("endpoint", "chat"),)
    pooled = retention(checkpoints)[("chat", 10)]
    rates = sorted(retention(f)[("chat", 10)].bytes_per_request for f in leak_frames)
    assert got == {
        ("alloc_peak_bytes", at0): (100.0, "bytes"),
        ("alloc_net_bytes", at0): (7.0, "bytes"),
        ("alloc_peak_spread_bytes", at0): (0.0, "bytes"),
        ("alloc_peak_low_bytes", at0): (100.0, "bytes"),
        ("alloc_peak_high_bytes", at0): (100.0, "bytes"),
        ("alloc_cv", at0): (0.0, "ratio"),
        ("alloc_peak_bytes", at10): (300.0, "bytes"),
        ("alloc_net_bytes", at10): (7.0, "bytes"),
        ("alloc_peak_spread_bytes", at10): (pytest.approx(100 * MAD_TO_SIGMA), "bytes"),
        ("alloc_peak_low_bytes", at10): (200.0, "bytes"),
        ("alloc_peak_high_bytes", at10): (400.0, "bytes"),
        ("alloc_cv", at10): (
            pytest.approx(coefficient_of_variation([200, 200, 400, 400])),
            "ratio",
        ),
        ("alloc_slope_bytes_per_unit", chat): (pytest.approx(20.0), "bytes/token"),
        ("alloc_slope_low_bytes_per_unit", chat): (pytest.approx(10.0), "bytes/token"),
        ("alloc_slope_high_bytes_per_unit", chat): (pytest.approx(30.0), "bytes/token"),
        ("retained_bytes_per_request", at10): (
            pytest.approx(pooled.bytes_per_request),
            "bytes/request",
        ),
        ("retained_blocks_per_request", at10): (
            pytest.approx(pooled.blocks_per_request),
            "blocks/request",
        ),
        ("retained_stderr_bytes", at10): (pytest.approx(pooled.stderr_bytes), "bytes/request"),
        ("retained_step_bytes", at10): (pytest.approx(pooled.step_bytes), "bytes"),
        ("retained_low_bytes_per_request", at10): (pytest.approx(rates[0]), "bytes/request"),
        ("retained_high_bytes_per_request", at10): (pytest.approx(rates[1]), "bytes/request"),
    }
    assert len(rows) == len(got)
    assert rates[0] < rates[1]


def test_summary_rows_of_one_process_have_a_range_of_its_own_figures() -> None:
    """Without a process column the seen ranges collapse to the figure itself; the slope is per
    message unless told otherwise."""
    requests = _requests({("chat", 0): [100, 100], ("chat", 10): [300, 300]})
    frame = _three_processes_of_leak_runs()[1]
    every = summary_rows("d", requests, frame)
    assert {r.unit for r in every if "slope" in r.metric} == {"bytes/message"}  # the default
    rows = {r.metric: r.value for r in every}
    assert rows["alloc_slope_low_bytes_per_unit"] == pytest.approx(20.0)
    assert rows["alloc_slope_high_bytes_per_unit"] == pytest.approx(20.0)
    rate = retention(frame)[("chat", 10)].bytes_per_request
    assert rows["retained_low_bytes_per_request"] == pytest.approx(rate)
    assert rows["retained_high_bytes_per_request"] == pytest.approx(rate)
