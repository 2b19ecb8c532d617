"""The probe's console tables: the peak per point, and per endpoint its growth per size unit,
its one-time growth and what each request retains (what `harness probe` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from harness.report._units import format_bytes
from harness.results import SummaryRow


def _labels(row: SummaryRow) -> tuple[str, str, int]:
    return (row.design, row.labels.get("endpoint", ""), int(row.labels.get("history_len", "0")))


def peak_table(rows: Sequence[SummaryRow]) -> Table:
    """alloc_peak_bytes (median), alloc_net_bytes (median) and alloc_cv per point."""
    points: dict[tuple[str, str, int], dict[str, float]] = {}
    for row in rows:
        if row.phase == "probe" and "history_len" in row.labels:
            points.setdefault(_labels(row), {})[row.metric] = row.value
    table = Table(title="probe: bytes per request (median of reps)")
    for name, justify in (
        ("design", "left"),
        ("endpoint", "left"),
        ("history_len", "right"),
        ("alloc_peak", "right"),
        ("alloc_net", "right"),
        ("alloc_cv", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for (design, endpoint, history_len), figures in points.items():
        cv = figures.get("alloc_cv")
        table.add_row(
            design,
            endpoint,
            str(history_len),
            format_bytes(figures.get("alloc_peak_bytes")),
            format_bytes(figures.get("alloc_net_bytes")),
            "–" if cv is None else f"{100 * cv:.2f}%",
        )
    return table


def slope_table(rows: Sequence[SummaryRow]) -> Table:
    """Per (design, endpoint): the peak's slope per size unit, what its leak run kept once and
    what a request retains."""
    per: dict[tuple[str, str], dict[str, SummaryRow]] = {}
    for row in rows:
        if row.phase == "probe" and "endpoint" in row.labels:
            per.setdefault((row.design, row.labels["endpoint"]), {})[row.metric] = row
    table = Table(
        title="probe: growth per size unit; memory kept once (a cache filling), then per request"
    )
    table.add_column("design")
    table.add_column("endpoint")
    table.add_column("alloc_peak slope", justify="right")
    table.add_column("one-time growth", justify="right")
    table.add_column("then retained/request", justify="right")
    table.add_column("blocks/request", justify="right")
    for (design, endpoint), figures in per.items():
        slope = figures.get("alloc_slope_bytes_per_unit")
        kept = figures.get("retained_bytes_per_request")
        stderr = figures.get("retained_stderr_bytes")
        blocks = figures.get("retained_blocks_per_request")
        step = figures.get("retained_step_bytes")
        if slope is None and kept is None:
            continue
        table.add_row(
            design,
            endpoint,
            "–" if slope is None else f"{slope.value:,.1f} {slope.unit}",
            "–" if step is None else format_bytes(step.value),
            "–" if kept is None else f"{kept.value:,.0f} ± {stderr.value if stderr else 0:,.0f} B",
            "–" if blocks is None else f"{blocks.value:,.2f}",
        )
    return table
