"""When requests fail, the console, run.json and the report say what the server said.

`harness loadtest` on tests/data/failing_service: "flaky" raises sqlite3.OperationalError on
one request in two (the load passes, with a warning naming the exception and its count),
"broken" on every one (load and profile both fail, and their detail names it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(240)]

CONFIG = Path(__file__).resolve().parents[1] / "data" / "failing_service" / "loadtest.toml"
LOCKED = "sqlite3.OperationalError: database is locked"


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_failed_requests_show_the_servers_exceptions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["loadtest", "--config", str(CONFIG), "--out", str(tmp_path)])
    console = capsys.readouterr().out
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir() and not p.is_symlink()]
    run = read(run_dir / "run.json")
    phases = {(p["design"], p["phase"]): p for p in run["phases"]}
    assert code == 1

    # flaky: half failed; the load passed, with the server's exception in a warning
    assert phases[("flaky", "load")]["status"] == "passed"
    (warning,) = [w for w in run["warnings"] if w["design"] == "flaky" and LOCKED in w["message"]]
    assert "requests failed; over the phase the server logged" in warning["message"]
    flaky = read(run_dir / "flaky" / "load" / "server_errors.json")
    (exc,) = flaky["exceptions"]
    assert exc["type"] == "sqlite3.OperationalError" and exc["message"] == "database is locked"
    # the server also logs requests still in flight when Locust stopped counting
    assert exc["count"] >= flaky["locust"]["failures"] > 0
    assert exc["first_traceback"].endswith(LOCKED)
    assert 'failing_app.py", line' in exc["first_traceback"]
    assert phases[("flaky", "profile")]["status"] == "passed"

    # broken: every request failed, so both phases failed, and say why
    for phase in ("load", "profile"):
        record = phases[("broken", phase)]
        assert record["status"] == "failed", record
        assert record["detail"].startswith("every request failed"), record["detail"]
        assert LOCKED in record["detail"]
        data = read(run_dir / "broken" / phase / "server_errors.json")
        assert data["locust"]["failures"] == data["locust"]["requests"] > 0
        assert data["exceptions"][0]["count"] >= data["locust"]["failures"]
    assert LOCKED in console

    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "## What the server said" in report
    assert f"× {LOCKED}" in report
    assert "**broken load**" in report and "**flaky load**" in report
