"""The capacity locustfile, imported in a subprocess (importing locust monkey-patches the
standard library): its user runs only the paced task, its shape follows the plan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import os, time
import scenarios.capacity as c
assert c.OpenModelUser.tasks == [c.OpenModelUser.paced]  # not ChatBehaviour's own tasks
shape = c.CapacityShape()
plan = c.plan_from_env()
assert shape.tick() == (plan.users_for(0), float(plan.users_for(0)))  # before t0: step 1
c.SCHEDULE.start(plan, time.time() - 2.5)  # 2.5 s in: the second step
assert shape.tick() == (plan.users_for(1), float(plan.users_for(1)))
first = c.SCHEDULE.take()
assert first is not None and first[1] == 0
open(plan.stop_file, "w").close()  # the harness saw the knee
assert shape.tick() is None
timeline = __import__("json").load(open(plan.timeline_file))
assert timeline["knee_stop"] is True and timeline["steps_started"] == 2
print("ok")
"""


def test_capacity_locustfile_shape_and_user(tmp_path: Path) -> None:
    plan = {
        "rates": [4.0, 40.0, 400.0],
        "step_s": 2.0,
        "stop_file": str(tmp_path / "knee.stop"),
        "timeline_file": str(tmp_path / "timeline.json"),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHECKS],
        cwd=ROOT,
        env={"HARNESS_CAPACITY_PLAN": json.dumps(plan), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


TARGET_LOCUSTFILE = """
from locust import FastHttpUser, between, task

class ItemsUser(FastHttpUser):
    wait_time = between(0.2, 1.0)

    def on_start(self):
        self.started = True

    @task(3)
    def get_item(self):
        self.client.get("/items/1", name="GET /items/{id}")

    @task(1)
    def list_items(self):
        self.client.get("/items")
"""

TARGET_CHECKS = r"""
import collections, random
import scenarios.capacity_target as t
from scenarios.capacity import OpenModelPacing
from scenarios.open_model import Plan
cls = t.OpenModelItemsUser
assert issubclass(cls, OpenModelPacing) and cls.__name__ == "OpenModelItemsUser"
assert cls.tasks == [OpenModelPacing.paced]  # one task: the schedule's
assert cls.wait_time(None) == 0  # the schedule sets the pace, not the target's wait_time
assert "ItemsUser" not in vars(t)  # Locust must not run the target's own class too
plan = Plan(rates=(1.0,), step_s=1.0, mix="tasks")
picked = collections.Counter()
user = object.__new__(cls)
random.seed(1)
for _ in range(4000):
    name, action = cls.arrival_action(user, plan)
    assert name == ""  # named by its first request
    picked[action.__closure__[0].cell_contents.__name__] += 1
share = picked["get_item"] / sum(picked.values())
assert 0.72 < share < 0.78, share  # @task(3) against @task(1)
print("ok")
"""


def test_target_locustfile_runs_one_weighted_task_per_arrival(tmp_path: Path) -> None:
    (tmp_path / "items.py").write_text(TARGET_LOCUSTFILE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", TARGET_CHECKS],
        cwd=ROOT,
        env={"HARNESS_CAPACITY_LOCUSTFILE": str(tmp_path / "items.py"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_worker_started_apart_builds_the_shape_without_a_plan() -> None:
    """Locust builds the shape in every process; a worker's plan comes in a message."""
    checks = "import scenarios.capacity as c; shape = c.CapacityShape(); print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", checks],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


LATE_CHECKS = r"""
import time, types
import scenarios.capacity as c
from scenarios.open_model import Plan
fired = []
env = types.SimpleNamespace(
    runner=None,
    events=types.SimpleNamespace(request=types.SimpleNamespace(fire=lambda **kw: fired.append(kw))),
)
user = object.__new__(c.OpenModelUser)
user.environment = env
plan = Plan(rates=(10.0,), step_s=5.0, arrival="constant", mix="health")
# every user was busy until 1 s after the first send was due: the server held it
c.SCHEDULE.start(plan, time.time() - 1.0)
user.paced()
assert [f["request_type"] for f in fired] == ["HELD"], fired
assert fired[0]["name"] == "step 01 (10 req/s)" and fired[0]["response_time"] > 900
# free in time, but the generator woke the user 0.3 s late: the generator's drop
fired.clear()
c.SCHEDULE.start(plan, time.time() + 0.05)
c.gevent.sleep = lambda s: time.sleep(s + 0.3)
user.paced()
assert [f["request_type"] for f in fired] == ["DROPPED"], fired
print("ok")
"""


def test_a_late_send_is_held_by_the_server_or_dropped_by_the_generator() -> None:
    done = subprocess.run(
        [sys.executable, "-c", LATE_CHECKS],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
