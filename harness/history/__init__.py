"""Memory over commit history: the trend page, the baseline ledger and the creep check.

- `build_history(paths, ledger=..., repo=...)` reads many run directories (and a ledger of
  baselines), orders them by commit and detects steps; `render_history(history, out_dir)`
  writes history.html (self-contained), history.md, history.json and history-figures/.
- `append_to_ledger(path, baseline_payload)`, `read_ledger(path)`: baselines/history.jsonl.
- `creep_findings(ledger, current_rows, window, budget)`: series that crept past a
  cumulative budget over the last baselines.
- `trend_link(run_dir)`: the trend page a run's report can link to, if one covers the run.

Importing this package imports neither matplotlib nor jinja2. See docs/history.md.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.history._build import CreepSettings, build_history
from harness.history._ledger import (
    Finding,
    LedgerEntry,
    LedgerError,
    append_to_ledger,
    creep_findings,
    ledger_path,
    read_ledger,
)
from harness.history._steps import Segment, Step, detect_steps
from harness.history._trend import History, SeriesTrend

__all__ = [
    "CreepSettings",
    "Finding",
    "History",
    "LedgerEntry",
    "LedgerError",
    "Segment",
    "SeriesTrend",
    "Step",
    "append_to_ledger",
    "build_history",
    "creep_findings",
    "detect_steps",
    "ledger_path",
    "read_ledger",
    "render_history",
    "trend_link",
]


def render_history(history: History, out_dir: Path) -> list[Path]:
    """Draw the charts, then write the page's files into out_dir; return the files written."""
    from harness.history._render import HistoryPage

    return HistoryPage.build(history).render(Path(out_dir))


def trend_link(run_dir: Path) -> str | None:
    """'../history.html' when the folder holding the run has a trend page with one of the
    run's series (its history.json says which), else None."""
    run_dir = Path(run_dir)
    page = run_dir.parent / "history.html"
    try:
        trend = json.loads((run_dir.parent / "history.json").read_text(encoding="utf-8"))
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not page.exists() or not isinstance(trend, dict) or not isinstance(summary, list):
        return None
    covered = {
        (s.get("design"), s.get("metric"), tuple(sorted((s.get("labels") or {}).items())))
        for s in trend.get("series") or []
        if isinstance(s, dict)
    }
    for row in summary:
        if not isinstance(row, dict):
            continue
        key = (
            row.get("design"),
            row.get("metric"),
            tuple(sorted((row.get("labels") or {}).items())),
        )
        if key in covered:
            return "../history.html"
    return None
