"""`harness compare RUN_A RUN_B [--out DIR]`: two runs side by side.

Writes compare.md, compare.html and figures/over_time_<design>.png into DIR (default:
RUN_B/compare-<run A's id>/): the absolute and percent change from A to B per headline metric
and design, then per design the load phase over time (RSS, p95 latency, time to first token,
requests/s, failed requests/s) with run A laid over run B.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._errors import EXIT_OK


class CompareCommand:
    name = "compare"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run_a", type=Path, metavar="RUN_A", help="the baseline run directory")
        parser.add_argument("run_b", type=Path, metavar="RUN_B", help="the run compared with it")
        parser.add_argument(
            "--out",
            type=Path,
            metavar="DIR",
            help="where the comparison goes (default: RUN_B/compare-<RUN_A id>/)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from harness.report import render_compare

        for path in render_compare(args.run_a, args.run_b, args.out):
            print(path)
        return EXIT_OK


COMMAND = CompareCommand()
