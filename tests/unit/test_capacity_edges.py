"""The capacity search's edges that its main tests leave open (found by `make mutation`): exact
bounds of every ratio, the verdict's worst endpoint on each way out, steps with a dropped row
only, empty steps between met ones, the closed load's steady rate, the frames' columns, and the
summary rows in full."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.analysis.capacity import (
    Capacity,
    Limits,
    Step,
    Verdict,
    capacity_rows,
    endpoint_frame,
    find_capacity,
    first_miss,
    judge,
    memory_by_step,
    parse_steps,
    plan_rates,
    steady_rps,
    steps_frame,
)
from harness.analysis.capacity import EndpointStep as E
from harness.results import SummaryRow

LIMITS = Limits({"POST /chat": 1500.0, "GET /history": 250.0}, 0.01, 0.05)


def step(i: int, rate: float, *endpoints: E, dropped: int = 0) -> Step:
    return Step(i, rate, 5.0, tuple(endpoints), dropped)


def chat(n: int = 50, p95: float = 750.0, failures: int = 0) -> E:
    return E("POST /chat", n, failures, p95 / 2, p95, p95 * 1.1)


# --- the schedule --------------------------------------------------------------------------


def test_plan_rates_bounds() -> None:
    assert plan_rates(3, 2, 1) == (3.0,)  # one step is a plan
    for bad in ((0, 2, 3), (1, 2, 0)):
        with pytest.raises(ValueError, match="start_rps > 0, factor > 1 and steps >= 1"):
            plan_rates(*bad)


# --- Locust's rows -------------------------------------------------------------------------


def test_parse_steps_keeps_every_percentile_and_zero_counts() -> None:
    stats = pd.DataFrame(
        {
            "Type": ["OPEN", "DROPPED", "POST", "DROPPED"],
            "Name": [
                "POST /chat @ step 01 (2 req/s)",
                "step 01 (2 req/s)",
                "step 02 (4 req/s)",  # a request row named like a step: not a drop
                "step 03 (8 req/s)",  # a step with drops only
            ],
            "Request Count": [0, 0, 9, 6],
            "Failure Count": [0, 0, 0, 0],
            "50%": [11, 0, 0, 0],
            "95%": [22, 0, 0, 0],
            "99%": [33, 0, 0, 0],
        }
    )
    steps = parse_steps(stats, 5.0)
    assert steps == [
        Step(0, 2.0, 5.0, (E("POST /chat", 0, 0, 11.0, 22.0, 33.0),), 0),
        Step(2, 8.0, 5.0, (), 6),
    ]


# --- verdicts ------------------------------------------------------------------------------


def test_an_empty_step_says_so() -> None:
    assert judge(step(0, 1), LIMITS) == Verdict("empty", "no request of this step finished")


def test_without_a_gated_endpoint_there_is_no_worst() -> None:
    verdict = judge(step(0, 1, E("GET /other", 10, 0, 1, 99999, 99999)), LIMITS)
    assert (verdict.status, verdict.worst_endpoint) == ("met", "")
    assert math.isnan(verdict.worst_ratio)


def test_the_worst_endpoint_is_the_highest_ratio_to_its_objective() -> None:
    # chat 1400/1500 = 0.93, history 240/250 = 0.96: history is closer (its p95 is smaller)
    history = E("GET /history", 20, 0, 100, 240, 245)
    verdict = judge(step(0, 1, chat(p95=1400), history), LIMITS)
    assert (verdict.status, verdict.reason, verdict.worst_endpoint) == ("met", "", "GET /history")
    assert verdict.worst_ratio == pytest.approx(240 / 250)
    # a tie keeps the first endpoint
    tie = Limits({"a": 100.0, "b": 200.0})
    tied = judge(step(0, 1, E("a", 5, 0, 1, 50, 60), E("b", 5, 0, 1, 100, 120)), tie)
    assert (tied.worst_endpoint, tied.worst_ratio) == ("a", 0.5)


def test_each_limit_is_inclusive() -> None:
    # 5 of 100 sends dropped (0.05), 1 of 100 requests failed (0.01), p95 at the objective
    at_drops = judge(step(0, 1, chat(n=95, p95=1500), dropped=5), LIMITS)
    assert at_drops == Verdict("met", "", "POST /chat", 1.0)
    assert judge(step(0, 1, chat(n=100, failures=1)), LIMITS).status == "met"


def test_a_failed_step_still_names_its_worst_endpoint() -> None:
    saturated = judge(step(0, 1, chat(n=90, p95=600), dropped=10), LIMITS)
    assert saturated.status == "saturated"
    assert (saturated.worst_endpoint, saturated.worst_ratio) == ("POST /chat", 0.4)
    errors = judge(step(0, 1, chat(n=100, p95=600, failures=5)), LIMITS)
    assert errors.status == "missed"
    assert (errors.worst_endpoint, errors.worst_ratio) == ("POST /chat", 0.4)


def test_first_miss_includes_the_last_step_and_saturation() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat(p95=3000))]
    assert first_miss(steps, LIMITS, through=1) == 1
    starved = [step(0, 1, chat()), step(1, 2, chat(n=50), dropped=50)]
    assert first_miss(starved, LIMITS, through=1) == 1


# --- the capacity --------------------------------------------------------------------------


def test_capacity_without_steps_or_requests() -> None:
    assert find_capacity([], LIMITS) == Capacity(
        0.0, "no data", "no open-model rows in the statistics"
    )
    empty = [step(0, 1), step(1, 2)]
    assert find_capacity(empty, LIMITS) == Capacity(
        0.0,
        "no data",
        "no step finished a request",
        verdicts=(judge(empty[0], LIMITS), judge(empty[1], LIMITS)),
    )


def test_an_empty_step_between_met_ones_is_skipped() -> None:
    steps = [step(0, 1, chat()), step(1, 2), step(2, 4, chat())]
    found = find_capacity(steps, LIMITS)
    assert found == Capacity(
        4.0,
        "not reached",
        "every step met the objective, up to 4 req/s",
        2,
        verdicts=tuple(judge(s, LIMITS) for s in steps),
    )


def test_the_knee_in_full() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat(p95=3000)), step(2, 4, chat())]
    verdicts = tuple(judge(s, LIMITS) for s in steps)
    assert find_capacity(steps, LIMITS) == Capacity(
        1.0, "knee", f"at 2 req/s: {verdicts[1].reason}", 0, 1, 2.0, verdicts
    )


# --- a closed load's steady rate -----------------------------------------------------------


def test_steady_rps_is_the_median_of_the_second_half_of_aggregated_rates() -> None:
    history = pd.DataFrame(
        {
            "Name": ["Aggregated", "GET /x"] * 6,
            "Requests/s": [0, 999, 0, 999, 1, 999, 10, 999, 20, 999, 30, 999],
        }
    )
    # zeros are the spawn's empty seconds: [1, 10, 20, 30] -> [20, 30]
    assert steady_rps(history) == 25.0
    assert steady_rps(pd.DataFrame({"Requests/s": [1, 5, 9]})) == 7.0  # no Name column
    assert steady_rps(pd.DataFrame({"Requests/s": ["n/a", 4, 6]})) == 6.0  # junk is dropped


@pytest.mark.parametrize(
    "history",
    [
        None,
        pd.DataFrame(),
        pd.DataFrame({"Name": ["Aggregated"], "Total": [3]}),
        pd.DataFrame({"Name": ["Aggregated", "Aggregated"], "Requests/s": [0, 0]}),
    ],
)
def test_steady_rps_without_rates_is_nan(history: pd.DataFrame | None) -> None:
    assert math.isnan(steady_rps(history))


# --- memory per step -----------------------------------------------------------------------


def test_memory_by_step_without_samples_or_times() -> None:
    for samples in (None, pd.DataFrame({"pid": ["total"], "rss_bytes": [1]})):
        memory = memory_by_step(samples, 100.0, 5.0, 2)
        assert memory["step"].tolist() == [0, 1]
        assert memory[["rss_max_bytes", "uss_max_bytes"]].isna().all().all()


def test_memory_by_step_reads_text_cells_and_floors_times() -> None:
    samples = pd.DataFrame(
        {
            "unix_s": ["99.5", "100.5", "101.0", "n/a", "106.0"],
            "pid": ["total"] * 5,
            "rss_bytes": ["900", "9", "30", "1", "7"],  # text: 30 > 9 as numbers only
            "uss_bytes": ["1", "2", "n/a", "4", "5"],
        }
    )
    memory = memory_by_step(samples, 100.0, 5.0, 2)
    # 99.5 s is before the first step (floor of -0.1 is -1), not in step 0
    assert memory["rss_max_bytes"].tolist() == [30.0, 7.0]
    assert memory["uss_max_bytes"].tolist() == [2.0, 5.0]


# --- frames --------------------------------------------------------------------------------


def test_steps_frame_row_in_full() -> None:
    history = E("GET /history", 20, 1, 100, 200, 230)
    frame = steps_frame([step(0, 3, chat(n=40, p95=1000), history, dropped=5)], LIMITS)
    row = frame.to_dict("records")[0]
    assert row == {
        "step": 1,
        "offered_rps": 3.0,
        "achieved_rps": 12.0,
        "requests": 60,
        "failures": 1,
        "error_ratio": 0.0167,
        "dropped": 5,
        "dropped_ratio": 0.0769,
        "held": 0,
        "held_ratio": 0.0,
        "worst_endpoint": "GET /history",
        "p50_ms": 100.0,
        "p95_ms": 200.0,
        "p99_ms": 230.0,
        "p95_objective_ratio": 0.8,
        "verdict": "saturated",
        "reason": "load generator saturated: 8% of sends dropped (> 5%)",
    }
    ratio = steps_frame([step(0, 3, chat(p95=1000))], LIMITS)["p95_objective_ratio"]
    assert ratio.tolist() == [0.667]


def test_steps_frame_memory_is_optional_and_partial() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat())]
    assert "rss_max_bytes" not in steps_frame(steps, LIMITS).columns
    no_rows = pd.DataFrame({"step": [], "rss_max_bytes": [], "uss_max_bytes": []})
    assert "rss_max_bytes" not in steps_frame(steps, LIMITS, no_rows).columns
    assert steps_frame([], LIMITS, no_rows).empty
    first_only = pd.DataFrame({"step": [0], "rss_max_bytes": [10.0], "uss_max_bytes": [5.0]})
    frame = steps_frame(steps, LIMITS, first_only)
    assert frame["step"].tolist() == [1, 2]
    assert frame["rss_max_bytes"].tolist()[0] == 10.0 and math.isnan(frame["rss_max_bytes"][1])


def test_endpoint_frame_rows_in_full() -> None:
    other = E("GET /other", 3, 1, 4.0, 5.0, 6.0)
    frame = endpoint_frame([step(1, 2, chat(n=10, p95=800), other)], LIMITS)
    rows = frame.to_dict("records")
    assert rows[0] == {
        "step": 2,
        "offered_rps": 2.0,
        "endpoint": "POST /chat",
        "requests": 10,
        "failures": 0,
        "p50_ms": 400.0,
        "p95_ms": 800.0,
        "p99_ms": pytest.approx(880.0),
        "objective_p95_ms": 1500.0,
    }
    assert rows[1]["endpoint"] == "GET /other" and math.isnan(rows[1]["objective_p95_ms"])


# --- summary rows --------------------------------------------------------------------------


def test_capacity_rows_in_full() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat(p95=3000))]
    found = find_capacity(steps, LIMITS)
    memory = pd.DataFrame(
        {"step": [0, 1], "rss_max_bytes": [30.0, 50.0], "uss_max_bytes": [20.0, math.nan]}
    )
    limits = Limits({"POST /chat": 1500.0}, default_p95_ms=300.0)
    rows = capacity_rows("naive", "capacity", found, limits, memory, 4.0, ["POST /chat", "GET /x"])
    assert rows == [
        SummaryRow("naive", "capacity", "capacity_rps", 1.0, "req/s"),
        SummaryRow("naive", "capacity", "capacity_lower_bound", 0.0, "bool"),
        SummaryRow("naive", "capacity", "knee_rps", 2.0, "req/s"),
        SummaryRow("naive", "capacity", "objective_p95_ms", 300.0, "ms", {"endpoint": "GET /x"}),
        SummaryRow(
            "naive", "capacity", "objective_p95_ms", 1500.0, "ms", {"endpoint": "POST /chat"}
        ),
        SummaryRow("naive", "capacity", "rss_at_capacity_bytes", 30.0, "bytes"),
        SummaryRow("naive", "capacity", "uss_at_capacity_bytes", 20.0, "bytes"),
        SummaryRow("naive", "capacity", "capacity_ceiling_fraction", 0.25, "ratio"),
    ]


def test_capacity_rows_memory_measured_at_capacity_wins() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat(p95=3000))]
    found = find_capacity(steps, LIMITS)
    memory = pd.DataFrame({"step": [0], "rss_max_bytes": [30.0], "uss_max_bytes": [20.0]})
    at = {"rss_max_bytes": 77.0, "uss_max_bytes": math.nan}
    rows = capacity_rows("d", "capacity", found, LIMITS, memory, at_capacity=at)
    memory_rows = [r for r in rows if r.unit == "bytes"]
    assert memory_rows == [SummaryRow("d", "capacity", "rss_at_capacity_bytes", 77.0, "bytes")]


def test_capacity_rows_without_memory_of_the_capacity_step() -> None:
    steps = [step(0, 1, chat()), step(1, 2, chat()), step(2, 4, chat(p95=3000))]
    found = find_capacity(steps, LIMITS)  # capacity at step 1
    other_step = pd.DataFrame({"step": [0], "rss_max_bytes": [30.0], "uss_max_bytes": [20.0]})
    for memory in (None, other_step):
        rows = capacity_rows("d", "capacity", found, LIMITS, memory)
        assert [r for r in rows if r.unit == "bytes"] == []
    # no default objective: only the named ones, for the endpoints seen
    named = capacity_rows("d", "capacity", found, LIMITS, endpoints=["GET /x", "POST /chat"])
    assert [r.labels for r in named if r.metric == "objective_p95_ms"] == [
        {"endpoint": "POST /chat"}
    ]


def test_steps_frame_without_a_gated_endpoint_and_with_a_fractional_rate() -> None:
    ungated = Step(0, 1.0, 3.0, (E("GET /other", 1, 0, 1.0, 2.0, 3.0),), 0)
    row = steps_frame([ungated], LIMITS).to_dict("records")[0]
    assert row["achieved_rps"] == 0.333  # 1 request in 3 s, to 3 decimals
    assert row["worst_endpoint"] == ""
    assert all(math.isnan(row[c]) for c in ("p50_ms", "p95_ms", "p99_ms", "p95_objective_ratio"))


def test_capacity_rows_memory_measured_at_capacity_in_full() -> None:
    found = find_capacity([step(0, 1, chat())], LIMITS)
    at = {"rss_max_bytes": 77.0, "uss_max_bytes": 55.0}
    rows = capacity_rows("d", "capacity", found, LIMITS, at_capacity=at)
    assert [r for r in rows if r.unit == "bytes"] == [
        SummaryRow("d", "capacity", "rss_at_capacity_bytes", 77.0, "bytes"),
        SummaryRow("d", "capacity", "uss_at_capacity_bytes", 55.0, "bytes"),
    ]
