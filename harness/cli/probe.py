"""`harness probe`: per-request tracemalloc figures across history lengths, one request at a time.

    harness probe [--config loadtest.toml] [--design D]... [--history-lens 0,100,1000,5000]
                  [--reps 5] [--warmup 2] [--out DIR]

Creates a run directory under --out (default run.out) with run.json (command "probe"; the
probe settings are recorded as the profile's probe_history_lens/probe_reps/probe_warmup) and
summary.json, runs the probe phase on each design (default: run.designs), points <out>/latest
at it, and prints alloc_peak_bytes per (design, endpoint, history_len) and the slopes.
Environment variables named REFAPP_* reach the app (as for every child process) and are recorded
in run.json (config.app_env). Exit 0 when every design was probed, 1 when a phase failed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from harness import config as config_mod
from harness._clock import now_iso
from harness._errors import EXIT_FAILED, EXIT_OK, HarnessError
from harness.cli._common import add_config_arguments, int_list, positive_int
from harness.phases import ProgressFn
from harness.phases._probe_tables import peak_table, slope_table
from harness.results import RunDir, SummaryRow
from harness.stack.processes import sigterm_as_interrupt

APP_ENV_PREFIX = "REFAPP_"


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


class ProbeCommand:
    name = "probe"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument(
            "--history-lens",
            type=int_list,
            metavar="N,N,...",
            help="history lengths to probe (default: the profile's probe_history_lens)",
        )
        parser.add_argument(
            "--reps", type=positive_int, help="measured requests per point (default: probe_reps)"
        )
        parser.add_argument(
            "--warmup",
            type=_non_negative_int,
            help="discarded requests before them (default: probe_warmup)",
        )

    def run(self, args: argparse.Namespace) -> int:
        overrides: dict[str, Any] = {
            "designs": args.designs,
            "out": args.out,
            "probe_history_lens": tuple(args.history_lens) if args.history_lens else None,
            "probe_reps": args.reps,
            "probe_warmup": args.warmup,
        }
        cfg = config_mod.load(args.config, overrides)
        console = Console(highlight=False)
        app_env = {k: v for k, v in os.environ.items() if k.startswith(APP_ENV_PREFIX)}
        run = RunDir.create(Path(cfg.out))
        run.start_run("probe", {**cfg.to_json(), "app_env": app_env})
        console.print(f"run directory {run.root}", markup=False)
        rows: list[SummaryRow] = []
        status = "passed"
        with sigterm_as_interrupt():
            for design in cfg.designs:
                try:
                    rows += _probe_design(run, design, cfg, app_env, console)
                except HarnessError as exc:
                    console.print(f"probe {design}: failed: {exc}", markup=False)
                    status = "failed"
        run.finish_run(status)
        run.point_latest()
        if rows:
            console.print(peak_table(rows))
            console.print(slope_table(rows))
        console.print(f"summary: {run.summary_json}", markup=False)
        return EXIT_OK if status == "passed" else EXIT_FAILED


COMMAND = ProbeCommand()


def _probe_design(
    run: RunDir,
    design: str,
    cfg: config_mod.Config,
    app_env: Mapping[str, str],
    console: Console,
) -> list[SummaryRow]:
    from harness.phases.probe import probe_sizes, run_probe  # httpx, pandas: only when probing

    p = cfg.profile
    sizes = probe_sizes(cfg.target(design), p.probe_history_lens)
    console.print(
        f"probe {design}: sizes {sizes}, reps {p.probe_reps}, warmup {p.probe_warmup}",
        markup=False,
    )
    started = now_iso()
    t0 = time.monotonic()
    try:
        with _progress(console, design) as progress:
            rows = run_probe(
                run,
                design,
                cfg,
                history_lens=p.probe_history_lens,
                reps=p.probe_reps,
                warmup=p.probe_warmup,
                env=dict(app_env) or None,
                progress=progress,
            )
    except KeyboardInterrupt:
        run.record_phase(design, "probe", "interrupted", started, time.monotonic() - t0)
        run.finish_run("interrupted")
        raise
    except HarnessError as exc:
        run.record_phase(design, "probe", "failed", started, time.monotonic() - t0, str(exc))
        raise
    duration = time.monotonic() - t0
    run.add_summary(rows)
    run.record_phase(design, "probe", "passed", started, duration)
    console.print(f"probe {design}: {len(rows)} figures in {duration:.1f} s", markup=False)
    return rows


@contextmanager
def _progress(console: Console, design: str) -> Iterator[ProgressFn | None]:
    """A rich progress bar on a terminal; nothing (None) otherwise."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"probe {design}", total=None)

        def update(done: float, total: float, text: str) -> None:
            bar.update(task, completed=done, total=total, description=f"{design}: {text}")

        yield update
