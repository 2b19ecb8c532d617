"""From ordered commits to per-series trends: values per commit, baseline updates, steps."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.gate import GATED_METRICS, SeriesKey
from harness.history._collect import Commit
from harness.history._ledger import Finding
from harness.history._steps import Segment, Step, detect_steps

SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Measure:
    commit: int  # index into History.commits
    value: float
    kind: str  # "run" or "baseline"
    name: str


@dataclass
class SeriesTrend:
    key: SeriesKey
    unit: str
    commits: list[int]  # commit indices with a figure, in order
    values: list[float]  # per such commit: the median of its figures
    measures: list[Measure]  # every figure (several runs may share a commit)
    baseline_updates: list[int]  # commit indices where a new baseline was accepted
    baseline_levels: list[tuple[int, float]]  # (commit, baseline in force) from gate.json
    segments: list[Segment] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @property
    def first(self) -> float:
        return self.values[0]

    @property
    def last(self) -> float:
        return self.values[-1]

    @property
    def change(self) -> float:
        return self.last - self.first

    @property
    def change_ratio(self) -> float | None:
        return self.change / abs(self.first) if self.first else None

    @property
    def largest_step(self) -> Step | None:
        return max(self.steps, key=lambda s: abs(s.change), default=None)

    def step_commit(self, step: Step) -> int:
        """The commit index of the first figure at the step's new level."""
        return self.commits[step.index]

    def sparkline(self) -> str:
        return sparkline(self.values)


@dataclass
class History:
    commits: list[Commit]
    series: list[SeriesTrend]
    skipped: list[str] = field(default_factory=list)  # run dirs not used, and why
    creep: list[Finding] = field(default_factory=list)
    creep_note: str = ""  # what the creep check compared, or why it did not run
    runs: int = 0
    baselines: int = 0


def sparkline(values: Sequence[float], resolution: float = 0.01) -> str:
    """▁..█ from the lowest to the highest value; differences under `resolution` of the median
    level stay on the lowest bars, so the probe's sub-percent jitter does not look like a trend."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = max(high - low, resolution * abs(statistics.median(values)))
    if span == 0:
        return SPARK[0] * len(values)
    top = len(SPARK) - 1
    return "".join(SPARK[round((v - low) / span * top)] for v in values)


def short_labels(shas: Sequence[str], minimum: int = 7) -> list[str]:
    """The shortest prefixes (at least `minimum` characters) that tell the commits apart."""
    width = minimum
    longest = max((len(s) for s in shas), default=minimum)
    while width < longest and len({s[:width] for s in shas}) < len(set(shas)):
        width += 1
    return [s[:width] for s in shas]


def build_trends(
    commits: Sequence[Commit], rel_step: float, floor: Callable[[SeriesKey], float] | None = None
) -> list[SeriesTrend]:
    """One trend per gated series found in any commit, with its steps detected.

    floor(key): the smallest step reported for a series in its unit, whatever its level."""
    measures: dict[SeriesKey, list[Measure]] = {}
    units: dict[SeriesKey, str] = {}
    updates: dict[SeriesKey, list[int]] = {}
    levels: dict[SeriesKey, list[tuple[int, float]]] = {}
    run_names = {p.name for c in commits for p in c.points if p.kind == "run"}
    for i, commit in enumerate(commits):
        for point in commit.points:
            if point.kind == "baseline":
                for key in point.values:
                    _add_once(updates.setdefault(key, []), i)
                # the run that measured this baseline is already counted
                if point.source_run and _base_name(point.source_run) in run_names:
                    continue
            for key, row in point.values.items():
                measures.setdefault(key, []).append(Measure(i, row.value, point.kind, point.name))
                units.setdefault(key, row.unit)
            for key, value in point.gate_baselines.items():
                seen = levels.setdefault(key, [])
                if seen and seen[-1][1] != value:
                    _add_once(updates.setdefault(key, []), i)
                if not seen or seen[-1][1] != value or seen[-1][0] != i:
                    seen.append((i, value))
    trends: list[SeriesTrend] = []
    for key in sorted(measures, key=_order):
        per_commit: dict[int, list[float]] = {}
        for m in measures[key]:
            per_commit.setdefault(m.commit, []).append(m.value)
        idx = sorted(per_commit)
        values = [statistics.median(per_commit[i]) for i in idx]
        trend = SeriesTrend(
            key=key,
            unit=units[key],
            commits=idx,
            values=values,
            measures=measures[key],
            baseline_updates=sorted(updates.get(key, [])),
            baseline_levels=levels.get(key, []),
        )
        abs_floor = floor(key) if floor is not None else 0.0
        trend.segments, trend.steps = detect_steps(values, rel_step, abs_floor)
        trends.append(trend)
    return trends


def _base_name(text: str) -> str:
    return text.rstrip("/").rsplit("/", 1)[-1]


def _add_once(items: list[int], value: int) -> None:
    if value not in items:
        items.append(value)


def _order(key: SeriesKey) -> tuple[object, ...]:
    labels = dict(key.labels)
    hist = labels.get("history_len", "")
    metric_pos = list(GATED_METRICS).index(key.metric) if key.metric in GATED_METRICS else 99
    return (
        key.design,
        metric_pos,
        labels.get("endpoint", ""),
        int(hist) if hist.isdigit() else -1,
        key.labels,
    )
