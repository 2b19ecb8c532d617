"""Threshold expressions (`+5% floor 1KiB cap 256`) and selectors (`metric{label=value}`):
parsed and validated here, so a bad `[gate]` table fails with the key that is wrong."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness._errors import ConfigError
from harness.gate._format import _trim, format_size
from harness.gate._metrics import GATED_METRICS, INFORMATIONAL_METRICS, KNOWN_LABELS

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
