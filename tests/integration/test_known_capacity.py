"""`harness capacity` on a service of known capacity, through its own target file and its own
locustfile: one `GET /work` at a time, S each on the wall clock (capacity_apps.py, a process
of its own), so it serves 1/S req/s. With constant arrivals nothing queues below 1/S and the
queue grows without bound above it: the search's figure must be within 10% of 1/S (the knee
refined by bisection), at S = 50 ms (20 req/s) and S = 16 ms (62.5 req/s).

Slow (a staircase and three refinements, ~1.5 min each): marked e2e.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.serial]

APP = Path(__file__).resolve().parent / "capacity_apps.py"

LOCUSTFILE = """
from locust import FastHttpUser, between, task

class WorkUser(FastHttpUser):
    wait_time = between(0.5, 1.5)  # ignored by the open model: the schedule sets the pace

    @task
    def work(self):
        self.client.get("/work", name="GET /work")
"""


def target_file(tmp_path: Path, service_ms: float, arrival: str) -> Path:
    (tmp_path / "locustfile.py").write_text(textwrap.dedent(LOCUSTFILE), encoding="utf-8")
    toml = f"""
    [run]
    designs = ["known"]
    profile = "known"

    [[target]]
    name = "known"
    command = ["{{python}}", "{APP}", "--port", "{{port}}", "--service-ms", "{service_ms:g}"]
    health = "/work"
    scenario = "locustfile.py"

    [target.capacity]
    objectives_p95_ms = {{ "GET /work" = 500 }}
    start_rps = 5

    [capacity]
    arrival = "{arrival}"

    [profiles.known]
    phases = ["capacity"]
    capacity_step_s = 5
    capacity_step_factor = 1.7
    capacity_max_steps = 8
    capacity_max_s = 150
    capacity_precision = 0.1
    """
    path = tmp_path / "loadtest.toml"
    path.write_text(textwrap.dedent(toml), encoding="utf-8")
    return path


def capacity_rows(out: Path) -> dict[str, float]:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    rows = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return {
        r["metric"]: r["value"]
        for r in rows
        if r["design"] == "known" and r["phase"] == "capacity" and not r["labels"]
    }


@pytest.mark.timeout(300)
@pytest.mark.parametrize("service_ms", [50.0, 16.0])
def test_capacity_of_a_known_server_within_ten_percent(tmp_path: Path, service_ms: float) -> None:
    out = tmp_path / "reports"
    config = target_file(tmp_path, service_ms, "constant")
    code = main(["capacity", "--config", str(config), "--out", str(out), "--no-ceiling"])
    assert code == 0
    rows = capacity_rows(out)
    true_capacity = 1000.0 / service_ms
    assert rows["capacity_lower_bound"] == 0  # a knee, not "at least"
    assert rows["refinements"] >= 1
    assert rows["knee_bracket_ratio"] <= 1.1 + 1e-9
    # the knee is above the true capacity and the capacity within 10% under it
    assert rows["knee_rps"] > true_capacity * 0.98
    assert rows["capacity_rps"] == pytest.approx(true_capacity, rel=0.1)
