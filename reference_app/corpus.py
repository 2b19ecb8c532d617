"""Deterministic chat-like text: the seeder and the probe's history reset share it.

`history_for(user_id, n, seed)` depends only on its arguments (random.Random seeded with a
string is stable across processes and PYTHONHASHSEED), so a design seeded with `seed` and a
probe reset of the same user to the same length hold identical messages.
"""

from __future__ import annotations

import functools
import math
import random
import statistics

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
_TEXT_CHARS = 64 * 1024  # many times MAX_CHARS: two messages rarely share a slice
# Medians of the lognormal lengths: people type short questions, assistants answer longer.
_MEDIAN_CHARS = {"user": 60.0, "assistant": 240.0}
_SIGMA = 0.7
_QUANTILES = 4096


def role_at(index: int) -> str:
    """Histories alternate, starting with the user."""
    return "user" if index % 2 == 0 else "assistant"


@functools.cache
def _length_quantiles(role: str) -> tuple[int, ...]:
    """The clipped lognormal's quantiles at _QUANTILES evenly spaced probabilities."""
    normal = statistics.NormalDist(math.log(_MEDIAN_CHARS[role]), _SIGMA)
    return tuple(
        max(MIN_CHARS, min(MAX_CHARS, round(math.exp(normal.inv_cdf((i + 0.5) / _QUANTILES)))))
        for i in range(_QUANTILES)
    )


def message_length(rng: random.Random, role: str) -> int:
    """A lognormal length, clipped, drawn by its inverse CDF: one uniform draw per message
    (`lognormvariate` took several, and most of a history reset's time)."""
    return _length_quantiles(role)[int(rng.random() * _QUANTILES)]


@functools.cache
def _text() -> str:
    """A fixed 64 KiB of words from the vocabulary; every message is a slice of it."""
    rng = random.Random("memload corpus")
    return " ".join(rng.choices(WORDS, k=_TEXT_CHARS // 5))[:_TEXT_CHARS]


def sentence(rng: random.Random, length: int) -> str:
    """`length` characters of vocabulary words, from a random place in a fixed text.

    One draw and one slice per message: drawing ~60 words per message made resetting a
    1,000-message history take ~90 ms, and the probe resets it before every measured request.
    """
    text = _text()
    start = rng.randrange(len(text) - length)
    return text[start : start + length]


def history_for(user_id: str, n: int, seed: int = 1) -> list[tuple[str, str]]:
    """N (role, content) messages for this user, the same for the same arguments."""
    rng = random.Random(f"{seed}:{user_id}:{n}")
    out: list[tuple[str, str]] = []
    for i in range(n):
        role = role_at(i)
        out.append((role, sentence(rng, message_length(rng, role))))
    return out
