"""`harness chaos`: SIGKILL the app mid-load, restart it, and count lost acknowledged writes."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness import config as config_mod
from harness._clock import now_iso
from harness._errors import EXIT_FAILED, EXIT_OK, UsageError
from harness.cli._common import add_config_arguments, positive_float, positive_int
from harness.phases.chaos import PHASE, TrialResult, run_chaos
from harness.results import RunDir
from harness.stack.processes import sigterm_as_interrupt
from harness.stack.targets import REFERENCE_DESIGNS


@dataclass(frozen=True)
class ChaosCommand:
    name: str = "chaos"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument("--trials", type=positive_int, default=10)
        parser.add_argument("--seed", type=int, default=1, help="seeds the kill moments")
        parser.add_argument(
            "--duration", type=positive_float, default=12.0, help="seconds of load per trial"
        )
        parser.add_argument("--users", type=positive_int, default=10, help="Locust users")

    def run(self, args: argparse.Namespace) -> int:
        cfg = config_mod.load(args.config, {"designs": args.designs, "out": args.out})
        unknown = [d for d in cfg.designs if d not in REFERENCE_DESIGNS]
        if unknown:
            raise UsageError(f"unknown design {unknown[0]!r} (known: naive, optimized)")
        run = RunDir.create(Path(cfg.out))
        run.start_run("chaos", {**cfg.to_json(), "trials": args.trials, "seed": args.seed})
        console = Console()
        console.print(f"chaos run: {run.root}")
        status = "passed"
        lost_total = 0
        current, started_at, started = "", now_iso(), time.monotonic()
        try:
            with sigterm_as_interrupt():
                for design in cfg.designs:
                    table = _trial_table(design)

                    def show(
                        result: TrialResult, table: Table = table, design: str = design
                    ) -> None:
                        _add_trial(table, result)
                        c = result.counts
                        console.print(
                            f"  {design} trial {result.trial}: killed at {result.kill_at_s:.1f} s,"
                            f" acknowledged {c.acknowledged}, lost {c.lost}"
                        )

                    started_at, started = now_iso(), time.monotonic()
                    current = design
                    results = run_chaos(
                        run,
                        design,
                        cfg,
                        trials=args.trials,
                        seed=args.seed,
                        duration_s=args.duration,
                        users=args.users,
                        on_trial=show,
                    )
                    lost = sum(r.counts.lost for r in results)
                    run.record_phase(
                        design,
                        PHASE,
                        "failed" if lost else "passed",
                        started_at,
                        time.monotonic() - started,
                        detail=f"{lost} acknowledged messages lost" if lost else "",
                    )
                    current = ""
                    _add_total(table, results)
                    console.print(table)
                    lost_total += sum(r.counts.lost for r in results)
        except KeyboardInterrupt:
            _record_stop(run, current, "interrupted", started_at, started, "interrupted")
            run.finish_run("interrupted")
            raise
        except BaseException as exc:
            # Every exit path ends the run's record: a failed trial leaves "failed", not
            # "running" (the error itself is reported by the CLI's error handling).
            _record_stop(run, current, "failed", started_at, started, str(exc))
            run.finish_run("failed")
            raise
        if lost_total:
            status = "failed"
        run.finish_run(status)
        console.print(f"run directory: {run.root}")
        return EXIT_FAILED if lost_total else EXIT_OK


def _record_stop(
    run: RunDir, design: str, status: str, started_at: str, started: float, detail: str
) -> None:
    if design:
        run.record_phase(
            design, PHASE, status, started_at, time.monotonic() - started, detail=detail
        )


def _trial_table(design: str) -> Table:
    table = Table(
        title=f"chaos: {design}",
        caption="acked: POST /chat exchanges the client saw succeed; "
        "expected/stored/lost/extra count messages (2 per exchange)",
    )
    for col in ("trial", "kill at", "restart", "acked", "expected", "stored", "lost", "extra"):
        table.add_column(col, justify="right")
    return table


def _add_trial(table: Table, r: TrialResult) -> None:
    c = r.counts
    table.add_row(
        str(r.trial),
        f"{r.kill_at_s:.1f} s",
        f"{r.restart_s:.1f} s",
        str(c.acknowledged),
        str(c.expected),
        str(c.stored),
        str(c.lost),
        str(c.unexpected),
    )


def _add_total(table: Table, results: list[TrialResult]) -> None:
    table.add_section()
    table.add_row(
        "total",
        "",
        "",
        str(sum(r.counts.acknowledged for r in results)),
        str(sum(r.counts.expected for r in results)),
        str(sum(r.counts.stored for r in results)),
        str(sum(r.counts.lost for r in results)),
        str(sum(r.counts.unexpected for r in results)),
    )


COMMAND = ChaosCommand()
