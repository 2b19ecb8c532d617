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

The search uses as many Locust processes as the profile's `ceiling_load_workers` says
("auto": one per core), so that the generator is not what it measures. Right after it, on the
same server, a **bare Locust** (scenarios/bare.py: closed model, no wait, the same processes)
runs for BARE_S seconds: its throughput is what this generator reaches at all, the
calibration the ceiling is read against (`ceiling_bare_fraction`).

Files under `<run>/ceiling/ceiling/`: those of a capacity search (plan.json, locust CSVs,
capacity_steps.csv, refine_NN/, ...), bare/ (the bare Locust's CSVs), meta.json, logs/, data/.
Rows: design "ceiling", phase "ceiling" (harness.analysis.capacity.capacity_rows), plus
`ceiling_load_workers`, `bare_locust_rps`, `ceiling_bare_fraction`, and `delivered_max_rps`
(`delivered_bare_fraction`): the most the open-model generator delivered in any step, past
the knee too. The ceiling is where the server's p95 passes the objective; what the generator
can send at all is this other figure, and the two differ on a machine the server shares with
the generator.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.capacity import steady_rps
from harness.analysis.load import CEILING
from harness.config import Config
from harness.load.locust_runner import LocustResult, run_locust
from harness.phases import FailedWithResults, ProgressFn
from harness.phases.capacity import (
    Search,
    SearchResult,
    health_search,
    search_problem,
    search_rows,
    serve_and_search,
    write_meta,
)
from harness.phases.load import master_mode
from harness.results import RunDir, SummaryRow
from harness.stack.targets import seed_store

PHASE = CEILING
BARE_SCENARIO = "bare"
BARE_S = 8.0  # the bare Locust's run: a few seconds past its spawn
BARE_USERS_PER_PROCESS = 50  # enough to keep one Locust process busy on a fast endpoint


def ceiling_processes(cfg: Config) -> int:
    """Local Locust processes for the ceiling: the profile's count, "auto" (0) one per core;
    1 with a master (its workers run elsewhere)."""
    if cfg.locust.master:
        return 1
    return cfg.profile.ceiling_load_workers or max(1, os.cpu_count() or 1)


def run_bare(
    base_url: str, health_path: str, out: Path, processes: int, cfg: Config
) -> LocustResult:
    """The bare Locust at its maximum against base_url's health path (scenarios/bare.py)."""
    users = BARE_USERS_PER_PROCESS * processes
    return run_locust(
        base_url,
        BARE_SCENARIO,
        users,
        float(users),
        BARE_S,
        out,
        out / "none.json",
        extra_env={"HARNESS_CEILING_PATH": health_path},
        processes=processes,
        master=master_mode(cfg),
    )


def bare_rows(
    bare: LocustResult | None, ceiling_rps: float, processes: int, delivered_rps: float = math.nan
) -> list[SummaryRow]:
    """The calibration rows: the bare Locust's rate, the ceiling as a fraction of it, and the
    most the open-model generator delivered in any step of the search (`delivered_rps`, past
    the knee too) as a fraction of it: the generator's own limit, apart from the server's
    latency, which is what ends the ceiling's search."""
    rows = [SummaryRow(CEILING, PHASE, "ceiling_load_workers", float(processes), "count")]
    if not math.isnan(delivered_rps):
        rows.append(SummaryRow(CEILING, PHASE, "delivered_max_rps", delivered_rps, "req/s"))
    if bare is None or bare.history_csv is None:
        return rows
    rps = steady_rps(pd.read_csv(bare.history_csv))
    if math.isnan(rps) or rps <= 0:
        return rows
    rows.append(SummaryRow(CEILING, PHASE, "bare_locust_rps", rps, "req/s"))
    rows.append(SummaryRow(CEILING, PHASE, "ceiling_bare_fraction", ceiling_rps / rps, "ratio"))
    if not math.isnan(delivered_rps):
        rows.append(
            SummaryRow(CEILING, PHASE, "delivered_bare_fraction", delivered_rps / rps, "ratio")
        )
    return rows


def delivered_max(result: SearchResult, search: Search) -> float:
    """The highest rate the generator achieved in any step of the search (NaN: no step)."""
    table = result.table(search.limits)
    if table.empty or "achieved_rps" not in table:
        return math.nan
    return float(table["achieved_rps"].max())


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
    processes = ceiling_processes(cfg)
    bare: dict[str, Any] = {}

    def calibrate(base_url: str, _app_pid: int) -> None:
        bare["result"] = run_bare(base_url, spec.health, out / "bare", processes, cfg)

    result, gone = serve_and_search(
        cfg,
        spec,
        search,
        out,
        phase=PHASE,
        progress=progress,
        processes=processes,
        after=calibrate,
    )
    rows = search_rows(CEILING, PHASE, search, result, None)
    rows += bare_rows(
        bare.get("result"), result.capacity.capacity_rps, processes, delivered_max(result, search)
    )
    write_meta(
        out / "meta.json",
        search,
        result,
        target=spec.name,
        health_path=spec.health,
        app_workers=cfg.profile.app_workers,
        ceiling_load_workers=processes,
        bare_locust={
            "users": BARE_USERS_PER_PROCESS * processes,
            "duration_s": BARE_S,
            "problem": bare["result"].problem() if "result" in bare else "not run",
        },
    )
    problem = search_problem(result, gone)
    if problem:
        raise FailedWithResults(PHASE, problem, rows, result.locust.exit_code)
    return rows


def ceiling_dir(run: RunDir) -> Path:
    return run.design_dir(CEILING) / PHASE
