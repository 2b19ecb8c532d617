"""What `harness gate` does beyond parsing its arguments: load the config, baseline and sites,
probe (or read a run), compare, write gate.md / gate-junit.xml / gate.json, and on
--update-baseline write the baseline with its sites and ledger entry. I/O at the edges of the
pure modules of this package.

Environment variables named REFAPP_* are passed to the reference app explicitly and recorded in
run.json (config.app_env); they exist for tests of the gate (REFAPP_CONTEXT_WINDOW=200 widens the
optimized design's context window, a deliberate regression). --update-baseline refuses to run
with any of them set.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from harness import config as config_mod
from harness._clock import now_iso
from harness._errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.gate import _render as render
from harness.gate._baseline import (
    Baseline,
    build_baseline,
    environment_warnings,
    parse_baseline,
    settings_mismatch,
)
from harness.gate._explain import DesignSites, Explanation, build_sites, explain, parse_sites
from harness.gate._metrics import UPDATE_HINT, BaselineError
from harness.gate._probe import gate_sizes, probe_in_parallel
from harness.gate._thresholds import compile_thresholds
from harness.gate._verdicts import GateResult, SeriesKey, Verdict, compare, gated_rows
from harness.history._gate_hook import creep_check, record_baseline  # issue 14 hook
from harness.results import (
    RunDir,
    SummaryRow,
    check_schema,
    read_json,
    write_json_atomic,
)
from harness.stack.processes import sigterm_as_interrupt

APP_ENV_PREFIX = "REFAPP_"
GATE_MD = "gate.md"
GATE_JUNIT = "gate-junit.xml"
GATE_JSON = "gate.json"
GATE_JSON_SCHEMA_VERSION = 1  # docs/schemas/gate.schema.json


@dataclasses.dataclass(frozen=True)
class GateOptions:
    """The command line of `harness gate`, parsed."""

    config: Path = Path("loadtest.toml")
    baseline: Path | None = None
    run: Path | None = None
    update_baseline: bool = False
    out: Path | None = None
    jobs: int | None = None


def run_gate(args: GateOptions) -> int:
    """`harness gate`: probe (or read a run), compare with the baseline, report, maybe write
    the new baseline. Returns the exit status."""
    console = _console()
    cfg = config_mod.load(args.config, {"out": args.out})
    thresholds = compile_thresholds(cfg.gate.thresholds, cfg.gate.default, cfg.path)
    baseline_path: Path = args.baseline or Path(cfg.gate.baseline)
    app_env = app_env_overrides(os.environ)
    if app_env:
        shown = " ".join(f"{k}={v}" for k, v in sorted(app_env.items()))
        if args.update_baseline:
            raise UsageError(
                f"refusing to write a baseline with app overrides set ({shown}); unset them"
            )
        _warn(console, f"app settings overridden from the environment: {shown}")

    hint = update_hint(args)
    baseline = load_baseline(
        baseline_path, required=not args.update_baseline, console=console, hint=hint
    )

    if args.run is not None:
        run, rows, current_env, designs, probe = _read_run(args.run, cfg.designs)
        own_run = False
    else:
        designs = probe_designs(cfg, console)
        if baseline is not None and not args.update_baseline:
            problem = settings_mismatch(baseline, designs, gate_sizes(cfg, designs))
            if problem:
                raise BaselineError(
                    f"{baseline_path} does not match the [gate] settings of {cfg.path}: "
                    f"{problem}; refresh it with `{hint}`"
                )
        run = RunDir.create(Path(cfg.out))
        own_run = True
        probe = {
            "designs": designs,
            "history_lens": gate_sizes(cfg, designs),
            "reps": cfg.gate.reps,
            "warmup": cfg.gate.warmup,
        }
        jobs = args.jobs or max(1, min(len(designs), os.cpu_count() or 1))
        with sigterm_as_interrupt():
            rows = probe_in_parallel(run, cfg, designs, app_env, console, jobs)
        current_env = run.read_run().get("environment", {})

    if not gated_rows(rows):
        if own_run:
            run.finish_run("failed")
        raise BaselineError(f"{run.root}: no probe figures to gate (summary.json)")

    result = compare(baseline.rows if baseline else (), rows, thresholds, designs, cfg.gate.noise_k)
    warnings = list(result.warnings)
    if baseline is not None:
        warnings += environment_warnings(baseline.provenance, current_env)
        warnings += _probe_warnings(baseline.probe, probe)
    result = dataclasses.replace(result, warnings=tuple(warnings))
    # issue 14 hook (harness/history/_gate_hook.py): creep over the ledger's last baselines
    creep = creep_check(cfg, baseline_path, rows, thresholds)
    result = dataclasses.replace(result, warnings=result.warnings + creep.warnings)

    current_sites = read_run_sites(run, designs)
    ctx = render.RenderContext(
        baseline_path=str(baseline_path),
        baseline_sha=str(baseline.provenance.get("git_sha", "unknown")) if baseline else "-",
        baseline_date=baseline.created_at if baseline else "",
        run_dir=str(run.root),
        current_sha=str(current_env.get("git_sha", "unknown")),
        one_time=tuple(render.one_time_growth_lines(rows, designs, current_sites)),
        update_hint=hint,
    )
    explanations = explain(result, load_sites(sites_path(baseline_path), console), current_sites)
    if baseline is not None:
        _report(console, run, result, ctx, explanations, updating=args.update_baseline)
    else:  # a first baseline: no comparison, but say what filled once
        for line in ctx.one_time:
            console.print(f"note: {line}", markup=False, highlight=False)

    code = EXIT_OK if args.update_baseline else result.exit_code
    if creep.failed and not args.update_baseline:  # issue 14 hook: [gate] creep_action
        console.print("[bold red]creep over budget[/] ([gate] creep_action = fail)")
        code = max(code, EXIT_FAILED)
    if args.update_baseline:
        payload = build_baseline(
            rows,
            created_at=now_iso(),
            environment=current_env,
            probe=probe,
            source_run=str(run.root),
            git_dirty=_git_dirty() if own_run else None,
        )
        write_json_atomic(baseline_path, payload)
        write_json_atomic(
            sites_path(baseline_path),
            build_sites(
                current_sites,
                created_at=payload["created_at"],
                git_sha=str(payload["provenance"]["git_sha"]),
            ),
        )
        ledger = record_baseline(cfg, baseline_path, payload)  # issue 14 hook
        console.print(
            f"wrote baseline {baseline_path}: {len(payload['rows'])} series "
            f"(git {payload['provenance']['git_sha']}); commit it with the change",
            markup=False,
            highlight=False,
        )
        console.print(f"appended it to {ledger}: commit it too", markup=False)  # issue 14
    if own_run:
        run.finish_run("passed" if code == EXIT_OK else "failed")
    return code


def _report(
    console: Console,
    run: RunDir,
    result: GateResult,
    ctx: render.RenderContext,
    explanations: Mapping[SeriesKey, Explanation],
    updating: bool = False,
) -> None:
    title = "Changes vs the previous baseline" if updating else "Memory gate"
    console.print(render.rich_table(result, title=title))
    for line in ctx.one_time:
        console.print(f"note: {line}", markup=False, highlight=False)
    for warning in result.warnings:
        _warn(console, warning)
    if updating:
        return
    for v in result.verdicts:
        if v.status == "regression":
            detail = render.breach(v)
        elif v.status == "missing":
            detail = "in the baseline, not measured"
        else:
            continue
        console.print(f"[bold red]{v.status}:[/] {escape(f'{v.key} {detail}')}")
        if v.key in explanations:
            for line in explanations[v.key].lines():
                console.print(f"    {line}", markup=False, highlight=False)
    for line in render.outcome_lines(result, ctx.update_hint):
        console.print(line, markup=False, highlight=False)
    md = run.root / GATE_MD
    junit = run.root / GATE_JUNIT
    summary = run.root / GATE_JSON
    _write_text(md, render.markdown(result, ctx, explanations))
    _write_text(junit, render.junit_xml(result, explanations=explanations))
    write_json_atomic(summary, gate_json(result, ctx, explanations))
    verdict = {0: "[green]passed[/]", 1: "[bold red]REGRESSION[/]", 2: "[bold red]ERROR[/]"}
    console.print(f"memory gate {verdict[result.exit_code]}: {render.headline(result)}")
    console.print(f"  {md}\n  {junit}\n  {summary}", markup=False, highlight=False)


# --- helpers (I/O at the edges) ------------------------------------------------------------


def probe_designs(cfg: config_mod.Config, console: Console) -> list[str]:
    """The configured designs the probe applies to (a target without the reference chat API, or
    without a probe command, has no probe figures to gate)."""
    designs: list[str] = []
    for design in cfg.designs:
        reason = cfg.target(design).not_applicable("probe")
        if reason:
            _warn(console, f"{design} is not gated: {reason}")
        else:
            designs.append(design)
    if not designs:
        raise UsageError(f"{cfg.path}: none of run.designs can be probed, nothing to gate")
    return designs


def app_env_overrides(env: Mapping[str, str]) -> dict[str, str]:
    """The REFAPP_* variables of this process: settings for the reference app under test."""
    return {k: v for k, v in env.items() if k.startswith(APP_ENV_PREFIX)}


def sites_path(baseline_path: Path) -> Path:
    """Where a baseline's allocation sites live: baselines/ci.json -> baselines/ci.sites.json."""
    return baseline_path.with_name(f"{baseline_path.stem}.sites.json")


def load_sites(path: Path, console: Console | None = None) -> DesignSites:
    """The sites stored beside the baseline; empty (with a warning) when absent or unusable:
    they explain a regression, they never decide one."""
    if not path.exists():
        return {}
    try:
        return parse_sites(read_json(path), path)
    except (OSError, ValueError, BaselineError) as exc:
        if console is not None:
            _warn(console, f"{path}: allocation sites not used ({exc})")
        return {}


def read_run_sites(run: RunDir, designs: Sequence[str]) -> dict[str, Any]:
    """Each design's probe sites in a run directory (designs without them are left out)."""
    from harness.phases.probe import PHASE, SITES_JSON

    out: dict[str, Any] = {}
    for design in designs:
        path = run.root / design / PHASE / SITES_JSON
        if path.exists():
            out[design] = read_json(path)
    return out


def update_hint(args: GateOptions) -> str:
    """The command that refreshes the baseline: the one the user ran, with its --config (and
    --baseline), plus --update-baseline; `make gate ARGS=--update-baseline` for this project's
    own loadtest.toml."""
    if args.config == Path("loadtest.toml") and args.baseline is None and _make_gate_here():
        return UPDATE_HINT
    parts = ["harness gate", f"--config {args.config}"]
    if args.baseline is not None:
        parts.append(f"--baseline {args.baseline}")
    return " ".join([*parts, "--update-baseline"])


def _make_gate_here() -> bool:
    """A Makefile here whose `gate` target runs `harness gate` (this project's own)."""
    try:
        text = Path("Makefile").read_text(encoding="utf-8")
    except OSError:
        return False
    return re.search(r"^gate:", text, re.MULTILINE) is not None and "harness gate" in text


def load_baseline(
    path: Path, *, required: bool, console: Console | None = None, hint: str = UPDATE_HINT
) -> Baseline | None:
    if not path.exists():
        if required:
            raise BaselineError(f"no baseline at {path}: create one with `{hint}` and commit it")
        return None
    try:
        raw = read_json(path)
    except (OSError, ValueError) as exc:
        if required:
            raise BaselineError(f"{path}: cannot read the baseline: {exc}") from None
        if console is not None:
            _warn(console, f"{path}: unreadable, it will be replaced ({exc})")
        return None
    try:
        baseline = parse_baseline(raw, path, hint)
    except BaselineError as exc:
        if required:
            raise
        if console is not None:
            _warn(console, f"{exc}; it will be replaced")
        return None
    return baseline


def _read_run(
    path: Path, default_designs: Sequence[str]
) -> tuple[RunDir, list[SummaryRow], dict[str, Any], list[str], dict[str, Any]]:
    run = RunDir(path)
    raw = run.read_run()
    if not raw:
        raise UsageError(f"{path}: not a run directory (no run.json)")
    check_schema(raw, run.run_json)
    rows = run.read_summary()
    config = raw.get("config") or {}
    designs = [str(d) for d in config.get("designs") or default_designs]
    lens = sorted(
        {
            int(r.labels["history_len"])
            for r in gated_rows(rows)
            if r.labels.get("history_len", "").isdigit()
        }
    )
    probe: dict[str, Any] = {"designs": designs, "history_lens": lens}
    if raw.get("command") == "gate":
        gate_cfg = config.get("gate") or {}
        probe |= {"reps": gate_cfg.get("reps"), "warmup": gate_cfg.get("warmup")}
    else:
        prof = config.get("profile") or {}
        probe |= {"reps": prof.get("probe_reps"), "warmup": prof.get("probe_warmup")}
    return run, rows, dict(raw.get("environment") or {}), designs, probe


def _probe_warnings(base: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    diffs = [
        f"{k} {base.get(k)} -> {now.get(k)}"
        for k in ("reps", "warmup")
        if base.get(k) is not None and now.get(k) is not None and base.get(k) != now.get(k)
    ]
    if not diffs:
        return []
    return ["probe settings differ from the baseline's: " + ", ".join(diffs)]


def gate_json(
    result: GateResult,
    ctx: render.RenderContext,
    explanations: Mapping[SeriesKey, Explanation] | None = None,
) -> dict[str, Any]:
    """Machine-readable verdicts (gate.json), for scripts and the sensitivity study."""
    explanations = explanations or {}

    def one(v: Verdict) -> dict[str, Any]:
        sites = explanations.get(v.key)
        return {
            "metric": v.key.metric,
            "design": v.key.design,
            "labels": dict(v.key.labels),
            "unit": v.unit,
            "baseline": v.baseline,
            "current": v.current,
            "change": v.change,
            "limit": v.limit,
            "threshold": v.threshold.describe() if v.threshold else None,
            "rule": v.rule,
            "status": v.status,
            "noise": v.noise,
            "limit_source": v.limit_source,
            "seen_low": v.seen[0] if v.seen else None,
            "seen_high": v.seen[1] if v.seen else None,
            "fraction_of_limit": v.fraction_of_limit,
            "sites": [
                {
                    "location": c.location,
                    "function": c.function,
                    "via": c.via,
                    "baseline_bytes": c.baseline_bytes,
                    "current_bytes": c.current_bytes,
                    "change": c.change,
                }
                for c in (sites.changes if sites else ())
            ],
        }

    return {
        "schema_version": GATE_JSON_SCHEMA_VERSION,
        "outcome": result.outcome,
        "exit_code": result.exit_code,
        "baseline": ctx.baseline_path,
        "run_dir": ctx.run_dir,
        "warnings": list(result.warnings),
        "one_time_growth": list(ctx.one_time),
        "verdicts": [one(v) for v in result.verdicts],
    }


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _warn(console: Console, text: str) -> None:
    console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False)


def _console() -> Console:
    if sys.stdout.isatty():
        return Console()
    return Console(width=int(os.environ.get("COLUMNS", "160")), soft_wrap=False)


def _git_dirty() -> bool | None:
    """Whether the work tree has uncommitted changes or untracked files (None: no git)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(out.stdout.strip())
