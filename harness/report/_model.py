"""Read a run directory (and only it) into memory: run.json, summary.json and the CSVs.

This is the report's only reader; nothing here writes. A file that is missing or unreadable
leaves its slot empty (None) so that the report can say what is missing instead of failing.
"""

from __future__ import annotations

import contextlib
import csv
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from harness._errors import HarnessError
from harness.analysis.headline import CEILING, designs_in, summary_frame
from harness.results import RunDir, check_file_version, check_schema, read_json


@dataclass
class DesignData:
    """What one design's phases left in the run directory."""

    name: str
    samples: pd.DataFrame | None = None  # load/process_samples.csv
    history: pd.DataFrame | None = None  # load/locust_stats_history.csv
    probe: pd.DataFrame | None = None  # probe/probe_requests.csv
    probe_retained: pd.DataFrame | None = None  # probe/probe_retained.csv (the leak runs)
    probe_sites: dict[str, Any] | None = None  # probe/probe_sites.json ({"peak", "retained"})
    top_sites: pd.DataFrame | None = None  # profile/top_sites.csv
    flamegraph: str | None = None  # path relative to the run directory, POSIX separators
    integrity: dict[str, Any] | None = None  # integrity.json
    load_started_unix: float | None = None  # run.json's start of the load phase


@dataclass
class RunData:
    root: Path
    run: dict[str, Any]
    frame: pd.DataFrame
    designs: list[str]
    per_design: dict[str, DesignData] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id") or self.root.name)

    @property
    def config(self) -> dict[str, Any]:
        cfg = self.run.get("config")
        return dict(cfg) if isinstance(cfg, Mapping) else {}

    @property
    def profile_name(self) -> str:
        profile = self.config.get("profile")
        if isinstance(profile, Mapping):
            return str(profile.get("name") or "")
        return str(profile or "")

    @property
    def expected_phases(self) -> list[str]:
        profile = self.config.get("profile")
        if isinstance(profile, Mapping) and isinstance(profile.get("phases"), list | tuple):
            return [str(p) for p in profile["phases"]]
        return ["load", "profile", "probe", "integrity"]


def open_run(run_dir: Path) -> tuple[RunDir, dict[str, Any]]:
    """The run directory and its run.json, schema checked; one-line errors otherwise."""
    root = Path(run_dir)
    if not root.is_dir():
        raise HarnessError(f"{root}: no such run directory")
    rd = RunDir(root)
    if not rd.run_json.is_file():
        raise HarnessError(f"{root}: not a run directory (no run.json)")
    try:
        run = read_json(rd.run_json)
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{rd.run_json}: unreadable: {exc}") from None
    if not isinstance(run, dict):
        raise HarnessError(f"{rd.run_json}: not a JSON object")
    check_schema(run, rd.run_json)
    return rd, run


def read_summary_frame(rd: RunDir) -> pd.DataFrame:
    try:
        raw = read_json(rd.summary_json) if rd.summary_json.is_file() else []
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{rd.summary_json}: unreadable: {exc}") from None
    if not isinstance(raw, list):
        raise HarnessError(f"{rd.summary_json}: not a list of rows")
    try:
        return summary_frame(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise HarnessError(f"{rd.summary_json}: bad row: {exc}") from None


def load_run(run_dir: Path) -> RunData:
    rd, run = open_run(run_dir)
    frame = read_summary_frame(rd)
    config = run.get("config") if isinstance(run.get("config"), Mapping) else {}
    configured = [str(d) for d in (config or {}).get("designs", []) or []]
    phases = [p for p in run.get("phases", []) or [] if isinstance(p, Mapping)]
    from_phases = [str(p.get("design")) for p in phases if p.get("design") != CEILING]
    preferred = list(dict.fromkeys(configured + from_phases))
    designs = designs_in(frame, preferred)
    designs += [d for d in preferred if d not in designs]
    data = RunData(root=rd.root, run=run, frame=frame, designs=designs)
    for design in designs:
        data.per_design[design] = _design_data(rd, design, phases)
    return data


def _design_data(rd: RunDir, design: str, phases: list[Mapping[str, Any]]) -> DesignData:
    base = rd.design_dir(design)
    out = DesignData(name=design)
    load = base / "load"
    out.samples = _csv(load / "process_samples.csv")
    out.history = _csv(_first(load, "locust_stats_history.csv", "*_stats_history.csv"))
    out.probe = _csv(base / "probe" / "probe_requests.csv")
    out.probe_retained = _csv(base / "probe" / "probe_retained.csv")
    out.probe_sites = _json_object(base / "probe" / "probe_sites.json")
    out.top_sites = _csv(base / "profile" / "top_sites.csv")
    flame = _first(base / "profile", "flamegraph.html", "*flamegraph*.html")
    if flame is not None and flame.is_file() and flame.stat().st_size > 0:
        out.flamegraph = flame.relative_to(rd.root).as_posix()
    out.integrity = _json_object(rd.integrity_json(design))
    check_file_version(out.integrity, rd.integrity_json(design))
    for phase in phases:
        if phase.get("design") == design and phase.get("phase") == "load":
            out.load_started_unix = _unix(phase.get("started_at"))
    return out


def _first(folder: Path, name: str, pattern: str) -> Path | None:
    if (folder / name).is_file():
        return folder / name
    if folder.is_dir():
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def _csv(path: Path | None) -> pd.DataFrame | None:
    if path is None or not path.is_file() or path.stat().st_size == 0:
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, csv.Error, pd.errors.ParserError):
        return None


def _json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object from `path`; None when it is missing, unreadable or not an object."""
    if not path.is_file():
        return None
    with contextlib.suppress(OSError, ValueError):
        loaded = read_json(path)
        return loaded if isinstance(loaded, dict) else None
    return None


def _unix(text: object) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def dump_config(config: Mapping[str, Any]) -> str:
    """The resolved config as indented JSON, for the report's appendix."""
    return json.dumps(config, indent=2, sort_keys=False, default=str)
