"""One pooled client for the app's life; tokens passed on as the upstream sends them."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from reference_app.model import UpstreamError
from reference_app.wire import COMPLETIONS_PATH, completion_text

CONNECT_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 100
MAX_KEEPALIVE = 20
# Drop an idle connection well before the upstream may: reusing one the server is closing at
# that very moment fails the request with a ReadError (seen once in 60 probe runs, as a 502 on
# a streamed chat, when both were 5 s). The upstream emulator keeps idle connections 75 s
# (reference_app.cli.UPSTREAM_KEEPALIVE_S), as an LLM API does: at 2 s, a chat after a pause
# (a probe rep whose setup took longer) paid ~9 KB for a new connection inside its figure.
KEEPALIVE_EXPIRY_S = 60.0


class PooledLLM:
    def __init__(
        self,
        upstream_url: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Created in the lifespan, closed in it: connections are reused across requests.
        self._client = httpx.AsyncClient(
            base_url=upstream_url.rstrip("/"),
            timeout=httpx.Timeout(timeout_s, connect=min(CONNECT_TIMEOUT_S, timeout_s)),
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS,
                max_keepalive_connections=MAX_KEEPALIVE,
                keepalive_expiry=KEEPALIVE_EXPIRY_S,
            ),
            transport=transport,
        )

    async def complete(self, messages: list[dict[str, str]]) -> str:
        try:
            response = await self._client.post(
                COMPLETIONS_PATH, json={"messages": messages, "stream": False}
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream request failed: {type(exc).__name__}") from exc
        return completion_text(response)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncGenerator[str, None]:
        request = {"messages": messages, "stream": True}
        try:
            async with self._client.stream("POST", COMPLETIONS_PATH, json=request) as response:
                if response.status_code != 200:
                    raise UpstreamError(f"upstream answered {response.status_code}")
                done = False
                async for line in response.aiter_lines():
                    if done or not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        # Read on to the end of the body rather than return: a response closed
                        # unread loses its pooled connection, and every stream paid for a new one.
                        done = True
                        continue
                    token = _delta(payload)
                    if token:
                        yield token
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream stream failed: {type(exc).__name__}") from exc
        if not done:
            raise UpstreamError("upstream stream ended before [DONE]")

    async def aclose(self) -> None:
        await self._client.aclose()


def _delta(payload: str) -> str | None:
    try:
        chunk: Any = json.loads(payload)
        content = chunk["choices"][0]["delta"].get("content")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise UpstreamError("upstream sent an unreadable chunk") from exc
    if content is not None and not isinstance(content, str):
        raise UpstreamError("upstream token is not a string")
    return content
