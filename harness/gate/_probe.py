"""The gate's probe runs: every design probed in its own processes, `jobs` at a time.

`probe_in_parallel(run, cfg, designs, app_env, console, jobs)` is what `harness gate` runs
before it compares; a design's figures do not depend on what else runs (tracemalloc counts only
its own process). Interrupting stops every probe at its next request and records the run as
interrupted.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress

from harness import config as config_mod
from harness._clock import now_iso
from harness.phases import ProgressFn
from harness.results import RunDir, SummaryRow

__all__ = ["probe_in_parallel", "probe_one"]


def gate_sizes(cfg: config_mod.Config, designs: Sequence[str]) -> list[int]:
    """Every size the gate probes: [gate] history_lens, or a target recipe's own sizes."""
    from harness.phases.probe import probe_sizes

    sizes: set[int] = set()
    for design in designs:
        sizes.update(probe_sizes(cfg.target(design), cfg.gate.history_lens))
    return sorted(sizes)


class _Cancelled(KeyboardInterrupt):
    """Raised inside a probe thread (from its progress callback) once the gate is interrupted;
    a KeyboardInterrupt, so the probe's process group stops its processes at once."""


@dataclasses.dataclass
class _Outcome:
    design: str
    started_at: str
    duration_s: float = 0.0
    rows: list[SummaryRow] = dataclasses.field(default_factory=list)
    error: BaseException | None = None


def probe_one(
    run: RunDir,
    design: str,
    cfg: config_mod.Config,
    app_env: Mapping[str, str],
    progress: ProgressFn,
    concurrent: int = 1,
) -> _Outcome:
    from harness.phases import FailedWithResults
    from harness.phases.probe import run_probe  # pulls in httpx, pandas, processes

    outcome = _Outcome(design, now_iso())
    t0 = time.monotonic()
    try:
        outcome.rows = run_probe(
            run,
            design,
            cfg,
            history_lens=cfg.gate.history_lens,
            reps=cfg.gate.reps,
            warmup=cfg.gate.warmup,
            env=dict(app_env) or None,
            progress=progress,
            leak_requests=cfg.gate.leak_requests,
            processes=cfg.gate.processes,
            leak_processes=cfg.gate.leak_processes,
            concurrent=concurrent,
        )
    except FailedWithResults as exc:
        outcome.rows, outcome.error = list(exc.rows), exc
    except BaseException as exc:  # recorded by the caller, in design order
        outcome.error = exc
    outcome.duration_s = time.monotonic() - t0
    return outcome


def probe_in_parallel(
    run: RunDir,
    cfg: config_mod.Config,
    designs: Sequence[str],
    app_env: Mapping[str, str],
    console: Console,
    jobs: int,
) -> list[SummaryRow]:
    """Probe every design, `jobs` at a time (each in its own processes: a design's figures do
    not depend on what else runs), then record the phases in design order. With `jobs` > 1,
    a design's server processes also run at once: its peak-only processes then use the core
    its leak runs leave idle once the shorter designs are done (`make gate`: the naive design's
    leak runs are the longest part); `jobs` = 1 runs one server process at a time."""
    run.start_run("gate", {**cfg.to_json(), "app_env": dict(app_env)})
    g = cfg.gate
    console.print(
        f"probe {', '.join(designs)}: sizes {gate_sizes(cfg, designs)}, reps {g.reps}, "
        f"warmup {g.warmup}, {g.processes} processes each ({g.leak_processes} with leak runs), "
        f"{jobs} designs at a time, {'their processes at once' if jobs > 1 else 'one by one'}",
        markup=False,
        highlight=False,
    )
    cancel = threading.Event()
    concurrent = g.processes if jobs > 1 else 1
    with _progress(console) as bar, ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(probe_one, run, d, cfg, app_env, _callback(bar, d, cancel), concurrent)
            for d in designs
        ]
        try:
            while not all(f.done() for f in futures):
                wait(futures, timeout=0.5)
        except KeyboardInterrupt:
            cancel.set()  # every probe stops at its next request; wait for their teardown
            for f in futures:
                f.cancel()
            wait(futures)
            for outcome in (f.result() for f in futures if not f.cancelled()):
                run.record_phase(
                    outcome.design, "probe", "interrupted", outcome.started_at, outcome.duration_s
                )
            run.finish_run("interrupted")
            raise
    outcomes = [f.result() for f in futures]
    rows: list[SummaryRow] = []
    for outcome in outcomes:
        if outcome.rows:
            run.add_summary(outcome.rows)
        status = "passed" if outcome.error is None else "failed"
        detail = "" if outcome.error is None else str(outcome.error)
        run.record_phase(
            outcome.design, "probe", status, outcome.started_at, outcome.duration_s, detail
        )
        console.print(
            f"probe {outcome.design}: {status}, {len(outcome.rows)} figures "
            f"in {outcome.duration_s:.1f} s",
            markup=False,
            highlight=False,
        )
        rows += outcome.rows
    errors = [o.error for o in outcomes if o.error is not None]
    if errors:
        run.finish_run("failed")
        raise errors[0]
    return rows


def _callback(bar: Progress | None, design: str, cancel: threading.Event) -> ProgressFn:
    task = bar.add_task(f"probe {design}", total=None) if bar is not None else None

    def update(done: float, total: float, text: str) -> None:
        if cancel.is_set():
            raise _Cancelled
        if bar is not None and task is not None:
            bar.update(task, completed=done, total=total, description=f"{design}: {text}")

    return update


@contextmanager
def _progress(console: Console) -> Iterator[Progress | None]:
    """A rich progress display on a terminal; None otherwise."""
    if not console.is_terminal:
        yield None
        return
    with Progress(console=console, transient=True) as bar:
        yield bar
