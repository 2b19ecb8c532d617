"""Time to first token: the optimized design streams, the naive design buffers the reply.

The emulator takes 50 ms to the first token and then 100 tokens/s for 120 tokens, so a whole
reply takes about 1.24 s. The optimized design's first token must reach the client well before
that (< 0.5 s); the naive design's cannot arrive before the whole reply has been generated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration
REPLY_TOKENS = 120
REPLY_S = 0.05 + (REPLY_TOKENS - 1) / 100


@dataclass
class Timing:
    first_token_s: float
    total_s: float
    token_events: int
    reply: str
    done: dict[str, Any]


def timed_stream(url: str, user_id: str, message: str) -> Timing:
    body = {"user_id": user_id, "message": message, "stream": True}
    first: float | None = None
    tokens: list[str] = []
    done: dict[str, Any] = {}
    with httpx.Client(timeout=30.0) as client:
        started = time.monotonic()
        with client.stream("POST", f"{url}/chat", json=body) as response:
            assert response.status_code == 200
            event = ""
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data = json.loads(line[len("data: ") :])
                    if event == "token":
                        if first is None:
                            first = time.monotonic() - started
                        tokens.append(data["token"])
                    elif event == "done":
                        done = data
        total = time.monotonic() - started
    assert first is not None
    return Timing(first, total, len(tokens), "".join(tokens), done)


@pytest.fixture(scope="module")
def slow_upstream(module_launcher: Any) -> Any:
    return module_launcher.upstream(first_token_ms=50, tokens_per_s=100, reply_tokens=REPLY_TOKENS)


def test_optimized_streams_its_first_token_early(
    module_launcher: Any, slow_upstream: Any, seeded_dir: Callable[..., Path]
) -> None:
    app = module_launcher.app("optimized", seeded_dir("optimized"), slow_upstream.url)
    timed_stream(app.url, "warm-up", "hello")  # first-request costs (imports, connections)
    timing = timed_stream(app.url, "ttft-user", "tell me a long story")
    assert timing.first_token_s < 0.5, timing
    assert timing.total_s > 1.0, timing  # the reply really did take over a second
    assert timing.token_events == REPLY_TOKENS
    assert timing.done == {"history_len": 2}


def test_naive_first_token_waits_for_the_whole_reply(
    module_launcher: Any, slow_upstream: Any, seeded_dir: Callable[..., Path]
) -> None:
    app = module_launcher.app("naive", seeded_dir("naive"), slow_upstream.url)
    timed_stream(app.url, "warm-up", "hello")
    timing = timed_stream(app.url, "ttft-user", "tell me a long story")
    assert timing.first_token_s > 1.0, timing
    assert timing.first_token_s >= REPLY_S * 0.95, timing
    assert timing.token_events == 1
    assert len(timing.reply.split()) == REPLY_TOKENS
    assert timing.done == {"history_len": 2}
