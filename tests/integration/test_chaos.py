"""`harness chaos` end to end: a real app SIGKILLed under real Locust load, then restarted."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest
from schema_check import check_run_dir

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CONFIG = """
[run]
designs = ["{design}"]
out = "{out}"
[seed]
users = 20
whales = 1
whale_history = 1500
seed = 3
[profiles.quick]
"""


@pytest.mark.parametrize("design", ["naive", "optimized"])
def test_chaos_trial_counts_acknowledged_and_lost(design: str, tmp_path: Path) -> None:
    config = tmp_path / "chaos.toml"
    config.write_text(CONFIG.format(design=design, out=tmp_path / "runs"))
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    code = main(["chaos", "--config", str(config), "--trials", "1", "--duration", "8"])

    (chaos_json,) = (tmp_path / "runs").glob(f"*/{design}/chaos/chaos.json")
    report = json.loads(chaos_json.read_text())
    (trial,) = report["trials"]
    assert trial["acknowledged_exchanges"] > 0
    assert trial["unreadable_users"] == 0
    # The kill happened: another server answered afterwards, the kill fell while Locust ran,
    # and the restarted server acknowledged exchanges.
    assert trial["app_pid_restarted"] != trial["app_pid_killed"]
    assert trial["load_started_unix"] < trial["killed_at_unix"] < trial["load_finished_unix"]
    assert trial["killed_at_unix"] < trial["healthy_again_unix"] < trial["load_finished_unix"]
    assert trial["chat_ok_after_restart"] > 0
    run_json = json.loads(chaos_json.parents[2].joinpath("run.json").read_text())
    assert run_json["status"] == ("failed" if code else "passed")
    assert [(p["design"], p["phase"]) for p in run_json["phases"]] == [(design, "chaos")]
    assert "chaos" in check_run_dir(chaos_json.parents[2]).values()
    # The exit status says whether acknowledged messages were lost, and the count agrees.
    assert code == (1 if trial["lost_messages"] else 0)
    if design == "optimized":
        # committed before acknowledged, WAL: a SIGKILL loses nothing the client saw succeed
        assert trial["lost_messages"] == 0
        assert trial["stored_messages"] >= trial["expected_messages"]
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leftover


def test_a_chaos_run_whose_trial_fails_is_recorded_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An app that cannot start: the trial fails before any load, and run.json must say so.
    monkeypatch.setenv("REFAPP_CONTEXT_WINDOW", "not-a-number")
    config = tmp_path / "chaos.toml"
    config.write_text(CONFIG.format(design="optimized", out=tmp_path / "runs"))
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    code = main(["chaos", "--config", str(config), "--trials", "1", "--duration", "4"])

    assert code != 0
    (run_json,) = (tmp_path / "runs").glob("*/run.json")
    run = json.loads(run_json.read_text())
    assert run["status"] == "failed"
    assert run["finished_at"]
    (phase,) = run["phases"]
    assert (phase["design"], phase["phase"], phase["status"]) == ("optimized", "chaos", "failed")
    assert "REFAPP_CONTEXT_WINDOW" in phase["detail"]
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leftover
