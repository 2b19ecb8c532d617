"""Memory-guarded request paths; run only by test_memory_guard.py, in a subprocess:

    python -m pytest --memray --trace-python-allocators tests/integration/memory_guard_cases.py

(the file name keeps plain `pytest` from collecting it: without --memray, limit_memory is inert).
Each case sends one `POST /chat` for a user with a 5,000-message history to an app running in
this process (so memray sees it), while the LLM emulator runs in its own process (so it does
not count). Seeding, startup and a warm-up request happen in fixtures, outside the measurement.
The optimized design must stay under LIMIT; the naive design must not, which proves the guard
bites.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from reference_app.api import create_app
from reference_app.seed import SeedSpec, seed_store
from reference_app.settings import Settings

LIMIT = "2 MB"
WHALE = "whale-01"
WHALE_HISTORY = 5000

Chat = Callable[[str, str], httpx.Response]


@pytest.fixture(scope="module")
def upstream(module_launcher: Any) -> Any:
    return module_launcher.upstream(first_token_ms=0, tokens_per_s=0, reply_tokens=120)


def _serve_in_process(
    portal: BlockingPortal, design: str, data_dir: Path, upstream_url: str
) -> Iterator[Chat]:
    settings = Settings(design=design, data_dir=data_dir, upstream_url=upstream_url)
    app = create_app(design, settings)
    transport = httpx.ASGITransport(app=app)
    with (
        portal.wrap_async_context_manager(app.router.lifespan_context(app)),
        portal.wrap_async_context_manager(
            httpx.AsyncClient(transport=transport, base_url="http://app", timeout=30.0)
        ) as client,
    ):

        async def post(body: dict[str, str]) -> httpx.Response:
            return await client.post("/chat", json=body)

        def chat(user_id: str, message: str) -> httpx.Response:
            return portal.call(post, {"user_id": user_id, "message": message})

        yield chat


@pytest.fixture(params=["naive", "optimized"])
def whale_chat(request: pytest.FixtureRequest, upstream: Any, tmp_path: Path) -> Iterator[Chat]:
    design: str = request.param
    seed_store(design, tmp_path, SeedSpec(users=20, whales=1, whale_history=WHALE_HISTORY))
    with start_blocking_portal("asyncio") as portal:
        for chat in _serve_in_process(portal, design, tmp_path, upstream.url):
            # Warm-up: lazy imports, first connections, pydantic's first validation.
            assert chat("user-0001", "warm up").status_code == 200
            yield chat


@pytest.mark.limit_memory(LIMIT)
def test_whale_chat(whale_chat: Chat) -> None:
    response = whale_chat(WHALE, "one more question")
    assert response.status_code == 200
    assert response.json()["history_len"] == WHALE_HISTORY + 2
