"""`harness gate`: per-request memory (the probe phase) against a committed baseline.

    harness gate [--config loadtest.toml] [--baseline PATH] [--run RUN_DIR]
                 [--update-baseline] [--out DIR] [--jobs N]

Without --run it creates its own run directory under run.out (command "gate") and runs the
probe phase on every configured design with the [gate] history_lens/reps/warmup; with --run it
reads that run's summary.json. The designs are probed in parallel (--jobs), each in its own
processes, so a design's figures do not depend on the others. Writes gate.md, gate-junit.xml
and gate.json into the run directory. Exit 0 pass, 1 regression (or the probe phase failed),
2 error (no baseline, schema mismatch, series of the baseline not measured, bad config).

The work is harness.gate._run.run_gate; this module only parses the arguments.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli._common import positive_int


class GateCommand:
    name = "gate"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.epilog = (
            "Exit status: 0 pass, 1 regression (or the probe failed), 2 error (no baseline, "
            "schema mismatch, a baseline series not measured, bad config). REFAPP_* variables "
            "of this process are passed to the reference app (tests of the gate: "
            "REFAPP_CONTEXT_WINDOW=200 is a deliberate regression). See docs/gate.md."
        )
        parser.add_argument(
            "--config",
            type=Path,
            default=Path("loadtest.toml"),
            help="TOML config with the [gate] table (default: %(default)s)",
        )
        parser.add_argument(
            "--baseline", type=Path, help="baseline file (default: gate.baseline of the config)"
        )
        parser.add_argument(
            "--run",
            type=Path,
            metavar="RUN_DIR",
            help="judge an existing run directory instead of running the probe",
        )
        parser.add_argument(
            "--update-baseline",
            action="store_true",
            help="write the measured figures as the new baseline (exit 0 unless the probe fails)",
        )
        parser.add_argument(
            "--out", type=Path, help="where the gate's run directory goes (default: run.out)"
        )
        parser.add_argument(
            "--jobs",
            type=positive_int,
            metavar="N",
            help="designs probed at the same time (default: all of them, at most the CPU count)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from harness.gate._run import GateOptions, run_gate

        return run_gate(
            GateOptions(
                config=args.config,
                baseline=args.baseline,
                run=args.run,
                update_baseline=args.update_baseline,
                out=args.out,
                jobs=args.jobs,
            )
        )


COMMAND = GateCommand()
