"""The app's own account of failed requests: its logged exceptions, read after a phase.

`record_server_errors(phase_dir, requests=, failures=)` reads the app's logs of the phase
(`<phase_dir>/logs/app.stderr.log` and `app.stdout.log`, where harness.stack.processes puts them),
groups their tracebacks (harness.analysis.server_errors) and, when there is anything to say
(an exception logged, or a failed request), writes `<phase_dir>/server_errors.json` next to
Locust's counts, for the report. The console text comes from `describe`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.analysis.server_errors import (
    ServerException,
    console_lines,
    parse_exceptions,
    to_json,
)
from harness.results import read_json, write_json_atomic

SERVER_ERRORS_JSON = "server_errors.json"
SCHEMA_VERSION = 1
APP_LOGS = ("app.stderr.log", "app.stdout.log")
MAX_LOG_BYTES = 64 * 1024 * 1024  # of a longer log, its end (its first tracebacks may be lost)


def record_server_errors(
    phase_dir: Path, *, requests: int, failures: int, log_dir: Path | None = None
) -> list[ServerException]:
    """Group the exceptions the app logged during the phase; write server_errors.json."""
    logs = log_dir if log_dir is not None else phase_dir / "logs"
    exceptions: list[ServerException] = []
    read: list[str] = []
    for name in APP_LOGS:
        path = logs / name
        if path.is_file():
            exceptions += parse_exceptions(_tail_text(path))
            read.append(str(path))
    exceptions = _merge(exceptions)
    if exceptions or failures:
        write_json_atomic(
            phase_dir / SERVER_ERRORS_JSON,
            {
                "schema_version": SCHEMA_VERSION,
                "logs": read,
                "locust": {"requests": requests, "failures": failures},
                "exceptions": to_json(exceptions),
            },
        )
    return exceptions


def describe(
    exceptions: list[ServerException], *, requests: int, failures: int, phase_dir: Path
) -> str:
    """The console's lines, or a sentence saying the app logged nothing."""
    if not exceptions:
        return (
            f"{failures:,} of {requests:,} requests failed; the app logged no exception "
            f"(Locust's reasons: {phase_dir / 'locust_failures.csv'})"
        )
    where = f"first tracebacks: {phase_dir / SERVER_ERRORS_JSON}"
    return "\n".join(console_lines(exceptions, requests=requests, failures=failures, log=where))


def read_server_errors(phase_dir: Path) -> dict[str, Any] | None:
    path = phase_dir / SERVER_ERRORS_JSON
    if not path.is_file():
        return None
    data: dict[str, Any] = read_json(path)
    return data


def _tail_text(path: Path) -> str:
    with path.open("rb") as f:
        size = f.seek(0, 2)
        f.seek(max(0, size - MAX_LOG_BYTES))
        return f.read().decode("utf-8", errors="replace")


def _merge(exceptions: list[ServerException]) -> list[ServerException]:
    """One entry per (type, message) across the logs, most frequent first."""
    merged: dict[tuple[str, str], ServerException] = {}
    for exc in exceptions:
        key = (exc.type, exc.message)
        if key in merged:
            first = merged[key]
            merged[key] = ServerException(
                first.type, first.message, first.count + exc.count, first.first_traceback
            )
        else:
            merged[key] = exc
    return sorted(merged.values(), key=lambda e: -e.count)
