"""`arrivals = "recipe"`: the open-model search sends a probe recipe's requests, one per
arrival, in turn, against a real server on 127.0.0.1 (real Locust, one short step)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from capacity_apps import serial_server

from harness.analysis.capacity import Limits
from harness.config.target_spec import parse_target
from harness.phases.capacity import Search, run_search

pytestmark = pytest.mark.integration

PROBE = {
    "sizes": [0],
    "setup": {"method": "PUT", "path": "/setup", "json": {"n": "{size}"}},
    "request": [
        {"name": "a", "method": "GET", "path": "/a/{i}"},
        {"name": "b", "method": "POST", "path": "/b", "json": {"user": "{user}"}},
    ],
}


def test_the_recipe_s_requests_arrive_in_turn(tmp_path: Path) -> None:
    spec = parse_target(
        {"name": "svc", "command": "x {port}", "probe": PROBE, "capacity": {"arrivals": "recipe"}},
        tmp_path / "t.toml",
        "target[0]",
    )
    assert spec.probe is not None
    search = Search(
        rates=(10.0,),
        step_s=2.0,
        limits=Limits({}, default_p95_ms=500.0),
        arrival="constant",
        mix="recipe",
        recipe=json.dumps(spec.probe.to_json()),
    )
    with serial_server(0.001) as url:
        result = run_search(url, search, tmp_path / "run", tmp_path / "none.json")
    assert result.locust.ok, result.locust.problem()
    (step,) = result.steps
    by_endpoint = {e.endpoint: e.requests for e in step.endpoints}
    # 20 constant arrivals, alternating; the setup request is not one of them
    assert set(by_endpoint) == {"GET /a/{i}", "POST /b"}
    assert by_endpoint["GET /a/{i}"] == pytest.approx(10, abs=1)
    assert by_endpoint["POST /b"] == pytest.approx(10, abs=1)
    assert step.failures == 0 and result.capacity.status == "not reached"
