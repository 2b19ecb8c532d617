"""The profile phase: the app under memray while a short Locust run drives it.

1. Seed the full configured data set into ``<design>/profile/data`` (whales included: the naive
   design's worst case is what the profile is for).
2. Start the stack with the app under ``memray run --trace-python-allocators`` (not aggregated,
   so ``memray stats`` and allocation records work); the capture is ``<design>/profile/memray.bin``.
   The app is started without ``--probe``: memray and tracemalloc never share a process.
3. Drive it with the load phase's scenario and users for ``profile_duration_s``.
4. Stop the app with SIGINT (ProcessGroup's first signal), so uvicorn shuts down cleanly and
   memray finishes the capture; the upstream is stopped after it.
5. Read the capture (harness.sampling.memray_capture; `read_profile`, which `harness loadtest`
   runs on a thread beside the probe, see harness.phases.orchestration): ``flamegraph.html``
   (high-water mark), ``memray_stats.json``, ``top_sites.csv`` (top sites at the high-water
   mark and by bytes allocated) and the summary rows heap_peak_bytes, bytes_allocated,
   allocations, requests and bytes_allocated_per_request (bytes allocated / requests Locust
   completed in this phase).

memray slows a request-heavy server several times over: latency and throughput from this phase
mean nothing and are not reported; the load phase owns them.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness._errors import PhaseFailed
from harness.analysis import profile as analysis
from harness.config import Config
from harness.load.locust_runner import LocustResult, run_locust
from harness.phases import ProgressFn, no_progress
from harness.phases.server_errors import describe, record_server_errors
from harness.results import SCHEMA_VERSION, RunDir, SummaryRow, write_json_atomic
from harness.sampling.memray_capture import read_capture
from harness.stack.processes import ProcessGroup
from harness.stack.targets import running_stack, seed_store

PHASE = "profile"
CAPTURE = "memray.bin"
FLAMEGRAPH = "flamegraph.html"
TOP_SITES_CSV = "top_sites.csv"
TIMINGS_JSON = "profile_timings.json"
APP_STOP_TIMEOUT_S = 60.0  # SIGINT grace: uvicorn drains, memray writes the capture's trailer


@dataclass(frozen=True)
class Captured:
    """A finished memray capture of `design`, not yet read (`read_profile`)."""

    design: str
    phase_dir: Path
    capture: Path
    locust: LocustResult
    timings: dict[str, float]


def run_profile(
    run: RunDir, design: str, cfg: Config, *, progress: ProgressFn | None = None
) -> list[SummaryRow]:
    """Profile `design` under memray; writes <design>/profile/* and returns the summary rows."""
    return read_profile(capture_profile(run, design, cfg, progress=progress))


def capture_profile(
    run: RunDir, design: str, cfg: Config, *, progress: ProgressFn | None = None
) -> Captured:
    """Steps 1-4: the app under memray while Locust drives it, stopped cleanly."""
    report = progress or no_progress
    phase_dir = run.phase_dir(design, PHASE)
    data_dir = phase_dir / "data"
    log_dir = phase_dir / "logs"
    capture = phase_dir / CAPTURE
    timings: dict[str, float] = {}

    t = time.monotonic()
    report(0, 1, "seeding")
    _fresh(data_dir)
    manifest = data_dir / "manifest.json"
    seed_store(cfg.target(design), data_dir, cfg.seed, log_dir)
    timings["seed_s"] = time.monotonic() - t

    t = time.monotonic()
    with running_stack(
        cfg.target(design),
        data_dir,
        log_dir,
        cfg.upstream,
        mode="memray",
        capture=capture,
        phase=PHASE,
    ) as stack:
        timings["start_s"] = time.monotonic() - t
        t = time.monotonic()

        def app_gone() -> str:
            code = stack.app.poll()
            return "" if code is None else f"the app exited with status {code}"

        result = run_locust(
            stack.base_url,
            cfg.profile.scenario,
            cfg.profile.users,
            cfg.profile.spawn_rate,
            cfg.profile.profile_duration_s,
            phase_dir,
            manifest,
            csv_prefix="locust",
            abort_if=app_gone,
            progress=report,
            log_dir=log_dir,
        )
        timings["locust_s"] = time.monotonic() - t
        t = time.monotonic()
        report(1, 1, "stopping the app (memray finishes its capture)")
        app_code = stack.app.stop(timeout=APP_STOP_TIMEOUT_S)
        timings["stop_s"] = time.monotonic() - t
    if result.crashed or result.timed_out or result.aborted:
        raise PhaseFailed(PHASE, result.problem())
    if app_code != 0:
        raise PhaseFailed(
            PHASE,
            f"the app under memray exited with status {app_code} (capture may be unfinished):\n"
            f"{stack.app.stderr_tail()}",
        )
    if result.requests == 0:
        raise PhaseFailed(PHASE, "Locust completed no request against the app under memray")
    exceptions = record_server_errors(
        phase_dir, requests=result.requests, failures=result.failures, log_dir=log_dir
    )
    if result.failures >= result.requests:
        # Nothing was served: the capture profiles error handling, not the service.
        said = describe(
            exceptions, requests=result.requests, failures=result.failures, phase_dir=phase_dir
        )
        raise PhaseFailed(PHASE, f"every request failed ({result.failures:,})\n{said}")
    return Captured(design, phase_dir, capture, result, timings)


def read_profile(
    captured: Captured, on_readers: Callable[[ProcessGroup], None] | None = None
) -> list[SummaryRow]:
    """Step 5: read the capture; writes the flamegraph, the stats and the sites, returns the
    summary rows. It needs no quiet machine (`harness loadtest` runs it beside the probe);
    on_readers gets the reader processes' group, so that Ctrl-C can stop them from elsewhere."""
    phase_dir, result = captured.phase_dir, captured.locust
    timings = dict(captured.timings)
    t = time.monotonic()
    summary = read_capture(
        captured.capture, phase_dir, flamegraph=phase_dir / FLAMEGRAPH, on_readers=on_readers
    )
    timings["read_s"] = time.monotonic() - t
    table = analysis.sites_table(summary.hwm_sites, summary.allocated_sites)
    table.to_csv(phase_dir / TOP_SITES_CSV, index=False)
    write_json_atomic(
        phase_dir / TIMINGS_JSON,
        {
            "schema_version": SCHEMA_VERSION,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
            "read_timings_s": {k: round(v, 3) for k, v in summary.timings.items()},
            "capture_bytes": summary.capture_bytes,
            "locust": {
                "exit_code": result.exit_code,
                "requests": result.requests,
                "failures": result.failures,
                "duration_s": result.duration_s,
            },
        },
    )
    return analysis.summary_rows(
        captured.design,
        heap_peak_bytes=summary.heap_peak_bytes,
        bytes_allocated=summary.bytes_allocated,
        allocations=summary.allocations,
        requests=result.requests,
    )


def _fresh(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
