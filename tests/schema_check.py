"""Validate a run directory's JSON files against docs/schemas/ (jsonschema, draft 2020-12).

Every JSON file of a run must map to a schema (a new file needs one), except what the
harness does not define: memray's own `memray_stats.json` and the seeded stores (data/).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(__file__).resolve().parents[1] / "docs" / "schemas"

# path inside the run directory (glob) -> schema name; first match wins
RUN_FILES = [
    ("run.json", "run"),
    ("summary.json", "summary"),
    ("gate.json", "gate"),
    ("ceiling/ceiling/meta.json", "ceiling-meta"),
    ("*/integrity.json", "integrity"),
    ("*/load/meta.json", "load-meta"),
    ("*/profile/profile_timings.json", "profile-timings"),
    ("*/chaos/chaos.json", "chaos"),
    ("*acks.json", "acks"),
    # formats from the capacity search and server-error reports (loose schemas for now)
    ("*/probe/probe_sites.json", "probe-sites"),
    ("*server_errors.json", "server-errors"),
    ("*/capacity/meta.json", "capacity-meta"),
    ("*/size/sizing.json", "sizing"),
    ("*plan.json", "capacity-plan"),
    ("*timeline.json", "capacity-plan"),
]
NOT_OURS = ("*/memray_stats.json", "*/data/*")


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    return loaded


def errors(data: Any, name: str) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema(name))
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(data)
    ]


def schema_for(relative: str) -> str | None:
    for pattern, name in RUN_FILES:
        if fnmatch.fnmatch(relative, pattern):
            return name
    return None


def check_run_dir(root: Path) -> dict[str, str]:
    """Validate every JSON file under root; return {relative path: schema} of what was checked.
    Fails (AssertionError) on a file that does not validate or that has no schema."""
    checked: dict[str, str] = {}
    problems: list[str] = []
    for path in sorted(root.rglob("*.json")):
        relative = path.relative_to(root).as_posix()
        if any(fnmatch.fnmatch(relative, p) for p in NOT_OURS):
            continue
        name = schema_for(relative)
        if name is None:
            problems.append(f"{relative}: no schema in docs/schemas/ for this file")
            continue
        problems += [f"{relative}: {e}" for e in errors(json.loads(path.read_text()), name)]
        checked[relative] = name
    assert not problems, "\n".join(problems)
    return checked
