"""`harness capacity`: the open-model capacity search alone, on every design (and the ceiling).

The same run directory, report and console table as `harness loadtest`, with the profile's
phases narrowed to `ceiling` (unless --no-ceiling) and `capacity` (docs/capacity.md).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from harness import config as config_mod
from harness.cli._common import add_config_arguments, positive_float, positive_int
from harness.console import Console
from harness.phases.orchestration import Loadtest


def workers_or_auto(text: str) -> int:
    """A count of processes, or `auto` (0: one per core)."""
    return 0 if text == "auto" else positive_int(text)


def command_line(args: argparse.Namespace) -> str:
    words = ["harness", "capacity", "--config", str(args.config)]
    for flag, value in (
        ("--profile", args.profile),
        ("--out", args.out),
        ("--step-s", args.step_s),
        ("--step-factor", args.step_factor),
        ("--max-steps", args.max_steps),
        ("--max-time", args.max_time),
        (
            "--ceiling-load-workers",
            "auto" if args.ceiling_load_workers == 0 else args.ceiling_load_workers,
        ),
        ("--ceiling-duration", args.ceiling_duration),
        ("--load-workers", args.load_workers),
        ("--app-workers", args.app_workers),
        ("--expect-workers", args.expect_workers),
        ("--master-bind", args.master_bind),
        ("--server-host", args.server_host),
    ):
        if value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.no_ceiling:
        words.append("--no-ceiling")
    if args.locust_master:
        words.append("--locust-master")
    for design in args.designs or []:
        words += ["--design", design]
    return shlex.join(words)


class CapacityCommand:
    name = "capacity"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument("--profile", metavar="NAME", help="a [profiles.*] table (quick, full)")
        parser.add_argument(
            "--no-ceiling", action="store_true", help="skip the ceiling's search (health path)"
        )
        parser.add_argument(
            "--step-s", type=positive_float, metavar="S", help="seconds per step of offered rate"
        )
        parser.add_argument(
            "--step-factor",
            type=positive_float,
            metavar="F",
            help="each step offers F times the rate of the last (> 1)",
        )
        parser.add_argument(
            "--max-steps", type=positive_int, metavar="N", help="steps per design at most"
        )
        parser.add_argument(
            "--max-time",
            type=positive_float,
            metavar="S",
            help="one design's search (staircase and the knee's refinement) at most S seconds",
        )
        parser.add_argument(
            "--ceiling-load-workers",
            type=workers_or_auto,
            metavar="N|auto",
            help="Locust processes for the ceiling's search (auto: one per core)",
        )
        parser.add_argument(
            "--ceiling-duration",
            type=positive_float,
            metavar="S",
            help="the ceiling's search, at most S seconds",
        )
        parser.add_argument(
            "--load-workers", type=positive_int, metavar="N", help="local Locust processes"
        )
        parser.add_argument(
            "--app-workers", type=positive_int, metavar="N", help="server processes"
        )
        parser.add_argument(
            "--locust-master",
            action="store_true",
            help="run Locust as a master for --expect-workers workers started elsewhere",
        )
        parser.add_argument("--expect-workers", type=positive_int, metavar="K")
        parser.add_argument("--master-bind", metavar="HOST[:PORT]")
        parser.add_argument("--server-host", metavar="ADDR")

    def run(self, args: argparse.Namespace) -> int:
        overrides: dict[str, Any] = {
            "profile": args.profile,
            "designs": args.designs,
            "out": args.out,
            "phases": ("capacity",) if args.no_ceiling else ("ceiling", "capacity"),
            "capacity_step_s": args.step_s,
            "capacity_step_factor": args.step_factor,
            "capacity_max_steps": args.max_steps,
            "capacity_max_s": args.max_time,
            "ceiling_load_workers": args.ceiling_load_workers,
            "ceiling_duration_s": args.ceiling_duration,
            "load_workers": args.load_workers,
            "app_workers": args.app_workers,
            "locust_master": args.locust_master,
            "expect_workers": args.expect_workers,
            "master_bind": args.master_bind,
            "server_host": args.server_host,
        }
        cfg = config_mod.load(args.config, overrides)
        return Loadtest(cfg, Console(), command_line(args)).execute()


COMMAND = CapacityCommand()
