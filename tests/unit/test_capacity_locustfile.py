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
