"""The ceiling phase: the designs' load against an endpoint that does nothing.

Once per run, before the designs: the ceiling target (run.ceiling_target; by default the
optimized design, else the first design) is served by the same stack as in the load phase
(same command, same `app_workers`), on a tiny seeded store, and Locust runs
`scenarios/ceiling.py` against its health path with the same users, spawn rate, wait times,
load shape and load workers as the load phase, for `profile.ceiling_duration_s` seconds.

The RPS it reaches is what this machine, this load generator and this server stack deliver
when the application costs nothing; each design's `rps_ceiling_fraction` (load phase) is its
RPS over this one, so that nobody mistakes the machine's limit for the design's.

Files under `<run>/ceiling/ceiling/`: the locust CSVs and HTML, meta.json, logs/, data/.
Rows: design "ceiling", phase "ceiling" (see harness.analysis.load.ceiling_summary).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.analysis.load import CEILING, ceiling_summary
from harness.config import Config
from harness.locust_runner import run_locust
from harness.phases import FailedWithResults, ProgressFn
from harness.phases.load import _read_csv, master_mode, server_host
from harness.results import SCHEMA_VERSION, RunDir, SummaryRow, write_json_atomic
from harness.targets import resolve_target, running_stack, seed_store

PHASE = CEILING
SCENARIO = "ceiling"
SHAPED_SCENARIOS = ("spike",)  # profile scenarios whose load shape the ceiling repeats


def run_ceiling(
    run: RunDir,
    cfg: Config,
    *,
    target: str,
    progress: ProgressFn | None = None,
) -> list[SummaryRow]:
    """Serve `target`, load its health path like the designs are loaded; the ceiling rows."""
    profile = cfg.profile
    spec = resolve_target(target)
    out = run.phase_dir(CEILING, PHASE)
    data = out / "data"
    logs = out / "logs"
    # The health path reads no data: the smallest store the target's seed command makes.
    seed_store(spec, data, replace(cfg.seed, users=1, whales=0, whale_history=1), logs)
    env = {"HARNESS_CEILING_PATH": spec.health}
    if spec.scenario is None and profile.scenario in SHAPED_SCENARIOS:
        env["HARNESS_SHAPE"] = profile.scenario  # the designs' load has this shape too
    with running_stack(
        spec,
        data,
        logs,
        cfg.upstream,
        workers=profile.app_workers,
        phase=PHASE,
        host=server_host(cfg),
    ) as stack:

        def app_gone() -> str:
            code = stack.app.poll()
            return "" if code is None else f"the app exited with status {code}"

        result = run_locust(
            stack.base_url,
            SCENARIO,
            profile.users,
            profile.spawn_rate,
            profile.ceiling_duration_s,
            out,
            data / "manifest.json",
            extra_env=env,
            abort_if=app_gone,
            progress=progress,
            log_dir=logs,
            processes=profile.load_workers,
            master=master_mode(cfg),
        )
    rows = ceiling_summary(_read_csv(result.stats_csv), result.cpu_max_percent)
    write_json_atomic(
        out / "meta.json",
        {
            "schema_version": SCHEMA_VERSION,
            "target": spec.name,
            "path": spec.health,
            "scenario": SCENARIO,
            "shape": env.get("HARNESS_SHAPE"),
            "users": profile.users,
            "spawn_rate": profile.spawn_rate,
            "duration_s": profile.ceiling_duration_s,
            "app_workers": profile.app_workers,
            "load_workers": result.processes,
            "locust": {
                "exit_code": result.exit_code,
                "requests": result.requests,
                "failures": result.failures,
                "cpu_max_percent": result.cpu_max_percent,
                "cpu_total_max_percent": result.cpu_total_max_percent,
                "duration_s": result.duration_s,
            },
        },
    )
    problem = result.problem() if not result.ok else ""
    if not problem and result.requests == 0:
        problem = "locust made no requests"
    if not problem and result.failures:
        problem = f"{result.failures} of {result.requests} requests to {spec.health} failed"
    if problem:
        raise FailedWithResults(PHASE, problem, rows, result.exit_code)
    return rows


def ceiling_dir(run: RunDir) -> Path:
    return run.design_dir(CEILING) / PHASE
