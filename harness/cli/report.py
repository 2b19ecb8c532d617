"""`harness report [RUN_DIR]`: render report.md, report.html and figures/*.png into RUN_DIR.

RUN_DIR defaults to reports/latest, the newest run of `make loadtest`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness._errors import EXIT_OK

DEFAULT_RUN_DIR = Path("reports/latest")


class ReportCommand:
    name = "report"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "run_dir",
            type=Path,
            nargs="?",
            default=DEFAULT_RUN_DIR,
            metavar="RUN_DIR",
            help="a run directory (default: %(default)s)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from harness.report import render_run

        written = render_run(args.run_dir)
        for path in written:
            if path.suffix in (".md", ".html"):
                print(path)
        figures = sum(1 for p in written if p.suffix == ".png")
        print(f"{figures} figures in {Path(args.run_dir) / 'figures'}")
        return EXIT_OK


COMMAND = ReportCommand()
