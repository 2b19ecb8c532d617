"""Tiny ASGI apps with known timings and allocations, to check the instrument itself.

Run with ``python -m uvicorn --factory tests.integration.instrument_apps:make_sse_app`` (or
``make_spike_app``). They are factories so that importing this module starts nothing.

- sse: the chat API's shape with known timings. ``POST /chat`` with ``"stream": true``
  answers its headers at once, the first ``event: token`` after FIRST_TOKEN_S, then
  LATER_TOKENS more tokens TOKEN_GAP_S apart and ``event: done``; a plain ``POST /chat``
  answers JSON, ``GET /history/<id>`` one page without a cursor.
- spike: ``GET /spike?mib=M&hold_ms=H`` fills M MiB, holds it H ms and frees it before
  answering, so the process's RSS rises by M MiB for about H ms.
- ``GET /healthz`` answers 200 on both.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

FIRST_TOKEN_S = 0.150
TOKEN_GAP_S = 0.300
LATER_TOKENS = 3


async def _start(send: Send, status: int, content_type: bytes) -> None:
    headers = [(b"content-type", content_type), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _json(send: Send, payload: dict[str, Any], status: int = 200) -> None:
    await _start(send, status, b"application/json")
    await send({"type": "http.response.body", "body": json.dumps(payload).encode()})


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _token(text: str) -> bytes:
    return f"event: token\ndata: {json.dumps({'token': text})}\n\n".encode()


async def _stream(send: Send) -> None:
    await _start(send, 200, b"text/event-stream")
    await send({"type": "http.response.body", "body": b"", "more_body": True})  # headers now
    await asyncio.sleep(FIRST_TOKEN_S)
    await send({"type": "http.response.body", "body": _token("first"), "more_body": True})
    for n in range(LATER_TOKENS):
        await asyncio.sleep(TOKEN_GAP_S)
        await send({"type": "http.response.body", "body": _token(f"t{n}"), "more_body": True})
    done = b'event: done\ndata: {"history_len": 2}\n\n'
    await send({"type": "http.response.body", "body": done})


def make_sse_app() -> App:
    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = str(scope["path"])
        if path == "/chat" and scope["method"] == "POST":
            request = json.loads(await _body(receive) or b"{}")
            if request.get("stream"):
                await _stream(send)
            else:
                await _json(send, {"reply": "ok", "history_len": 2})
        elif path.startswith("/history/"):
            await _json(send, {"messages": [], "next_cursor": None, "history_len": 0})
        elif path == "/healthz":
            await _json(send, {"status": "ok"})
        else:
            await _json(send, {"error": "not found"}, 404)

    return app


def fill_and_free(mib: int, hold_ms: float) -> None:
    """Touch `mib` MiB (every page written), keep them `hold_ms`, then free them."""
    block = b"\x01" * (mib << 20)
    time.sleep(hold_ms / 1000)  # blocking on purpose: nothing else runs while it is held
    del block


def make_spike_app() -> App:
    async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/spike":
            query = parse_qs(scope.get("query_string", b"").decode())
            fill_and_free(int(query["mib"][0]), float(query.get("hold_ms", ["20"])[0]))
        await _json(send, {"status": "ok"})

    return app
