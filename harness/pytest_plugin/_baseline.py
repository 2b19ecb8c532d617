"""The session's figures as the gate's summary rows, compared with a gate baseline file.

Not a second gate: the rows are ``harness.results.SummaryRow`` of phase ``probe`` and the gate's
metric names; the file is the gate's baseline format (harness.gate.build_baseline /
parse_baseline); the verdicts are harness.gate.compare's, with the thresholds of the
``[gate]`` table of ./loadtest.toml (or the packaged default). The series of a test are
labelled ``design=pytest`` and ``endpoint=<test id> <METHOD path>``; a peak-growth run adds one
series per size (``history_len``, the gate's label for the size) and its slope.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness.gate import (
    GateResult,
    Status,
    build_baseline,
    compare,
    compile_thresholds,
    format_change,
    format_limit,
    format_value,
    parse_baseline,
)
from harness.pytest_plugin._figures import PeakGrowth, RequestMemory, Retained
from harness.results import SummaryRow

DESIGN = "pytest"
PHASE = "probe"
MAD_TO_SIGMA = 1.4826


class SessionFigures:
    """Every figure the tests of this process measured, kept for the baseline comparison."""

    def __init__(self) -> None:
        self.peaks: dict[str, list[float]] = {}
        self.rows: list[SummaryRow] = []

    def add(self, nodeid: str, kind: str, figure: Any) -> None:
        if kind == "request" and isinstance(figure, RequestMemory):
            self.peaks.setdefault(f"{nodeid} {figure.request}", []).append(figure.peak_bytes)
        elif kind == "retained" and isinstance(figure, Retained):
            labels = {"endpoint": f"{nodeid} {figure.request}"}
            rate, stderr = figure.bytes_per_request, figure.stderr_bytes
            self.rows += [
                _row("retained_bytes_per_request", rate, "bytes/request", labels),
                _row("retained_stderr_bytes", stderr, "bytes/request", labels),
            ]
        elif kind == "growth" and isinstance(figure, PeakGrowth):
            endpoint = f"{nodeid} {figure.request}"
            self.rows.append(
                _row(
                    "alloc_slope_bytes_per_unit",
                    figure.bytes_per_unit,
                    f"bytes/{figure.unit}",
                    {"endpoint": endpoint},
                )
            )
            for size, peak, spread in zip(figure.sizes, figure.peaks, figure.spreads, strict=True):
                labels = {"endpoint": endpoint, "history_len": str(size)}
                self.rows += [
                    _row("alloc_peak_bytes", peak, "bytes", labels),
                    _row("alloc_peak_spread_bytes", spread, "bytes", labels),
                ]

    def summary_rows(self) -> list[SummaryRow]:
        rows = list(self.rows)
        for endpoint, peaks in sorted(self.peaks.items()):
            values = np.asarray(peaks, dtype=float)
            spread = MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))
            labels = {"endpoint": endpoint}
            rows += [
                _row("alloc_peak_bytes", float(np.median(values)), "bytes", labels),
                _row("alloc_peak_spread_bytes", spread, "bytes", labels),
            ]
        return rows


def _row(metric: str, value: float, unit: str, labels: Mapping[str, str]) -> SummaryRow:
    return SummaryRow(DESIGN, PHASE, metric, float(value), unit, dict(labels))


def compare_with_baseline(rows: Sequence[SummaryRow], path: Path) -> GateResult:
    """The gate's verdicts for `rows` against the baseline at `path` (BaselineError if none)."""
    from harness.config import load

    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        from harness.gate import BaselineError

        raise BaselineError(f"{path}: cannot read the baseline: {exc}") from None
    baseline = parse_baseline(raw, path)
    gate = load(None).gate
    thresholds = compile_thresholds(gate.thresholds, gate.default)
    return compare(baseline.rows, rows, thresholds, noise_k=gate.noise_k)


def write_baseline(rows: Iterable[SummaryRow], path: Path) -> None:
    from harness.results import environment, write_json_atomic

    payload = build_baseline(
        rows,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        environment=environment(),
        probe={"designs": [DESIGN], "source": "pytest --memload-update-baseline"},
        source_run=f"pytest in {os.getcwd()}",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, payload)


def verdict_lines(result: GateResult) -> list[str]:
    """One line per series that did not pass (regressions first), then the counts.

    A series of the baseline that this session did not measure is not an error here (a test
    run may select a subset): it is counted as not measured.
    """
    lines = []
    order = {"regression": 0, "improved": 1, "new": 2}
    for v in sorted(result.verdicts, key=lambda v: order.get(v.status, 9)):
        if v.status not in order:
            continue
        current = format_value(v.current, v.unit) if v.current is not None else "-"
        endpoint = dict(v.key.labels).get("endpoint", "")
        text = f"{v.status.upper()} {v.key.metric} {endpoint}: {current}"
        if v.baseline is not None:
            text += f" ({format_change(v)}, limit {format_limit(v)})"
        lines.append(text)
    named: tuple[tuple[Status, str], ...] = (
        ("pass", "passed"),
        ("regression", "regressed"),
        ("improved", "improved"),
        ("new", "new"),
        ("missing", "not measured"),
    )
    counts = ", ".join(f"{result.count(s)} {name}" for s, name in named if result.count(s))
    lines.append(f"baseline comparison: {counts or 'nothing to compare'}")
    return lines
