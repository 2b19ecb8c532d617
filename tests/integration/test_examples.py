"""The examples under examples/ (an ASGI items service, a Flask notes service on SQLite) run
through `harness loadtest --config examples/<name>/loadtest.toml --profile tiny`: real
servers (the Flask one through harness.serve's WSGI adapter), real Locust, a few seconds each.

The Flask example's database is `env = { NOTES_DB = "{data_dir}/notes.db" }`: its requests
succeed only if the harness filled the placeholder in the env value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("example", "target"), [("items_service", "items"), ("flask_service", "notes")]
)
def test_the_load_phase_runs_on_each_example(tmp_path: Path, example: str, target: str) -> None:
    config = EXAMPLES / example / "loadtest.toml"
    code = main(["loadtest", "--config", str(config), "--profile", "tiny", "--out", str(tmp_path)])
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    run = read(run_dir / "run.json")
    assert code == 0, json.dumps(run["phases"], indent=1)
    assert run["status"] == "passed"
    assert {(p["design"], p["phase"]) for p in run["phases"]} >= {(target, "load")}
    figures = {
        r["metric"]: r["value"] for r in read(run_dir / "summary.json") if r["phase"] == "load"
    }
    assert figures["requests"] > 0
    assert figures["failures"] == 0
    assert figures["rss_peak_bytes"] > 0
    if example == "flask_service":
        assert (run_dir / target / "data" / "notes.db").is_file()  # {data_dir} was filled
