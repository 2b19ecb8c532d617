"""Assemble a History from run directories, a ledger and git (the I/O of `harness history`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.gate import SeriesKey, Threshold, Thresholds
from harness.history._collect import (
    Point,
    find_run_dirs,
    git_commits,
    ledger_points,
    order_points,
    read_point,
)
from harness.history._ledger import LedgerEntry, creep_findings, read_ledger
from harness.history._trend import History, build_trends


@dataclass(frozen=True)
class CreepSettings:
    window: int = 10
    budget: Threshold = field(default_factory=lambda: Threshold(tolerance=0.15))


def build_history(
    paths: Sequence[Path],
    *,
    ledger: Path | None = None,
    repo: Path | None = None,
    rel_step: float = 0.02,
    commands: Sequence[str] = (),
    creep: CreepSettings | None = None,
    thresholds: Thresholds | None = None,
) -> History:
    """Read every run under `paths` (and the ledger's baselines), order them by commit and
    detect steps. `commands` keeps only runs of these commands (e.g. "gate"); empty: all.
    With the gate's thresholds, a step must also exceed half the gate's floor for its series."""
    points: list[Point] = []
    skipped: list[str] = []
    for run_dir in find_run_dirs(paths):
        point, why = read_point(run_dir)
        if point is None:
            skipped.append(why)
        elif commands and point.command not in commands:
            skipped.append(f"{run_dir}: command {point.command}, not {'/'.join(commands)}")
        else:
            points.append(point)
    entries = read_ledger(ledger) if ledger is not None else []
    points += ledger_points(entries)
    commits = order_points(points, git_commits(repo) if repo is not None else [])
    history = History(
        commits=commits,
        series=build_trends(commits, rel_step, _floors(thresholds)),
        skipped=skipped,
        runs=sum(p.kind == "run" for p in points),
        baselines=len(entries),
    )
    history.creep_note = _creep(history, entries, ledger, creep or CreepSettings(), thresholds)
    return history


FLOOR_SHARE = 0.5


def _floors(thresholds: Thresholds | None) -> Callable[[SeriesKey], float] | None:
    if thresholds is None:
        return None

    def floor(key: SeriesKey) -> float:
        threshold, _rule = thresholds.lookup(key.metric, key.selector_labels())
        return threshold.floor * FLOOR_SHARE if threshold.enabled else 0.0

    return floor


def _creep(
    history: History,
    entries: list[LedgerEntry],
    ledger: Path | None,
    s: CreepSettings,
    thresholds: Thresholds | None,
) -> str:
    """Creep of the newest commit's runs against the ledger; the note says what was compared."""
    if ledger is None:
        return "No ledger given (--ledger baselines/history.jsonl): no creep check."
    runs = [p for c in history.commits[-1:] for p in c.points if p.kind == "run"]
    if not runs:
        return "The newest commit has no run: no creep check."
    if len(entries[-s.window :]) < 2:
        return f"The ledger {ledger} holds fewer than 2 baselines: no creep check yet."
    current = runs[-1]
    history.creep = creep_findings(
        entries, list(current.values.values()), s.window, s.budget, thresholds
    )
    verdict = f"{len(history.creep)} series over budget" if history.creep else "no series over"
    return (
        f"Run {current.name} (commit {current.sha}) against the last "
        f"{min(s.window, len(entries))} baselines of {ledger}, budget "
        f"{s.budget.describe()}: {verdict}."
    )
