"""The ceiling phase: the capacity search against an endpoint that does nothing.

Once per run, before the designs: the ceiling target (run.ceiling_target; by default the
optimized design, else the first design) is served by the same stack as in the load phase
(same command, same `app_workers`), on a tiny seeded store, and the open-model capacity
search (harness.phases.capacity) runs against its health path: the same staircase of offered
rates as the designs' search, as many steps as `profile.ceiling_duration_s` holds, with the
objective `[capacity] ceiling_objective_p95_ms` on the health endpoint.

Its capacity is what this machine, this load generator and this server stack deliver for a
request that costs nothing: each design's capacity is shown as a fraction of it
(`capacity_ceiling_fraction`). When the load generator saturates first (too many sends
dropped), the ceiling is a lower bound (`capacity_lower_bound` = 1) and says so.

Files under `<run>/ceiling/ceiling/`: those of a capacity search (plan.json, locust CSVs,
capacity_steps.csv, ...), meta.json, logs/, data/.
Rows: design "ceiling", phase "ceiling" (harness.analysis.capacity.capacity_rows).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.analysis.load import CEILING
from harness.config import Config
from harness.phases import FailedWithResults, ProgressFn
from harness.phases.capacity import (
    health_search,
    search_problem,
    search_rows,
    serve_and_search,
    write_meta,
)
from harness.results import RunDir, SummaryRow
from harness.targets import seed_store

PHASE = CEILING


def run_ceiling(
    run: RunDir,
    cfg: Config,
    *,
    target: str,
    progress: ProgressFn | None = None,
) -> list[SummaryRow]:
    """Serve `target`, search the capacity of its health path; the ceiling rows."""
    spec = cfg.target(target)
    out = run.phase_dir(CEILING, PHASE)
    data = out / "data"
    logs = out / "logs"
    # The health path reads no data: the smallest store the target's seed command makes.
    seed_store(spec, data, replace(cfg.seed, users=1, whales=0, whale_history=1), logs)
    search = health_search(cfg, spec.health)
    result, gone = serve_and_search(cfg, spec, search, out, phase=PHASE, progress=progress)
    rows = search_rows(CEILING, PHASE, search, result, None)
    write_meta(
        out / "meta.json",
        search,
        result,
        target=spec.name,
        health_path=spec.health,
        app_workers=cfg.profile.app_workers,
    )
    problem = search_problem(result, gone)
    if problem:
        raise FailedWithResults(PHASE, problem, rows, result.locust.exit_code)
    return rows


def ceiling_dir(run: RunDir) -> Path:
    return run.design_dir(CEILING) / PHASE
