"""Series and verdicts: a baseline and a current run's probe rows -> one Verdict per series."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness._errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from harness.gate._metrics import (
    CV_METRIC,
    CV_WARN_RATIO,
    DEFAULT_NOISE_K,
    GATED_METRICS,
    NOISE_METRICS,
    PROBE_PHASE,
    SEEN_METRICS,
    Status,
)
from harness.gate._thresholds import Threshold, Thresholds
from harness.results import SummaryRow


@dataclass(frozen=True, order=True)
class SeriesKey:
    metric: str
    design: str
    labels: tuple[tuple[str, str], ...]  # sorted by key

    @classmethod
    def of(cls, row: SummaryRow) -> SeriesKey:
        return cls(row.metric, row.design, tuple(sorted(row.labels.items())))

    def selector_labels(self) -> dict[str, str]:
        return {"design": self.design, **dict(self.labels)}

    def label_text(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.selector_labels().items()))

    def __str__(self) -> str:
        return f"{self.metric}{{{self.label_text()}}}"


@dataclass(frozen=True)
class Verdict:
    key: SeriesKey
    unit: str
    status: Status
    baseline: float | None
    current: float | None
    threshold: Threshold | None
    rule: str  # the selector that set the threshold, or "default"
    noise: float = 0.0  # the larger of the baseline's and the current run's noise figure
    noise_k: float = 0.0
    seen: tuple[float, float] | None = None  # the lowest and highest value the baseline saw

    @property
    def reference_high(self) -> float | None:
        """The highest value the baseline saw (its figure, or a higher process's)."""
        if self.baseline is None:
            return None
        return max(self.baseline, self.seen[1]) if self.seen else self.baseline

    @property
    def excess(self) -> float | None:
        """How far the current value is above the highest value the baseline saw."""
        high = self.reference_high
        return None if high is None or self.current is None else self.current - high

    @property
    def fraction_of_limit(self) -> float | None:
        """excess / limit: 1 or more is a regression (the closest series of a passing run)."""
        excess, limit = self.excess, self.limit
        if excess is None or limit is None or limit <= 0:
            return None
        return excess / limit

    @property
    def over_cap(self) -> bool:
        cap = self.threshold.cap if self.threshold is not None else None
        return cap is not None and self.current is not None and self.current > cap

    @property
    def change(self) -> float | None:
        if self.baseline is None or self.current is None:
            return None
        return self.current - self.baseline

    @property
    def change_ratio(self) -> float | None:
        """change / |baseline|; None when either is absent or the baseline is 0."""
        change = self.change
        if change is None or self.baseline is None or self.baseline == 0:
            return None
        return change / abs(self.baseline)

    @property
    def limit(self) -> float | None:
        if self.baseline is None or self.threshold is None or not self.threshold.enabled:
            return None
        return self.threshold.limit(self.baseline, self.noise, self.noise_k)

    @property
    def limit_source(self) -> str:
        """Which term set the limit: 'tolerance', 'noise' or 'floor' ('' without a limit)."""
        if self.baseline is None or self.threshold is None or not self.threshold.enabled:
            return ""
        terms = {
            "tolerance": abs(self.baseline) * self.threshold.tolerance,
            "noise": self.noise_k * self.noise,
            "floor": self.threshold.floor,
        }
        return max(terms, key=lambda k: terms[k])

    @property
    def large_improvement(self) -> bool:
        """Improved by more than twice the limit: worth a new baseline."""
        change, limit = self.change, self.limit
        return (
            self.status == "improved"
            and change is not None
            and limit is not None
            and (-change > 2 * limit)
        )


def judge(
    baseline: float,
    current: float,
    threshold: Threshold,
    noise: float = 0.0,
    noise_k: float = 0.0,
    seen: tuple[float, float] | None = None,
) -> Literal["pass", "regression", "improved", "off"]:
    """A regression is an increase beyond the limit over the highest value the baseline saw
    (`seen`: its range over processes; without it, its figure), or a value above the cap; an
    improvement a decrease beyond the limit under the lowest."""
    if not threshold.enabled:
        return "off"
    if threshold.cap is not None and current > threshold.cap:
        return "regression"
    limit = threshold.limit(baseline, noise, noise_k)
    low, high = baseline, baseline
    if seen is not None:
        low, high = min(baseline, seen[0]), max(baseline, seen[1])
    if current - high > limit:
        return "regression"
    if low - current > limit:
        return "improved"
    return "pass"


@dataclass(frozen=True)
class GateResult:
    verdicts: tuple[Verdict, ...]
    warnings: tuple[str, ...] = ()

    def count(self, status: Status) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "regression"]

    @property
    def missing(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "missing"]

    @property
    def exit_code(self) -> int:
        """2 when the comparison is incomplete (missing series), else 1 on any regression."""
        if self.missing:
            return EXIT_USAGE
        if self.regressions:
            return EXIT_FAILED
        return EXIT_OK

    @property
    def outcome(self) -> str:
        return {EXIT_OK: "passed", EXIT_FAILED: "regression", EXIT_USAGE: "error"}[self.exit_code]

    @property
    def suggests_update(self) -> bool:
        return any(v.large_improvement for v in self.verdicts)


def gated_rows(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """The probe rows the gate compares (other phases and informational metrics dropped)."""
    return [r for r in rows if r.phase == PROBE_PHASE and r.metric in GATED_METRICS]


def compare(
    baseline: Iterable[SummaryRow],
    current: Iterable[SummaryRow],
    thresholds: Thresholds,
    designs: Sequence[str] | None = None,
    noise_k: float = DEFAULT_NOISE_K,
) -> GateResult:
    """Verdict for every gated series in the baseline or the current rows.

    designs: compare only these designs (None: all). Non-finite values are treated as absent.
    A series' noise is the larger of the baseline's and the current run's NOISE_METRICS figure.
    """
    baseline, current = list(baseline), list(current)
    base = _index(baseline, designs)
    cur = _index(current, designs)
    noise = _noise_index(baseline, designs)
    for key, value in _noise_index(current, designs).items():
        noise[key] = max(value, noise.get(key, 0.0))
    seen = _seen_index(baseline, designs)
    order = {d: i for i, d in enumerate(designs or ())}
    verdicts: list[Verdict] = []
    for key in sorted(
        base.keys() | cur.keys(), key=lambda k: (order.get(k.design, len(order)), _sort_key(k))
    ):
        b, c = base.get(key), cur.get(key)
        unit = (c or b or _UNKNOWN_ROW).unit
        threshold, rule = thresholds.lookup(key.metric, key.selector_labels())
        bv = b.value if b is not None else None
        cv = c.value if c is not None else None
        series_noise = noise.get(key, 0.0)
        series_seen = seen.get(key)
        status: Status
        if not threshold.enabled:
            status = "off"
        elif bv is None:
            # A cap holds at any baseline, none included: a new endpoint that leaks fails.
            over = threshold.cap is not None and cv is not None and cv > threshold.cap
            status = "regression" if over else "new"
        elif cv is None:
            status = "missing"
        else:
            status = judge(bv, cv, threshold, series_noise, noise_k, series_seen)
        verdicts.append(
            Verdict(key, unit, status, bv, cv, threshold, rule, series_noise, noise_k, series_seen)
        )
    return GateResult(tuple(verdicts), tuple(cv_warnings(current, designs)))


_UNKNOWN_ROW = SummaryRow("", PROBE_PHASE, "", 0.0, "")
_NOISE_OF = {noise: gated for gated, noise in NOISE_METRICS.items()}


def noise_rows(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """The probe rows that measure a gated series' noise (kept in the baseline beside it)."""
    return [r for r in rows if r.phase == PROBE_PHASE and r.metric in _NOISE_OF]


_SEEN_OF = {name: (gated, i) for gated, pair in SEEN_METRICS.items() for i, name in enumerate(pair)}


def seen_rows(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """The probe rows that give a gated series' range over processes (kept in the baseline)."""
    return [r for r in rows if r.phase == PROBE_PHASE and r.metric in _SEEN_OF]


def _seen_index(
    rows: Iterable[SummaryRow], designs: Sequence[str] | None
) -> dict[SeriesKey, tuple[float, float]]:
    """Gated series -> (lowest, highest) value seen; a series needs both to have a range."""
    bounds: dict[SeriesKey, dict[int, float]] = {}
    for row in seen_rows(rows):
        if designs is not None and row.design not in designs:
            continue
        if math.isfinite(row.value):
            gated, which = _SEEN_OF[row.metric]
            key = SeriesKey(gated, row.design, tuple(sorted(row.labels.items())))
            bounds.setdefault(key, {})[which] = row.value
    return {k: (b[0], b[1]) for k, b in bounds.items() if len(b) == 2}


def _noise_index(
    rows: Iterable[SummaryRow], designs: Sequence[str] | None
) -> dict[SeriesKey, float]:
    """Gated series -> its noise figure (rows of NOISE_METRICS, keyed as the series they serve)."""
    out: dict[SeriesKey, float] = {}
    for row in noise_rows(rows):
        if designs is not None and row.design not in designs:
            continue
        if math.isfinite(row.value):
            key = SeriesKey(_NOISE_OF[row.metric], row.design, tuple(sorted(row.labels.items())))
            out[key] = abs(row.value)
    return out


def _index(
    rows: Iterable[SummaryRow], designs: Sequence[str] | None
) -> dict[SeriesKey, SummaryRow]:
    out: dict[SeriesKey, SummaryRow] = {}
    for row in gated_rows(rows):
        if designs is not None and row.design not in designs:
            continue
        if not math.isfinite(row.value):
            continue
        out[SeriesKey.of(row)] = row
    return out


def _sort_key(key: SeriesKey) -> tuple[Any, ...]:
    labels = dict(key.labels)
    hist = labels.get("history_len", "")
    hist_num = int(hist) if hist.isdigit() else -1
    metric_pos = list(GATED_METRICS).index(key.metric) if key.metric in GATED_METRICS else 99
    return (key.design, metric_pos, labels.get("endpoint", ""), hist_num, key.labels)


def cv_warnings(rows: Iterable[SummaryRow], designs: Sequence[str] | None = None) -> list[str]:
    """alloc_cv above 5%: the probe figure moved between reps (noise, caches warming up)."""
    out: list[str] = []
    for row in rows:
        if row.phase != PROBE_PHASE or row.metric != CV_METRIC:
            continue
        if designs is not None and row.design not in designs:
            continue
        ratio = row.value / 100.0 if row.unit == "percent" else row.value
        if math.isfinite(ratio) and ratio > CV_WARN_RATIO:
            key = SeriesKey.of(row)
            out.append(
                f"{key}: {ratio:.1%} variation between reps (> {CV_WARN_RATIO:.0%}); "
                "its figures are less reliable"
            )
    return out
