"""`harness loadtest`: every configured phase on every design, one run directory, a table.

The command line only: parsing and the config; the run itself is harness.phases.orchestration.

Per design: seed a fresh store into `<run>/<design>/data`, then the profile's phases in
order; integrity always runs right after load, on the same data and the same server. A
phase that fails is recorded (partial results kept) and the run goes on with the next
phase or design; the exit status is then 1. Ctrl-C or SIGTERM stops every child process
within seconds and leaves run.json with status "interrupted" (exit 130).

Phases owned by other modules (profile, probe) and the report are imported lazily; when a
module is not there, the phase is recorded as skipped with the reason.

Designs are targets (`[[target]]` tables, or `--target FILE`; the reference designs by
default): a phase that does not apply to a target (the probe without the chat API, memray
without a Python command) is recorded as skipped, "not applicable". The ceiling phase, when
the profile lists it, runs once before the designs (design and phase "ceiling": the capacity
search against the health path); each design's capacity rows then carry
`capacity_ceiling_fraction`, its load rows `rps_ceiling_fraction`.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

from harness import config as config_mod
from harness.cli._common import (
    add_config_arguments,
    phase_list,
    positive_float,
    positive_int,
)
from harness.config import Config
from harness.console import Console
from harness.phases.orchestration import (
    EXIT_INTERRUPTED,
    Loadtest,
    Outcome,
    interrupt_once,
    phase_plan,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "Loadtest",
    "LoadtestCommand",
    "Outcome",
    "interrupt_once",
    "phase_plan",
]


def resolve_config(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {
        "profile": args.profile,
        "designs": args.designs,
        "out": args.out,
        "users": args.users,
        "spawn_rate": args.spawn_rate,
        "duration_s": args.duration,
        "load_workers": args.load_workers,
        "app_workers": args.app_workers,
        "ceiling_duration_s": args.ceiling_duration,
        "phases": tuple(args.phases) if args.phases else None,
        "target_files": args.targets,
        "locust_master": args.locust_master,
        "expect_workers": args.expect_workers,
        "master_bind": args.master_bind,
        "server_host": args.server_host,
    }
    # Unknown designs, targets and conflicting flags are ConfigErrors of config.load.
    return config_mod.load(args.config, overrides)


def command_line(args: argparse.Namespace) -> str:
    """The command as run.json records it (rebuilt from the parsed flags)."""
    words = ["harness", "loadtest"]
    for flag, value in (
        ("--config", args.config),
        ("--profile", args.profile),
        ("--out", args.out),
        ("--users", args.users),
        ("--spawn-rate", args.spawn_rate),
        ("--duration", args.duration),
        ("--load-workers", args.load_workers),
        ("--app-workers", args.app_workers),
        ("--ceiling-duration", args.ceiling_duration),
        ("--phases", ",".join(args.phases) if args.phases else None),
        ("--expect-workers", args.expect_workers),
        ("--master-bind", args.master_bind),
        ("--server-host", args.server_host),
    ):
        if value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.locust_master:
        words.append("--locust-master")
    for target in args.targets or []:
        words += ["--target", str(target)]
    for design in args.designs or []:
        words += ["--design", design]
    return shlex.join(words)


class LoadtestCommand:
    name = "loadtest"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument(
            "--profile", metavar="NAME", help="a [profiles.*] table: quick (default) or full"
        )
        parser.add_argument("--users", type=positive_int, metavar="N", help="peak Locust users")
        parser.add_argument(
            "--spawn-rate", type=positive_float, metavar="R", help="users started per second"
        )
        parser.add_argument(
            "--duration", type=positive_float, metavar="S", help="load phase length in seconds"
        )
        parser.add_argument(
            "--load-workers",
            type=positive_int,
            metavar="N",
            help="Locust processes on this machine (locust --processes N; default: the "
            "profile's load_workers, 1)",
        )
        parser.add_argument(
            "--app-workers",
            type=positive_int,
            metavar="N",
            help="server processes in the load phase (the target's {workers}; the profile "
            "and probe phases always run one)",
        )
        parser.add_argument(
            "--phases",
            type=phase_list,
            metavar="P,P",
            help="the phases to run, comma-separated (default: the profile's phases; "
            "known: ceiling, load, profile, probe, integrity)",
        )
        parser.add_argument(
            "--ceiling-duration",
            type=positive_float,
            metavar="S",
            help="ceiling phase length in seconds (when the profile runs it)",
        )
        parser.add_argument(
            "--target",
            dest="targets",
            action="append",
            type=Path,
            metavar="FILE",
            help="a TOML file of [[target]] tables: run those services (repeatable)",
        )
        parser.add_argument(
            "--locust-master",
            action="store_true",
            help="run Locust as a master and wait for --expect-workers workers started "
            "elsewhere (locust -f - --worker --master-host <this host>)",
        )
        parser.add_argument(
            "--expect-workers",
            type=positive_int,
            metavar="K",
            help="with --locust-master: how many workers to wait for (default 1)",
        )
        parser.add_argument(
            "--master-bind",
            metavar="HOST[:PORT]",
            help="with --locust-master: where the master listens (default 127.0.0.1:5557; "
            "0.0.0.0 for workers on other machines)",
        )
        parser.add_argument(
            "--server-host",
            metavar="ADDR",
            help="with --locust-master: the address of this machine that the workers load "
            "the servers at (they listen on it; default 127.0.0.1)",
        )

    def run(self, args: argparse.Namespace) -> int:
        cfg = resolve_config(args)
        return Loadtest(cfg, Console(), command_line(args)).execute()


COMMAND = LoadtestCommand()
