"""`[target.capacity] arrivals = "recipe"`: the config key, and the locustfile that sends the
probe recipe's requests one per arrival (imported in a subprocess: locust monkey-patches the
standard library)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness._errors import ConfigError
from harness.config import load
from harness.config.target_spec import parse_target
from harness.phases.capacity import RECIPE_ENV, design_search

ROOT = Path(__file__).resolve().parents[2]
BASE = {"name": "svc", "command": "{python} -m svc --port {port}", "health": "/healthz"}
PROBE = {
    "sizes": [0],
    "request": [
        {"name": "one", "method": "GET", "path": "/items/{i}"},
        {"name": "add", "method": "POST", "path": "/items", "json": {"n": "{i}"}},
    ],
}


def test_recipe_arrivals_need_no_scenario(tmp_path: Path) -> None:
    spec = parse_target(
        {**BASE, "capacity": {"arrivals": "recipe"}, "probe": PROBE}, tmp_path / "t.toml", "t[0]"
    )
    assert spec.capacity.arrivals == "recipe" and spec.scenario is None
    assert spec.not_applicable("capacity") == ""
    assert parse_target(dict(BASE), tmp_path / "t.toml", "t[0]").capacity.arrivals == "tasks"


@pytest.mark.parametrize(
    ("table", "key", "says"),
    [
        ({"capacity": {"arrivals": "requests"}}, "capacity.arrivals", "must be one of"),
        ({"capacity": {"arrivals": "recipe"}}, "capacity.arrivals", "add [target.probe]"),
    ],
)
def test_bad_arrivals_name_the_key_and_the_file(
    tmp_path: Path, table: dict[str, object], key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_target({**BASE, **table}, tmp_path / "t.toml", "t[0]")
    assert key in str(caught.value) and "t.toml" in str(caught.value)
    assert says in str(caught.value)


def test_the_cache_example_searches_with_its_recipe() -> None:
    cfg = load(ROOT / "examples" / "cache_service" / "loadtest.toml")
    search = design_search(cfg, "cache")
    assert (search.mix, search.scenario) == ("recipe", "capacity_recipe")
    recipe = json.loads(search.env(Path("/tmp"))[RECIPE_ENV])
    assert [r["path"] for r in recipe["requests"]] == ["/report/{i}", "/rows"]
    assert search.limits.objective_for("GET /report/{i}") == 100.0


CHECKS = r"""
import scenarios.capacity_recipe as r
from scenarios.capacity import OpenModelPacing
from scenarios.open_model import Plan
assert r.RecipeUser.tasks == [OpenModelPacing.paced]
assert [r.request_name(q) for q in r.REQUESTS] == ["GET /items/{i}", "POST /items"]
user = object.__new__(r.RecipeUser)
plan = Plan(rates=(1.0,), step_s=1.0, mix="recipe")
names = [r.RecipeUser.arrival_action(user, plan)[0] for _ in range(4)]
assert names == ["GET /items/{i}", "POST /items"] * 2, names  # in turn, the setup never
print("ok")
"""


def _run(recipe: dict[str, object], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={RECIPE_ENV: json.dumps(recipe), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_each_arrival_sends_the_next_recipe_request(tmp_path: Path) -> None:
    spec = parse_target({**BASE, "probe": PROBE}, tmp_path / "t.toml", "t[0]")
    assert spec.probe is not None
    done = _run(spec.probe.to_json(), CHECKS)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_placeholder_the_search_cannot_fill_says_why(tmp_path: Path) -> None:
    probe = {"sizes": [0], "request": [{"name": "p", "method": "GET", "path": "/{port}/x"}]}
    spec = parse_target({**BASE, "probe": probe}, tmp_path / "t.toml", "t[0]")
    assert spec.probe is not None
    done = _run(spec.probe.to_json(), "import scenarios.capacity_recipe")
    assert done.returncode != 0
    assert "NotDrivable: recipe request 'p' uses {port}" in done.stderr
