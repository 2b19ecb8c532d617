"""The memory gate: thresholds vs a baseline -> verdicts. Pure: no file, network or console I/O.

Vocabulary
- A *series* is one gated figure: (metric, design, labels), e.g.
  alloc_peak_bytes{design=optimized,endpoint=chat,history_len=1000}.
- A *selector* picks series: a metric name plus optional labels,
  `alloc_peak_bytes{design=optimized,endpoint=chat}`; `design` counts as a label.
- A *threshold* is an expression in the spirit of k6 thresholds: `+5%`, `+5% floor 1KiB`,
  `+50% floor 128 cap 256`, or `off`. A series regresses when
  `current - baseline > max(|baseline| * tolerance, noise_k * noise, floor)`: an increase beyond
  the relative tolerance, beyond what the series' own measured noise explains, and beyond the
  absolute floor; or, with a cap, when `current > cap` whatever the baseline says (retained
  memory per request is a bug at any baseline).
- A series' *noise* is its companion figure (NOISE_METRICS): the robust spread of a peak across
  reps, the standard error of a retained-memory slope; the larger of the baseline's and the
  current run's is used, so a noisy series gets a wider limit and a steady one a tight limit.
- The most specific matching selector (most labels) wins; `[gate] default` applies to a gated
  metric no selector matches. Two selectors that could both win for one series are a config
  error, so the choice never depends on the order of keys in the file.

Verdicts: pass, regression (exit 1), improved (a decrease beyond the same limit; suggest
--update-baseline), missing (in the baseline, not measured now: exit 2, the comparison is
incomplete), new (measured now, not in the baseline: informational), off (threshold `off`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness._errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, ConfigError, HarnessError
from harness.analysis.sites import Site, SiteChange, growth
from harness.results import SummaryRow

BASELINE_KIND = "memload-gate-baseline"
BASELINE_SCHEMA_VERSION = 2
PROBE_PHASE = "probe"

# The figures the gate compares, with the unit the probe reports them in. Their order is the
# order of the tables.
GATED_METRICS: dict[str, str] = {
    "alloc_peak_bytes": "bytes",
    "retained_bytes_per_request": "bytes/request",
    "alloc_slope_bytes_per_unit": "bytes/message",
}
# A gated metric's noise: the probe figure that says how much it moves by chance.
NOISE_METRICS: dict[str, str] = {
    "alloc_peak_bytes": "alloc_peak_spread_bytes",
    "retained_bytes_per_request": "retained_stderr_bytes",
}
DEFAULT_NOISE_K = 4.0
# Shown, never gated: the variation of a peak across reps, what one request left allocated (a
# single request's net figure swings with deferred frees; the leak run's slope is the leak
# figure), blocks retained per request (the bytes figure is gated).
INFORMATIONAL_METRICS = ("alloc_cv", "alloc_net_bytes", "retained_blocks_per_request")
CV_METRIC = "alloc_cv"
CV_WARN_RATIO = 0.05
# Labels a selector may name. `design` is a field of a summary row, matched like a label.
KNOWN_LABELS = ("design", "endpoint", "history_len")

Status = Literal["pass", "regression", "improved", "missing", "new", "off"]


class BaselineError(HarnessError):
    """The baseline cannot be used: absent, unreadable, another schema. Exit 2."""

    exit_code = EXIT_USAGE


# --- threshold expressions ----------------------------------------------------------------

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
}
_NUMBER = r"\d+(?:\.\d+)?"
_SIZE_RE = re.compile(rf"^({_NUMBER})\s*([a-z]*)$", re.IGNORECASE)
_EXPR_RE = re.compile(
    rf"^\+?\s*(?P<tol>{_NUMBER})\s*%(?:\s+floor\s+(?P<floor>{_NUMBER}\s*[a-z]*))?"
    rf"(?:\s+cap\s+(?P<cap>{_NUMBER}\s*[a-z]*))?$",
    re.IGNORECASE,
)
EXPRESSION_HELP = (
    "expected '+N%', '+N% floor SIZE', '+N% floor SIZE cap SIZE' (SIZE like 16KiB, 1MiB, 256) "
    "or 'off'"
)


@dataclass(frozen=True)
class Threshold:
    """Allowed increase: max(|baseline| * tolerance, noise_k * noise, floor), in the metric's
    unit; with a cap, a current value above it fails whatever the baseline."""

    tolerance: float = 0.10
    floor: float = 0.0
    enabled: bool = True
    cap: float | None = None

    def limit(self, baseline: float, noise: float = 0.0, noise_k: float = 0.0) -> float:
        return max(abs(baseline) * self.tolerance, noise_k * noise, self.floor)

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        text = f"+{_trim(self.tolerance * 100)}%"
        if self.floor:
            text += f" floor {format_size(self.floor)}"
        if self.cap is not None:
            text += f" cap {format_size(self.cap)}"
        return text


def parse_size(text: str) -> float:
    """'16KiB' -> 16384, '1MB' -> 1e6, '4096' or '8' -> plain numbers. ValueError otherwise."""
    match = _SIZE_RE.match(text.strip())
    unit = match.group(2).lower() if match else ""
    if not match or unit not in _SIZE_UNITS:
        raise ValueError(f"bad size {text.strip()!r} (units: B, KiB, MiB, GiB, KB, MB, GB)")
    return float(match.group(1)) * _SIZE_UNITS[unit]


def parse_threshold(text: str) -> Threshold:
    """Parse '+10%', '+10% floor 16KiB' or 'off'. ValueError with a readable message otherwise."""
    expr = " ".join(text.split())
    if expr.lower() == "off":
        return Threshold(tolerance=0.0, floor=0.0, enabled=False)
    if expr.startswith("-"):
        raise ValueError(f"bad expression {text!r}: a tolerance is an allowed increase, use +N%")
    match = _EXPR_RE.match(expr)
    if not match:
        raise ValueError(f"bad expression {text!r}: {EXPRESSION_HELP}")
    floor_text, cap_text = match.group("floor"), match.group("cap")
    try:
        floor = parse_size(floor_text) if floor_text else 0.0
        cap = parse_size(cap_text) if cap_text else None
    except ValueError as exc:
        raise ValueError(f"bad expression {text!r}: {exc}") from None
    return Threshold(tolerance=float(match.group("tol")) / 100.0, floor=floor, cap=cap)


# --- selectors ----------------------------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_SELECTOR_RE = re.compile(rf"^\s*(?P<metric>{_IDENT})\s*(?:\{{(?P<labels>[^{{}}]*)\}})?\s*$")
_LABEL_RE = re.compile(
    rf"^\s*(?P<key>{_IDENT})\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"',=]+)\s*$"
)


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: tuple[tuple[str, str], ...] = ()  # sorted by key

    @property
    def specificity(self) -> int:
        return len(self.labels)

    def matches(self, metric: str, labels: Mapping[str, str]) -> bool:
        return metric == self.metric and all(labels.get(k) == v for k, v in self.labels)

    def __str__(self) -> str:
        if not self.labels:
            return self.metric
        return self.metric + "{" + ",".join(f"{k}={v}" for k, v in self.labels) + "}"


def parse_selector(text: str) -> Selector:
    """'alloc_peak_bytes{design=optimized, endpoint="chat"}' -> Selector. ValueError otherwise."""
    match = _SELECTOR_RE.match(text)
    if not match:
        raise ValueError(f"bad selector {text!r}: expected metric or metric{{label=value,...}}")
    metric = match.group("metric")
    if metric in INFORMATIONAL_METRICS:
        raise ValueError(f"{metric} is informational and never gated")
    if metric not in GATED_METRICS:
        raise ValueError(f"unknown metric (gated metrics: {', '.join(GATED_METRICS)})")
    labels: dict[str, str] = {}
    body = match.group("labels")
    if body is not None and body.strip():
        for part in body.split(","):
            lm = _LABEL_RE.match(part)
            if not lm:
                raise ValueError(f"bad label {part.strip()!r}: expected label=value")
            key, value = lm.group("key"), lm.group("value").strip("\"'")
            if key not in KNOWN_LABELS:
                raise ValueError(f"unknown label {key!r} (labels: {', '.join(KNOWN_LABELS)})")
            if key in labels:
                raise ValueError(f"label {key!r} given twice")
            labels[key] = value
    return Selector(metric, tuple(sorted(labels.items())))


@dataclass(frozen=True)
class Rule:
    selector: Selector
    threshold: Threshold
    key: str  # the config key, for messages: gate.thresholds."alloc_peak_bytes{...}"


@dataclass(frozen=True)
class Thresholds:
    rules: tuple[Rule, ...] = ()
    default: Threshold = field(default_factory=Threshold)

    def lookup(self, metric: str, labels: Mapping[str, str]) -> tuple[Threshold, str]:
        """The threshold of the most specific matching rule, and what it came from."""
        best: Rule | None = None
        for rule in self.rules:
            if rule.selector.matches(metric, labels) and (
                best is None or rule.selector.specificity > best.selector.specificity
            ):
                best = rule
        if best is None:
            return self.default, "default"
        return best.threshold, str(best.selector)


def compile_thresholds(
    table: Mapping[str, str], default: str, config_path: object = "loadtest.toml"
) -> Thresholds:
    """Validate `[gate] default` and `[gate.thresholds]`; ConfigError names the file and key."""
    try:
        default_t = parse_threshold(default)
    except ValueError as exc:
        raise ConfigError(config_path, "gate.default", str(exc)) from None
    rules: list[Rule] = []
    for raw_key, expr in table.items():
        key = f'gate.thresholds."{raw_key}"'
        try:
            selector = parse_selector(raw_key)
            threshold = parse_threshold(expr)
        except ValueError as exc:
            raise ConfigError(config_path, key, str(exc)) from None
        rules.append(Rule(selector, threshold, key))
    _check_ambiguity(rules, config_path)
    return Thresholds(tuple(rules), default_t)


def _check_ambiguity(rules: Sequence[Rule], config_path: object) -> None:
    """Two equally specific selectors that can match one series, with nothing more specific
    covering every such series, would make the winner depend on key order: refuse them."""
    for i, a in enumerate(rules):
        for b in rules[i + 1 :]:
            sa, sb = a.selector, b.selector
            if sa.metric != sb.metric or sa.specificity != sb.specificity:
                continue
            la, lb = dict(sa.labels), dict(sb.labels)
            if any(la[k] != lb[k] for k in la.keys() & lb.keys()):
                continue  # disjoint: no series matches both
            union = la | lb
            covered = any(
                r.selector.metric == sa.metric
                and r.selector.specificity > sa.specificity
                and all(union.get(k) == v for k, v in r.selector.labels)
                for r in rules
            )
            if not covered:
                both = "{" + ",".join(f"{k}={v}" for k, v in sorted(union.items())) + "}"
                raise ConfigError(
                    config_path,
                    b.key,
                    f"as specific as {a.key} and both match {sa.metric}{both}; "
                    "add a selector with both labels, or drop one",
                )


# --- series, verdicts ---------------------------------------------------------------------


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
) -> Literal["pass", "regression", "improved", "off"]:
    if not threshold.enabled:
        return "off"
    if threshold.cap is not None and current > threshold.cap:
        return "regression"
    limit = threshold.limit(baseline, noise, noise_k)
    change = current - baseline
    if change > limit:
        return "regression"
    if -change > limit:
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
            status = judge(bv, cv, threshold, series_noise, noise_k)
        verdicts.append(Verdict(key, unit, status, bv, cv, threshold, rule, series_noise, noise_k))
    return GateResult(tuple(verdicts), tuple(cv_warnings(current, designs)))


_UNKNOWN_ROW = SummaryRow("", PROBE_PHASE, "", 0.0, "")
_NOISE_OF = {noise: gated for gated, noise in NOISE_METRICS.items()}


def noise_rows(rows: Iterable[SummaryRow]) -> list[SummaryRow]:
    """The probe rows that measure a gated series' noise (kept in the baseline beside it)."""
    return [r for r in rows if r.phase == PROBE_PHASE and r.metric in _NOISE_OF]


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


# --- the baseline file ----------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    rows: tuple[SummaryRow, ...]
    provenance: Mapping[str, Any]
    probe: Mapping[str, Any]  # designs, history_lens, reps, warmup
    created_at: str = ""


def build_baseline(
    rows: Iterable[SummaryRow],
    *,
    created_at: str,
    environment: Mapping[str, Any],
    probe: Mapping[str, Any],
    source_run: str,
    git_dirty: bool | None = None,
) -> dict[str, Any]:
    """The JSON payload of a baseline: the gated rows with where and how they were measured."""
    rows = list(rows)
    kept = sorted(gated_rows(rows), key=lambda r: _sort_key(SeriesKey.of(r)))
    kept += sorted(noise_rows(rows), key=lambda r: (r.metric, _sort_key(SeriesKey.of(r))))
    return {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "kind": BASELINE_KIND,
        "created_at": created_at,
        "provenance": {
            "git_sha": environment.get("git_sha", "unknown"),
            "git_dirty": git_dirty,  # uncommitted changes when measured (None: not known)
            "python": environment.get("python", "unknown"),
            "python_implementation": environment.get("python_implementation", "unknown"),
            "platform": environment.get("platform", "unknown"),
            "cpu_model": environment.get("cpu_model", "unknown"),
            "packages": dict(environment.get("packages") or {}),
            "source_run": source_run,
        },
        "probe": dict(probe),
        "rows": [r.to_json() for r in kept],
    }


def parse_baseline(raw: Any, where: object) -> Baseline:
    """Validate a parsed baseline file; BaselineError (exit 2) when it cannot be used."""
    if not isinstance(raw, Mapping):
        raise BaselineError(f"{where}: not a gate baseline (expected a JSON object)")
    if raw.get("kind") != BASELINE_KIND:
        raise BaselineError(f"{where}: not a gate baseline (kind {raw.get('kind')!r})")
    version = raw.get("schema_version")
    if version != BASELINE_SCHEMA_VERSION:
        raise BaselineError(
            f"{where}: baseline schema_version {version!r} is not {BASELINE_SCHEMA_VERSION}; "
            "re-create it with `make gate ARGS=--update-baseline`"
        )
    try:
        rows = tuple(SummaryRow.from_json(r) for r in raw["rows"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineError(f"{where}: malformed rows: {exc!r}") from None
    provenance = raw.get("provenance") or {}
    probe = raw.get("probe") or {}
    if not isinstance(provenance, Mapping) or not isinstance(probe, Mapping):
        raise BaselineError(f"{where}: malformed provenance/probe sections")
    return Baseline(rows, provenance, probe, str(raw.get("created_at") or ""))


def settings_mismatch(
    baseline: Baseline, designs: Sequence[str], history_lens: Sequence[int]
) -> str:
    """Why a probe run with these settings cannot be compared with the baseline ('' if it can).

    Only the designs and history lengths matter for which series exist; a design the baseline
    lacks is allowed (its series are reported as new).
    """
    problems: list[str] = []
    base_lens = baseline.probe.get("history_lens")
    if base_lens is not None and sorted(int(x) for x in base_lens) != sorted(history_lens):
        problems.append(f"history_lens {list(base_lens)} in the baseline, {list(history_lens)} now")
    base_designs = baseline.probe.get("designs")
    if base_designs is not None:
        gone = [d for d in base_designs if d not in designs]
        if gone:
            problems.append(f"design(s) {', '.join(gone)} in the baseline but not gated now")
    return "; ".join(problems)


def environment_warnings(
    baseline_provenance: Mapping[str, Any], current_env: Mapping[str, Any]
) -> list[str]:
    """Python minor version or package versions that differ from the baseline's (warnings)."""
    out: list[str] = []
    b_py, c_py = str(baseline_provenance.get("python", "")), str(current_env.get("python", ""))
    if _minor(b_py) != _minor(c_py):
        out.append(f"Python {c_py} here, the baseline was made with Python {b_py}")
    b_pkgs = baseline_provenance.get("packages") or {}
    c_pkgs = current_env.get("packages") or {}
    changed = [
        f"{name} {b_pkgs[name]} -> {c_pkgs.get(name, 'absent')}"
        for name in sorted(b_pkgs)
        if b_pkgs[name] != c_pkgs.get(name, "absent")
    ]
    if changed:
        out.append("package versions differ from the baseline's: " + ", ".join(changed))
    return out


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --- units --------------------------------------------------------------------------------


def format_size(value: float) -> str:
    """Bytes in binary units with 3 significant figures: 0.25 B, 512 B, 16 KiB, 1.25 MiB."""
    magnitude = abs(value)
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if magnitude >= factor:
            return f"{_sig(value / factor)} {unit}"
    if magnitude < 100:  # fractional bytes: slopes in bytes/message
        return f"{_sig(value)} B"
    return f"{_trim(round(value, 1))} B"


_PER_ABBREVIATIONS = {"message": "msg", "request": "req"}


def format_value(value: float, unit: str) -> str:
    if unit == "bytes":
        return format_size(value)
    if unit.startswith("bytes/"):
        per = unit.removeprefix("bytes/")
        return f"{format_size(value)}/{_PER_ABBREVIATIONS.get(per, per)}"
    if unit == "ratio":
        return f"{value:.1%}"
    return f"{_sig(value)} {unit}".strip()


def format_change(verdict: Verdict) -> str:
    change = verdict.change
    if change is None:
        return "-"
    magnitude = format_value(abs(change), verdict.unit)
    sign = "-" if change < 0 and not magnitude.startswith("0 ") else "+"
    text = sign + magnitude
    ratio = verdict.change_ratio
    if ratio is not None:
        text += f" ({ratio:+.1%})"
    return text


def format_limit(verdict: Verdict) -> str:
    limit = verdict.limit
    if limit is None:
        return verdict.threshold.describe() if verdict.threshold else "-"
    return "+" + format_value(limit, verdict.unit)


def _sig(value: float) -> str:
    if value == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(value))))
    return _trim(round(value, digits))


def _trim(value: float) -> str:
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


# --- where a regression came from -----------------------------------------------------------

SITES_KIND = "memload-gate-sites"
SITES_SCHEMA_VERSION = 1
# design -> {"peak": [site rows], "retained": [site rows]}; a site row is a Site's JSON plus the
# endpoint and history_len of the request it was measured on (harness.phases.probe.SITES_JSON).
DesignSites = Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True)
class Explanation:
    """The allocation sites that grew the most in one regressed series."""

    key: SeriesKey
    kind: Literal["peak", "retained"]
    changes: tuple[SiteChange, ...]

    def lines(self) -> list[str]:
        unit = "/req" if self.kind == "retained" else ""
        out = []
        for c in self.changes:
            via = f" (via {c.via})" if c.via else ""
            name = f" in {c.function}" if c.function else ""
            out.append(f"+{format_size(c.change)}{unit} at {c.location}{name}{via}")
        return out

    def summary(self) -> str:
        """'+13.9 KiB at reference_app/optimized/store.py:88', the largest growth."""
        return self.lines()[0] if self.changes else "no allocation site grew"


def _sites_for(
    sites: DesignSites, design: str, kind: str, endpoint: str, history_len: str | None
) -> list[Site]:
    rows = (sites.get(design) or {}).get(kind) or []
    return [
        Site.from_json(r)
        for r in rows
        if str(r.get("endpoint")) == endpoint
        and (history_len is None or str(r.get("history_len")) == history_len)
    ]


def _nearest_history_len(
    sites: DesignSites, design: str, endpoint: str, wanted: str | None
) -> str | None:
    """The history length with peak sites nearest to `wanted` (None: the largest)."""
    lens = {
        int(r["history_len"])
        for r in (sites.get(design) or {}).get("peak") or []
        if str(r.get("endpoint")) == endpoint and str(r.get("history_len", "")).isdigit()
    }
    if not lens:
        return None
    if wanted is None or not wanted.isdigit():
        return str(max(lens))
    return str(min(lens, key=lambda n: (abs(n - int(wanted)), -n)))


def explain(
    result: GateResult, baseline_sites: DesignSites, current_sites: DesignSites, top: int = 3
) -> dict[SeriesKey, Explanation]:
    """For each regressed series, the sites that grew the most between the baseline and now.

    A peak is explained by the peak sites (what the request held at its high-water mark) at the
    nearest history length that has them; a slope by those at the largest; retained memory by
    the retained sites (per request).
    """
    out: dict[SeriesKey, Explanation] = {}
    for v in result.regressions:
        labels = dict(v.key.labels)
        endpoint = labels.get("endpoint", "")
        kind: Literal["peak", "retained"] = (
            "retained" if v.key.metric == "retained_bytes_per_request" else "peak"
        )
        history_len: str | None = None
        if kind == "peak":
            history_len = _nearest_history_len(
                current_sites, v.key.design, endpoint, labels.get("history_len")
            )
        before = _sites_for(baseline_sites, v.key.design, kind, endpoint, history_len)
        after = _sites_for(current_sites, v.key.design, kind, endpoint, history_len)
        if after:
            out[v.key] = Explanation(v.key, kind, tuple(growth(before, after, top)))
    return out


def build_sites(sites: DesignSites, *, created_at: str, git_sha: str) -> dict[str, Any]:
    """The JSON payload stored beside a baseline: every design's probe sites."""
    return {
        "schema_version": SITES_SCHEMA_VERSION,
        "kind": SITES_KIND,
        "created_at": created_at,
        "git_sha": git_sha,
        "designs": {d: dict(s) for d, s in sites.items()},
    }


def parse_sites(raw: Any, where: object) -> DesignSites:
    """The designs' sites of a sites file; BaselineError when it cannot be used."""
    if not isinstance(raw, Mapping) or raw.get("kind") != SITES_KIND:
        raise BaselineError(f"{where}: not a gate sites file")
    if raw.get("schema_version") != SITES_SCHEMA_VERSION:
        raise BaselineError(
            f"{where}: sites schema_version {raw.get('schema_version')!r} is not "
            f"{SITES_SCHEMA_VERSION}; re-create it with `make gate ARGS=--update-baseline`"
        )
    designs = raw.get("designs")
    if not isinstance(designs, Mapping):
        raise BaselineError(f"{where}: malformed designs section")
    return designs
