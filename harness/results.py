"""The run directory: its versioned schema, atomic writes, and the tidy summary rows.

Every phase writes into one run directory; the report and the gate read only it.
See docs/run-directory.md for the layout.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from harness._clock import now_iso

SCHEMA_VERSION = 1

TRACKED_PACKAGES = (
    "fastapi",
    "uvicorn",
    "uvloop",
    "starlette",
    "httpx",
    "locust",
    "memray",
    "psutil",
    "pandas",
    "matplotlib",
)


@dataclass(frozen=True)
class SummaryRow:
    """One tidy metric: (design, phase, metric, labels) -> value in unit."""

    design: str
    phase: str
    metric: str
    value: float
    unit: str
    labels: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        row = asdict(self)
        row["labels"] = dict(self.labels)
        return row

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> SummaryRow:
        return cls(
            design=str(raw["design"]),
            phase=str(raw["phase"]),
            metric=str(raw["metric"]),
            value=float(raw["value"]),
            unit=str(raw["unit"]),
            labels={str(k): str(v) for k, v in dict(raw.get("labels") or {}).items()},
        )


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False, default=str)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def git_sha(cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=10", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment() -> dict[str, Any]:
    """What a reader needs to compare two runs; versions only, never env variables."""
    packages: dict[str, str] = {}
    for name in TRACKED_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "absent"
    return {
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _total_memory(),
        "packages": packages,
        "git_sha": git_sha(),
    }


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _total_memory() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unsupported platform
        return None


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{git_sha()}"


class RunDir:
    """Paths inside one run directory, and the few files every phase shares."""

    def __init__(self, root: Path) -> None:
        # Absolute, so that children started in other working directories find its files.
        self.root = Path(root).absolute()

    @classmethod
    def create(cls, out: Path, run_id: str | None = None) -> RunDir:
        rid = run_id or new_run_id()
        root = Path(out) / rid
        suffix = 1
        while root.exists():
            suffix += 1
            root = Path(out) / f"{rid}-{suffix}"
        root.mkdir(parents=True)
        return cls(root)

    @property
    def run_id(self) -> str:
        return self.root.name

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def summary_json(self) -> Path:
        return self.root / "summary.json"

    @property
    def figures(self) -> Path:
        return self.root / "figures"

    def design_dir(self, design: str) -> Path:
        return self.root / design

    def phase_dir(self, design: str, phase: str) -> Path:
        path = self.root / design / phase
        path.mkdir(parents=True, exist_ok=True)
        return path

    def integrity_json(self, design: str) -> Path:
        return self.root / design / "integrity.json"

    # --- summary.json: a list of tidy rows -------------------------------------------
    def read_summary(self) -> list[SummaryRow]:
        if not self.summary_json.exists():
            return []
        return [SummaryRow.from_json(r) for r in read_json(self.summary_json)]

    def add_summary(self, rows: Iterable[SummaryRow]) -> None:
        """Replace rows with the same (design, phase) and keep the rest."""
        new = list(rows)
        replaced = {(r.design, r.phase) for r in new}
        kept = [r for r in self.read_summary() if (r.design, r.phase) not in replaced]
        write_json_atomic(self.summary_json, [r.to_json() for r in kept + new])

    # --- run.json --------------------------------------------------------------------
    def read_run(self) -> dict[str, Any]:
        if not self.run_json.exists():
            return {}
        data: dict[str, Any] = read_json(self.run_json)
        return data

    def start_run(self, command: str, config: Mapping[str, Any]) -> None:
        write_json_atomic(
            self.run_json,
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                "command": command,
                "started_at": now_iso(),
                "finished_at": None,
                "status": "running",
                "config": dict(config),
                "environment": environment(),
                "phases": [],
            },
        )

    def record_phase(
        self,
        design: str,
        phase: str,
        status: str,
        started_at: str,
        duration_s: float,
        detail: str = "",
        exit_code: int | None = None,
    ) -> None:
        """status: passed | failed | skipped | interrupted."""
        run = self.read_run()
        phases = [p for p in run.get("phases", []) if (p["design"], p["phase"]) != (design, phase)]
        phases.append(
            {
                "design": design,
                "phase": phase,
                "status": status,
                "started_at": started_at,
                "duration_s": round(duration_s, 3),
                "exit_code": exit_code,
                "detail": detail,
            }
        )
        run["phases"] = phases
        write_json_atomic(self.run_json, run)

    def add_warning(self, message: str, design: str = "", phase: str = "") -> None:
        """Append a warning a reader must see (e.g. the load generator saturated)."""
        run = self.read_run()
        warnings = list(run.get("warnings", []))
        warnings.append({"design": design, "phase": phase, "message": message})
        run["warnings"] = warnings
        write_json_atomic(self.run_json, run)

    def finish_run(self, status: str) -> None:
        """status: passed | failed | interrupted."""
        run = self.read_run()
        run["status"] = status
        run["finished_at"] = now_iso()
        write_json_atomic(self.run_json, run)

    def point_latest(self) -> None:
        """Make <out>/latest a symlink to this run (replaced atomically)."""
        link = self.root.parent / "latest"
        tmp = self.root.parent / f".latest.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.root.name, target_is_directory=True)
        os.replace(tmp, link)


def check_schema(run: Mapping[str, Any], where: Path) -> None:
    from harness._errors import HarnessError

    version = run.get("schema_version")
    if version != SCHEMA_VERSION:
        err = HarnessError(
            f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}; "
            "re-run with this version of the harness"
        )
        err.exit_code = 2
        raise err


def check_file_version(data: Any, where: Path) -> None:
    """A run's other JSON files carry the run's schema_version too (files written before
    they did have none: run.json's covers them). Another version is refused, naming the file."""
    if isinstance(data, Mapping) and "schema_version" in data:
        check_schema(data, where)
