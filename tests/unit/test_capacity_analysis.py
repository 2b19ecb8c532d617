"""The capacity search's pure parts: the open-model schedule, the step rows Locust writes,
the verdicts, the capacity and its summary rows, and the [capacity] config."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from config_helpers import error_of, write

from harness import config
from harness.analysis.capacity import EndpointStep as E
from harness.analysis.capacity import (
    Limits,
    Step,
    capacity_rows,
    find_capacity,
    first_miss,
    judge,
    memory_by_step,
    parse_steps,
    plan_rates,
    steps_frame,
)
from scenarios.open_model import Plan, arrivals, open_name, step_label

LIMITS = Limits({"POST /chat": 1500.0, "GET /history": 250.0}, 0.01, 0.05)


def step(i: int, rate: float, *endpoints: E, dropped: int = 0, held: int = 0) -> Step:
    return Step(i, rate, 5.0, tuple(endpoints), dropped, held)


def ok(n: int = 50, p95: float = 700.0) -> E:
    return E("POST /chat", n, 0, p95 / 2, p95, p95 * 1.1)


# --- the schedule ------------------------------------------------------------------------------


def test_poisson_arrivals_follow_the_staircase() -> None:
    plan = Plan(rates=(10.0, 40.0), step_s=20.0, seed=3)
    slots = list(arrivals(plan))
    per_step = [sum(1 for _t, s in slots if s == i) for i in range(2)]
    # Poisson counts: mean rate*step_s, sd sqrt of it; 5 sd of slack
    assert abs(per_step[0] - 200) < 5 * math.sqrt(200)
    assert abs(per_step[1] - 800) < 5 * math.sqrt(800)
    times = [t for t, _s in slots]
    assert times == sorted(times) and times[0] >= 0 and times[-1] < 40.0
    assert list(arrivals(plan)) == slots  # seeded: the same schedule every time


def test_workers_share_the_arrivals() -> None:
    plan = Plan(rates=(12.0, 30.0), step_s=10.0, arrival="constant")
    alone = sorted(t for t, _s in arrivals(plan))
    shared = sorted(t for k in range(3) for t, _s in arrivals(plan, k, 3))
    assert len(alone) == len(shared) == 120 + 300
    assert shared == pytest.approx(alone, abs=1e-9)  # k of 3 takes every third arrival
    poisson = Plan(rates=(30.0,), step_s=20.0)
    split = [len(list(arrivals(poisson, k, 2))) for k in range(2)]
    assert split[0] != split[1] or list(arrivals(poisson, 0, 2)) != list(arrivals(poisson, 1, 2))
    assert abs(sum(split) - 600) < 5 * math.sqrt(600)


def test_plan_users_names_and_json() -> None:
    plan = Plan(rates=(1.0, 50.0, 900.0), step_s=5.0)
    assert plan.users_for(0) == 10  # min_users
    assert plan.users_for(1) == 250  # 50 req/s * 5 s in flight
    assert plan.users_for(7) == 1000  # past the end: the last step's, capped
    assert plan.step_at(-1) == 0 and plan.step_at(5.0) == 1 and plan.step_at(99) == 3
    assert Plan.from_json(plan.to_json()) == plan
    assert open_name("POST /chat", 2, 8.5) == "POST /chat @ step 03 (8.5 req/s)"
    assert step_label(0, 2) == "step 01 (2 req/s)"
    with pytest.raises(ValueError):
        Plan(rates=(), step_s=1)
    with pytest.raises(ValueError):
        Plan(rates=(1.0,), step_s=1, arrival="bursty")


def test_plan_rates() -> None:
    assert plan_rates(0.5, 2, 4) == (0.5, 1.0, 2.0, 4.0)
    assert plan_rates(2, 1.7, 3) == (2.0, 3.4, 5.78)
    with pytest.raises(ValueError):
        plan_rates(1, 1.0, 3)


# --- Locust's rows -> steps -> verdicts ---------------------------------------------------


def test_parse_steps_from_locust_rows() -> None:
    stats = pd.DataFrame(
        {
            "Type": ["POST", "OPEN", "OPEN", "OPEN", "DROPPED", "HELD", None],
            "Name": [
                "POST /chat",
                open_name("POST /chat", 0, 2),
                open_name("GET /history", 0, 2),
                open_name("POST /chat", 1, 3.4),
                step_label(1, 3.4),
                step_label(1, 3.4),
                "Aggregated",
            ],
            "Request Count": [30, 12, 8, 15, 2, 3, 70],
            "Failure Count": [0, 1, 0, 0, 0, 0, 1],
            "50%": [600, 650, 40, 900, 300, 300, 600],
            "95%": [700, 720, 90, 1900, 400, 400, 900],
            "99%": [800, 800, 120, 2100, 400, 400, 1000],
        }
    )
    steps = parse_steps(stats, 5.0)
    assert [(s.index, s.offered_rps, s.requests, s.dropped, s.held) for s in steps] == [
        (0, 2.0, 20, 0, 0),
        (1, 3.4, 15, 2, 3),
    ]
    assert steps[0].failures == 1 and steps[0].achieved_rps == 4.0
    assert steps[1].dropped_ratio == pytest.approx(2 / 20)
    assert steps[1].held_ratio == pytest.approx(3 / 20)
    assert parse_steps(None, 5.0) == [] and parse_steps(stats.iloc[:1], 5.0) == []


def test_judge_each_way_a_step_can_fail() -> None:
    assert judge(step(0, 1, ok(), E("GET /history", 20, 0, 30, 200, 240)), LIMITS).status == "met"
    slow = judge(step(0, 1, ok(p95=1600)), LIMITS)
    assert slow.status == "missed" and "POST /chat p95 1,600 ms > 1,500 ms" in slow.reason
    assert slow.worst_endpoint == "POST /chat" and slow.worst_ratio == pytest.approx(1600 / 1500)
    errors = judge(step(0, 1, E("POST /chat", 100, 2, 1, 2, 3)), LIMITS)
    assert errors.status == "missed" and "2.0% of requests failed" in errors.reason
    # drops first: a starved generator's latencies prove nothing either way
    starved = judge(step(0, 1, ok(p95=9000), dropped=10), LIMITS)
    assert starved.status == "saturated" and "load generator saturated" in starved.reason
    assert judge(step(0, 1), LIMITS).status == "empty"
    # held sends (every user waited on a reply): the server missed, not the generator
    held = judge(step(0, 1, ok(n=95), held=5), LIMITS)
    assert held.status == "missed" and "found every user waiting on a reply" in held.reason
    assert judge(step(0, 1, ok(n=995), held=5), LIMITS).status == "met"  # 0.5% <= 1%
    both = judge(step(0, 1, ok(n=80), dropped=10, held=10), LIMITS)
    assert both.status == "saturated"  # drops first: the generator lagged as well
    ungated = E("GET /other", 10, 0, 1, 99999, 99999)  # no objective: reported, not judged
    assert judge(step(0, 1, ok(), ungated), LIMITS).status == "met"


def test_capacity_is_the_last_step_before_the_knee() -> None:
    steps = [step(0, 1, ok()), step(1, 2, ok()), step(2, 4, ok(p95=2000)), step(3, 8, ok())]
    found = find_capacity(steps, LIMITS)
    assert (found.capacity_rps, found.status, found.knee_rps) == (2.0, "knee", 4.0)
    assert found.capacity_step == 1 and not found.lower_bound
    assert first_miss(steps, LIMITS, through=1) is None
    assert first_miss(steps, LIMITS, through=3) == 2


def test_capacity_without_a_knee_is_a_lower_bound() -> None:
    everything = find_capacity([step(0, 1, ok()), step(1, 2, ok())], LIMITS)
    assert (everything.capacity_rps, everything.status, everything.lower_bound) == (
        2.0,
        "not reached",
        True,
    )
    starved = find_capacity([step(0, 1, ok()), step(1, 2, ok(), dropped=20)], LIMITS)
    assert (starved.capacity_rps, starved.status, starved.lower_bound) == (1.0, "saturated", True)
    held = find_capacity([step(0, 1, ok()), step(1, 2, ok(), held=20)], LIMITS)
    assert (held.capacity_rps, held.status, held.knee_rps, held.lower_bound) == (
        1.0,
        "knee",
        2.0,
        False,
    )
    below = find_capacity([step(0, 1, ok(p95=5000))], LIMITS)
    assert (below.capacity_rps, below.status) == (0.0, "below start")
    assert find_capacity([], LIMITS).status == "no data"


def test_memory_steps_and_rows() -> None:
    samples = pd.DataFrame(
        {
            "unix_s": [99.0, 100.5, 101.0, 104.0, 106.0, 106.0, 116.0],
            "pid": ["total", "total", "total", "total", "total", "7", "total"],
            "rss_bytes": [1, 10, 30, 20, 50, 999, 70],
            "uss_bytes": [1, 5, 6, 7, 8, 999, 9],
        }
    )
    memory = memory_by_step(samples, t0_unix=100.0, step_s=5.0, steps=3)
    assert memory["rss_max_bytes"].tolist()[:2] == [30, 50]
    assert math.isnan(memory["rss_max_bytes"].iloc[2])  # 116 s is past the third step
    steps = [step(0, 1, ok()), step(1, 2, ok(p95=3000))]
    found = find_capacity(steps, LIMITS)
    rows = {
        (r.metric, tuple(r.labels.items())): r.value
        for r in capacity_rows("naive", "capacity", found, LIMITS, memory, 4.0, ["POST /chat"])
    }
    assert rows[("capacity_rps", ())] == 1.0
    assert rows[("knee_rps", ())] == 2.0
    assert rows[("capacity_lower_bound", ())] == 0.0
    assert rows[("rss_at_capacity_bytes", ())] == 30
    assert rows[("capacity_ceiling_fraction", ())] == 0.25
    assert rows[("objective_p95_ms", (("endpoint", "POST /chat"),))] == 1500
    assert ("objective_p95_ms", (("endpoint", "GET /history"),)) not in rows
    frame = steps_frame(steps, LIMITS, memory)
    assert frame["verdict"].tolist() == ["met", "missed"]
    assert frame["rss_max_bytes"].tolist() == [30, 50]


# --- [capacity] in loadtest.toml --------------------------------------------------------------


def test_capacity_config_defaults_and_errors(tmp_path: Path) -> None:
    cfg = config.load(Path(__file__).resolve().parents[2] / "loadtest.toml")
    assert cfg.capacity.objectives_p95_ms["GET /history"] == 250
    assert "capacity" in cfg.profile.phases and cfg.profile.capacity_max_steps >= 5
    base = '[profiles.quick]\nphases = ["capacity"]\n'
    text = base + '[capacity]\nstart_rps = 1\n[capacity.objectives_p95_ms]\n"GET /x" = 80\n'
    mine = config.load(write(tmp_path, text))
    assert mine.capacity.objectives_p95_ms["GET /x"] == 80
    assert mine.capacity.objectives_p95_ms["POST /chat"] == 1500  # defaults kept
    for bad, key in (
        ('[capacity]\narrival = "bursty"', "capacity.arrival"),
        ("[capacity]\nmax_error_ratio = 1.5", "capacity.max_error_ratio"),
        ('[capacity.objectives_p95_ms]\n"GET /x" = 0', "capacity.objectives_p95_ms.GET /x"),
        ("[capacity]\nstep = 3", "capacity.step"),
    ):
        assert error_of(write(tmp_path, base + bad)).key == key
    factor = base + "capacity_step_factor = 1.0"
    assert error_of(write(tmp_path, factor)).key == "profiles.quick.capacity_step_factor"


def test_capacity_command_bad_flag_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    code = main(["capacity", "--step-factor", "1", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "capacity_step_factor: must be > 1" in err
    assert err.count("\n") == 1
    assert not list(tmp_path.iterdir())  # nothing started, nothing written


def test_memory_by_step_without_a_start_or_with_sparse_columns() -> None:
    import math

    import pandas as pd

    from harness.analysis.capacity import memory_by_step

    samples = pd.DataFrame(
        {
            "unix_s": [100.5, 101.5, 106.0],
            "pid": ["total", "total", "total"],
            "rss_bytes": [10, 30, 20],
            "uss_bytes": [5, "", 7],  # USS is read only every few samples
        }
    )
    unknown = memory_by_step(samples, math.nan, 5.0, 2)
    assert unknown["step"].tolist() == [0, 1] and unknown["rss_max_bytes"].isna().all()
    known = memory_by_step(samples, 100.0, 5.0, 2)
    assert known["rss_max_bytes"].tolist() == [30, 20]
    assert known["uss_max_bytes"].tolist() == [5, 7]
