"""The integrity phase finds a message that is gone: one stored message is deleted behind the
server's back (the naive JSON file, the optimized SQLite tables), and the phase must report
exactly that message as lost, for exactly that user, and fail."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path

import pytest
from schema_check import errors

from harness.config import Config, SeedConfig, UpstreamConfig
from harness.phases import FailedWithResults
from harness.phases.integrity import run_integrity_standalone
from harness.results import RunDir
from harness.stack.targets import seed_store
from reference_app.optimized.store import FILENAME as OPTIMIZED_FILE

pytestmark = pytest.mark.integration

SEED = SeedConfig(users=6, whales=1, whale_history=40, seed=5)
CFG = Config(path="test", seed=SEED, upstream=UpstreamConfig(0, 0, 8))


def delete_one_message(design: str, data: Path) -> str:
    """Remove the last message of one user from the store's files; return that user."""
    if design == "naive":
        path = data / "chat_history.json"
        history = json.loads(path.read_text())
        user = sorted(u for u, messages in history.items() if messages)[0]
        history[user].pop()
        path.write_text(json.dumps(history))
        return user
    with contextlib.closing(sqlite3.connect(data / OPTIMIZED_FILE)) as conn, conn:
        (user,) = conn.execute(
            "SELECT user_id FROM users WHERE history_len > 0 ORDER BY user_id LIMIT 1"
        ).fetchone()
        conn.execute(
            "DELETE FROM messages WHERE id = (SELECT MAX(id) FROM messages WHERE user_id = ?)",
            (user,),
        )
        conn.execute("UPDATE users SET history_len = history_len - 1 WHERE user_id = ?", (user,))
    return str(user)


@pytest.mark.parametrize("design", ["naive", "optimized"])
def test_a_deleted_message_is_reported_lost(design: str, tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "runs")
    data = tmp_path / "data"
    seed_store(CFG.target(design), data, SEED, tmp_path / "logs")
    victim = delete_one_message(design, data)

    with pytest.raises(FailedWithResults) as info:
        run_integrity_standalone(run, design, CFG, data=data)

    assert "1 acknowledged messages lost across 1 users" in str(info.value)
    report = json.loads(run.integrity_json(design).read_text())
    assert errors(report, "integrity") == []
    assert report["lost_messages"] == 1
    assert report["lost_by_user"] == {victim: 1}
    assert report["unexpected_messages"] == 0
    assert report["passed"] is False
    lost = {r.metric: r.value for r in info.value.rows}["lost"]
    assert lost == 1.0


def test_an_untouched_store_passes(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "runs")
    data = tmp_path / "data"
    seed_store(CFG.target("optimized"), data, SEED, tmp_path / "logs")
    rows = run_integrity_standalone(run, "optimized", CFG, data=data)
    assert {r.metric: r.value for r in rows}["lost"] == 0.0
    assert json.loads(run.integrity_json("optimized").read_text())["passed"] is True
