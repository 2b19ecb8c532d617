"""`harness history`: the trend page of many runs, ordered by commit.

    harness history DIR... [--out DIR] [--ledger FILE] [--repo DIR] [--command gate]
                    [--min-step 2%] [--config loadtest.toml]

Each DIR is a run directory or a folder holding run directories at any depth (reports/, or
CI artifacts downloaded into folders). Writes history.html (self-contained), history.md,
history.json and history-figures/*.png into --out (default: the first DIR when it is a folder
of runs, else the folder holding that run). Exit 0 when the page was written, 2 for a usage
error or when no run has probe figures.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from harness import config as config_mod
from harness._errors import EXIT_OK, UsageError
from harness.gate import compile_thresholds, parse_threshold


class HistoryCommand:
    name = "history"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.epilog = "See docs/history.md for the page, the step method and the creep check."
        parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR",
                            help="run directories, or folders of them (e.g. reports)")  # fmt: skip
        parser.add_argument("--out", type=Path, help="where the page goes (see above)")
        parser.add_argument(
            "--ledger",
            type=Path,
            help="baseline ledger to add and check creep against "
            "(default: [gate] ledger of --config, when that file exists)",
        )
        parser.add_argument(
            "--no-ledger", action="store_true", help="ignore the ledger even if it exists"
        )
        parser.add_argument(
            "--repo",
            type=Path,
            default=Path("."),
            help="git repository that orders the commits (default: %(default)s; "
            "without git the runs' times order them)",
        )
        parser.add_argument(
            "--command",
            dest="commands",
            action="append",
            default=[],
            metavar="NAME",
            help="only runs of this harness command (gate, loadtest); repeatable",
        )
        parser.add_argument(
            "--min-step",
            default="2%",
            metavar="PCT",
            help="smallest step reported, relative to the series' level (default: %(default)s)",
        )
        parser.add_argument(
            "--config",
            type=Path,
            default=Path("loadtest.toml"),
            help="config for the ledger path and creep settings, if it exists "
            "(default: %(default)s)",
        )

    def run(self, args: argparse.Namespace) -> int:
        from harness.history import CreepSettings, build_history, ledger_path, render_history

        for d in args.dirs:
            if not d.is_dir():
                raise UsageError(f"{d}: not a directory")
        rel_step = _percent(args.min_step)
        creep = CreepSettings()
        thresholds = None
        ledger: Path | None = args.ledger
        if args.config.exists():
            cfg = config_mod.load(args.config)
            thresholds = compile_thresholds(cfg.gate.thresholds, cfg.gate.default, cfg.path)
            creep = CreepSettings(cfg.gate.creep_window, parse_threshold(cfg.gate.creep_budget))
            if ledger is None:
                ledger = ledger_path(Path(cfg.gate.baseline), cfg.gate.ledger)
                ledger = ledger if ledger.exists() else None
        if args.no_ledger:
            ledger = None
        elif ledger is not None and not ledger.is_file():
            raise UsageError(f"{ledger}: no such ledger file")
        repo = args.repo if (args.repo / ".git").exists() else None
        history = build_history(
            args.dirs,
            ledger=ledger,
            repo=repo,
            rel_step=rel_step,
            commands=args.commands,
            creep=creep,
            thresholds=thresholds,
        )
        for line in history.skipped:
            print(f"skipped {line}", file=sys.stderr)
        if not history.series:
            raise UsageError(
                f"no probe figures in {', '.join(map(str, args.dirs))} "
                "(run `make gate` or `make loadtest` first)"
            )
        out = args.out or default_out(args.dirs[0])
        written = render_history(history, out)
        steps = sum(len(t.steps) for t in history.series)
        print(
            f"{len(history.commits)} commits, {history.runs} runs, {history.baselines} ledger "
            f"baselines, {len(history.series)} series, {steps} steps, "
            f"{len(history.creep)} creep findings"
        )
        for finding in history.creep:
            print(f"warning: {finding.message()}")
        print(f"  {written[-3]}\n  {written[-2]}\n  {written[-1]}")
        return EXIT_OK


def default_out(first: Path) -> Path:
    """A folder of runs gets the page itself; a single run directory, its parent."""
    return first.parent if (first / "run.json").is_file() else first


def _percent(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match:
        raise UsageError(f"--min-step {text!r}: expected a percentage like 2%")
    return float(match.group(1)) / 100.0


COMMAND = HistoryCommand()
