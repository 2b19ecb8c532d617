"""Deterministic datasets: the same logical users and messages for both designs.

Ordinary users (`user-0001`...) get 2..60 messages, whales (`whale-01`...) get
`whale_history`; message text comes from `corpus.history_for`, seeded per user. The store is
written in one pass (naive: one JSON file; optimized: batched executemany), then
`manifest.json` lists every user with their history length.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reference_app.corpus import history_for
from reference_app.naive import store as naive_store
from reference_app.optimized import store as optimized_store

MANIFEST = "manifest.json"
MIN_PAIRS = 1
MAX_PAIRS = 30


@dataclass(frozen=True)
class SeedSpec:
    users: int = 200
    whales: int = 5
    whale_history: int = 5000
    seed: int = 1

    def __post_init__(self) -> None:
        if self.users < 0 or self.whales < 0 or self.whale_history < 1:
            raise ValueError("users and whales must be >= 0, whale_history >= 1")


@dataclass(frozen=True)
class SeededUser:
    user_id: str
    history_len: int
    whale: bool


def plan(spec: SeedSpec) -> list[SeededUser]:
    rng = random.Random(spec.seed)
    user_width = max(4, len(str(spec.users)))
    whale_width = max(2, len(str(spec.whales)))
    users = [
        # Whole exchanges: a user message and its reply.
        SeededUser(f"user-{i:0{user_width}d}", 2 * rng.randint(MIN_PAIRS, MAX_PAIRS), False)
        for i in range(1, spec.users + 1)
    ]
    whales = [
        SeededUser(f"whale-{i:0{whale_width}d}", spec.whale_history, True)
        for i in range(1, spec.whales + 1)
    ]
    return users + whales


def _histories(users: list[SeededUser], seed: int) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    for user in users:
        yield user.user_id, history_for(user.user_id, user.history_len, seed)


def seed_store(design: str, data_dir: Path, spec: SeedSpec) -> dict[str, Any]:
    """Write the dataset for `design` into data_dir; return the manifest (also written)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    users = plan(spec)
    if design == "naive":
        naive_store.write_dataset(data_dir, dict(_histories(users, spec.seed)))
    elif design == "optimized":
        optimized_store.write_dataset(data_dir, _histories(users, spec.seed))
    else:
        raise ValueError(f"unknown design {design!r}")
    manifest: dict[str, Any] = {
        "design": design,
        "seed": spec.seed,
        "users": [
            {"user_id": u.user_id, "history_len": u.history_len, "whale": u.whale} for u in users
        ],
    }
    tmp = data_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, data_dir / MANIFEST)
    return manifest
