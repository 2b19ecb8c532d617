"""Deterministic chat-like text: the seeder and the probe's history reset share it.

`history_for(user_id, n, seed)` depends only on its arguments (random.Random seeded with a
string is stable across processes and PYTHONHASHSEED), so a design seeded with `seed` and a
probe reset of the same user to the same length hold identical messages.
"""

from __future__ import annotations

import math
import random

# A small vocabulary is enough: memory cost depends on lengths, not on the words.
_VOCABULARY = (
    "the a to and of in is it you that for on with this can be not are have what how "
    "your do if or but my we will about so more there which just like time when one use "
    "python memory request server history message reply token model context store file "
    "json sqlite stream client upstream latency error retry cache index query page user "
    "assistant please thanks sure here example code function value list dict string "
    "would could should because then than also only into over after before first last"
)
WORDS = tuple(_VOCABULARY.split())

MIN_CHARS = 10
MAX_CHARS = 800
# Medians of the lognormal lengths: people type short questions, assistants answer longer.
_MEDIAN_CHARS = {"user": 60.0, "assistant": 240.0}
_SIGMA = 0.7


def role_at(index: int) -> str:
    """Histories alternate, starting with the user."""
    return "user" if index % 2 == 0 else "assistant"


def message_length(rng: random.Random, role: str) -> int:
    raw = rng.lognormvariate(math.log(_MEDIAN_CHARS[role]), _SIGMA)
    return max(MIN_CHARS, min(MAX_CHARS, round(raw)))


def sentence(rng: random.Random, length: int) -> str:
    """Words from the vocabulary, cut to exactly `length` characters."""
    # Words average about 5 characters plus a space: draw enough in one call.
    words = rng.choices(WORDS, k=length // 4 + 2)
    text = " ".join(words)
    while len(text) < length:
        text += " " + " ".join(rng.choices(WORDS, k=8))
    return text[:length]


def history_for(user_id: str, n: int, seed: int = 1) -> list[tuple[str, str]]:
    """N (role, content) messages for this user, the same for the same arguments."""
    rng = random.Random(f"{seed}:{user_id}:{n}")
    out: list[tuple[str, str]] = []
    for i in range(n):
        role = role_at(i)
        out.append((role, sentence(rng, message_length(rng, role))))
    return out
