"""What the run report and the comparison share: templates, chart views, writers, run metadata.

Split from `_render` (one run) and `_compare` (two runs). The writers are the only code of
the report that touches the disk; they replace a file atomically, so a failed render never
leaves half a report.
"""

from __future__ import annotations

import base64
import contextlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.analysis.headline import CEILING
from harness.report._header import phases_that_ran, profile_text, target_rows
from harness.report._plot import Chart
from harness.report._units import MISSING, format_bytes

TEMPLATES = "templates"


@dataclass(frozen=True)
class ChartView:
    name: str
    title: str
    phase: str
    caption: str
    file: str  # relative to the report: figures/<name>.png
    data_uri: str
    design: str | None

    @classmethod
    def of(cls, chart: Chart) -> ChartView:
        encoded = base64.b64encode(chart.png).decode("ascii")
        return cls(
            name=chart.name,
            title=chart.title,
            phase=chart.phase,
            caption=chart.caption,
            file=f"figures/{chart.name}.png",
            data_uri=f"data:image/png;base64,{encoded}",
            design=chart.design,
        )


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.report", TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["md"] = md_cell
    return env


def render_template(name: str, context: Mapping[str, Any]) -> str:
    text: str = _environment().get_template(name).render(**context)
    return text


def md_cell(value: object) -> str:
    """Text safe inside a Markdown table cell."""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def _write_figures(figures: Path, charts: Sequence[Chart], stale: str = "*.png") -> list[Path]:
    """figures/<name>.png for each chart; the PNGs matching `stale` (an earlier render's) go."""
    figures.mkdir(parents=True, exist_ok=True)
    for old in figures.glob(stale):
        old.unlink()
    written: list[Path] = []
    for chart in charts:
        path = figures / f"{chart.name}.png"
        _write_bytes(path, chart.png)
        written.append(path)
    return written


def _when(text: object) -> str:
    if not isinstance(text, str) or not text:
        return MISSING
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        return text
    return stamp.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _wall(start: object, end: object) -> str:
    try:
        took = (
            datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
        ).total_seconds()
    except ValueError:
        return ""
    minutes, seconds = divmod(int(took), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


def _metric_title(title: str, better: str) -> str:
    return f"{title} {'↓' if better == 'lower' else '↑'}"


def _run_meta(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    env = run.get("environment") if isinstance(run.get("environment"), Mapping) else {}
    env = env or {}
    cfg = run.get("config") if isinstance(run.get("config"), Mapping) else {}
    cfg = cfg or {}
    meta: list[tuple[str, str]] = [
        ("Run", str(run.get("run_id", MISSING))),
        ("Status", str(run.get("status", MISSING))),
        ("Command", str(run.get("command", MISSING))),
    ]
    started = _when(run.get("started_at"))
    wall = _wall(run.get("started_at"), run.get("finished_at"))
    meta.append(("Date", f"{started} (took {wall})" if wall else started))
    meta.append(("Git", str(env.get("git_sha", MISSING))))
    machine = [str(env.get("cpu_model") or "unknown CPU")]
    if env.get("cpu_count"):
        machine.append(f"{env['cpu_count']} CPUs")
    if isinstance(env.get("memory_bytes"), int | float):
        machine.append(f"{format_bytes(float(env['memory_bytes']))} RAM")
    if env.get("platform"):
        machine.append(str(env["platform"]))
    meta.append(("Machine", ", ".join(machine)))
    python = str(env.get("python", MISSING))
    if env.get("python_implementation"):
        python += f" ({env['python_implementation']})"
    meta.append(("Python", python))
    packages = env.get("packages") if isinstance(env.get("packages"), Mapping) else {}
    if packages:
        meta.append(("Packages", ", ".join(f"{k} {v}" for k, v in packages.items())))
    phases = [p for p in run.get("phases") or [] if isinstance(p, Mapping)]
    meta.append(("Profile", profile_text(cfg, phases_that_ran(phases))))
    designs = [str(d) for d in cfg.get("designs") or []]
    designs += [str(p.get("design")) for p in phases if p.get("design") != CEILING]
    meta += target_rows(cfg, list(dict.fromkeys(designs)))
    return meta


def _num(value: object) -> float:
    if isinstance(value, int | float):
        return float(value)
    return math.nan
