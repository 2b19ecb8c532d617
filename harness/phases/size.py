"""The size phase: a memory request and limit for one container of a design, then its proof
under a real kernel limit (docs/sizing.md).

It reads what earlier phases of the same run measured: the probe's peaks per request
(needed), the capacity search's rate and latency (unless `[size]` states a rate or a
concurrency); it measures itself one worker's idle RSS, its data growth at `max_units` and
what it retains after its heaviest requests (harness.sizing.measure.measure_idle). The
model (harness.analysis.sizing) adds them up.

Then the proof (harness.sizing.proof.prove): the load at the stated rate under the
recommended limit, then under 60% of it, in a `docker run --memory` container where a Docker
daemon answers, else a memory cgroup ([size] runtime). Without either (no daemon, no rights,
no controller), or for a target the open-model load cannot drive (neither the chat API nor a
locustfile), the proof is skipped with its one-line reason and the recommendation stands,
"not proven here". A proof at the limit
that saw an OOM kill, the app gone or more than 1% failures fails the phase (its rows kept).

Files under `<run>/<design>/size/`: sizing.json (the terms, the inputs, the proofs, the
pasteable blocks), data/seed/ and data/idle/ (the stores used), proof-limit/ and
proof-60pct/ (each run's Locust files, process samples and logs).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.analysis.sizing import (
    DEFAULT_HEADROOM,
    DEFAULT_PROOF_S,
    LOW_LIMIT_FRACTION,
    PHASE,
    InFlight,
    ProbePoint,
    Proof,
    SizeTable,
    in_flight,
    peak_at_units,
    size_container,
    sizing_rows,
    to_json,
)
from harness.config import Config
from harness.config.target_spec import TargetSpec
from harness.phases import FailedWithResults, ProgressFn
from harness.results import RunDir, SummaryRow, write_json_atomic
from harness.sizing.cgroup import detect
from harness.sizing.docker import detect_daemon
from harness.sizing.measure import measure_idle
from harness.sizing.proof import Limiter, choose_limiter, prove
from harness.stack.targets import seed_store

SIZING_JSON = "sizing.json"
STEPS_CSV = "capacity_steps.csv"
ENDPOINTS_CSV = "capacity_endpoints.csv"


def settings_for(cfg: Config, target: TargetSpec) -> SizeTable:
    """[target.size] over [size] (command-line flags are already over both: config.resolve)."""
    return (target.size or SizeTable()).over(cfg.size)


def probe_points(rows: list[SummaryRow], design: str) -> list[ProbePoint]:
    points = []
    for r in rows:
        if r.design == design and r.phase == "probe" and r.metric == "alloc_peak_bytes":
            size = r.labels.get("history_len")
            if size is not None and r.labels.get("endpoint"):
                points.append(ProbePoint(r.labels["endpoint"], float(size), r.value))
    return points


def row_value(rows: list[SummaryRow], design: str, phase: str, metric: str) -> float | None:
    for r in rows:
        if r.design == design and r.phase == phase and r.metric == metric and not r.labels:
            return r.value
    return None


def latency_at(capacity_dir: Path, rate: float) -> float | None:
    """The corrected median latency (s) of the highest capacity step at or below `rate`: its
    endpoints' medians weighted by their requests (Little's law wants every request's time in
    the system, not the worst endpoint's), else the step's worst endpoint's median."""
    for name, weighted in ((ENDPOINTS_CSV, True), (STEPS_CSV, False)):
        try:
            frame = pd.read_csv(capacity_dir / name)
        except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError):
            continue
        if not {"offered_rps", "p50_ms"} <= set(frame.columns):
            continue
        offered = pd.to_numeric(frame["offered_rps"], errors="coerce")
        below = frame[offered <= rate * 1.0001]
        if below.empty:
            continue
        step = below[offered[below.index] == offered[below.index].max()]
        p50 = pd.to_numeric(step["p50_ms"], errors="coerce")
        if weighted and "requests" in step:
            weights = pd.to_numeric(step["requests"], errors="coerce").where(p50.notna()).fillna(0)
            if weights.sum() > 0:
                return float((p50.fillna(0) * weights).sum() / weights.sum()) / 1000.0
        if p50.notna().any():
            return float(p50.dropna().iloc[-1]) / 1000.0
    return None


@dataclass(frozen=True)
class Load:
    rate: float | None  # what the proof loads at (None: no proof)
    flight: InFlight
    source: str  # where the rate came from


def load_for(settings: SizeTable, rows: list[SummaryRow], run: RunDir, design: str) -> Load:
    """The stated rate, else the measured capacity; in flight from the stated concurrency,
    else Little's law at that rate and its measured latency (or [size] latency_ms)."""
    measured = row_value(rows, design, "capacity", "capacity_rps")
    rate, source = settings.rate, "[size] rate"
    if rate is None and measured:
        rate, source = measured, "the measured capacity"
    first = row_value(rows, design, "capacity", "knee_rps")
    if rate is None and measured == 0 and first:
        # it missed the objective even at the search's first step: the lowest rate measured
        rate = first
        source = (
            f"the capacity search's first step (capacity 0: {design} missed its objective there)"
        )
    if settings.concurrency is not None:
        return Load(rate, in_flight(None, None, settings.concurrency), source)
    if rate is None:
        raise FailedWithResults(
            PHASE,
            f"no rate to size {design} for: the run has no capacity figure (run the capacity "
            "phase first) and [size] states neither rate nor concurrency",
        )
    if settings.latency_ms is not None:
        latency = settings.latency_ms / 1000.0
    else:
        found = latency_at(run.root / design / "capacity", rate)
        if found is None:
            raise FailedWithResults(
                PHASE,
                f"no latency at {rate:g} req/s for {design}: set [size] latency_ms or "
                "concurrency, or run the capacity phase first",
            )
        latency = found
    return Load(rate, in_flight(rate, latency, None), source)


def why_not_proven(settings: SizeTable, target: TargetSpec, rate: float | None) -> str:
    """'' when the proof can run, else why not (one line); the limit is chosen by limiter()."""
    if settings.prove is False:
        return "[size] prove = false"
    if not target.chat_api and target.scenario is None:
        return (
            f"target {target.name} has no scenario (locustfile) for the open-model load, and "
            "chat_api = false"
        )
    if rate is None:
        return "no rate to load at ([size] states a concurrency only: add a rate)"
    found = limiter(settings)
    return found if isinstance(found, str) else ""


def limiter(settings: SizeTable) -> Limiter | str:
    """The proof's kernel limit ([size] runtime: auto, docker or cgroup), else why none."""
    runtime = settings.runtime or "auto"
    docker_reason = detect_daemon() if runtime != "cgroup" else "[size] runtime = cgroup"
    cgroup = detect() if runtime != "docker" else "[size] runtime = docker"
    return choose_limiter(runtime, docker_reason, cgroup)


def run_size(
    run: RunDir, design: str, cfg: Config, *, progress: ProgressFn | None = None
) -> list[SummaryRow]:
    """Size `design` from the run's figures, prove it; the phase's summary rows."""
    out = run.phase_dir(design, PHASE)
    target = cfg.target(design)
    settings = settings_for(cfg, target)
    rows = run.read_summary()
    points = probe_points(rows, design)
    if not points:
        raise FailedWithResults(
            PHASE, f"no probe figures for {design}: the probe phase must run before size"
        )
    max_units = settings.max_units or int(max(p.size for p in points))
    load = load_for(settings, rows, run, design)
    workers = settings.workers or 1
    if workers > 1 and not target.takes_workers:
        raise FailedWithResults(
            PHASE, f"[size] workers = {workers}, but target {design} has no {{workers}} placeholder"
        )
    headroom = DEFAULT_HEADROOM if settings.headroom is None else settings.headroom

    seeded, idle_data = out / "data" / "seed", out / "data" / "idle"
    seed_store(target, seeded, cfg.seed, out / "logs")
    if idle_data.exists():
        shutil.rmtree(idle_data)
    shutil.copytree(seeded, idle_data)
    idle = measure_idle(cfg, target, idle_data, out / "idle-run", max_units)
    sizing = size_container(
        workers=workers,
        idle_rss_bytes=idle.idle_rss_bytes,
        data_growth_bytes=idle.data_growth_bytes,
        peak=peak_at_units(points, max_units),
        flight=load.flight,
        max_units=max_units,
        headroom=headroom,
        retained_rss_bytes=idle.retained_rss_bytes,
    )

    reason = why_not_proven(settings, target, load.rate)
    proofs: list[Proof] = []
    if not reason:
        chosen = limiter(settings)
        assert not isinstance(chosen, str)
        for label, limit in (
            ("limit", sizing.limit_bytes),
            ("60pct", int(sizing.limit_bytes * LOW_LIMIT_FRACTION)),
        ):
            proofs.append(
                prove(
                    cfg,
                    target,
                    chosen,
                    label=label,
                    limit_bytes=limit,
                    rate=float(load.rate or 0.0),
                    workers=workers,
                    max_units=max_units,
                    proof_s=settings.proof_s or DEFAULT_PROOF_S,
                    seeded=seeded,
                    out=out / f"proof-{label}",
                    progress=progress,
                )
            )
    summary = sizing_rows(design, sizing, proofs, load.rate)
    summary.append(SummaryRow(design, PHASE, "size_proven", float(bool(proofs)), "count"))
    write_json_atomic(
        out / SIZING_JSON,
        {
            **to_json(sizing),
            "design": design,
            "rate_rps": load.rate,
            "rate_source": load.source,
            "data_note": idle.data_note,
            "retained_note": idle.retained_note,
            "not_proven": reason,
            "proofs": [_proof_json(p) for p in proofs],
        },
    )
    at_limit = next((p for p in proofs if p.label == "limit"), None)
    if at_limit is not None and not at_limit.held:
        raise FailedWithResults(PHASE, _not_held(at_limit), summary)
    return summary


def _proof_json(proof: Proof) -> dict[str, Any]:
    data = asdict(proof)
    for key, value in data.items():
        if isinstance(value, float) and math.isnan(value):
            data[key] = None
    data["failure_ratio"] = None if math.isnan(proof.failure_ratio) else proof.failure_ratio
    data["held"] = proof.held
    return data


def _not_held(proof: Proof) -> str:
    what = [f"{proof.oom_kills} OOM kill(s)"] if proof.oom_kills else []
    if proof.app_exit is not None:
        what.append(f"the app exited with status {proof.app_exit}")
    if proof.requests and proof.failure_ratio > 0.01:
        what.append(f"{proof.failure_ratio:.1%} of {proof.requests} requests failed")
    if proof.problem:
        what.append(proof.problem)
    return "the recommended limit did not hold: " + ("; ".join(what) or "no request was answered")
