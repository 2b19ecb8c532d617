"""The capacity phase: step an open-model load up until the latency objective breaks.

Per design, on a fresh store of its own (the search writes messages; the other phases'
data stays as it was): serve the design as in the load phase (`app_workers`, no profiler),
sample its process tree throughout (harness.sampling.process_sampler), and run
`scenarios/capacity.py`: arrivals at each step's offered rate (Poisson by default), latency
measured from each request's intended send. The offered rate climbs by
`capacity_step_factor` every `capacity_step_s` seconds from `[capacity] start_rps`, at most
`capacity_max_steps` steps.

The harness watches Locust's statistics as they are written (once a second): once a step
is over (the next step's rows have been there `settle_s`), it is judged
(harness.analysis.capacity.judge); the first step that misses the objective, or drops too
many sends, is the knee, and the harness creates the stop file that ends the load. The
verdicts of record come from the final statistics, after Locust has let every request in
flight finish.

Files under `<run>/<design>/capacity/`: plan.json, timeline.json (t0 and step length, for
lining the samples up with the steps), locust_stats.csv (rows OPEN, DROPPED, HELD per step, and
Locust's own), process_samples.csv, capacity_steps.csv, capacity_endpoints.csv, meta.json,
logs/, data/.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from harness._errors import PhaseFailed
from harness.analysis.capacity import (
    PHASE,
    Capacity,
    Limits,
    Step,
    capacity_rows,
    endpoint_frame,
    find_capacity,
    judge,
    memory_by_step,
    parse_steps,
    plan_rates,
    steps_frame,
)
from harness.analysis.knee import Probe, next_rate, refine
from harness.config import Config
from harness.config.target_spec import TargetSpec
from harness.load.locust_runner import LocustResult, MasterMode, locustfile, run_locust
from harness.phases import FailedWithResults, ProgressFn
from harness.phases._knee_watch import KneeWatch
from harness.phases.load import _read_csv, master_mode, scenario_for, server_host
from harness.results import RunDir, SummaryRow, write_json_atomic
from harness.sampling.process_sampler import ProcessTreeSampler
from harness.stack.targets import Stack, running_stack, seed_store

SCENARIO = "capacity"
SCENARIOS = {"tasks": "capacity_target", "recipe": "capacity_recipe"}  # by Search.mix
PLAN_ENV = "HARNESS_CAPACITY_PLAN"
LOCUSTFILE_ENV = "HARNESS_CAPACITY_LOCUSTFILE"
RECIPE_ENV = "HARNESS_CAPACITY_RECIPE"
REFINE_DIR = "refine_{:02d}"
NOT_DRIVABLE = "NotDrivable:"  # scenarios/capacity_target.py's exception, in locust's stderr
STOP_FILE = "knee.stop"
TIMELINE_JSON = "timeline.json"
SAMPLES_CSV = "process_samples.csv"
STEPS_CSV = "capacity_steps.csv"
ENDPOINTS_CSV = "capacity_endpoints.csv"
SETTLE_S = 1.5  # one process: its stats CSV is at most a second old
SETTLE_DISTRIBUTED_S = 4.5  # workers report to the master every 3 s
LEAD_S = 5.0  # -t: past the plan, for the locustfile's t0 lead (up to 2.5 s) and its last tick
IN_FLIGHT_S = 5.0  # users per step = rate * this: replies this slow still find a free user
HEALTH_IN_FLIGHT_MIN_S = 0.5
MIN_USERS = 10
MAX_USERS = 1000  # the locustfile's t0 is up to 2.5 s after the test start


@dataclass(frozen=True)
class Search:
    """One capacity search: the staircase, what it sends, and what a step must keep."""

    rates: tuple[float, ...]
    step_s: float
    limits: Limits
    arrival: str = "poisson"
    seed: int = 1
    mix: str = "chat"  # chat | health | tasks (the target's locustfile) | recipe (its probe's)
    pool: str = "mixed"
    health_path: str = "/healthz"
    locustfile: str = ""  # mix "tasks": the target's locustfile (scenarios/capacity_target.py)
    recipe: str = ""  # mix "recipe": the probe recipe's JSON (scenarios/capacity_recipe.py)
    precision: float = 0.1  # refine the knee until it is within this of the capacity
    max_s: float = math.inf  # the whole search (staircase, then refinement) at most this long
    in_flight_s: float = IN_FLIGHT_S  # users per step = rate * this

    @property
    def scenario(self) -> str:
        return SCENARIOS.get(self.mix, SCENARIO)

    def env(self, out: Path) -> dict[str, str]:
        env = {PLAN_ENV: json.dumps(self.plan(out))}
        if self.mix == "tasks":
            env[LOCUSTFILE_ENV] = self.locustfile
        if self.mix == "recipe":
            env[RECIPE_ENV] = self.recipe
        return env

    @property
    def peak_users(self) -> int:
        """The users the locustfile's shape holds at the last step (Plan.users_for)."""
        return max(MIN_USERS, min(MAX_USERS, math.ceil(max(self.rates) * self.in_flight_s)))

    def plan(self, out: Path) -> dict[str, Any]:
        """The locustfile's plan (scenarios.open_model.Plan's fields)."""
        return {
            "rates": list(self.rates),
            "step_s": self.step_s,
            "arrival": self.arrival,
            "seed": self.seed,
            "in_flight_s": self.in_flight_s,
            "min_users": MIN_USERS,
            "max_users": MAX_USERS,
            "mix": self.mix,
            "pool": self.pool,
            "health_path": self.health_path,
            "stop_file": str(out / STOP_FILE),
            "timeline_file": str(out / TIMELINE_JSON),
        }


def staircase(cfg: Config, start_rps: float, max_s: float) -> tuple[float, ...]:
    """The profile's staircase from start_rps: capacity_max_steps steps, fewer when they
    would not fit in max_s."""
    p = cfg.profile
    fits = max(1, math.floor(max_s / p.capacity_step_s))
    return plan_rates(start_rps, p.capacity_step_factor, min(p.capacity_max_steps, fits))


def design_search(cfg: Config, design: str) -> Search:
    """The search for a design: the reference chat API's mix and [capacity]'s objectives, or
    the target's own locustfile and its [target.capacity] objectives (default for the rest)."""
    p, c = cfg.profile, cfg.capacity
    target = cfg.target(design)
    common: dict[str, Any] = {
        "step_s": p.capacity_step_s,
        "arrival": c.arrival,
        "seed": cfg.seed.seed,
        "precision": p.capacity_precision,
        "max_s": p.capacity_max_s,
    }
    if target.chat_api:
        return Search(
            rates=staircase(cfg, c.start_rps, p.capacity_max_s),
            limits=Limits(dict(c.objectives_p95_ms), c.max_error_ratio, c.max_dropped_ratio),
            mix="chat",
            pool="whales" if scenario_for(design, cfg) == "whales" else "mixed",
            **common,
        )
    own = target.capacity
    recipe = own.arrivals == "recipe" and target.probe is not None
    if target.scenario is None and not recipe:
        raise PhaseFailed(PHASE, target.not_applicable(PHASE) or "no scenario")
    return Search(
        rates=staircase(cfg, own.start_rps or c.start_rps, p.capacity_max_s),
        limits=Limits(
            dict(own.objectives_p95_ms),
            c.max_error_ratio,
            c.max_dropped_ratio,
            default_p95_ms=own.default_p95_ms,
        ),
        mix="recipe" if recipe else "tasks",
        locustfile=str(locustfile(target.scenario)) if target.scenario else "",
        recipe=json.dumps(target.probe.to_json()) if recipe and target.probe else "",
        **common,
    )


def health_search(cfg: Config, health_path: str) -> Search:
    """The ceiling's search: GET of the health path from `ceiling_start_rps`, as many steps
    as ceiling_duration_s holds, the ceiling's objective."""
    p, c = cfg.profile, cfg.capacity
    steps = max(1, math.floor(p.ceiling_duration_s / p.capacity_step_s))
    return Search(
        rates=plan_rates(c.ceiling_start_rps, p.capacity_step_factor, steps),
        step_s=p.capacity_step_s,
        limits=Limits(
            {f"GET {health_path}": c.ceiling_objective_p95_ms},
            c.max_error_ratio,
            c.max_dropped_ratio,
        ),
        arrival=c.arrival,
        seed=cfg.seed.seed,
        mix="health",
        health_path=health_path,
        precision=p.capacity_precision,
        max_s=p.ceiling_duration_s,
        # a health check answers in milliseconds: users for replies 5x the objective slow are
        # plenty (a slower step misses anyway), and every user costs the generator CPU to
        # spawn, a socket to hold; rate x 5 s of them (5,000 at 1,000 req/s) starved it
        in_flight_s=max(HEALTH_IN_FLIGHT_MIN_S, 5 * c.ceiling_objective_p95_ms / 1000),
    )


@dataclass
class SearchResult:
    capacity: Capacity
    steps: list[Step]
    locust: LocustResult
    memory: pd.DataFrame
    stopped_at_knee: bool
    timeline: dict[str, Any] = field(default_factory=dict)
    sampler_samples: int = 0
    # the knee's refinement: one run per probe, each one step (harness.analysis.knee)
    refinements: list[SearchResult] = field(default_factory=list)
    ended_by: str = ""  # why the refinement stopped short of the precision ("" when it did not)

    @property
    def steps_run(self) -> int:
        return len(self.steps) + sum(len(r.steps) for r in self.refinements)

    def table(self, limits: Limits) -> pd.DataFrame:
        """Every step run (the staircase's and each probe's), by offered rate: columns of
        harness.analysis.capacity.steps_frame, plus `stage` (staircase, refine_01, ...)."""
        frames = [steps_frame(self.steps, limits, self.memory).assign(stage="staircase")]
        for i, probe in enumerate(self.refinements, start=1):
            frame = steps_frame(probe.steps, limits, probe.memory)
            frames.append(frame.assign(stage=REFINE_DIR.format(i)))
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        return table.sort_values(["offered_rps", "stage"], kind="stable").reset_index(drop=True)

    def at_capacity(self, limits: Limits) -> dict[str, float]:
        """The largest RSS and USS during the step that ran at the capacity's rate."""
        table = self.table(limits)
        if table.empty or "rss_max_bytes" not in table:
            return {}
        rate = self.capacity.capacity_rps
        at = table[(table["offered_rps"] == rate) & (table["verdict"] == "met")]
        return {
            column: float(at[column].max())
            for column in ("rss_max_bytes", "uss_max_bytes")
            if column in at and at[column].notna().any()
        }


def run_search(
    base_url: str,
    search: Search,
    out: Path,
    manifest_path: Path,
    *,
    app_pid: int | None = None,
    sample_interval_s: float = 0.1,
    processes: int = 1,
    master: MasterMode | None = None,
    app_gone: Callable[[], str] | None = None,
    progress: ProgressFn | None = None,
    log_dir: Path | None = None,
) -> SearchResult:
    """Run the open-model staircase against base_url; stop at the knee. Files in `out`."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    plan = search.plan(out)
    for stale in (STOP_FILE, TIMELINE_JSON, STEPS_CSV, ENDPOINTS_CSV):
        with contextlib.suppress(FileNotFoundError):
            (out / stale).unlink()
    write_json_atomic(out / "plan.json", plan)
    distributed = master is not None or processes > 1
    watch = KneeWatch(
        search.step_s,
        search.limits,
        out / "locust_stats.csv",
        out / STOP_FILE,
        SETTLE_DISTRIBUTED_S if distributed else SETTLE_S,
    )

    def abort_if() -> str:
        reason = app_gone() if app_gone is not None else ""
        if not reason:
            watch.poll()
        return reason

    duration_s = search.step_s * len(search.rates) + LEAD_S
    sampler: ProcessTreeSampler | None = None
    with contextlib.ExitStack() as stack:
        if app_pid is not None:
            sampler = stack.enter_context(
                ProcessTreeSampler(app_pid, sample_interval_s, out / SAMPLES_CSV)
            )
        result = run_locust(
            base_url,
            search.scenario,
            search.peak_users,  # the shape sets users and spawn rate; -u/-r only label the run
            float(search.peak_users),
            duration_s,
            out,
            manifest_path,
            extra_env=search.env(out),
            abort_if=abort_if,
            progress=progress,
            log_dir=log_dir,
            processes=processes,
            master=master,
        )
    steps = parse_steps(_read_csv(result.stats_csv), search.step_s)
    capacity = find_capacity(steps, search.limits)
    timeline = _read_json(out / TIMELINE_JSON)
    memory = memory_by_step(
        _read_csv(out / SAMPLES_CSV) if sampler is not None else None,
        float(timeline.get("t0_unix", math.nan)),
        search.step_s,
        len(search.rates),
    )
    steps_frame(steps, search.limits, memory).to_csv(out / STEPS_CSV, index=False)
    endpoint_frame(steps, search.limits).to_csv(out / ENDPOINTS_CSV, index=False)
    return SearchResult(
        capacity=capacity,
        steps=steps,
        locust=result,
        memory=memory,
        stopped_at_knee=watch.knee is not None,
        timeline=timeline,
        sampler_samples=sampler.samples if sampler is not None else 0,
    )


RUN_OVERHEAD_S = 8.0  # a probe's locust start-up and stop, when the staircase's is not known


def search_to_knee(
    base_url: str,
    search: Search,
    out: Path,
    manifest_path: Path,
    *,
    app_gone: Callable[[], str] | None = None,
    **kwargs: Any,
) -> SearchResult:
    """The staircase up to the knee, then the knee's refinement (harness.analysis.knee):
    one run of one step at the bracket's geometric middle, until the knee is within
    `search.precision` of the capacity or the next probe would end past `search.max_s`.
    Each probe's files are in out/refine_NN/; capacity_steps.csv holds every step."""
    started = time.monotonic()
    result = run_search(base_url, search, out, manifest_path, app_gone=app_gone, **kwargs)
    overhead_s = max(
        RUN_OVERHEAD_S / 2, result.locust.duration_s - search.step_s * max(1, len(result.steps))
    )
    capacity = result.capacity
    while (rate := next_rate(capacity, search.precision)) is not None:
        if search_problem(result, app_gone() if app_gone else ""):
            result.ended_by = "the staircase did not run cleanly"
            break
        if time.monotonic() - started + search.step_s + overhead_s > search.max_s:
            result.ended_by = f"the search's time limit ({search.max_s:g} s)"
            break
        index = len(result.refinements) + 1
        probe_search = replace(search, rates=(rate,))
        probe = run_search(
            base_url,
            probe_search,
            out / REFINE_DIR.format(index),
            manifest_path,
            app_gone=app_gone,
            **kwargs,
        )
        result.refinements.append(probe)
        if search_problem(probe) or not probe.steps:
            result.ended_by = f"probe {index} at {rate:g} req/s: {search_problem(probe)}"
            break
        capacity = refine(capacity, Probe(rate, judge(probe.steps[0], search.limits)))
    result.capacity = capacity
    result.table(search.limits).to_csv(out / STEPS_CSV, index=False)
    return result


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, Mapping) else {}


def search_problem(result: SearchResult, app_gone: str = "") -> str:
    """Why the search's figures cannot be trusted ('' when they can)."""
    if app_gone:
        return app_gone
    if not result.locust.ok:
        for line in result.locust.stderr_tail.splitlines():
            _, marker, why = line.partition(NOT_DRIVABLE)
            if marker:  # the target's locustfile said why, in one line
                return f"the target's locustfile cannot be driven open-model: {why.strip()}"
        return result.locust.problem()
    if not result.steps:
        return "locust finished no open-model request"
    return ""


def write_meta(path: Path, search: Search, result: SearchResult, **more: Any) -> None:
    write_json_atomic(
        path,
        {
            "rates": list(search.rates),
            "step_s": search.step_s,
            "arrival": search.arrival,
            "objectives_p95_ms": dict(search.limits.objectives_p95_ms),
            "max_error_ratio": search.limits.max_error_ratio,
            "max_dropped_ratio": search.limits.max_dropped_ratio,
            "capacity_rps": result.capacity.capacity_rps,
            "status": result.capacity.status,
            "reason": result.capacity.reason,
            "stopped_at_knee": result.stopped_at_knee,
            "steps_run": result.steps_run,
            "knee_rps": result.capacity.knee_rps,
            "precision": search.precision,
            "max_s": search.max_s if math.isfinite(search.max_s) else None,
            "refinements": [
                {
                    "rate_rps": r.steps[0].offered_rps,
                    "verdict": judge(r.steps[0], search.limits).status,
                }
                for r in result.refinements
                if r.steps
            ],
            "refinement_ended_by": result.ended_by,
            "timeline": result.timeline,
            "sampler_samples": result.sampler_samples,
            "locust": {
                "exit_code": result.locust.exit_code,
                "requests": result.locust.requests,
                "failures": result.locust.failures,
                "cpu_max_percent": result.locust.cpu_max_percent,
                "cpu_total_max_percent": result.locust.cpu_total_max_percent,
                "duration_s": result.locust.duration_s,
                "load_workers": result.locust.processes,
            },
            **more,
        },
    )


def search_rows(
    design: str, phase: str, search: Search, result: SearchResult, ceiling_rps: float | None
) -> list[SummaryRow]:
    rows = capacity_rows(
        design,
        phase,
        result.capacity,
        search.limits,
        None,
        ceiling_rps,
        endpoints={e.endpoint for s in result.steps for e in s.endpoints},
        at_capacity=result.at_capacity(search.limits),
    )
    rows.append(SummaryRow(design, phase, "steps_run", float(result.steps_run), "count"))
    rows.append(SummaryRow(design, phase, "refinements", float(len(result.refinements)), "count"))
    knee = result.capacity.knee_rps
    if knee is not None and result.capacity.capacity_rps > 0 and result.capacity.status == "knee":
        # how tight the figure is: the knee / the capacity (1.1: within 10%)
        rows.append(
            SummaryRow(
                design, phase, "knee_bracket_ratio", knee / result.capacity.capacity_rps, "x"
            )
        )
    rows.append(
        SummaryRow(design, phase, "loadgen_cpu_max", result.locust.cpu_max_percent, "percent")
    )
    return rows


@dataclass(frozen=True)
class Serving:
    """How serve_and_search starts the target, where a caller needs more than the plain way."""

    workers: int | None = None  # the target's {workers} (default: the profile's app_workers)
    argv_prefix: tuple[str, ...] = ()  # before the target's command (a cgroup join, docker run)
    prepare: Callable[[Stack], object] | None = None  # once it answers, before the load
    sampled_pid: Callable[[int], int] | None = None  # the tree to sample, from the app's pid


def serve_and_search(
    cfg: Config,
    target: TargetSpec,
    search: Search,
    out: Path,
    *,
    phase: str,
    progress: ProgressFn | None = None,
    processes: int | None = None,
    after: Callable[[str, int], Any] | None = None,
    serving: Serving | None = None,
) -> tuple[SearchResult, str]:
    """Serve `target` on the seeded store in out/data, run `search` against it; (the result,
    why the app was gone at the end or ""). `processes`: local Locust processes (default the
    profile's load_workers); `after(base_url, app_pid)` runs against the same stack once the
    search is over (the ceiling's bare-Locust calibration); `serving`: how the app is started
    and readied (the size phase's proof: inside a memory limit, its data set first)."""
    data, logs = out / "data", out / "logs"
    serving = serving or Serving()
    with running_stack(
        target,
        data,
        logs,
        cfg.upstream,
        mode="plain",
        workers=serving.workers or cfg.profile.app_workers,
        phase=phase,
        host=server_host(cfg),
        argv_prefix=serving.argv_prefix,
    ) as stack:

        def app_gone() -> str:
            code = stack.app.poll()
            return "" if code is None else f"the app exited with status {code}"

        if serving.prepare is not None:
            serving.prepare(stack)
        result = search_to_knee(
            stack.base_url,
            search,
            out,
            data / "manifest.json",
            app_pid=serving.sampled_pid(stack.app.pid) if serving.sampled_pid else stack.app.pid,
            sample_interval_s=cfg.sample_interval_s,
            processes=processes if processes is not None else cfg.profile.load_workers,
            master=master_mode(cfg),
            app_gone=app_gone,
            progress=progress,
            log_dir=logs,
        )
        if after is not None and not app_gone():
            after(stack.base_url, stack.app.pid)
        return result, app_gone()


def run_capacity(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    progress: ProgressFn | None = None,
    ceiling_rps: float | None = None,
) -> list[SummaryRow]:
    """Seed a store, serve `design`, search its capacity; the phase's summary rows."""
    out = run.phase_dir(design, PHASE)
    seed_store(cfg.target(design), out / "data", cfg.seed, out / "logs")
    search = design_search(cfg, design)
    result, gone = serve_and_search(
        cfg, cfg.target(design), search, out, phase=PHASE, progress=progress
    )
    rows = search_rows(design, PHASE, search, result, ceiling_rps)
    write_meta(out / "meta.json", search, result, app_workers=cfg.profile.app_workers)
    problem = search_problem(result, gone)
    if problem:
        raise FailedWithResults(PHASE, problem, rows, result.locust.exit_code)
    return rows
