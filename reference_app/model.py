"""The types both designs share: messages, history pages, and the Store and LLM interfaces.

A design is a Store (where the conversation lives) plus an LLM client strategy (how the
upstream is called). `api.create_app` only talks to these two interfaces, so every difference
between the designs' figures comes from their implementations, never from the HTTP layer.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

USER_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
ROLES = ("user", "assistant")


def valid_user_id(user_id: str) -> bool:
    return USER_ID_RE.fullmatch(user_id) is not None


class Message(NamedTuple):
    """One stored message. `id` orders a user's messages; it is also the paging cursor."""

    id: int
    role: str
    content: str


@dataclass(frozen=True)
class Page:
    """A newest-first slice of one user's history."""

    messages: list[Message]
    next_cursor: int | None  # pass as `before` to get the next (older) page
    history_len: int


class Store(Protocol):
    """Conversation storage. All methods are coroutines so a design may block or not, its choice.

    A user exists while they have at least one message; `page` answers None for anyone else.
    """

    async def append_exchange(self, user_id: str, user_text: str, reply_text: str) -> int:
        """Persist the user message and the reply together (durably); return the new length."""
        ...

    async def context(self, user_id: str) -> list[Message]:
        """The messages sent to the upstream as context, oldest first."""
        ...

    async def page(self, user_id: str, limit: int, before: int | None) -> Page | None:
        """Up to `limit` messages older than cursor `before` (newest first); None if unknown."""
        ...

    async def history_len(self, user_id: str) -> int: ...

    async def delete(self, user_id: str) -> int:
        """Remove the user's history; return how many messages went."""
        ...

    async def replace_history(self, user_id: str, messages: Sequence[tuple[str, str]]) -> int:
        """Replace the user's history with (role, content) pairs; return the new length."""
        ...

    async def user_lengths(self) -> dict[str, int]:
        """History length of every existing user (for integrity checks, not for requests)."""
        ...

    async def close(self) -> None: ...


class UpstreamError(Exception):
    """The upstream failed, timed out, or answered something unusable."""


class LLMClient(Protocol):
    """How a design calls the LLM upstream. Any failure raises UpstreamError."""

    async def complete(self, messages: list[dict[str, str]]) -> str:
        """The whole reply."""
        ...

    def stream(self, messages: list[dict[str, str]]) -> AsyncGenerator[str, None]:
        """The reply's tokens as the design delivers them (an async generator)."""
        ...

    async def aclose(self) -> None: ...
