"""The memory gate: thresholds vs a baseline -> verdicts.

The names below are pure (no file, network or console I/O). The package's private modules:
_metrics (vocabulary), _thresholds (expressions, selectors), _verdicts (compare), _baseline
(the baseline file), _explain (allocation sites of a regression), _format (units), _render
(console, Markdown, JUnit), _probe (the gate's probe runs) and _run (what `harness gate` does:
I/O at the edges; imported by harness.cli.gate only).

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

from harness.gate._baseline import (
    Baseline,
    build_baseline,
    environment_fingerprint,
    environment_warnings,
    parse_baseline,
    settings_mismatch,
)
from harness.gate._explain import (
    SITES_KIND,
    SITES_SCHEMA_VERSION,
    DesignSites,
    Explanation,
    build_sites,
    explain,
    parse_sites,
)
from harness.gate._format import (
    format_change,
    format_limit,
    format_size,
    format_value,
)
from harness.gate._metrics import (
    BASELINE_KIND,
    BASELINE_SCHEMA_VERSION,
    CV_METRIC,
    CV_WARN_RATIO,
    DEFAULT_NOISE_K,
    GATED_METRICS,
    INFORMATIONAL_METRICS,
    KNOWN_LABELS,
    NOISE_METRICS,
    PROBE_PHASE,
    SEEN_METRICS,
    BaselineError,
    Status,
)
from harness.gate._thresholds import (
    EXPRESSION_HELP,
    Rule,
    Selector,
    Threshold,
    Thresholds,
    compile_thresholds,
    parse_selector,
    parse_size,
    parse_threshold,
)
from harness.gate._verdicts import (
    GateResult,
    SeriesKey,
    Verdict,
    compare,
    cv_warnings,
    gated_rows,
    judge,
    noise_rows,
    seen_rows,
)

__all__ = [
    "BASELINE_KIND",
    "BASELINE_SCHEMA_VERSION",
    "CV_METRIC",
    "CV_WARN_RATIO",
    "DEFAULT_NOISE_K",
    "EXPRESSION_HELP",
    "GATED_METRICS",
    "INFORMATIONAL_METRICS",
    "KNOWN_LABELS",
    "NOISE_METRICS",
    "PROBE_PHASE",
    "SEEN_METRICS",
    "SITES_KIND",
    "SITES_SCHEMA_VERSION",
    "Baseline",
    "BaselineError",
    "DesignSites",
    "Explanation",
    "GateResult",
    "Rule",
    "Selector",
    "SeriesKey",
    "Status",
    "Threshold",
    "Thresholds",
    "Verdict",
    "build_baseline",
    "build_sites",
    "compare",
    "compile_thresholds",
    "cv_warnings",
    "environment_fingerprint",
    "environment_warnings",
    "explain",
    "format_change",
    "format_limit",
    "format_size",
    "format_value",
    "gated_rows",
    "judge",
    "noise_rows",
    "parse_baseline",
    "parse_selector",
    "parse_sites",
    "parse_size",
    "parse_threshold",
    "seen_rows",
    "settings_mismatch",
]
