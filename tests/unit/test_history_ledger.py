"""The baseline ledger and the creep check (harness.history._ledger)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from history_helpers import baseline_payload, rows

from harness.gate import compile_thresholds, parse_threshold
from harness.history import (
    LedgerError,
    append_to_ledger,
    creep_findings,
    ledger_path,
    read_ledger,
)

CHAT = ("optimized", "chat", "1000")
HIST = ("optimized", "history", "1000")


def ledger_of(tmp_path: Path, values: list[float], other: float = 50_000.0) -> Path:
    path = tmp_path / "baselines" / "history.jsonl"
    for i, value in enumerate(values):
        payload = baseline_payload(
            {CHAT: value, HIST: other}, f"sha{i:04d}", f"2026-11-{i + 1:02d}T00:00:00+00:00"
        )
        append_to_ledger(path, payload)
    return path


def test_append_then_read_keeps_order_and_one_line_per_baseline(tmp_path: Path) -> None:
    path = ledger_of(tmp_path, [100.0, 110.0, 120.0])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert json.loads(lines[1])["kind"] == "memload-gate-baseline"
    entries = read_ledger(path)
    assert [e.git_sha for e in entries] == ["sha0000", "sha0001", "sha0002"]
    assert [e.line for e in entries] == [1, 2, 3]
    assert [r.value for r in entries[2].rows if r.labels["endpoint"] == "chat"] == [120.0]


def test_a_missing_ledger_is_empty_and_a_bad_line_names_file_and_line(tmp_path: Path) -> None:
    assert read_ledger(tmp_path / "none.jsonl") == []
    path = ledger_of(tmp_path, [100.0])
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"rows": "not rows"\n')
    with pytest.raises(LedgerError, match=r"history\.jsonl:2: not a baseline line"):
        read_ledger(path)


def test_ledger_path_defaults_beside_the_baseline() -> None:
    assert ledger_path(Path("baselines/ci.json")) == Path("baselines/history.jsonl")
    assert ledger_path(Path("baselines/ci.json"), "x/ledger.jsonl") == Path("x/ledger.jsonl")


def test_creep_of_small_accepted_steps_is_flagged_against_the_oldest_in_the_window(
    tmp_path: Path,
) -> None:
    # five refreshes of +4% each: every one passes a 10% gate against the one before
    values = [100_000.0 * 1.04**k for k in range(5)]
    entries = read_ledger(ledger_of(tmp_path, values))
    current = rows({CHAT: 100_000.0 * 1.04**5, HIST: 50_000.0})
    found = creep_findings(entries, current, window=10, budget=parse_threshold("+15%"))
    assert [str(f.key) for f in found] == [
        "alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}"
    ]
    finding = found[0]
    assert finding.reference == 100_000.0 and finding.reference_sha == "sha0000"
    assert finding.ratio == pytest.approx(1.04**5 - 1)
    assert finding.message().startswith(
        "creep: optimized chat peak (history 1000) +22% over the last 5 baselines"
    )


def test_the_window_moves_the_reference(tmp_path: Path) -> None:
    values = [100_000.0 * 1.04**k for k in range(5)]
    entries = read_ledger(ledger_of(tmp_path, values))
    current = rows({CHAT: 100_000.0 * 1.04**5, HIST: 50_000.0})
    # the last 3 baselines start at 1.04^2: +12.5% < 15%
    assert creep_findings(entries, current, window=3, budget=parse_threshold("+15%")) == []
    assert creep_findings(entries, current, window=1, budget=parse_threshold("+1%")) == []


def test_one_baseline_or_a_budget_off_reports_nothing(tmp_path: Path) -> None:
    current = rows({CHAT: 200_000.0, HIST: 50_000.0})
    one = read_ledger(ledger_of(tmp_path / "a", [100_000.0]))
    assert creep_findings(one, current, 10, parse_threshold("+15%")) == []
    two = read_ledger(ledger_of(tmp_path / "b", [100_000.0, 100_000.0]))
    assert len(creep_findings(two, current, 10, parse_threshold("+15%"))) == 1
    assert creep_findings(two, current, 10, parse_threshold("off")) == []


def test_the_gate_floor_and_an_off_threshold_apply(tmp_path: Path) -> None:
    entries = read_ledger(ledger_of(tmp_path, [10_000.0, 10_000.0]))
    current = rows({CHAT: 13_000.0, HIST: 50_000.0})  # +30%, but only 3000 bytes
    budget = parse_threshold("+15%")
    assert len(creep_findings(entries, current, 10, budget)) == 1
    floor = compile_thresholds({}, "+10% floor 16KiB")
    assert creep_findings(entries, current, 10, budget, floor) == []
    off = compile_thresholds({"alloc_peak_bytes{endpoint=chat}": "off"}, "+10%")
    assert creep_findings(entries, current, 10, budget, off) == []
