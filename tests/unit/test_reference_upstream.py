"""The LLM emulator, in process: OpenAI-style shapes, determinism, latency, failure triggers."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from reference_app.upstream import UpstreamConfig, create_upstream_app, reply_tokens

pytestmark = pytest.mark.anyio
URL = "http://upstream/v1/chat/completions"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(config: UpstreamConfig) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_upstream_app(config))
    return httpx.AsyncClient(transport=transport, base_url="http://upstream")


def conversation(last: str = "hello") -> list[dict[str, str]]:
    return [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": last},
    ]


def sse_chunks(body: str) -> list[str]:
    return [line[len("data: ") :] for line in body.split("\n") if line.startswith("data: ")]


def delta_text(chunks: list[str]) -> str:
    parts = []
    for chunk in chunks:
        if chunk == "[DONE]":
            continue
        payload: Any = json.loads(chunk)
        parts.append(payload["choices"][0]["delta"].get("content") or "")
    return "".join(parts)


async def test_healthz() -> None:
    async with client(UpstreamConfig(0, 0, 5)) as c:
        assert (await c.get("/healthz")).status_code == 200


async def test_non_stream_reply_is_deterministic_and_openai_shaped() -> None:
    async with client(UpstreamConfig(0, 0, 7)) as c:
        first = await c.post(URL, json={"messages": conversation(), "stream": False})
        again = await c.post(URL, json={"messages": conversation(), "stream": False})
        other = await c.post(URL, json={"messages": conversation("bye"), "stream": False})
    assert first.status_code == 200
    body = first.json()
    content = body["choices"][0]["message"]["content"]
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert content == "".join(reply_tokens(conversation(), 7))
    assert len(content.split()) == 7
    assert body["usage"]["completion_tokens"] == 7
    assert again.json()["choices"][0]["message"]["content"] == content
    assert other.json()["choices"][0]["message"]["content"] != content


async def test_stream_sends_deltas_then_done_with_the_same_reply() -> None:
    async with client(UpstreamConfig(0, 0, 9)) as c:
        streamed = await c.post(URL, json={"messages": conversation(), "stream": True})
        whole = await c.post(URL, json={"messages": conversation()})
    assert streamed.status_code == 200
    assert streamed.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(streamed.text)
    assert chunks[-1] == "[DONE]"
    assert len(chunks) == 9 + 2  # tokens, the finish chunk, [DONE]
    assert delta_text(chunks) == whole.json()["choices"][0]["message"]["content"]


async def test_latency_follows_the_settings() -> None:
    # 50 ms to the first token, then 10 more at 100/s: about 150 ms either way.
    async with client(UpstreamConfig(first_token_ms=50, tokens_per_s=100, reply_tokens=11)) as c:
        for stream in (False, True):
            started = time.monotonic()
            response = await c.post(URL, json={"messages": conversation(), "stream": stream})
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            assert 0.14 <= elapsed < 1.0, (stream, elapsed)


async def test_failure_triggers() -> None:
    async with client(UpstreamConfig(0, 0, 10)) as c:
        failed = await c.post(URL, json={"messages": conversation("x __upstream_fail__")})
        failed_stream = await c.post(
            URL, json={"messages": conversation("__upstream_fail__"), "stream": True}
        )
        aborted = await c.post(
            URL, json={"messages": conversation("__upstream_abort__"), "stream": True}
        )
        aborted_whole = await c.post(URL, json={"messages": conversation("__upstream_abort__")})
    assert failed.status_code == 500
    assert failed_stream.status_code == 500
    assert aborted_whole.status_code == 500
    assert aborted.status_code == 200
    chunks = sse_chunks(aborted.text)
    assert "[DONE]" not in chunks
    assert len(chunks) == 3


async def test_trigger_only_counts_in_the_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "__upstream_fail__"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "fine"},
    ]
    async with client(UpstreamConfig(0, 0, 3)) as c:
        assert (await c.post(URL, json={"messages": messages})).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"messages": []}',
        b'{"messages": [{"role": "user"}]}',
        b'{"messages": [{"role": "user", "content": 3}]}',
    ],
)
async def test_bad_requests_are_400(body: bytes) -> None:
    async with client(UpstreamConfig(0, 0, 3)) as c:
        response = await c.post(URL, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "message" in response.json()["error"]


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        UpstreamConfig(first_token_ms=-1)
    with pytest.raises(ValueError):
        UpstreamConfig(reply_tokens=0)
    assert UpstreamConfig(50, 100, 3).token_due_s(2) == pytest.approx(0.07)
    assert UpstreamConfig(50, 0, 3).token_due_s(2) == pytest.approx(0.05)
