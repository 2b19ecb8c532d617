"""Tiny ASGI apps wrapped in TracemallocProbe, for the probe's calibration test.

Run with ``python -m uvicorn --factory tests.integration.probe_apps:make_hold_app`` (or
``make_keep_app``). They are factories so that importing this module starts nothing.

- hold: ``GET /bytes?n=N`` allocates ``bytearray(N)``, keeps it alive while it sends the response
  (in two body chunks, so the buffer lives across an ``await``), then drops it: peak ~ N, net ~ 0.
- keep: ``GET /bytes?n=N`` appends ``bytearray(N)`` to a module-level list: peak ~ N, net ~ N.
- hold: ``GET /sleep?s=S`` sleeps S seconds (to make concurrent requests overlap).
- ``GET /healthz`` answers 200 on both (and is measured like any request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from harness.sampling.tracemalloc_probe import TracemallocProbe

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

KEPT: list[bytearray] = []


def _size(scope: MutableMapping[str, Any]) -> int:
    query = parse_qs(scope.get("query_string", b"").decode())
    return int(query.get("n", ["0"])[0])


async def _respond(send: Send, status: int, body: bytes, more: bool = False) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": more})


async def _hold(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/sleep":
        await asyncio.sleep(float(parse_qs(scope["query_string"].decode())["s"][0]))
    if scope["path"] != "/bytes":
        await _respond(send, 200, b"ok")
        return
    buf = bytearray(_size(scope))
    await _respond(send, 200, b"held ", more=True)
    await asyncio.sleep(0)
    await send({"type": "http.response.body", "body": str(len(buf)).encode()})
    del buf


async def _keep(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] != "/bytes":
        await _respond(send, 200, b"ok")
        return
    KEPT.append(bytearray(_size(scope)))
    await _respond(send, 200, str(len(KEPT)).encode())


def make_hold_app() -> TracemallocProbe:
    return TracemallocProbe(_hold)


def make_keep_app() -> TracemallocProbe:
    return TracemallocProbe(_keep)


# sized: a data-size knob and known costs, for the recipe-driven probe's calibration.
SIZED_UNIT = 1000  # bytes per size unit held at the peak of GET /work
SIZED_BASE = 20_000  # bytes held at every GET /work's peak, whatever the size
SIZED_LEAK = 1024  # bytes each POST /leak keeps for ever (its object's sys.getsizeof)
_SIZED = {"n": 0}


async def _read_json(receive: Receive) -> Any:
    import json

    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            return json.loads(body or b"{}")


async def _sized(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    import sys

    if scope["type"] != "http":
        return
    path = scope["path"]
    if path in ("/__probe/size", "/admin/size"):  # the same knob, under the probe's prefix or not
        _SIZED["n"] = int((await _read_json(receive))["n"])
        await _respond(send, 200, b"ok")
    elif path == "/work":
        # one buffer of a known size, held across an await like a real response being built
        buf = bytearray(SIZED_BASE + SIZED_UNIT * _SIZED["n"])
        await _respond(send, 200, b"held ", more=True)
        await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": str(len(buf)).encode()})
        del buf
    elif path == "/leak":
        KEPT.append(bytearray(SIZED_LEAK - (sys.getsizeof(bytearray(0)))))
        await _respond(send, 201, b"kept")
    else:
        await _respond(send, 200, b"ok")


def make_sized_app() -> TracemallocProbe:
    return TracemallocProbe(_sized)
