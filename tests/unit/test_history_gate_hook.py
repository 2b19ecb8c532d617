"""The gate's ledger hook: --update-baseline appends to history.jsonl; the creep check warns,
or fails with creep_action = "fail". End to end on fabricated run directories (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import error_of, write
from test_gate_cli import make_run, rows

from harness.cli import main
from harness.history import read_ledger

REPO = Path(__file__).resolve().parents[2]
BASE = (REPO / "loadtest.toml").read_text(encoding="utf-8")


def config(tmp_path: Path, extra: str) -> Path:
    """loadtest.toml with extra keys at the top of its [gate] table."""
    lines = BASE.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("[gate]"))
    return write(tmp_path, "\n".join([*lines[: at + 1], extra, *lines[at + 1 :]]), "gate.toml")


def gate(cfg: Path, baseline: Path, run: Path, *args: str) -> int:
    return main(["gate", "--config", str(cfg), "--baseline", str(baseline), "--run", str(run),
                 *args])  # fmt: skip


def test_update_baseline_appends_to_the_ledger_and_creep_fails_when_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config(tmp_path, 'creep_budget = "+10%"\ncreep_action = "fail"\ncreep_window = 10')
    baseline = tmp_path / "baselines" / "ci.json"
    # three accepted baselines, +4% each: each passes the 5% gate against the one before
    for i, value in enumerate((200_000.0, 208_000.0, 216_320.0)):
        run = make_run(tmp_path, rows(chat_1000=value), name=f"b{i}")
        assert gate(cfg, baseline, run, "--update-baseline") == 0
    ledger = tmp_path / "baselines" / "history.jsonl"
    assert [len(e.rows) for e in read_ledger(ledger)] == [36, 36, 36]
    assert f"appended it to {ledger}: commit it too" in capsys.readouterr().out

    now = make_run(tmp_path, rows(chat_1000=224_973.0), name="now")  # +4% on the last: a pass
    assert gate(cfg, baseline, now) == 1
    out = capsys.readouterr().out
    assert "creep: optimized chat peak (history 1000) +12% over the last 3 baselines" in out
    assert "creep over budget" in out


def test_creep_only_warns_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, 'creep_budget = "+5%"')
    baseline = tmp_path / "ci.json"
    for i, value in enumerate((200_000.0, 208_000.0)):
        assert (
            gate(cfg, baseline, make_run(tmp_path, rows(value), f"b{i}"), "--update-baseline") == 0
        )
    assert gate(cfg, baseline, make_run(tmp_path, rows(chat_1000=216_320.0), "now")) == 0
    out = capsys.readouterr().out
    assert "creep: optimized chat peak (history 1000) +8% over the last 2 baselines" in out


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('creep_budget = "15"', "gate.creep_budget"),
        ('creep_action = "stop"', "gate.creep_action"),
        ("creep_window = -1", "gate.creep_window"),
        ('ledger = ""', "gate.ledger"),
    ],
)
def test_bad_creep_settings_name_the_file_and_key(tmp_path: Path, line: str, key: str) -> None:
    err = error_of(config(tmp_path, line))
    assert err.key == key and err.path.endswith("gate.toml")
