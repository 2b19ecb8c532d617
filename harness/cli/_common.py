"""Arguments several subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="TOML config (default: ./loadtest.toml if there is one, else the embedded "
        "default: the reference designs)",
    )
    parser.add_argument(
        "--design",
        dest="designs",
        action="append",
        metavar="D",
        help="design to run (repeatable; default: run.designs from the config)",
    )
    parser.add_argument("--out", type=Path, help="where run directories go (default: run.out)")


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers, got {text!r}")
    return values


def phase_list(text: str) -> list[str]:
    """'load,integrity' -> ['load', 'integrity'] (the config checks the names)."""
    phases = [part.strip() for part in text.split(",") if part.strip()]
    if not phases:
        raise argparse.ArgumentTypeError(f"expected comma-separated phase names, got {text!r}")
    return phases
