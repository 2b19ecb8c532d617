"""An OpenAI-style LLM emulator, run in its own process so it never counts in the app's memory.

`POST /v1/chat/completions` with `{"messages": [...], "stream": bool}`:
- the reply is `reply_tokens` words ("tok "), chosen by an RNG seeded from a hash of the
  messages: the same request always gets the same reply;
- `stream: true` answers SSE `data: {"choices":[{"delta":{"content":"tok "}}]}` chunks, the
  first after `first_token_ms`, then one every 1/tokens_per_s seconds (0: no delay), then
  `data: [DONE]`; `stream: false` waits the same total and answers one JSON body;
- latency is asyncio.sleep only, so one emulator process serves many slow replies at once.

Failure triggers, read from the last user message (for testing the app's 502 path):
- `__upstream_fail__`: HTTP 500 at once;
- `__upstream_abort__`: a stream sends 3 tokens, then ends without `[DONE]` (non-stream: 500);
- `__upstream_hang__`: no answer until the client gives up (at most HANG_MAX_S).
`GET /healthz` answers 200.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from reference_app.corpus import WORDS

FAIL_TRIGGER = "__upstream_fail__"
ABORT_TRIGGER = "__upstream_abort__"
HANG_TRIGGER = "__upstream_hang__"
ABORT_AFTER_TOKENS = 3
HANG_MAX_S = 60.0
MODEL = "emulator-1"


@dataclass(frozen=True)
class UpstreamConfig:
    first_token_ms: float = 50.0
    tokens_per_s: float = 200.0
    reply_tokens: int = 120

    def __post_init__(self) -> None:
        if self.first_token_ms < 0 or self.tokens_per_s < 0 or self.reply_tokens < 1:
            raise ValueError("first_token_ms and tokens_per_s must be >= 0, reply_tokens >= 1")

    def token_due_s(self, index: int) -> float:
        """Seconds from the request to token `index` (0-based)."""
        gap = 1.0 / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        return self.first_token_ms / 1000.0 + index * gap


def reply_tokens(messages: list[dict[str, str]], count: int) -> list[str]:
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":")).encode()
    seed = int.from_bytes(hashlib.sha256(canonical).digest()[:8], "big")
    return [word + " " for word in random.Random(seed).choices(WORDS, k=count)]


def _messages(body: Any) -> list[dict[str, str]] | None:
    if not isinstance(body, dict):
        return None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    for item in messages:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("role"), str)
            and isinstance(item.get("content"), str)
        ):
            return None
    return messages


def _last_user_text(messages: list[dict[str, str]]) -> str:
    for item in reversed(messages):
        if item["role"] == "user":
            return item["content"]
    return ""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message}}, status_code=status)


def _chunk(delta: dict[str, str], finish_reason: str | None = None) -> bytes:
    payload = {
        "object": "chat.completion.chunk",
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _sleep_until(loop: asyncio.AbstractEventLoop, due: float) -> None:
    delay = due - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def _hang(request: Request) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HANG_MAX_S
    # Poll for the client leaving, so a hung request never holds up the emulator's shutdown.
    while loop.time() < give_up and not await request.is_disconnected():
        await asyncio.sleep(0.1)


def create_upstream_app(config: UpstreamConfig | None = None) -> Starlette:
    cfg = config or UpstreamConfig()

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def completions(request: Request) -> Response:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            body: Any = await request.json()
        except ValueError:
            return _error(400, "body is not JSON")
        messages = _messages(body)
        if messages is None:
            return _error(400, "messages must be a non-empty list of {role, content} strings")
        stream = body.get("stream") is True
        last = _last_user_text(messages)
        if FAIL_TRIGGER in last or (ABORT_TRIGGER in last and not stream):
            return _error(500, "injected failure")
        if HANG_TRIGGER in last:
            await _hang(request)
            return _error(504, "hung on purpose")
        tokens = reply_tokens(messages, cfg.reply_tokens)
        if ABORT_TRIGGER in last:
            tokens = tokens[:ABORT_AFTER_TOKENS]

        if stream:
            return StreamingResponse(
                _stream(loop, started, tokens, complete=ABORT_TRIGGER not in last),
                media_type="text/event-stream",
                headers={"cache-control": "no-cache"},
            )
        await _sleep_until(loop, started + cfg.token_due_s(len(tokens) - 1))
        prompt_tokens = sum(len(item["content"]) for item in messages) // 4
        return JSONResponse(
            {
                "object": "chat.completion",
                "model": MODEL,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "".join(tokens)},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": len(tokens),
                    "total_tokens": prompt_tokens + len(tokens),
                },
            }
        )

    async def _stream(
        loop: asyncio.AbstractEventLoop, started: float, tokens: list[str], complete: bool
    ) -> AsyncIterator[bytes]:
        chunks = (
            _chunk({"role": "assistant", "content": token} if index == 0 else {"content": token})
            for index, token in enumerate(tokens)
        )
        ending = [_chunk({}, finish_reason="stop"), b"data: [DONE]\n\n"] if complete else []
        if cfg.token_due_s(len(tokens) - 1) == 0:
            # An instant schedule (the probe's) sends the stream in one write, so the app reads
            # it the same way every time: token-sized writes coalesce on the socket by chance,
            # and the app's read buffers (its allocations) followed that chance.
            yield b"".join([*chunks, *ending])
            return
        for index, chunk in enumerate(chunks):
            await _sleep_until(loop, started + cfg.token_due_s(index))
            yield chunk
        for chunk in ending:
            yield chunk

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/v1/chat/completions", completions, methods=["POST"]),
        ]
    )
