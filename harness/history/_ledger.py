"""The baseline ledger (baselines/history.jsonl) and the creep check. Pure, but for the two
functions that read and append the file.

Each `harness gate --update-baseline` appends the accepted baseline as one JSON line: the
baseline payload itself (kind, schema_version, created_at, provenance with git_sha, probe,
rows), so a line is a complete baseline. The file only grows; a reader keeps the order of the
lines, which is the order the baselines were accepted in.

Creep: a series whose current figure exceeds the oldest baseline of the last N by more than a
cumulative budget, although each refresh in between passed the gate. Five changes of +4% each
pass a 10% gate one at a time; the ledger sees +22%.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._errors import EXIT_USAGE, HarnessError
from harness.gate import SeriesKey, Threshold, Thresholds, format_value, gated_rows
from harness.results import SummaryRow

LEDGER_NAME = "history.jsonl"
CREEP_PREFIX = "creep: "
_SHORT_METRIC = {
    "alloc_peak_bytes": "peak",
    "alloc_net_bytes": "net",
    "alloc_slope_bytes_per_unit": "slope",
}


class LedgerError(HarnessError):
    """The ledger cannot be read: a line is not a baseline. Exit 2."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class LedgerEntry:
    line: int  # 1-based line number in the file
    git_sha: str
    created_at: str
    source_run: str
    rows: tuple[SummaryRow, ...]
    python: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)

    def values(self) -> dict[SeriesKey, SummaryRow]:
        return {SeriesKey.of(r): r for r in gated_rows(self.rows) if math.isfinite(r.value)}


def ledger_path(baseline_path: Path, configured: str = "") -> Path:
    """`[gate] ledger` when set, else history.jsonl beside the baseline file."""
    return Path(configured) if configured else Path(baseline_path).parent / LEDGER_NAME


def append_to_ledger(path: Path, baseline_payload: Mapping[str, Any]) -> None:
    """Append one baseline as one line; the line is written in one call and fsynced."""
    line = json.dumps(baseline_payload, separators=(",", ":"), sort_keys=False, default=str)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_ledger(path: Path) -> list[LedgerEntry]:
    """Every baseline in the ledger, oldest first ([] when the file does not exist)."""
    if not path.exists():
        return []
    entries: list[LedgerEntry] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            entries.append(parse_entry(text, f"{path}:{number}", number))
    return entries


def parse_entry(text: str, where: str, line: int = 0) -> LedgerEntry:
    try:
        raw = json.loads(text)
        provenance = raw.get("provenance") or {}
        rows = tuple(SummaryRow.from_json(r) for r in raw["rows"])
        return LedgerEntry(
            line=line,
            git_sha=str(provenance.get("git_sha") or "unknown"),
            created_at=str(raw.get("created_at") or ""),
            source_run=str(provenance.get("source_run") or ""),
            rows=rows,
            python=str(provenance.get("python") or ""),
            packages={str(k): str(v) for k, v in dict(provenance.get("packages") or {}).items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LedgerError(f"{where}: not a baseline line ({exc!r})") from None


# --- creep ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    key: SeriesKey
    unit: str
    reference: float  # the oldest baseline of the window that has the series
    reference_sha: str
    reference_date: str
    current: float
    baselines: int  # how many baselines the window held
    budget: Threshold

    @property
    def change(self) -> float:
        return self.current - self.reference

    @property
    def ratio(self) -> float | None:
        return self.change / abs(self.reference) if self.reference else None

    def message(self) -> str:
        labels = dict(self.key.labels)
        name = " ".join(
            part
            for part in (
                self.key.design,
                labels.get("endpoint", ""),
                _SHORT_METRIC.get(self.key.metric, self.key.metric),
            )
            if part
        )
        if "history_len" in labels:
            name += f" (history {labels['history_len']})"
        ratio = self.ratio
        change = (
            f"{ratio:+.0%}" if ratio is not None else "+" + format_value(self.change, self.unit)
        )
        return (
            f"{CREEP_PREFIX}{name} {change} over the last {self.baselines} baselines "
            f"({format_value(self.reference, self.unit)} at {self.reference_sha} on "
            f"{self.reference_date[:10]} -> {format_value(self.current, self.unit)} now; "
            f"budget {self.budget.describe()}; {self.key})"
        )


def creep_findings(
    ledger: Sequence[LedgerEntry],
    current_rows: Iterable[SummaryRow],
    window: int,
    budget: Threshold,
    thresholds: Thresholds | None = None,
) -> list[Finding]:
    """Series that grew past the budget since the oldest of the last `window` baselines.

    The reference of a series is the oldest baseline in the window that has it. Nothing is
    reported with fewer than 2 baselines in the window (one baseline is the gate's own job).
    With thresholds, a series whose gate threshold is off is skipped and the gate's absolute
    floor for the series applies as well (so noise the gate ignores is not called creep).
    """
    if window < 2 or not budget.enabled:
        return []
    recent = list(ledger)[-window:]
    if len(recent) < 2:
        return []
    findings: list[Finding] = []
    current = {SeriesKey.of(r): r for r in gated_rows(current_rows) if math.isfinite(r.value)}
    indexed = [(entry, entry.values()) for entry in recent]
    for key in sorted(current):
        row = current[key]
        ref = next(((e, values[key]) for e, values in indexed if key in values), None)
        if ref is None:
            continue
        entry, ref_row = ref
        floor = budget.floor
        if thresholds is not None:
            gate_threshold, _rule = thresholds.lookup(key.metric, key.selector_labels())
            if not gate_threshold.enabled:
                continue
            floor = max(floor, gate_threshold.floor)
        reference = ref_row.value
        limit = max(abs(reference) * budget.tolerance, floor)
        if row.value - reference > limit:
            findings.append(
                Finding(
                    key=key,
                    unit=row.unit,
                    reference=reference,
                    reference_sha=entry.git_sha,
                    reference_date=entry.created_at,
                    current=row.value,
                    baselines=len(recent),
                    budget=budget,
                )
            )
    return findings
