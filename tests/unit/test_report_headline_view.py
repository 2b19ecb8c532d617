"""The report's headline keeps at most 15 rows; every other line goes to its phase's section."""

from __future__ import annotations

from typing import Any

from harness.analysis.headline import HEADLINE, HeadlineMetric, headline_table, summary_frame
from harness.report._headline_view import (
    IN_SECTIONS,
    MAX_HEADLINE_ROWS,
    WORST_ONLY,
    phase_rows,
    split_headline,
)

DESIGNS = ["naive", "optimized"]
SECTIONS = ["load", "capacity", "probe", "profile", "integrity"]
ENDPOINTS = ("chat", "chat_stream", "history")


def rows_for_every_headline_metric() -> list[dict[str, Any]]:
    """A full run of the reference designs: every HEADLINE metric, per endpoint where it is."""
    rows: list[dict[str, Any]] = []
    per_endpoint = {"latency_p95_ms", "alloc_peak_bytes", "alloc_slope_bytes_per_unit"}
    per_endpoint |= {"alloc_net_bytes", "retained_bytes_per_request"}
    for spec in HEADLINE:
        for design, scale in (("naive", 3.0), ("optimized", 1.0)):
            if spec.metric in per_endpoint:
                for i, endpoint in enumerate(ENDPOINTS):
                    labels = {"endpoint": endpoint}
                    if spec.phase == "probe" and spec.metric != "alloc_slope_bytes_per_unit":
                        labels["history_len"] = "100"
                    rows.append(_row(design, spec, scale * (1000 + i * 100), labels))
            elif spec.metric == "ttft_p95_ms":
                rows.append(_row(design, spec, scale * 100, {"endpoint": "chat_stream"}))
            else:
                rows.append(_row(design, spec, scale * 1000, {}))
    return rows


def _row(design: str, spec: HeadlineMetric, value: float, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "design": design,
        "phase": spec.phase,
        "metric": spec.metric,
        "value": value,
        "unit": "bytes",
        "labels": labels,
    }


def test_a_full_run_has_at_most_15_headline_rows_and_loses_none() -> None:
    table = headline_table(summary_frame(rows_for_every_headline_metric()), DESIGNS)
    assert len(table) >= 35  # as many lines as the console prints, less its extras
    head, rest = split_headline(table, DESIGNS, SECTIONS)
    assert len(head) <= MAX_HEADLINE_ROWS
    assert not set(head["metric"]) & IN_SECTIONS
    assert set(head["key"]) | set(rest["key"]) == set(table["key"])
    # a per-endpoint metric: its worst endpoint in the headline, every endpoint in the section
    latency = head[head["metric"] == "latency_p95_ms"]
    assert latency["title"].tolist() == ["Latency p95 (history; worst of 3)"]
    assert len(rest[rest["metric"] == "latency_p95_ms"]) == 3
    for metric in WORST_ONLY - {"ttft_p95_ms"}:
        assert len(head[head["metric"] == metric]) == 1, metric
    assert phase_rows(rest, "probe")["phase"].eq("probe").all()
    assert set(phase_rows(rest, "load")["metric"]) >= {"rss_hwm_bytes", "fds_max"}


def test_a_phase_without_a_section_stays_in_the_headline() -> None:
    table = headline_table(summary_frame(rows_for_every_headline_metric()), DESIGNS)
    head, _rest = split_headline(table, DESIGNS, ["capacity", "probe", "profile", "integrity"])
    assert "rss_hwm_bytes" in set(head["metric"])  # the load phase has no section here


def test_a_new_metric_is_a_headline_row_and_the_cap_holds() -> None:
    extra = [HeadlineMetric(f"new_{i}", "load", f"New {i}", "lower") for i in range(20)]
    rows = rows_for_every_headline_metric()
    for spec in extra:
        rows += [_row(d, spec, 5.0, {}) for d in DESIGNS]
    table = headline_table(summary_frame(rows), DESIGNS, (*HEADLINE, *extra))
    head, rest = split_headline(table, DESIGNS, SECTIONS)
    assert len(head) == MAX_HEADLINE_ROWS
    assert set(head["key"]) | set(rest["key"]) == set(table["key"])
    assert split_headline(table.iloc[0:0], DESIGNS, SECTIONS)[0].empty
