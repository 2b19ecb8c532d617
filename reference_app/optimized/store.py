"""SQLite in WAL mode: bounded reads by index, one transaction per exchange.

- One connection for the app's life, opened in the lifespan and used only from one dedicated
  thread (a single-worker executor): calls are serialized without a lock, and the event loop
  never waits on a commit or a WAL checkpoint.
- `messages(user_id, id)` is indexed, so `context` (the last N) and `page` (by cursor = message
  id) are each one query with LIMIT that touches only the rows it returns.
- `users.history_len` is a counter kept in the same transaction as the messages, so the length
  never needs a scan.
- A write returns only after COMMIT. synchronous=NORMAL in WAL mode keeps every committed
  transaction across a process crash (only an OS crash or power loss can drop the last ones);
  that is the fault the integrity phase can inject.
- `BEGIN IMMEDIATE` takes the write lock up front, so several uvicorn workers sharing the file
  wait on busy_timeout instead of failing on a lock upgrade.
- Every statement runs on one cursor, made once. `Connection.execute` makes a new cursor per
  statement, and sqlite3 keeps a weak reference to each until it prunes them every 200 cursors:
  a saw-tooth of ~15 KiB that the probe's leak run saw as tens of bytes "retained" per request.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from reference_app.model import Message, Page

FILENAME = "chat.sqlite3"
BUSY_TIMEOUT_MS = 10_000
SEED_BATCH = 5_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_user_id_id ON messages(user_id, id);
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY,
    history_len INTEGER NOT NULL
) WITHOUT ROWID;
"""

T = TypeVar("T")
Db = sqlite3.Connection | sqlite3.Cursor  # both run statements the same way


def connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: no implicit BEGIN; transactions are explicit (see `transaction`).
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.executescript(SCHEMA)
    return conn


def _cursor_on(path: Path) -> sqlite3.Cursor:
    return connect(path).cursor()


@contextmanager
def transaction(conn: Db) -> Iterator[None]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _bump(conn: Db, user_id: str, added: int) -> int:
    conn.execute(
        "INSERT INTO users(user_id, history_len) VALUES (?, ?) "
        "ON CONFLICT(user_id) DO UPDATE SET history_len = history_len + excluded.history_len",
        (user_id, added),
    )
    row = conn.execute("SELECT history_len FROM users WHERE user_id = ?", (user_id,)).fetchone()
    return int(row[0])


class OptimizedStore:
    def __init__(self, data_dir: Path, context_window: int = 20) -> None:
        self.path = data_dir / FILENAME
        self.context_window = context_window
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        # Opened on the store's own thread: sqlite3's same-thread check then holds as is.
        try:
            self._conn: sqlite3.Cursor = self._executor.submit(_cursor_on, self.path).result()
        except BaseException:
            self._executor.shutdown(wait=True)
            raise

    async def _run(self, fn: Callable[[sqlite3.Cursor], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, self._conn)

    async def append_exchange(self, user_id: str, user_text: str, reply_text: str) -> int:
        def write(conn: sqlite3.Cursor) -> int:
            with transaction(conn):
                conn.executemany(
                    "INSERT INTO messages(user_id, role, content) VALUES (?, ?, ?)",
                    ((user_id, "user", user_text), (user_id, "assistant", reply_text)),
                )
                return _bump(conn, user_id, 2)

        return await self._run(write)

    async def context(self, user_id: str) -> list[Message]:
        window = self.context_window

        def read(conn: sqlite3.Cursor) -> list[Message]:
            rows = conn.execute(
                "SELECT id, role, content FROM messages WHERE user_id = ? ORDER BY id DESC LIMIT ?",
                (user_id, window),
            ).fetchall()
            rows.reverse()
            return [Message(*row) for row in rows]

        return await self._run(read)

    async def page(self, user_id: str, limit: int, before: int | None) -> Page | None:
        def read(conn: sqlite3.Cursor) -> Page | None:
            found = conn.execute(
                "SELECT history_len FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            if found is None:
                return None
            # One row more than asked tells whether an older page exists.
            rows = conn.execute(
                "SELECT id, role, content FROM messages WHERE user_id = ? AND id < ? "
                "ORDER BY id DESC LIMIT ?",
                (user_id, before if before is not None else 2**63 - 1, limit + 1),
            ).fetchall()
            messages = [Message(*row) for row in rows[:limit]]
            next_cursor = messages[-1].id if len(rows) > limit else None
            return Page(messages, next_cursor, int(found[0]))

        return await self._run(read)

    async def history_len(self, user_id: str) -> int:
        def read(conn: sqlite3.Cursor) -> int:
            row = conn.execute(
                "SELECT history_len FROM users WHERE user_id = ?", (user_id,)
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._run(read)

    async def delete(self, user_id: str) -> int:
        def write(conn: sqlite3.Cursor) -> int:
            with transaction(conn):
                removed = conn.execute(
                    "DELETE FROM messages WHERE user_id = ?", (user_id,)
                ).rowcount
                conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
                return removed

        return await self._run(write)

    async def replace_history(self, user_id: str, messages: Sequence[tuple[str, str]]) -> int:
        def write(conn: sqlite3.Cursor) -> int:
            with transaction(conn):
                conn.execute("DELETE FROM messages WHERE user_id = ?", (user_id,))
                conn.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
                conn.executemany(
                    "INSERT INTO messages(user_id, role, content) VALUES (?, ?, ?)",
                    ((user_id, role, content) for role, content in messages),
                )
                if messages:
                    _bump(conn, user_id, len(messages))
            return len(messages)

        return await self._run(write)

    async def user_lengths(self) -> dict[str, int]:
        def read(conn: sqlite3.Cursor) -> dict[str, int]:
            rows = conn.execute("SELECT user_id, history_len FROM users").fetchall()
            return {str(user): int(n) for user, n in rows}

        return await self._run(read)

    async def close(self) -> None:
        def close(conn: sqlite3.Cursor) -> None:
            conn.close()
            conn.connection.close()

        await self._run(close)
        self._executor.shutdown(wait=True)


def write_dataset(data_dir: Path, users: Iterable[tuple[str, list[tuple[str, str]]]]) -> Path:
    """Seed: batched executemany inserts in one transaction, from a fresh file."""
    path = data_dir / FILENAME
    for stale in (path, path.with_name(FILENAME + "-wal"), path.with_name(FILENAME + "-shm")):
        stale.unlink(missing_ok=True)
    conn = connect(path)
    try:
        with transaction(conn):
            batch: list[tuple[str, str, str]] = []
            lengths: list[tuple[str, int]] = []
            for user_id, messages in users:
                if not messages:
                    continue
                lengths.append((user_id, len(messages)))
                batch.extend((user_id, role, content) for role, content in messages)
                if len(batch) >= SEED_BATCH:
                    _insert(conn, batch)
                    batch.clear()
            _insert(conn, batch)
            conn.executemany("INSERT INTO users(user_id, history_len) VALUES (?, ?)", lengths)
        # Fold the WAL into the main file so the seeded store is one self-contained file.
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return path


def _insert(conn: Db, rows: list[tuple[str, str, str]]) -> None:
    conn.executemany("INSERT INTO messages(user_id, role, content) VALUES (?, ?, ?)", rows)
