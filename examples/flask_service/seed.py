"""Bring the notes database to exactly N notes: `python seed.py --n N --data-dir DIR`.

The harness runs it as the target's seed command (N = [seed] users) and as the probe's
setup_command (N = the point's size); the running app opens the database per request, so
it sees the new rows at once.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

DB_NAME = "notes.db"
SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"
BUSY_TIMEOUT_S = 5.0


def connect(path: str | Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)
    connection.execute(SCHEMA)
    return connection


def seed(path: Path, n: int) -> None:
    connection = connect(path)
    try:
        with connection:
            connection.execute("DELETE FROM notes")
            connection.executemany(
                "INSERT INTO notes (id, text) VALUES (?, ?)",
                ((i, f"note {i}: " + "x" * 64) for i in range(1, n + 1)),
            )
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, required=True, help="notes to leave in the table")
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.n < 0:
        parser.error("--n must be >= 0")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    seed(args.data_dir / DB_NAME, args.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
