"""The reviewed upstream call: a new client per request, the whole reply buffered."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx

from reference_app.model import UpstreamError
from reference_app.wire import COMPLETIONS_PATH, completion_text


class NaiveLLM:
    def __init__(
        self,
        upstream_url: str,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = upstream_url.rstrip("/") + COMPLETIONS_PATH
        self.timeout_s = timeout_s
        self._transport = transport  # tests only: reach an in-process upstream

    async def complete(self, messages: list[dict[str, str]]) -> str:
        # As reviewed: `async with httpx.AsyncClient() as client` on every call, so every
        # request pays for a new client, connection pool and TCP connection.
        try:
            async with httpx.AsyncClient(
                timeout=self.timeout_s, transport=self._transport
            ) as client:
                response = await client.post(self.url, json={"messages": messages, "stream": False})
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream request failed: {type(exc).__name__}") from exc
        return completion_text(response)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncGenerator[str, None]:
        # No streaming: the client that asked for a stream gets the whole reply as one token.
        yield await self.complete(messages)

    async def aclose(self) -> None:
        """No client outlives a call."""
