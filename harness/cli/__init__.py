"""`harness` command line: one module per subcommand, `main(argv) -> int` testable in-process.

Each subcommand module defines `COMMAND`, an object satisfying the `Command` protocol.
Modules are imported only when their subcommand runs, so `harness --help` stays fast
and nothing heavy (pandas, matplotlib, memray) is imported at start-up.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn, Protocol

from harness._errors import EXIT_USAGE, HarnessError

# subcommand name -> (module, one-line help); the module is imported lazily.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "loadtest": ("harness.cli.loadtest", "run every phase on every design and write a report"),
    "capacity": ("harness.cli.capacity", "the open-model capacity search of every design"),
    "size": ("harness.cli.size", "a memory request and limit per container, proven under a limit"),
    "probe": ("harness.cli.probe", "per-request tracemalloc figures across history lengths"),
    "report": ("harness.cli.report", "render report.md/report.html from a run directory"),
    "compare": ("harness.cli.compare", "compare the headline metrics of two run directories"),
    "gate": ("harness.cli.gate", "fail when per-request memory regresses against a baseline"),
    "history": ("harness.cli.history", "trend page of many runs over commits, steps marked"),
    "chaos": ("harness.cli.chaos", "SIGKILL the app mid-load, restart it, count lost writes"),
}


class Command(Protocol):
    name: str

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is a single line on stderr and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _load(name: str) -> Command:
    module = importlib.import_module(SUBCOMMANDS[name][0])
    command: Command = module.COMMAND
    return command


def build_parser(only: str | None = None) -> OneLineParser:
    parser = OneLineParser(
        prog="harness",
        description="Load-testing and memory-profiling harness for Python web services.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            _load(name).add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in args_list if a in SUBCOMMANDS), None)
    try:
        parser = build_parser(only=chosen or "")
        args = parser.parse_args(args_list)
        if not args.command:
            parser.print_help()
            return EXIT_USAGE
        return _load(args.command).run(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted", file=sys.stderr)
        return 130


def console_main() -> NoReturn:
    sys.exit(main())
