"""What `harness gate` calls for the ledger and the creep check: two functions, so the hook in
harness/cli/gate.py stays a few lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import Config
from harness.gate import Thresholds, parse_threshold
from harness.history._ledger import (
    Finding,
    append_to_ledger,
    creep_findings,
    ledger_path,
    read_ledger,
)
from harness.results import SummaryRow


@dataclass(frozen=True)
class CreepOutcome:
    findings: tuple[Finding, ...]
    action: str  # "warn" or "fail"

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(f.message() for f in self.findings)

    @property
    def failed(self) -> bool:
        return self.action == "fail" and bool(self.findings)


def creep_check(
    cfg: Config, baseline_path: Path, rows: Iterable[SummaryRow], thresholds: Thresholds
) -> CreepOutcome:
    """The current rows against the last `[gate] creep_window` baselines of the ledger."""
    g = cfg.gate
    ledger = read_ledger(ledger_path(baseline_path, g.ledger))
    budget = parse_threshold(g.creep_budget)  # validated by harness.config
    found = creep_findings(ledger, rows, g.creep_window, budget, thresholds)
    return CreepOutcome(tuple(found), g.creep_action)


def record_baseline(cfg: Config, baseline_path: Path, payload: Mapping[str, Any]) -> Path:
    """Append the baseline just written to the ledger; returns the ledger's path."""
    path = ledger_path(baseline_path, cfg.gate.ledger)
    append_to_ledger(path, payload)
    return path
