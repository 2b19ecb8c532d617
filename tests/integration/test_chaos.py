"""`harness chaos` end to end: a real app SIGKILLed under real Locust load, then restarted."""

from __future__ import annotations

import json
from pathlib import Path

import psutil
import pytest

from harness.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.slow]

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
    # The exit status says whether acknowledged messages were lost, and the count agrees.
    assert code == (1 if trial["lost_messages"] else 0)
    if design == "optimized":
        # committed before acknowledged, WAL: a SIGKILL loses nothing the client saw succeed
        assert trial["lost_messages"] == 0
        assert trial["stored_messages"] >= trial["expected_messages"]
    leftover = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not leftover
