"""One JSON file for every user, read whole and rewritten whole: the reviewed pattern.

Faithful to the reviews on purpose:
- `load_history` parses the entire file on every request that touches history and, like the
  reviewed code, treats a missing *or corrupt* file as empty (`except (FileNotFoundError,
  json.JSONDecodeError): return {}`); the next write then replaces everything. The integrity
  work shows that data loss under faults; in normal single-worker operation nothing is lost.
- every write re-reads the file, changes it, and rewrites all of it with `indent=2`, in place
  (no temporary file, no fsync), under one process-wide lock.
- the history is unbounded and `context` returns all of it.

The blocking file work runs inline on the event loop, as it did in the reviewed `async def`
handlers: the cost (a stalled loop while a multi-megabyte file is parsed) is part of what the
harness measures, and it also makes each read-modify-write atomic within one worker.

Message ids are 1-based positions in the user's list: the file stores no ids, as in the reviews.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reference_app.model import Message, Page

FILENAME = "chat_history.json"

History = dict[str, list[dict[str, str]]]

# The reviewed code's `_history_lock`: one lock for all users.
_history_lock = threading.Lock()


def load_history(path: Path) -> History:
    try:
        with path.open(encoding="utf-8") as f:
            data: Any = json.load(f)
            return data  # type: ignore[no-any-return]
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def save_history(path: Path, history: History) -> None:
    with path.open("w", encoding="utf-8") as f:
        json.dump(history, f, indent=2)


def _record(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


class NaiveStore:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / FILENAME

    async def append_exchange(self, user_id: str, user_text: str, reply_text: str) -> int:
        with _history_lock:
            history = load_history(self.path)
            user_history = history.setdefault(user_id, [])
            user_history.append(_record("user", user_text))
            user_history.append(_record("assistant", reply_text))
            save_history(self.path, history)
            return len(user_history)

    async def context(self, user_id: str) -> list[Message]:
        history = load_history(self.path)
        return [
            Message(i, item["role"], item["content"])
            for i, item in enumerate(history.get(user_id, []), start=1)
        ]

    async def page(self, user_id: str, limit: int, before: int | None) -> Page | None:
        user_history = load_history(self.path).get(user_id)
        if not user_history:
            return None
        total = len(user_history)
        end = total if before is None else min(total, before - 1)
        start = max(0, end - limit)
        messages = [
            Message(i + 1, user_history[i]["role"], user_history[i]["content"])
            for i in range(end - 1, start - 1, -1)
        ]
        next_cursor = start + 1 if start > 0 else None
        return Page(messages, next_cursor, total)

    async def history_len(self, user_id: str) -> int:
        return len(load_history(self.path).get(user_id, []))

    async def delete(self, user_id: str) -> int:
        with _history_lock:
            history = load_history(self.path)
            removed = history.pop(user_id, [])
            save_history(self.path, history)
            return len(removed)

    async def replace_history(self, user_id: str, messages: Sequence[tuple[str, str]]) -> int:
        with _history_lock:
            history = load_history(self.path)
            if messages:
                history[user_id] = [_record(role, content) for role, content in messages]
            else:
                history.pop(user_id, None)
            save_history(self.path, history)
            return len(messages)

    async def user_lengths(self) -> dict[str, int]:
        return {user: len(items) for user, items in load_history(self.path).items() if items}

    async def close(self) -> None:
        """Nothing is held open between requests: that is the design."""


def write_dataset(data_dir: Path, users: dict[str, list[tuple[str, str]]]) -> Path:
    """Seed: the whole file in one go, in the same format the service writes."""
    path = data_dir / FILENAME
    history: History = {
        user_id: [_record(role, content) for role, content in messages]
        for user_id, messages in users.items()
        if messages
    }
    save_history(path, history)
    return path
