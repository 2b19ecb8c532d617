"""BodySizeLimit: oversized bodies are refused without being read, declared or chunked."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse

from reference_app.api import create_app
from reference_app.limits import BodySizeLimit
from reference_app.settings import Settings

pytestmark = pytest.mark.anyio
Message = MutableMapping[str, Any]
LIMIT = 1000


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Exchange:
    """Drives an ASGI app with a body sent in chunks; records what it reads and answers."""

    def __init__(self, chunks: int, chunk_size: int, content_length: int | None = None) -> None:
        self.chunks = chunks
        self.chunk_size = chunk_size
        self.received = 0  # chunks the app pulled
        self.sent: list[Message] = []
        headers = [(b"content-type", b"application/json")]
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        self.scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/chat",
            "raw_path": b"/chat",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 2),
        }

    async def receive(self) -> Message:
        if self.received >= self.chunks:
            return {"type": "http.disconnect"}
        self.received += 1
        more = self.received < self.chunks
        return {"type": "http.request", "body": b"x" * self.chunk_size, "more_body": more}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def echo_length(scope: Any, receive: Any, send: Any) -> None:
    body = await Request(scope, receive).body()
    await JSONResponse({"length": len(body)})(scope, receive, send)


async def test_small_body_passes() -> None:
    exchange = Exchange(chunks=3, chunk_size=100)
    await BodySizeLimit(echo_length, LIMIT)(exchange.scope, exchange.receive, exchange.send)
    assert exchange.status == 200
    assert exchange.body == {"length": 300}


async def test_declared_length_over_the_limit_is_refused_before_reading() -> None:
    exchange = Exchange(chunks=1000, chunk_size=100, content_length=100_000)
    await BodySizeLimit(echo_length, LIMIT)(exchange.scope, exchange.receive, exchange.send)
    assert exchange.status == 413
    assert exchange.received == 0
    assert exchange.body["error"] == "body_too_large"


async def test_chunked_body_is_cut_off_at_the_limit() -> None:
    exchange = Exchange(chunks=1000, chunk_size=100)
    await BodySizeLimit(echo_length, LIMIT)(exchange.scope, exchange.receive, exchange.send)
    assert exchange.status == 413
    assert exchange.received == LIMIT // 100 + 1


@pytest.mark.parametrize("design", ["naive", "optimized"])
async def test_the_service_answers_413_to_a_chunked_body(design: str, tmp_path: Path) -> None:
    # FastAPI turns most errors raised while it reads a body into a 400: check the real stack.
    settings = Settings(design=design, data_dir=tmp_path, upstream_url="http://127.0.0.1:1")
    app = create_app(design, settings)
    exchange = Exchange(chunks=10_000, chunk_size=1024)
    async with app.router.lifespan_context(app):
        await app(exchange.scope, exchange.receive, exchange.send)
    assert exchange.status == 413
    assert exchange.body["error"] == "body_too_large"
    assert exchange.received == settings.max_body_bytes // 1024 + 1
