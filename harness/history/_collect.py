"""Read many run directories (and a baseline ledger) and order them by commit.

I/O at the edges: `find_run_dirs` walks folders, `read_point` reads one run directory,
`git_commits` asks git for the commit order. `order_points` is pure.
"""

from __future__ import annotations

import bisect
import math
import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from harness.gate import PROBE_PHASE, SeriesKey, gated_rows
from harness.history._ledger import LedgerEntry
from harness.results import SCHEMA_VERSION, SummaryRow, read_json

Kind = Literal["run", "baseline"]


@dataclass(frozen=True)
class Point:
    """One source of figures: a run directory, or a baseline of the ledger."""

    kind: Kind
    name: str  # run id, or "ledger line N"
    sha: str  # as recorded (short), "unknown" when git was not available
    when: str  # ISO time: the run's start, or the baseline's creation
    command: str  # "gate", "loadtest", ... or "baseline"
    values: Mapping[SeriesKey, SummaryRow]
    # from gate.json: the baseline each series was judged against (a change marks an update)
    gate_baselines: Mapping[SeriesKey, float] = field(default_factory=dict)
    source_run: str = ""  # a ledger baseline: the run it was measured in
    python: str = ""
    packages: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str
    points: tuple[Point, ...]

    @property
    def label(self) -> str:
        return self.sha[:10]


@dataclass(frozen=True)
class GitCommit:
    sha: str  # full
    time: float  # committer time, epoch seconds
    subject: str


def environment_change(before: Commit, after: Commit) -> str:
    """Python minor version and package versions that differ between two commits' first
    points ('' when they agree): a step there may come from the environment, not the code."""
    a, b = before.points[0], after.points[0]
    changes: list[str] = []
    if a.python and b.python and _minor(a.python) != _minor(b.python):
        changes.append(f"Python {a.python} -> {b.python}")
    if a.packages and b.packages:
        for name in sorted(a.packages.keys() | b.packages.keys()):
            old, new = a.packages.get(name, "absent"), b.packages.get(name, "absent")
            if old != new:
                changes.append(f"{name} {old} -> {new}")
    return ", ".join(changes)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def find_run_dirs(paths: Iterable[Path]) -> list[Path]:
    """Every directory holding a run.json under the paths (a run directory itself counts).

    Symbolic links are not followed (reports/latest points at a run already found), and a
    directory reached twice is listed once.
    """
    found: dict[Path, Path] = {}
    for top in paths:
        top = Path(top)
        if (top / "run.json").is_file():
            found.setdefault(top.resolve(), top)
            continue
        for root, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
            if "run.json" in files:
                found.setdefault(Path(root).resolve(), Path(root))
                dirs[:] = []  # a run directory holds no other runs
    return sorted(found.values())


def read_point(run_dir: Path) -> tuple[Point | None, str]:
    """The gated figures of one run directory, or (None, why it was skipped)."""
    try:
        run = read_json(run_dir / "run.json")
    except (OSError, ValueError) as exc:
        return None, f"{run_dir}: unreadable run.json ({exc})"
    if not isinstance(run, Mapping) or run.get("schema_version") != SCHEMA_VERSION:
        return None, f"{run_dir}: run.json has another schema_version, skipped"
    try:
        raw_rows = read_json(run_dir / "summary.json")
        rows = [SummaryRow.from_json(r) for r in raw_rows]
    except FileNotFoundError:
        return None, f"{run_dir}: no summary.json, skipped"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{run_dir}: unreadable summary.json ({exc}), skipped"
    failed = {
        str(p.get("design"))
        for p in run.get("phases") or []
        if isinstance(p, Mapping) and p.get("phase") == PROBE_PHASE and p.get("status") != "passed"
    }
    values = {
        SeriesKey.of(r): r
        for r in gated_rows(rows)
        if r.design not in failed and math.isfinite(r.value)
    }
    if not values:
        return None, f"{run_dir}: no probe figures, skipped"
    env = run.get("environment") if isinstance(run.get("environment"), Mapping) else {}
    point = Point(
        kind="run",
        name=str(run.get("run_id") or run_dir.name),
        sha=str((env or {}).get("git_sha") or "unknown"),
        when=str(run.get("started_at") or ""),
        command=command_name(str(run.get("command") or "?")),
        values=values,
        gate_baselines=_gate_baselines(run_dir / "gate.json"),
        python=str((env or {}).get("python") or ""),
        packages={str(k): str(v) for k, v in dict((env or {}).get("packages") or {}).items()},
    )
    return point, ""


def command_name(recorded: str) -> str:
    """run.json's command: "gate" for the gate, the whole command line for a loadtest
    ("harness loadtest --config ..."): the subcommand either way."""
    words = recorded.split()
    if len(words) > 1 and Path(words[0]).name == "harness":
        return words[1]
    return words[0] if words else "?"


def _gate_baselines(path: Path) -> dict[SeriesKey, float]:
    try:
        raw = read_json(path)
        out: dict[SeriesKey, float] = {}
        for v in raw.get("verdicts") or []:
            if v.get("baseline") is None:
                continue
            labels = tuple(sorted((str(k), str(x)) for k, x in (v.get("labels") or {}).items()))
            out[SeriesKey(str(v["metric"]), str(v["design"]), labels)] = float(v["baseline"])
        return out
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}  # no gate.json (a loadtest run), or one this reader does not understand


def ledger_points(entries: Sequence[LedgerEntry]) -> list[Point]:
    return [
        Point(
            kind="baseline",
            name=f"ledger line {e.line}",
            sha=e.git_sha,
            when=e.created_at,
            command="baseline",
            values=e.values(),
            source_run=e.source_run,
            python=e.python,
            packages=e.packages,
        )
        for e in entries
    ]


def git_commits(repo: Path) -> list[GitCommit]:
    """Every commit reachable from any ref, parents before children ([] without git)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "log", "--all", "--topo-order", "--reverse",
             "--format=%H%x09%ct%x09%s"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return []
    commits: list[GitCommit] = []
    for line in out.stdout.splitlines():
        sha, _, rest = line.partition("\t")
        stamp, _, subject = rest.partition("\t")
        if sha and stamp.isdigit():
            commits.append(GitCommit(sha, float(stamp), subject))
    return commits


def order_points(points: Sequence[Point], commits: Sequence[GitCommit]) -> list[Commit]:
    """Group points by commit and order the commits.

    A sha git knows takes its place in `git log --topo-order`; one it does not know (another
    clone, "unknown") goes after the last commit made before the point's time; without git,
    commits are ordered by their earliest point's time.
    """
    groups: dict[str, list[Point]] = {}
    for p in points:
        group = p.sha if p.sha != "unknown" else f"unknown@{p.when}"
        groups.setdefault(group, []).append(p)
    index = {c.sha: i for i, c in enumerate(commits)}
    by_time = sorted(c.time for c in commits)
    subjects = {c.sha: c.subject for c in commits}

    def place(sha: str, first_time: float) -> tuple[float, float]:
        full = _resolve(sha, index)
        if full is not None:
            return float(index[full]), first_time
        if commits:
            return bisect.bisect_right(by_time, first_time) - 0.5, first_time
        return 0.0, first_time

    ordered: list[tuple[tuple[float, float], Commit]] = []
    for sha, pts in groups.items():
        pts.sort(key=lambda p: _epoch(p.when))
        full = _resolve(sha, index)
        commit = Commit(sha, subjects.get(full, "") if full else "", tuple(pts))
        ordered.append((place(sha, _epoch(pts[0].when)), commit))
    ordered.sort(key=lambda item: item[0])
    return [c for _key, c in ordered]


def _resolve(sha: str, index: Mapping[str, int]) -> str | None:
    if len(sha) < 4 or sha.startswith("unknown"):
        return None
    matches = [full for full in index if full.startswith(sha)]
    return matches[0] if len(matches) == 1 else None


def _epoch(text: str) -> float:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return math.inf
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()
