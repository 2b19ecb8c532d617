"""The open-model capacity search against a server of known capacity (capacity_apps): real
Locust processes, a real server on 127.0.0.1 that serves one request at a time."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest
from capacity_apps import serial_server

from harness.analysis.capacity import Limits, find_capacity, plan_rates
from harness.load.locust_runner import run_locust
from harness.phases.capacity import (
    LOCUSTFILE_ENV,
    Search,
    SearchResult,
    run_search,
    search_problem,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.serial]

PATH = "/slow"
ENDPOINT = f"GET {PATH}"

# The closed model as Locust users usually "target a rate": each user sends, waits for the
# reply, then waits out the rest of its pacing interval. 3 users x 1 per 0.2 s = 15 req/s.
CLOSED_LOCUSTFILE = f"""
from locust import FastHttpUser, constant_pacing, task

class PacedUser(FastHttpUser):
    wait_time = constant_pacing(0.2)

    @task
    def slow(self):
        self.client.get("{PATH}", name="{ENDPOINT}")
"""


def _p95(stats_csv: Path, kind: str, name: str) -> float:
    stats = pd.read_csv(stats_csv)
    row = stats[(stats["Type"] == kind) & (stats["Name"] == name)]
    assert not row.empty, f"no {kind} {name} row in {stats_csv}"
    return float(row["95%"].iloc[0])


def test_open_model_shows_the_queueing_a_closed_model_hides(tmp_path: Path) -> None:
    service_s = 0.1  # one at a time: the server holds 10 req/s
    rate, step_s = 15.0, 8.0  # 1.5x its capacity: 5 more arrivals a second than it serves
    with serial_server(service_s) as url:
        closed_file = tmp_path / "closed.py"
        closed_file.write_text(textwrap.dedent(CLOSED_LOCUSTFILE), encoding="utf-8")
        closed = run_locust(
            url, str(closed_file), 3, 10, step_s, tmp_path / "closed", tmp_path / "none.json"
        )
        assert closed.ok, closed.problem()
        search = Search(
            rates=(rate,),
            step_s=step_s,
            limits=Limits({ENDPOINT: 1000.0}),
            mix="health",
            health_path=PATH,
        )
        opened = run_search(url, search, tmp_path / "open", tmp_path / "none.json")
    assert opened.locust.ok, opened.locust.problem()

    closed_p95 = _p95(closed.stats_csv, "GET", ENDPOINT)  # type: ignore[arg-type]
    (step,) = opened.steps
    (endpoint,) = step.endpoints
    # The closed users slowed down to what the server serves: each waits for at most the
    # two others, so the server looks fine (p95 <= ~3 service times) while it is overloaded.
    assert closed_p95 <= 4 * service_s * 1000
    # The open model keeps arriving: the queue grows by ~5 requests a second, so requests
    # near the end of the step wait ~(15 - 10) * 8 / 10 = 4 s. Its corrected p95 shows it.
    expected_wait_s = (rate - 1 / service_s) * step_s * service_s
    assert endpoint.p95_ms >= 0.5 * expected_wait_s * 1000
    assert endpoint.p95_ms >= 5 * closed_p95
    assert step.dropped_ratio < 0.05  # the generator kept its schedule: the server queued
    assert opened.capacity.status == "below start"  # and the search says so
    assert "p95" in opened.capacity.reason


def test_search_finds_a_known_capacity_within_one_step(tmp_path: Path) -> None:
    capacity = 20.0  # 50 ms a request, one at a time
    factor = 1.5
    search = Search(
        rates=plan_rates(5.0, factor, 8),  # 5, 7.5, 11.2, 16.9, 25.3, 38, 57, 85
        step_s=6.0,
        limits=Limits({ENDPOINT: 800.0}),
        mix="health",
        health_path=PATH,
    )
    with serial_server(1 / capacity) as url:
        result = run_search(url, search, tmp_path / "search", tmp_path / "none.json")
    assert result.locust.ok, result.locust.problem()
    found = result.capacity
    assert found.status == "knee", found.reason
    # the highest step at or below the true capacity, the knee the first step above it
    assert found.capacity_rps <= capacity < found.capacity_rps * factor
    assert found.knee_rps is not None and found.knee_rps > capacity
    # it stopped at the knee instead of running every step
    assert result.stopped_at_knee and result.steps_run < len(search.rates)
    steps = pd.read_csv(tmp_path / "search" / "capacity_steps.csv")
    assert steps["verdict"].tolist()[: found.capacity_step + 2] == [  # type: ignore[operator]
        *["met"] * (found.capacity_step + 1),  # type: ignore[operator]
        "missed",
    ]


def test_two_locust_processes_share_the_schedule(tmp_path: Path) -> None:
    """--load-workers 2: the master sends the plan; each worker sends half the arrivals."""
    search = Search(
        rates=(20.0, 40.0),
        step_s=5.0,
        limits=Limits({ENDPOINT: 5000.0}),
        arrival="constant",
        mix="health",
        health_path=PATH,
    )
    with serial_server(0.001) as url:
        result = run_search(url, search, tmp_path / "two", tmp_path / "none.json", processes=2)
    assert result.locust.ok, result.locust.problem()
    assert result.timeline["workers"] == 2
    sent = [s.requests + s.dropped for s in result.steps]
    # constant arrivals: exactly rate * step_s between them, not twice that (one schedule each)
    assert sent == [pytest.approx(100, abs=2), pytest.approx(200, abs=2)]
    assert result.capacity.status == "not reached" and result.capacity.capacity_rps == 40.0


def test_locustfile_with_a_taskset_says_why_in_one_line(tmp_path: Path) -> None:
    """A TaskSet keeps state across its tasks: one arrival cannot be one of its tasks."""
    (tmp_path / "tasksets.py").write_text(
        textwrap.dedent(
            """
            from locust import HttpUser, TaskSet, task

            class Browse(TaskSet):
                @task
                def page(self):
                    self.client.get("/")

            class Visitor(HttpUser):
                tasks = [Browse]
            """
        ),
        encoding="utf-8",
    )
    search = Search(rates=(1.0,), step_s=1.0, limits=Limits({}), mix="tasks")
    env = search.env(tmp_path) | {LOCUSTFILE_ENV: str(tmp_path / "tasksets.py")}
    result = run_locust(
        "http://127.0.0.1:9", "capacity_target", 1, 1.0, 1.0, tmp_path, tmp_path / "none.json",
        extra_env=env,
    )  # fmt: skip
    assert not result.ok
    assert "is a TaskSet: one arrival cannot be one task of it" in result.stderr_tail
    nothing = find_capacity([], search.limits)
    problem = search_problem(SearchResult(nothing, [], result, pd.DataFrame(), False))
    assert problem.startswith("the target's locustfile cannot be driven open-model: ")
    assert "\n" not in problem
