"""The seeder and its corpus: deterministic, chat-like, the same logical data for both designs."""

from __future__ import annotations

import asyncio
import json
import statistics
from pathlib import Path

import pytest

from reference_app.corpus import MAX_CHARS, MIN_CHARS, history_for
from reference_app.naive.store import NaiveStore
from reference_app.optimized.store import OptimizedStore
from reference_app.seed import SeedSpec, plan, seed_store


def test_plan_is_deterministic_and_shaped_like_the_contract() -> None:
    spec = SeedSpec(users=200, whales=5, whale_history=5000, seed=1)
    users = plan(spec)
    assert users == plan(spec)
    assert users != plan(SeedSpec(seed=2))
    ordinary = [u for u in users if not u.whale]
    whales = [u for u in users if u.whale]
    assert [u.user_id for u in ordinary[:2]] == ["user-0001", "user-0002"]
    assert [u.user_id for u in whales] == [f"whale-0{i}" for i in range(1, 6)]
    assert all(2 <= u.history_len <= 60 and u.history_len % 2 == 0 for u in ordinary)
    assert all(u.history_len == 5000 for u in whales)
    assert len({u.user_id for u in users}) == 205


def test_history_is_deterministic_alternating_and_chat_sized() -> None:
    history = history_for("user-0001", 400, seed=1)
    assert history == history_for("user-0001", 400, seed=1)
    assert history != history_for("user-0002", 400, seed=1)
    assert history != history_for("user-0001", 400, seed=2)
    assert [role for role, _ in history[:4]] == ["user", "assistant", "user", "assistant"]
    lengths = [len(text) for _, text in history]
    assert min(lengths) >= MIN_CHARS
    assert max(lengths) <= MAX_CHARS
    user_median = statistics.median(len(t) for r, t in history if r == "user")
    reply_median = statistics.median(len(t) for r, t in history if r == "assistant")
    assert 30 <= user_median <= 120
    assert 120 <= reply_median <= 400


def test_both_designs_get_the_same_logical_data(tmp_path: Path) -> None:
    spec = SeedSpec(users=12, whales=2, whale_history=300, seed=7)
    manifests = {d: seed_store(d, tmp_path / d, spec) for d in ("naive", "optimized")}
    assert manifests["naive"]["users"] == manifests["optimized"]["users"]
    for design, manifest in manifests.items():
        on_disk = json.loads((tmp_path / design / "manifest.json").read_text(encoding="utf-8"))
        assert on_disk == manifest
        assert set(manifest) == {"design", "seed", "users"}
        assert manifest["design"] == design
        assert manifest["seed"] == 7
        assert set(manifest["users"][0]) == {"user_id", "history_len", "whale"}

    async def contents() -> dict[str, dict[str, list[tuple[str, str]]]]:
        out: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for design, store in (
            ("naive", NaiveStore(tmp_path / "naive")),
            ("optimized", OptimizedStore(tmp_path / "optimized")),
        ):
            try:
                lengths = await store.user_lengths()
                expected = {u["user_id"]: u["history_len"] for u in manifests[design]["users"]}
                assert lengths == expected
                pages = {}
                for user_id in lengths:
                    page = await store.page(user_id, 200, None)
                    assert page is not None
                    pages[user_id] = [(m.role, m.content) for m in page.messages]
                out[design] = pages
            finally:
                await store.close()
        return out

    seen = asyncio.run(contents())
    assert seen["naive"] == seen["optimized"]
    # The probe's history reset rebuilds exactly what the seeder wrote (same generator).
    whale = manifests["naive"]["users"][-1]
    assert (
        history_for(whale["user_id"], whale["history_len"], seed=7)[::-1][:200]
        == seen["naive"][whale["user_id"]]
    )


def test_reseeding_replaces_the_store(tmp_path: Path) -> None:
    async def lengths(design: str) -> dict[str, int]:
        data_dir = tmp_path / design
        store = NaiveStore(data_dir) if design == "naive" else OptimizedStore(data_dir)
        try:
            return await store.user_lengths()
        finally:
            await store.close()

    for design in ("naive", "optimized"):
        seed_store(design, tmp_path / design, SeedSpec(users=5, whales=1, whale_history=10))
        manifest = seed_store(design, tmp_path / design, SeedSpec(users=2, whales=0, seed=3))
        expected = {u["user_id"]: u["history_len"] for u in manifest["users"]}
        assert asyncio.run(lengths(design)) == expected


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError):
        SeedSpec(users=-1)
    with pytest.raises(ValueError):
        seed_store("mongo", Path("/nonexistent"), SeedSpec())
