"""The acknowledged-writes file (HARNESS_ACKS), whichever way Locust ran.

The locustfiles (scenarios/common.py) count, per user id, the `POST /chat` exchanges the
server acknowledged, and write them when the test stops:

- one Locust process: `<acks>` itself;
- `--processes N` (forked local workers): each worker writes `<acks>.worker-<pid>`, its own
  exact counts; the master process runs no users and writes nothing;
- a master with workers on other machines: the workers' files stay on their machines, so the
  master writes `<acks>.master`, the counts the workers attached to their statistics reports
  (every few seconds, and once more when they stop). Writes acknowledged in a worker's last
  moments may miss the master's last report: that file is a lower bound.

`merge_parts(path)` turns whatever was written into the one `<acks>` file the integrity phase
reads (same format in every mode, plus `merged_from` and `source`), and removes the parts.
`read_acks(path)` reads it, merging parts that are still there (a run that stopped before
the merge) but never counting a part twice.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.results import read_json, write_json_atomic

WORKER_PART = ".worker-"
MASTER_PART = ".master"


def part_files(path: Path) -> tuple[list[Path], Path | None]:
    """(the workers' part files, the master's part file or None) next to `path`."""
    workers = sorted(path.parent.glob(f"{path.name}{WORKER_PART}*"))
    master = path.with_name(path.name + MASTER_PART)
    return workers, (master if master.exists() else None)


def stale_files(path: Path) -> list[Path]:
    """Every file a run writes for `path` (to delete before the next run)."""
    workers, master = part_files(path)
    return [path, *workers, *([master] if master else [])]


def _counts(raw: Mapping[str, Any], key: str) -> Counter[str]:
    return Counter({str(k): int(v) for k, v in dict(raw.get(key) or {}).items()})


def _sum(files: list[Path]) -> dict[str, Any]:
    acknowledged: Counter[str] = Counter()
    attempted: Counter[str] = Counter()
    for file in files:
        raw = read_json(file)
        acknowledged.update(_counts(raw, "acknowledged"))
        attempted.update(_counts(raw, "attempted"))
    return {
        "acknowledged": dict(sorted(acknowledged.items())),
        "attempted": dict(sorted(attempted.items())),
    }


def merge_parts(path: Path) -> bool:
    """Merge the part files next to `path` into `path`; True if there were any.

    Workers' files are exact and win; the master's file is used only when no worker file
    is here (the workers ran on other machines).
    """
    workers, master = part_files(path)
    if not workers and master is None:
        return False
    base = [path] if path.exists() else []
    if workers:
        merged, source, parts = _sum([*base, *workers]), "workers", workers
    else:
        assert master is not None
        merged, source, parts = _sum([*base, master]), "master", [master]
    merged["source"] = source
    merged["merged_from"] = [p.name for p in parts]
    write_json_atomic(path, merged)
    for part in [*workers, *([master] if master else [])]:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return True


def acks_exist(path: Path) -> bool:
    workers, master = part_files(path)
    return path.exists() or bool(workers) or master is not None


def read_acks(path: Path) -> dict[str, int]:
    """Acknowledged exchanges per user id, from `path` and any part not yet merged."""
    merged_from: set[str] = set()
    files: list[Path] = []
    if path.exists():
        merged_from = set(read_json(path).get("merged_from") or [])
        files.append(path)
    workers, master = part_files(path)
    files += [p for p in workers if p.name not in merged_from]
    if not workers and master is not None and master.name not in merged_from:
        files.append(master)
    return {k: int(v) for k, v in _sum(files)["acknowledged"].items()}
