"""The one wall-clock helper: timestamps in run.json, baselines and phase records."""

from __future__ import annotations

from datetime import UTC, datetime


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second: '2026-12-04T07:30:00+00:00'."""
    return datetime.now(UTC).isoformat(timespec="seconds")
