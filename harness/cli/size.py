"""`harness size`: a memory request and limit per container, proven under a kernel limit.

Runs the phases the sizing needs on every design (capacity, unless every
design states a rate or a concurrency; probe; size) in one run directory, with the report,
then prints each design's recommendation: the terms, a Kubernetes `resources:` block, the
`docker run --memory` flag, the memory per added worker and the proof (docs/sizing.md).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

from harness import config as config_mod
from harness._errors import UsageError
from harness.analysis.sizing import RUNTIMES, SizeTable
from harness.cli._common import add_config_arguments, positive_float, positive_int
from harness.console import Console
from harness.phases.orchestration import Loadtest
from harness.phases.size import SIZING_JSON, settings_for
from harness.results import read_json
from harness.sizing.text import sizing_lines

FLAGS = (
    ("--workers", "workers", positive_int, "app worker processes per container"),
    ("--rate", "rate", positive_float, "req/s to size for (default: the measured capacity)"),
    ("--concurrency", "concurrency", positive_float, "requests in flight (else rate x latency)"),
    ("--latency-ms", "latency_ms", positive_float, "latency for Little's law (default: measured)"),
    ("--max-units", "max_units", positive_int, "the largest data size (default: the probe's)"),
    ("--headroom", "headroom", float, "a fraction over the sum (default 0.25)"),
    ("--proof-s", "proof_s", positive_float, "seconds of load per proof run (default 30)"),
)


class SizeCommand:
    name = "size"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_config_arguments(parser)
        parser.add_argument("--profile", metavar="NAME", help="a [profiles.*] table (quick, full)")
        for flag, _key, kind, text in FLAGS:
            parser.add_argument(flag, type=kind, help=text)
        parser.add_argument(
            "--no-proof", action="store_true", help="size only: no run under a kernel limit"
        )
        parser.add_argument(
            "--runtime",
            choices=RUNTIMES,
            help="the proof's limit: docker where a daemon answers, else a cgroup (auto)",
        )

    def run(self, args: argparse.Namespace) -> int:
        if args.headroom is not None and not 0 <= args.headroom <= 10:
            raise UsageError(f"--headroom: a fraction (0.25 = 25%), got {args.headroom:g}")
        table = SizeTable(**{key: getattr(args, key) for _f, key, _k, _t in FLAGS})
        table = replace(table, runtime=args.runtime)
        if args.no_proof:
            table = replace(table, prove=False)
        overrides = {
            "profile": args.profile,
            "designs": args.designs,
            "out": args.out,
            "size": table,
        }
        cfg = config_mod.load(args.config, overrides)
        stated = all(
            (s := settings_for(cfg, cfg.target(d))).rate is not None or s.concurrency is not None
            for d in cfg.designs
        )
        phases = ("probe", "size") if stated else ("capacity", "probe", "size")
        cfg = replace(cfg, profile=replace(cfg.profile, phases=phases))
        console = Console()
        loadtest = Loadtest(cfg, console, shlex.join(["harness", "size", *sys.argv[2:]]))
        code = loadtest.execute()
        if loadtest.run_dir is not None:
            for design in cfg.designs:
                path = loadtest.run.phase_dir(design, "size") / SIZING_JSON
                if path.exists():
                    for line in sizing_lines(read_json(path)):
                        console.info(line)
        return code


COMMAND = SizeCommand()
