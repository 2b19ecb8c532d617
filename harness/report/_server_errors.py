"""The report's "What the server said" section: each phase's grouped server exceptions
(harness.phases.server_errors writes them to <design>/<phase>/server_errors.json), next to
Locust's request and failure counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.results import read_json

SERVER_ERRORS_JSON = "server_errors.json"  # harness.phases.server_errors.SERVER_ERRORS_JSON


def server_errors_view(root: Path) -> list[dict[str, Any]]:
    """One entry per phase that logged exceptions or failed requests, in path order."""
    views: list[dict[str, Any]] = []
    for path in sorted(root.glob(f"*/*/{SERVER_ERRORS_JSON}")):
        try:
            data = read_json(path)
        except (OSError, ValueError):
            continue
        locust = data.get("locust") or {}
        views.append(
            {
                "design": path.parent.parent.name,
                "phase": path.parent.name,
                "requests": int(locust.get("requests", 0)),
                "failures": int(locust.get("failures", 0)),
                "exceptions": [
                    {
                        "title": f"{e['type']}: {e['message']}" if e.get("message") else e["type"],
                        "count": int(e["count"]),
                        "traceback": str(e.get("first_traceback", "")),
                    }
                    for e in data.get("exceptions") or []
                ],
                "file": str(path.relative_to(root)),
            }
        )
    return views
