"""Fault injection: load, SIGKILL the app at a seeded random moment, restart it on the same
data, keep the load going, then compare acknowledged writes with what the store holds.

Each trial gets a freshly seeded store. The kill goes to the app's whole process group;
the restarted app listens on the same port, so Locust's users carry on (their requests fail
while it is down, and a failed request is not acknowledged).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.integrity import IntegrityCounts, integrity_counts
from harness.config import Config
from harness.load.locust_runner import LocustResult, run_locust
from harness.phases import ProgressFn, no_progress
from harness.phases.integrity import read_acks, seeded_lengths, stored_lengths
from harness.results import SCHEMA_VERSION, RunDir, write_json_atomic
from harness.stack.processes import wait_healthy
from harness.stack.targets import HEALTH_TIMEOUT_S, running_stack, seed_store

PHASE = "chaos"
KILL_WINDOW = (0.25, 0.65)  # the kill lands in this fraction of the trial's duration


@dataclass(frozen=True)
class TrialResult:
    trial: int
    kill_at_s: float
    restart_s: float
    requests: int
    failures: int
    counts: IntegrityCounts
    unreadable: int
    timeline: TrialTimeline = field(default_factory=lambda: TrialTimeline())

    def to_json(self) -> dict[str, Any]:
        return {
            "trial": self.trial,
            "kill_at_s": round(self.kill_at_s, 3),
            "restart_s": round(self.restart_s, 3),
            "requests": self.requests,
            "failures": self.failures,
            "unreadable_users": self.unreadable,
            **self.counts.to_json(),
            **self.timeline.to_json(),
        }


@dataclass(frozen=True)
class TrialTimeline:
    """What shows the kill happened: the app's pid before and after, and when (Unix seconds)
    the load ran, the kill landed and the restarted app answered /healthz; plus the POST
    /chat requests that succeeded after that (from Locust's per-second history)."""

    app_pid_killed: int = 0
    app_pid_restarted: int = 0
    load_started_unix: float = 0.0
    load_finished_unix: float = 0.0
    killed_at_unix: float = 0.0
    healthy_again_unix: float = 0.0
    chat_ok_after_restart: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "app_pid_killed": self.app_pid_killed,
            "app_pid_restarted": self.app_pid_restarted,
            "load_started_unix": round(self.load_started_unix, 3),
            "load_finished_unix": round(self.load_finished_unix, 3),
            "killed_at_unix": round(self.killed_at_unix, 3),
            "healthy_again_unix": round(self.healthy_again_unix, 3),
            "chat_ok_after_restart": self.chat_ok_after_restart,
        }


def ok_requests_since(history_csv: Path | None, since_unix: float, request_type: str) -> int:
    """Requests of `request_type` that succeeded after `since_unix`, from Locust's
    --csv-full-history file (cumulative counts per second and name). The second that holds
    `since_unix` counts as before it, so this is a lower bound."""
    if history_csv is None or not history_csv.exists():
        return 0
    history = pd.read_csv(history_csv)
    rows = history[history["Type"] == request_type]
    total = 0
    for _, named in rows.groupby("Name"):
        ok = named["Total Request Count"] - named["Total Failure Count"]
        before = ok[named["Timestamp"] <= int(since_unix)]
        total += int(ok.iloc[-1]) - (int(before.iloc[-1]) if len(before) else 0)
    return total


def kill_times(seed: int, trials: int, duration_s: float) -> list[float]:
    """The seeded moments (seconds after load starts) at which each trial kills the app."""
    rng = random.Random(seed)
    lo, hi = (duration_s * f for f in KILL_WINDOW)
    return [rng.uniform(lo, hi) for _ in range(trials)]


def run_trial(
    run: RunDir,
    design: str,
    cfg: Config,
    trial: int,
    kill_at_s: float,
    duration_s: float,
    users: int,
    progress: ProgressFn = no_progress,
) -> TrialResult:
    trial_dir = run.phase_dir(design, PHASE) / f"trial-{trial:02d}"
    data = trial_dir / "data"
    manifest = seed_store(cfg.target(design), data, cfg.seed, trial_dir / "logs")
    acks_path = trial_dir / "acks.json"
    outcome: dict[str, LocustResult] = {}

    with running_stack(
        cfg.target(design), data, trial_dir / "logs", cfg.upstream, phase=PHASE
    ) as stack:

        def drive() -> None:
            outcome["locust"] = run_locust(
                stack.base_url,
                "chat",
                users,
                cfg.profile.spawn_rate,
                duration_s,
                trial_dir,
                data / "manifest.json",
                acks_path=acks_path,
                log_dir=trial_dir / "logs",
            )

        load = threading.Thread(target=drive, name=f"locust-trial-{trial}", daemon=True)
        started = time.monotonic()
        load.start()
        while time.monotonic() - started < kill_at_s and load.is_alive():
            progress(time.monotonic() - started, duration_s, f"trial {trial}: load")
            time.sleep(0.1)
        killed_pid = stack.app.pid
        stack.app.signal_group(signal.SIGKILL)
        killed_at = time.time()
        stack.app.wait(10)
        progress(kill_at_s, duration_s, f"trial {trial}: killed, restarting")
        restart_t = time.monotonic()
        restarted = stack.group.start("app-restarted", stack.app.argv)
        wait_healthy(restarted, f"{stack.base_url}/healthz", HEALTH_TIMEOUT_S, phase=PHASE)
        healthy_again = time.time()
        restart_s = time.monotonic() - restart_t
        while load.is_alive():
            progress(time.monotonic() - started, duration_s, f"trial {trial}: load continues")
            load.join(0.25)
        locust = outcome["locust"]
        timeline = TrialTimeline(
            app_pid_killed=killed_pid,
            app_pid_restarted=restarted.pid,
            load_started_unix=locust.started_unix,
            load_finished_unix=locust.started_unix + locust.duration_s,
            killed_at_unix=killed_at,
            healthy_again_unix=healthy_again,
            chat_ok_after_restart=ok_requests_since(locust.history_csv, healthy_again, "POST"),
        )
        acknowledged = read_acks(acks_path) if acks_path.exists() else {}
        seeded = seeded_lengths(manifest)
        users_to_check = sorted(set(seeded) | set(acknowledged))
        stored, errors = stored_lengths(stack.base_url, users_to_check)

    counts = integrity_counts(
        {u: n for u, n in seeded.items() if u not in errors},
        {u: n for u, n in acknowledged.items() if u not in errors},
        stored,
    )
    return TrialResult(
        trial,
        kill_at_s,
        restart_s,
        locust.requests,
        locust.failures,
        counts,
        len(errors),
        timeline,
    )


def run_chaos(
    run: RunDir,
    design: str,
    cfg: Config,
    *,
    trials: int,
    seed: int,
    duration_s: float,
    users: int,
    progress: ProgressFn | None = None,
    on_trial: Any = None,
) -> list[TrialResult]:
    """Run the trials one after another; write <design>/chaos/chaos.json after each."""
    results: list[TrialResult] = []
    for trial, kill_at in enumerate(kill_times(seed, trials, duration_s), start=1):
        result = run_trial(
            run, design, cfg, trial, kill_at, duration_s, users, progress or no_progress
        )
        results.append(result)
        write_json_atomic(
            run.phase_dir(design, PHASE) / "chaos.json",
            {
                "schema_version": SCHEMA_VERSION,
                "design": design,
                "seed": seed,
                "duration_s": duration_s,
                "users": users,
                "trials": [r.to_json() for r in results],
                "total_acknowledged": sum(r.counts.acknowledged for r in results),
                "total_lost": sum(r.counts.lost for r in results),
            },
        )
        if on_trial is not None:
            on_trial(result)
    return results
