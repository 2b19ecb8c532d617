"""A per-request memory guard on the optimized design's three endpoints, with memload's plugin.

The app runs in this process (memload's in-process client: no server, no port); the LLM
emulator runs in its own process on loopback, as in the other memory tests, so its memory does
not count. The probe user's history is set through the probe-mode route, as `harness probe`
does. Limits are per endpoint: the peak at 1,000 messages, what a request keeps for good, and
the growth of the peak per message of history (the optimized design reads a bounded context
window, so it must stay flat). The naive design is guarded by test_memory_guard.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from reference_app.api import create_app
from reference_app.seed import SeedSpec, seed_store
from reference_app.settings import Settings

pytestmark = pytest.mark.integration
USER = "probe-user"
HISTORY = 1000
MESSAGE = "How much memory does one request of mine cost?"


@pytest.fixture(scope="module")
def upstream(module_launcher: Any) -> Any:
    return module_launcher.upstream(first_token_ms=0, tokens_per_s=0, reply_tokens=120)


@pytest.fixture
def optimized(memload: Any, upstream: Any, tmp_path: Path) -> Any:
    seed_store("optimized", tmp_path, SeedSpec(users=10, whales=0, seed=1))
    settings = Settings(
        design="optimized", data_dir=tmp_path, upstream_url=upstream.url, probe=True
    )
    return memload.client(create_app("optimized", settings))


def set_history(client: Any, length: int) -> None:
    response = client.put(f"/__probe/history/{USER}", json={"length": length})
    assert response.status_code == 200, response.text


def request_of(client: Any, endpoint: str) -> Callable[[], Any]:
    if endpoint == "history":
        return lambda: client.get(f"/history/{USER}")
    body = {"user_id": USER, "message": MESSAGE, "stream": endpoint == "chat_stream"}
    return lambda: client.post("/chat", json=body)


# Retained: a chat keeps ~130-150 B a request for the first hundreds of requests (the upstream
# client's URL parsing in httpx, and the store filling; the gate's baseline has 128 B); 384 B
# leaves room for that and fails a planted 256 B leak. The chat guards take 15-20 s here.
CHAT = pytest.mark.memload(peak="64 KiB", retained="384 B", slope="16 B/message")
STREAM = pytest.mark.memload(peak="176 KiB", retained="384 B", slope="16 B/message")
HISTORY_LIMITS = pytest.mark.memload(peak="112 KiB", retained="64 B", slope="16 B/message")
GUARDS = [
    pytest.param("chat", marks=[CHAT, pytest.mark.e2e]),
    pytest.param("chat_stream", marks=[STREAM, pytest.mark.e2e]),
    pytest.param("history", marks=HISTORY_LIMITS),
]


@pytest.mark.parametrize("endpoint", GUARDS)
def test_optimized_request_memory(memload: Any, optimized: Any, endpoint: str) -> None:
    send = request_of(optimized, endpoint)
    growth = memload.peak_growth(
        setup=lambda n: set_history(optimized, n),
        request=send,
        sizes=[100, 1000, 5000],
        unit="message",
        reps=3,
        warmup=5,
        reset_after=endpoint != "history",
    )
    assert growth.peak_at(HISTORY) > 0
    set_history(optimized, HISTORY)
    peak = memload.peak(send, warmup=5)
    assert peak.status == 200
    set_history(optimized, 100)
    # A chat appends two messages a request: the store's Python side settles slowly, so the
    # warm-up is bounded (an unsteady warm-up still leaves a run that the estimate reads).
    memload.retained(send, max_warmup=100)
