"""The Store contract, run against both designs' stores directly (no HTTP)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from reference_app.model import Message, Store
from reference_app.naive.store import FILENAME as NAIVE_FILE
from reference_app.naive.store import NaiveStore, load_history
from reference_app.optimized.store import FILENAME as SQLITE_FILE
from reference_app.optimized.store import OptimizedStore
from reference_app.seed import SeedSpec, seed_store

pytestmark = pytest.mark.anyio
DESIGNS = ("naive", "optimized")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def open_store(design: str, data_dir: Path, window: int = 20) -> Store:
    data_dir.mkdir(parents=True, exist_ok=True)
    if design == "naive":
        return NaiveStore(data_dir)
    return OptimizedStore(data_dir, context_window=window)


@pytest.fixture(params=DESIGNS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened = open_store(request.param, tmp_path / "data")
    try:
        yield opened
    finally:
        await opened.close()


async def fill(store: Store, user_id: str, exchanges: int) -> None:
    for i in range(exchanges):
        await store.append_exchange(user_id, f"question {i}", f"answer {i}")


async def test_unknown_user(store: Store) -> None:
    assert await store.page("nobody", 10, None) is None
    assert await store.history_len("nobody") == 0
    assert await store.context("nobody") == []
    assert await store.delete("nobody") == 0
    assert await store.user_lengths() == {}


async def test_append_exchange_stores_both_messages_in_order(store: Store) -> None:
    assert await store.append_exchange("u1", "hello", "hi there") == 2
    assert await store.append_exchange("u1", "how are you", "fine") == 4
    context = await store.context("u1")
    assert [(m.role, m.content) for m in context] == [
        ("user", "hello"),
        ("assistant", "hi there"),
        ("user", "how are you"),
        ("assistant", "fine"),
    ]
    assert [m.id for m in context] == sorted(m.id for m in context)
    assert await store.history_len("u1") == 4
    assert await store.user_lengths() == {"u1": 4}


async def test_users_are_separate(store: Store) -> None:
    await fill(store, "alice", 2)
    await fill(store, "bob", 1)
    assert await store.user_lengths() == {"alice": 4, "bob": 2}
    bob = await store.page("bob", 50, None)
    assert bob is not None
    assert [m.content for m in bob.messages] == ["answer 0", "question 0"]


async def test_pages_walk_the_history_newest_first_exactly_once(store: Store) -> None:
    await fill(store, "u1", 11)  # 22 messages
    seen: list[Message] = []
    cursor: int | None = None
    pages = 0
    while True:
        page = await store.page("u1", 5, cursor)
        assert page is not None
        assert page.history_len == 22
        assert len(page.messages) <= 5
        seen.extend(page.messages)
        pages += 1
        if page.next_cursor is None:
            break
        assert page.next_cursor == page.messages[-1].id
        cursor = page.next_cursor
    assert pages == 5
    ids = [m.id for m in seen]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == 22
    context = await store.context("u1")  # naive: all 22; optimized: the last 20
    assert [(m.role, m.content) for m in reversed(seen)][-len(context) :] == [
        (m.role, m.content) for m in context
    ]


async def test_page_limit_equal_to_history_has_no_next_cursor(store: Store) -> None:
    await fill(store, "u1", 2)
    page = await store.page("u1", 4, None)
    assert page is not None
    assert len(page.messages) == 4
    assert page.next_cursor is None


async def test_cursor_before_everything_gives_an_empty_page(store: Store) -> None:
    await fill(store, "u1", 1)
    page = await store.page("u1", 10, 1)
    assert page is not None
    assert page.messages == []
    assert page.next_cursor is None
    assert page.history_len == 2


async def test_delete(store: Store) -> None:
    await fill(store, "u1", 3)
    await fill(store, "u2", 1)
    assert await store.delete("u1") == 6
    assert await store.page("u1", 10, None) is None
    assert await store.history_len("u1") == 0
    assert await store.delete("u1") == 0
    assert await store.user_lengths() == {"u2": 2}


async def test_replace_history(store: Store) -> None:
    await fill(store, "u1", 3)
    messages = [("user", "a"), ("assistant", "b"), ("user", "c")]
    assert await store.replace_history("u1", messages) == 3
    assert [(m.role, m.content) for m in await store.context("u1")] == messages
    assert await store.history_len("u1") == 3
    assert await store.append_exchange("u1", "d", "e") == 5
    assert await store.replace_history("u1", []) == 0
    assert await store.page("u1", 10, None) is None
    assert await store.user_lengths() == {}


async def test_text_round_trips(store: Store) -> None:
    text = 'quotes " and \\ backslash, newline\n, tab\t, emoji 🦜, accents éà, NUL \x00 end'
    await store.append_exchange("u1", text, text[::-1])
    assert [m.content for m in await store.context("u1")] == [text, text[::-1]]


@pytest.mark.parametrize("design", DESIGNS)
async def test_writes_survive_a_reopen(design: str, tmp_path: Path) -> None:
    first = open_store(design, tmp_path)
    await fill(first, "u1", 2)
    await first.close()
    second = open_store(design, tmp_path)
    try:
        assert await second.history_len("u1") == 4
        assert [m.content for m in await second.context("u1")][-1] == "answer 1"
    finally:
        await second.close()


async def test_optimized_context_is_the_last_window(tmp_path: Path) -> None:
    store = OptimizedStore(tmp_path, context_window=6)
    try:
        await fill(store, "u1", 10)
        context = await store.context("u1")
        assert [m.content for m in context] == [
            "question 7",
            "answer 7",
            "question 8",
            "answer 8",
            "question 9",
            "answer 9",
        ]
    finally:
        await store.close()


async def test_naive_context_is_the_whole_history(tmp_path: Path) -> None:
    store = NaiveStore(tmp_path)
    await fill(store, "u1", 30)
    assert len(await store.context("u1")) == 60


def test_optimized_reads_use_the_index(tmp_path: Path) -> None:
    seed_store("optimized", tmp_path, SeedSpec(users=3, whales=1, whale_history=50))
    conn = sqlite3.connect(tmp_path / SQLITE_FILE)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for sql in (
            "SELECT id, role, content FROM messages WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            "SELECT id, role, content FROM messages WHERE user_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
        ):
            args = ("whale-01", 1000, 20)[: sql.count("?")]
            plan = " ".join(str(row) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
            assert "USING INDEX messages_user_id_id" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
    finally:
        conn.close()


async def test_naive_file_format_and_its_faithful_loader(tmp_path: Path) -> None:
    store = NaiveStore(tmp_path)
    await store.append_exchange("u1", "q", "a")
    raw = (tmp_path / NAIVE_FILE).read_text(encoding="utf-8")
    assert raw.startswith('{\n  "u1": [\n')  # json.dump(..., indent=2), as reviewed
    assert json.loads(raw) == {
        "u1": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    }
    # The reviewed loader reads a corrupt file as empty: the data loss the integrity work shows.
    (tmp_path / NAIVE_FILE).write_text('{"u1": [', encoding="utf-8")
    assert load_history(tmp_path / NAIVE_FILE) == {}
    assert await store.page("u1", 10, None) is None
