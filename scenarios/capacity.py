"""Open-model load for the capacity search: requests arrive on a schedule, not after replies.

Locust is closed-model: each user sends, waits for the reply, then sends again, so a server
stall slows the senders down and the stall is barely sampled (coordinated omission). Here
the users only carry requests: every user takes the next intended send time from a schedule
shared by all users of its process (scenarios.open_model.arrivals), sleeps until then and
sends. The staircase of rates comes from HARNESS_CAPACITY_PLAN (a JSON `Plan`); a master
sends it, with t0 and the worker count, to its workers, each taking 1/N of the arrivals.

What each request reports, besides Locust's own rows (`POST /chat`, ...: the time from the
actual send):

- request_type OPEN, name `<endpoint> @ step 03 (8 req/s)`: the time from the *intended*
  send to the end of the task (a whole stream, every history page), failed when any of its
  requests failed. A stall delays every arrival behind it, and these rows show it.
- request_type DROPPED, name `step 03 (8 req/s)`: a user took the send in time but woke more
  than `late_s` after it (the generator was too busy to run it on time): not sent; its
  "response time" is how late it was. Many of them: the generator, not the server, set the
  pace of that step.
- request_type HELD, same names: no user was free until more than `late_s` after the send's
  time, because every user was waiting for a reply (a user takes the next send as soon as
  its last one is answered): not sent either. The server held rate * in_flight_s requests:
  the step missed, and the generator was not the limit.

The shape holds enough users for the step (rate * in_flight_s) and stops after the last step,
or as soon as the file `stop_file` exists (the harness saw the knee). Users finish their
request on the way out (--stop-timeout), so the last step's slow replies are counted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gevent
from locust import LoadTestShape, constant, events
from locust.env import Environment
from locust.exception import RescheduleTask
from locust.runners import (
    STATE_CLEANUP,
    STATE_STOPPED,
    STATE_STOPPING,
    MasterRunner,
    WorkerRunner,
)

from scenarios.common import CHAT, CHAT_STREAM, HISTORY, ChatBehaviour, next_rng, pools, write_json
from scenarios.open_model import DROPPED, HELD, OPEN, Plan, arrivals, open_name, step_label

__all__ = ["CapacityShape", "OpenModelPacing", "OpenModelUser"]

PLAN_ENV = "HARNESS_CAPACITY_PLAN"
PLAN_MESSAGE = "harness_capacity_plan"  # master -> workers: the plan, t0, the worker count
LEAD_S = 1.0  # t0 is this far after test start: the first users are up by then
MASTER_LEAD_S = 2.5  # with workers: the message and the spawn order travel first
IDLE_S = 0.5  # a user with no arrival left waits this long before it looks again
WHALE_SHARE = 0.2  # the `mixed` pool: one request in five for a whale (the spike's 4:1)
CHAT_MIX = ((CHAT, 3), (CHAT_STREAM, 3), (HISTORY, 2))  # ChatBehaviour's task weights
OUTCOME_KEY = "harness_open_outcome"


class _Schedule:
    """This process's plan, its t0 (unix seconds) and its share of the arrivals."""

    def __init__(self) -> None:
        self.plan: Plan | None = None
        self.t0: float | None = None
        self.workers = 1
        self._slots: Iterator[tuple[float, int]] | None = None

    def start(self, plan: Plan, t0: float, worker_index: int = 0, workers: int = 1) -> None:
        self.plan, self.t0, self.workers = plan, t0, workers
        self._slots = arrivals(plan, worker_index, workers)

    def take(self) -> tuple[float, int] | None:
        """The next (intended unix time, step) of this process, or None when none is left."""
        if self._slots is None or self.t0 is None:
            return None
        slot = next(self._slots, None)
        return None if slot is None else (self.t0 + slot[0], slot[1])


SCHEDULE = _Schedule()


def plan_from_env() -> Plan:
    text = os.environ.get(PLAN_ENV)
    if not text:
        raise RuntimeError(f"{PLAN_ENV} is not set: the capacity locustfile needs a plan")
    return Plan.from_json(text)


def _write_timeline(plan: Plan, t0: float, workers: int, **more: Any) -> None:
    if plan.timeline_file:
        payload = {
            "t0_unix": t0,
            "step_s": plan.step_s,
            "rates": list(plan.rates),
            "workers": workers,
            **more,
        }
        write_json(Path(plan.timeline_file), payload)


@events.init.add_listener
def _receive_plan(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner):
        return

    def on_plan(msg: Any, **_kw: Any) -> None:
        data = dict(msg.data)
        workers = max(1, int(data["workers"]))
        index = int(getattr(runner, "worker_index", 0) or 0) % workers
        SCHEDULE.start(Plan.from_json(data["plan"]), float(data["t0"]), index, workers)

    runner.register_message(PLAN_MESSAGE, on_plan)


@events.test_start.add_listener
def _start_schedule(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return  # the master's message brought the plan
    plan = plan_from_env()
    if isinstance(runner, MasterRunner):
        workers = max(1, runner.worker_count)
        t0 = time.time() + MASTER_LEAD_S
        runner.send_message(PLAN_MESSAGE, {"plan": plan.to_json(), "t0": t0, "workers": workers})
        # the shape's clock; the master itself sends nothing
        SCHEDULE.plan, SCHEDULE.t0, SCHEDULE.workers = plan, t0, workers
    else:
        workers = 1
        t0 = time.time() + LEAD_S
        SCHEDULE.start(plan, t0)
    _write_timeline(plan, t0, workers)


@events.request.add_listener
def _note_request(
    request_type: str = "",
    name: str = "",
    context: dict[str, Any] | None = None,
    exception: Any = None,
    **_kw: Any,
) -> None:
    """The task's first request names its endpoint; any failed request fails the task."""
    outcome = (context or {}).get(OUTCOME_KEY)
    if outcome is None:
        return
    named = name if name.startswith(f"{request_type} ") else f"{request_type} {name}"
    outcome.setdefault("endpoint", named)  # Locust's name, with its method: "GET /items/{id}"
    if exception is not None and outcome.get("error") is None:
        outcome["error"] = exception


class OpenModelPacing:
    """The open model's one task, `paced`, for any Locust user class: take the next intended
    send time, sleep until then, run one action, report the latency from the intended time.

    A subclass says what an arrival runs (`arrival_action`): the chat mix, the health path,
    or one task of a target's own user class. Mixed in before the user class, so that
    `context()` carries the outcome every request of the action reports into.
    """

    environment: Environment
    _outcome: dict[str, Any] | None = None

    def context(self) -> dict[str, Any]:
        own: dict[str, Any] = super().context()  # type: ignore[misc]
        return {**own, OUTCOME_KEY: self._outcome} if self._outcome is not None else own

    def arrival_action(self, plan: Plan) -> tuple[str, Any]:
        """(endpoint name or "" to name it by its first request, the callable to run)."""
        raise NotImplementedError

    def _stopping(self) -> bool:
        runner = self.environment.runner
        return runner is not None and runner.state in (STATE_STOPPING, STATE_STOPPED, STATE_CLEANUP)

    def paced(self) -> None:
        plan = SCHEDULE.plan
        free_at = time.time()  # a user takes the next send as soon as it is free
        slot = SCHEDULE.take()
        if plan is None or slot is None:
            gevent.sleep(IDLE_S)
            return
        intended, step = slot
        wait = intended - time.time()
        if wait > 0:
            gevent.sleep(wait)
        if self._stopping():
            return  # the load ended while this user waited for its slot: not an arrival
        late = time.time() - intended
        if late > plan.late_s:
            # Free only after the send was due: every user was waiting on a reply (HELD, the
            # server's doing). Free in time but woken late: the generator lagged (DROPPED).
            held = free_at - intended > plan.late_s
            self.environment.events.request.fire(
                request_type=HELD if held else DROPPED,
                name=step_label(step, plan.rates[step]),
                response_time=late * 1000,
                response_length=0,
                exception=None,
                context={},
            )
            return
        fire = self.environment.events.request.fire
        rate = plan.rates[step]
        endpoint, action = self.arrival_action(plan)
        outcome: dict[str, Any] = {"error": None}
        if endpoint:
            outcome["endpoint"] = endpoint
        self._outcome = outcome
        try:
            action()
        except RescheduleTask:
            pass  # a task that gives up its turn (locust's interrupt/reschedule) still arrived
        except Exception as exc:  # a task that raised still took its time
            outcome["error"] = outcome["error"] or exc
        finally:
            self._outcome = None
        fire(
            request_type=OPEN,
            name=open_name(str(outcome.get("endpoint") or "task"), step, rate),
            response_time=(time.time() - intended) * 1000,
            response_length=0,
            exception=outcome["error"],
            context={},
        )


class OpenModelUser(OpenModelPacing, ChatBehaviour):
    """Carries the schedule's requests; its only task is `paced` (see the module doc)."""

    abstract = False
    wait_time = constant(0)  # the schedule sets the pace

    def on_start(self) -> None:
        self.rng = next_rng(int(getattr(self.environment.runner, "worker_index", 0) or 0))
        self.sent = 0

    def pick_user(self) -> str:
        known = pools()
        plan = SCHEDULE.plan
        pool = plan.pool if plan is not None else "mixed"
        if pool == "mixed":
            pool = "whales" if self.rng.random() < WHALE_SHARE else "ordinary"
        return self.rng.choice(known.get(pool))

    def arrival_action(self, plan: Plan) -> tuple[str, Any]:
        if plan.mix == "health":
            path = plan.health_path
            return f"GET {path}", lambda: self.client.get(path, name=f"GET {path}")
        names = [name for name, _ in CHAT_MIX]
        weights = [weight for _, weight in CHAT_MIX]
        name = self.rng.choices(names, weights)[0]
        action = {CHAT: self.chat, CHAT_STREAM: self.chat_stream, HISTORY: self.history}[name]
        return name, action


OpenModelUser.tasks = [OpenModelUser.paced]  # not ChatBehaviour's own tasks


class CapacityShape(LoadTestShape):
    """Users for the running step; stop after the last step or when the stop file appears."""

    def __init__(self) -> None:
        super().__init__()
        # Locust builds the shape in every process; a worker started apart has no plan in its
        # environment (its master's message brings it), and only the master ticks.
        self._plan = plan_from_env() if os.environ.get(PLAN_ENV) else None
        self._stopped = False

    def tick(self) -> tuple[int, float] | None:
        plan = SCHEDULE.plan or self._plan
        if plan is None:
            raise RuntimeError(f"{PLAN_ENV} is not set: the capacity locustfile needs a plan")
        t0 = SCHEDULE.t0
        elapsed = time.time() - t0 if t0 is not None else 0.0
        knee = bool(plan.stop_file) and os.path.exists(plan.stop_file)
        if t0 is not None and (knee or elapsed >= plan.duration_s):
            if not self._stopped:
                self._stopped = True
                started = min(len(plan.rates), plan.step_at(elapsed) + 1)
                _write_timeline(
                    plan,
                    t0,
                    SCHEDULE.workers,
                    stopped_unix=time.time(),
                    steps_started=started,
                    knee_stop=knee,
                )
            return None
        # The step's users, spawned within a second: at the step's start few are busy yet.
        users = plan.users_for(plan.step_at(elapsed))
        return users, float(users)
