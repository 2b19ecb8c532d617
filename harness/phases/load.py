"""The load phase: the app as it runs in production (no profiler), a psutil sampler on its
process tree, and `locust --headless` against it; latency and throughput come only from here.

Files under `<run>/<design>/load/`: locust_stats.csv, locust_stats_history.csv,
locust_failures.csv, locust_exceptions.csv, locust.html, process_samples.csv, acks.json
(writes the client saw acknowledged, for the integrity phase), meta.json and logs/.

`load_session` keeps the app up after Locust has finished, so that the integrity phase can
read the store through the same server; `run_load` is the plain phase.

Scale: the app serves with `profile.app_workers` processes (the target's {workers}; the
sampler covers the whole process tree, totals and per process) and Locust generates the load
with `profile.load_workers` local processes, or as a master for workers elsewhere
(`cfg.locust.master`). The rows `app_workers` and `load_workers` say which ran.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.load import HarnessCost, harness_cost_summary, load_summary, worker_summary
from harness.config import Config
from harness.load.locust_runner import LocustResult, MasterMode, run_locust
from harness.phases import FailedWithResults, ProgressFn
from harness.phases.server_errors import describe, record_server_errors
from harness.results import SCHEMA_VERSION, RunDir, SummaryRow, write_json_atomic
from harness.sampling.process_sampler import ProcessTreeSampler
from harness.stack.processes import LOOPBACK, ManagedProcess
from harness.stack.targets import running_stack

PHASE = "load"
SAMPLES_CSV = "process_samples.csv"
ACKS_JSON = "acks.json"
SLOW_SAMPLER_FACTOR = 2.0  # warn when samples come less often than twice the interval


def data_dir(run: RunDir, design: str) -> Path:
    """Where the design's seeded store lives for this run."""
    return run.design_dir(design) / "data"


@dataclass
class LoadSession:
    """A finished load run whose app is still up (inside `load_session`)."""

    design: str
    out_dir: Path
    base_url: str
    app: ManagedProcess
    manifest_path: Path
    acks_path: Path
    locust: LocustResult
    rows: list[SummaryRow]
    failure: str = ""  # why the phase failed; "" when it passed
    warnings: list[str] = field(default_factory=list)

    @property
    def app_alive(self) -> bool:
        return self.app.poll() is None


def _app_exit(app: ManagedProcess) -> str:
    code = app.poll()
    return "" if code is None else f"the app exited with status {code}"


def _read_csv(path: Path | None) -> pd.DataFrame | None:
    if path is None or not path.exists():
        return None
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError):
        return None
    return frame if not frame.empty else None


def master_mode(cfg: Config) -> MasterMode | None:
    """The Locust master settings when the load comes from workers elsewhere, else None."""
    if not cfg.locust.master:
        return None
    return MasterMode(
        expect_workers=cfg.locust.expect_workers,
        bind_host=cfg.locust.master_bind_host,
        bind_port=cfg.locust.master_bind_port,
        max_wait_s=cfg.locust.expect_workers_max_wait_s,
    )


def server_host(cfg: Config) -> str:
    """Where the load phase's server listens and is loaded: the loopback, unless a Locust
    master's workers on other machines must reach it ([locust] server_host)."""
    return cfg.locust.server_host if cfg.locust.master else LOOPBACK


def scenario_for(design: str, cfg: Config) -> str:
    """The locustfile for `design`: its target's own scenario, else the profile's."""
    return cfg.target(design).scenario or cfg.profile.scenario


def _failure(result: LocustResult, app: ManagedProcess, server_said: str = "") -> str:
    code = app.poll()
    if code is not None:
        return (
            f"the app exited with status {code} during the load phase; "
            f"stderr tail:\n{app.stderr_tail()}"
        )
    if not result.ok:
        return result.problem()
    if result.requests == 0:
        return "locust made no requests"
    if result.failures == result.requests:
        return f"every request failed ({result.failures:,})\n{server_said}".strip()
    return ""


@contextlib.contextmanager
def load_session(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    data: Path | None = None,
    progress: ProgressFn | None = None,
) -> Iterator[LoadSession]:
    """Run the load on `design` and yield the outcome while the app is still up.

    Raises PhaseFailed if the stack never became healthy. A run that failed half-way
    (app crashed, locust failed) is yielded with `failure` set and its partial rows.
    """
    profile = cfg.profile
    store = data if data is not None else data_dir(run, design)
    out = run.phase_dir(design, PHASE)
    manifest_path = store / "manifest.json"
    acks_path = out / ACKS_JSON
    master = master_mode(cfg)
    with running_stack(
        cfg.target(design),
        store,
        out / "logs",
        cfg.upstream,
        mode="plain",
        workers=profile.app_workers,
        phase=PHASE,
        host=server_host(cfg),
    ) as stack:
        started = time.monotonic()
        sampler = ProcessTreeSampler(
            stack.app.pid, cfg.sample_interval_s, out / SAMPLES_CSV, t0=started
        )
        with sampler:
            result = run_locust(
                stack.base_url,
                scenario_for(design, cfg),
                profile.users,
                profile.spawn_rate,
                profile.duration_s,
                out,
                manifest_path,
                acks_path=acks_path,
                abort_if=lambda: _app_exit(stack.app),
                progress=progress,
                log_dir=out / "logs",
                processes=profile.load_workers,
                master=master,
            )
        sampled_s = time.monotonic() - started
        rows = load_summary(
            design,
            _read_csv(result.stats_csv),
            _read_csv(out / SAMPLES_CSV),
            _read_csv(result.history_csv),
            result.cpu_max_percent,
        )
        rows += worker_summary(design, result.processes, profile.app_workers)
        rows += harness_cost_summary(design, PHASE, harness_cost(sampler, sampled_s, result))
        warnings = _sampler_warnings(sampler, sampled_s, cfg.sample_interval_s)
        exceptions = record_server_errors(out, requests=result.requests, failures=result.failures)
        server_said = ""
        if exceptions or result.failures:
            server_said = describe(
                exceptions, requests=result.requests, failures=result.failures, phase_dir=out
            )
            if result.failures < result.requests:
                warnings.append(server_said)
        _write_meta(out / "meta.json", cfg, result, sampler, sampled_s, scenario_for(design, cfg))
        yield LoadSession(
            design=design,
            out_dir=out,
            base_url=stack.base_url,
            app=stack.app,
            manifest_path=manifest_path,
            acks_path=acks_path,
            locust=result,
            rows=rows,
            failure=_failure(result, stack.app, server_said),
            warnings=warnings,
        )


def run_load(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    data: Path | None = None,
    progress: ProgressFn | None = None,
) -> list[SummaryRow]:
    """The load phase on its own; raises FailedWithResults (partial rows) when it fails."""
    with load_session(run, design, cfg, data=data, progress=progress) as session:
        pass
    if session.failure:
        raise FailedWithResults(PHASE, session.failure, session.rows, session.locust.exit_code)
    return session.rows


def harness_cost(
    sampler: ProcessTreeSampler, sampled_s: float, result: LocustResult
) -> HarnessCost:
    """What the sampler thread and the Locust processes cost during the phase."""
    return HarnessCost(
        sampler_cpu_s=sampler.cpu_s,
        sampler_wall_s=sampled_s,
        samples=sampler.samples,
        loadgen_cpu_s=result.cpu_s if result.cpu_measured_s > 0 else None,
        loadgen_wall_s=result.cpu_measured_s,
    )


def _sampler_warnings(
    sampler: ProcessTreeSampler, sampled_s: float, interval_s: float
) -> list[str]:
    out: list[str] = []
    if sampler.errors:
        out.append(f"the psutil sampler failed {sampler.errors} times ({sampler.last_error})")
    achieved = sampled_s / sampler.samples if sampler.samples else math.inf
    if achieved > SLOW_SAMPLER_FACTOR * interval_s:
        out.append(
            f"the psutil sampler took a sample every {achieved:.2f} s "
            f"(asked for {interval_s:g} s): memory peaks may be missed"
        )
    return out


def _write_meta(
    path: Path,
    cfg: Config,
    result: LocustResult,
    sampler: ProcessTreeSampler,
    sampled_s: float,
    scenario: str,
) -> None:
    meta: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario,
        "users": cfg.profile.users,
        "spawn_rate": cfg.profile.spawn_rate,
        "duration_s": cfg.profile.duration_s,
        "app_workers": cfg.profile.app_workers,
        "load_workers": result.processes,  # 0: a master, its workers elsewhere
        "locust_master": (
            {
                "expect_workers": cfg.locust.expect_workers,
                "bind": f"{cfg.locust.master_bind_host}:{cfg.locust.master_bind_port}",
            }
            if cfg.locust.master
            else None
        ),
        "locust": {
            "exit_code": result.exit_code,
            "requests": result.requests,
            "failures": result.failures,
            "duration_s": result.duration_s,
            "started_unix": result.started_unix,
            "cpu_max_percent": result.cpu_max_percent,
            "cpu_total_max_percent": result.cpu_total_max_percent,
            "cpu_s": result.cpu_s,
            "cpu_measured_s": result.cpu_measured_s,
            "timed_out": result.timed_out,
            "aborted": result.aborted,
        },
        "sampler": {
            "interval_s": cfg.sample_interval_s,
            "samples": sampler.samples,
            "sampled_s": round(sampled_s, 3),
            "errors": sampler.errors,
            "last_error": sampler.last_error,
            "uss_available": sampler.uss_available,
            "method": sampler.method,
            "cpu_s": round(sampler.cpu_s, 3),
        },
    }
    write_json_atomic(path, meta)
