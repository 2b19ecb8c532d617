"""Synthetic run directories and ledgers for the history tests (no processes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from harness.results import SCHEMA_VERSION, SummaryRow

SERIES = (
    ("optimized", "chat", "1000"),
    ("optimized", "history", "1000"),
    ("naive", "chat", "1000"),
)


def rows(values: Mapping[tuple[str, str, str], float]) -> list[SummaryRow]:
    """alloc_peak_bytes rows (plus an informational alloc_cv and a load row the trend ignores)."""
    out: list[SummaryRow] = []
    for (design, endpoint, hist), value in values.items():
        labels = {"endpoint": endpoint, "history_len": hist}
        out.append(SummaryRow(design, "probe", "alloc_peak_bytes", value, "bytes", labels))
        out.append(SummaryRow(design, "probe", "alloc_cv", 0.01, "ratio", labels))
    out.append(SummaryRow("naive", "load", "rss_peak_bytes", 1e8, "bytes"))
    return out


def write_run(
    root: Path,
    name: str,
    sha: str,
    started_at: str,
    summary: list[SummaryRow],
    command: str = "gate",
    gate_baseline: Mapping[tuple[str, str, str], float] | None = None,
) -> Path:
    """A run directory as `harness gate` leaves it: run.json, summary.json, maybe gate.json."""
    run = root / name
    run.mkdir(parents=True)
    designs = sorted({r.design for r in summary})
    (run / "run.json").write_text(
        json.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": name,
                "command": command,
                "started_at": started_at,
                "finished_at": started_at,
                "status": "passed",
                "config": {"designs": designs},
                "environment": {"git_sha": sha, "python": "3.11.7"},
                "phases": [{"design": d, "phase": "probe", "status": "passed"} for d in designs],
            }
        ),
        encoding="utf-8",
    )
    (run / "summary.json").write_text(json.dumps([r.to_json() for r in summary]), "utf-8")
    if gate_baseline is not None:
        verdicts = [
            {
                "metric": "alloc_peak_bytes",
                "design": design,
                "labels": {"endpoint": endpoint, "history_len": hist},
                "baseline": value,
                "status": "pass",
            }
            for (design, endpoint, hist), value in gate_baseline.items()
        ]
        (run / "gate.json").write_text(json.dumps({"verdicts": verdicts}), "utf-8")
    return run


def baseline_payload(
    values: Mapping[tuple[str, str, str], float], sha: str, created_at: str, source_run: str = ""
) -> dict[str, object]:
    """What harness.gate.build_baseline returns, reduced to what the ledger reads."""
    return {
        "schema_version": 1,
        "kind": "memload-gate-baseline",
        "created_at": created_at,
        "provenance": {"git_sha": sha, "source_run": source_run},
        "probe": {"designs": sorted({k[0] for k in values})},
        "rows": [r.to_json() for r in rows(values) if r.metric == "alloc_peak_bytes"],
    }
