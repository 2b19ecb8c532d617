"""The sizing's measurements and its proof under a real kernel memory limit.

- `measure_idle`: one worker started on the seeded store, its RSS before any request (idle),
  then after the probe recipe's setup request has set its data to `max_units` (data growth),
  where the service serves that request outside probe mode.
- `prove`: the target's process tree started inside a memory cgroup (it joins before it
  execs, harness.sizing.cgroup.join_argv: start-up is charged too), its data set to
  `max_units`, then the capacity phase's open-model load (harness.phases.capacity.run_search)
  at one stated rate for `proof_s` seconds: the capacity search's own mix of users on the
  seeded store, whose whales hold the largest histories. OOM kills
  come from the cgroup, requests, failures and latency from Locust. The load is not stopped
  when the app dies: every request after that fails and is counted. The LLM emulator stays
  outside the cgroup (it is not part of the container).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import psutil

from harness._errors import PhaseFailed
from harness.analysis.sizing import Proof
from harness.config import Config
from harness.config.probe_recipe import render_request
from harness.config.target_spec import TargetSpec
from harness.phases import ProgressFn
from harness.phases.capacity import Search, design_search, run_search
from harness.phases.load import server_host
from harness.sizing.cgroup import Controller, join_argv, removed_on_exit
from harness.stack.targets import running_stack

SETTLE_S = 1.0  # after health (or the data setup): let start-up work finish before reading RSS
READS = 5  # RSS readings, 0.1 s apart; their median is the figure


def tree_rss_bytes(pid: int) -> float:
    """The RSS of a process and its descendants (median of a few readings)."""
    values = []
    for _ in range(READS):
        total = 0
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        values.append(total)
        time.sleep(0.1)
    values.sort()
    return float(values[len(values) // 2])


def apply_data(base_url: str, target: TargetSpec, max_units: int) -> str:
    """Send the probe recipe's setup request at max_units; '' when it was served, else why
    the data was left as seeded."""
    recipe = target.probe
    if recipe is None or recipe.setup is None or recipe.setup.request is None:
        return "no setup request in the target's probe recipe: the data is as seeded"
    request = render_request(recipe.setup.request, recipe.values(max_units, 0, {}))
    try:
        with httpx.Client(base_url=base_url, timeout=120.0) as client:
            response = client.request(
                request.method,
                request.path,
                headers=request.headers,
                json=request.json,
                content=request.content,
            )
    except httpx.HTTPError as exc:
        return f"the setup request failed ({type(exc).__name__}): the data is as seeded"
    if not response.is_success:
        return (
            f"the setup request answered {response.status_code} outside probe mode: "
            "the data is as seeded"
        )
    return ""


@dataclass(frozen=True)
class Idle:
    idle_rss_bytes: float
    data_growth_bytes: float
    data_note: str  # '' when the data was set to max_units


def measure_idle(cfg: Config, target: TargetSpec, data: Path, out: Path, max_units: int) -> Idle:
    """One worker on the seeded store: its idle RSS, then what setting its data to max_units
    adds."""
    with running_stack(
        target, data, out / "logs", cfg.upstream, workers=1, phase="size", env=None
    ) as stack:
        time.sleep(SETTLE_S)
        idle = tree_rss_bytes(stack.app.pid)
        note = apply_data(stack.base_url, target, max_units)
        if note:
            return Idle(idle, 0.0, note)
        time.sleep(SETTLE_S)
        return Idle(idle, max(0.0, tree_rss_bytes(stack.app.pid) - idle), "")


def proof_search(cfg: Config, target: TargetSpec, rate: float, proof_s: float) -> Search:
    """One step of the capacity phase's own search (same mix, same users: the seeded store
    with its whales) at `rate`, `proof_s` long."""
    return replace(design_search(cfg, target.name), rates=(rate,), step_s=proof_s)


def prove(
    cfg: Config,
    target: TargetSpec,
    controller: Controller,
    *,
    label: str,
    limit_bytes: int,
    rate: float,
    workers: int,
    max_units: int,
    proof_s: float,
    seeded: Path,
    out: Path,
    progress: ProgressFn | None = None,
) -> Proof:
    """Serve `target` under a `limit_bytes` cgroup and load it at `rate` (module docstring)."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    data = out / "data"
    shutil.copytree(seeded, data)  # the load writes messages: each run starts from the seed
    search = proof_search(cfg, target, rate, proof_s)
    name = f"harness-size-{os.getpid()}-{target.name}-{label}"
    with removed_on_exit(controller, name, limit_bytes) as group:
        try:
            with running_stack(
                target,
                data,
                out / "logs",
                cfg.upstream,
                workers=workers,
                phase="size",
                host=server_host(cfg),
                argv_prefix=join_argv(group.procs_file),
            ) as stack:
                apply_data(stack.base_url, target, max_units)
                result = run_search(
                    stack.base_url,
                    search,
                    out,
                    data / "manifest.json",
                    app_pid=stack.app.pid,
                    sample_interval_s=cfg.sample_interval_s,
                    progress=progress,
                    log_dir=out / "logs",
                )
                app_exit = stack.app.poll()
        except PhaseFailed as exc:
            first = exc.reason.splitlines()[0] if exc.reason else "it did not start"
            return Proof(
                label,
                limit_bytes,
                oom_kills=group.oom_kills(),
                peak_usage_bytes=float(group.peak_bytes() or math.nan),
                problem=f"the app could not start under the limit: {first}",
            )
        oom_kills = group.oom_kills()
        peak = group.peak_bytes()
    requests = sum(s.requests for s in result.steps)
    failures = sum(s.failures for s in result.steps)
    p95s = [e.p95_ms for s in result.steps for e in s.endpoints if not math.isnan(e.p95_ms)]
    problem = "" if result.locust.ok else result.locust.problem()
    return Proof(
        label,
        limit_bytes,
        oom_kills=oom_kills,
        requests=requests,
        failures=failures,
        p95_ms=max(p95s) if p95s else math.nan,
        peak_usage_bytes=float(peak) if peak is not None else math.nan,
        app_exit=app_exit,
        problem=problem,
    )
