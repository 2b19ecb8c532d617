"""Per-request allocation figures from tracemalloc: a pure ASGI middleware.

`TracemallocProbe(app)` wraps any ASGI app. It starts tracemalloc when it is created (so before
the first request) and measures every HTTP request except `/__probe/*`:

- a few milliseconds for the event loop to finish earlier requests' cleanup (``_settle``);
- ``gc.collect()``, then ``tracemalloc.reset_peak()``; ``start`` = traced memory now;
- the wrapped app runs until its coroutine returns (a streamed body is complete by then);
- ``alloc_peak_bytes`` = tracemalloc's peak during the request minus ``start``;
- one turn of the event loop (``asyncio.sleep(0)``) and ``gc.collect()`` again, then
  ``alloc_net_bytes`` = traced memory now minus ``start``: what the request left reachable. The
  turn lets the loop drop the callback that resumed the request, which still references the
  result of the request's last awaited future (say, rows read in an executor thread: 23 KB for a
  history page, freed a moment later, not held); the collection drops the request's cyclic
  garbage. The middleware therefore needs an asyncio event loop (uvicorn's);
- ``blocks`` = ``sys.getallocatedblocks()`` after minus before (both after a collection): the net
  number of pymalloc blocks (small objects, <= 512 bytes) the request left allocated, a count-based
  leak signal that ignores large buffers, which go to the system allocator;
- ``duration_s``: wall time inside the middleware, under tracemalloc (several times slower than
  normal: never a latency figure).

tracemalloc counts the whole process, so a figure is exact only when one request runs at a time:
the probe phase sends requests strictly one after another. A request that overlapped another one
is still recorded, with ``"overlapped": true``, so the harness can reject it.

The probe's own bookkeeping stays out of the figures: everything it allocates for a request (the
record, the deque slot) is allocated after the figures are read; what the measurement itself
creates after reading the start (a few ints and a float) is measured once around a null request
when the probe is created and subtracted; and records are kept in a bounded deque, so the probe
does not grow with the number of requests. A request whose app raises is not recorded (the
record's ``seq`` then does not advance, which the harness checks).

A record is ``{"method", "path", "status", "alloc_peak_bytes", "alloc_net_bytes", "blocks",
"duration_s"}`` (docs/internals.md) plus ``"seq"`` (1 for the first measured request, +1 for each
next one) and ``"overlapped"``.

``GET /__probe/last`` answers the last record as JSON (404 before the first request), after any
measurement in flight has finished: the client has the response before the record is stored. Other
``/__probe/*`` paths go to the wrapped app unmeasured (the reference app's
``PUT /__probe/history/{user_id}``). Non-HTTP scopes (lifespan, websocket) pass through.

Nothing here runs at import time: tracemalloc starts only when a probe is created.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBE_PREFIX = "/__probe/"
LAST_PATH = "/__probe/last"
DEFAULT_KEEP = 64
LAST_WAIT_S = 30.0  # how long GET /__probe/last waits for a measurement in flight


class _Status:
    """The response status, filled in by the send wrapper; allocated before the start is read."""

    __slots__ = ("code",)

    def __init__(self) -> None:
        self.code = 0


class TracemallocProbe:
    """ASGI middleware that records tracemalloc figures for each HTTP request."""

    def __init__(self, app: ASGIApp, nframe: int = 1, keep: int = DEFAULT_KEEP) -> None:
        self.app = app
        if not tracemalloc.is_tracing():
            tracemalloc.start(nframe)
        self.records: deque[dict[str, Any]] = deque(maxlen=keep)
        self.seq = 0  # requests measured so far (the number of the last record)
        self._inflight = 0
        self._started = 0  # requests started so far, measured or not
        self.overhead = _bookkeeping_overhead()

    @property
    def last(self) -> dict[str, Any] | None:
        return self.records[-1] if self.records else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        if path.startswith(PROBE_PREFIX):
            if path == LAST_PATH and scope.get("method") == "GET":
                await self._send_last(send)
            else:
                await self.app(scope, receive, send)
            return
        await self._measure(scope, receive, send)

    async def _measure(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._inflight += 1
        self._started += 1
        started_as = self._started
        overlapped = self._inflight > 1
        status = _Status()

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.code = int(message["status"])
            await send(message)

        await _settle()
        try:
            peak, net, blocks, duration = await _measured(self.app(scope, receive, send_and_watch))
        finally:
            self._inflight -= 1
        overlapped = overlapped or self._started != started_as
        self.seq += 1
        self.records.append(
            {
                "seq": self.seq,
                "method": scope.get("method", ""),
                "path": scope.get("path", ""),
                "status": status.code,
                "alloc_peak_bytes": peak - self.overhead[0],
                "alloc_net_bytes": net - self.overhead[1],
                "blocks": blocks - self.overhead[2],
                "duration_s": round(duration, 6),
                "overlapped": overlapped,
            }
        )

    async def _send_last(self, send: Send) -> None:
        # A client sees the response before the middleware has read the net figure and stored
        # the record (one event-loop turn later): wait for measurements in flight to finish.
        deadline = time.monotonic() + LAST_WAIT_S
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        record = self.last
        if record is None:
            code, body = 404, {"error": "no request measured yet"}
        else:
            code, body = 200, record
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})


async def _measured(request: Awaitable[None]) -> tuple[int, int, int, float]:
    """Run one request; (peak above start, end minus start, net pymalloc blocks, seconds).

    If the request raises, the exception propagates and nothing is recorded.
    """
    gc.collect()
    blocks_before = sys.getallocatedblocks()
    t0 = time.perf_counter()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    await request
    peak = tracemalloc.get_traced_memory()[1]
    duration = time.perf_counter() - t0
    # One turn of the event loop: the callback that resumed the request (it holds the result of
    # the last awaited future, e.g. rows read in an executor thread) is dropped only then.
    await asyncio.sleep(0)
    gc.collect()
    end = tracemalloc.get_traced_memory()[0]
    blocks_after = sys.getallocatedblocks()
    return peak - start, end - start, blocks_after - blocks_before, duration


SETTLE_S = 0.005
SETTLE_ROUNDS = 2


async def _settle() -> None:
    """Let the loop finish what earlier requests left pending before the start is read.

    Event loops free a closed connection's transport, buffers and callbacks over several later
    iterations (uvloop in particular); without this, that cleanup can land inside the next
    measured request and show as a lower peak and a negative net figure (seen: -14 KB, -170
    blocks, about one request in twenty). A few milliseconds per request, probe mode only.
    """
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(SETTLE_S)


async def _nothing() -> None:
    return None


def _bookkeeping_overhead(runs: int = 5) -> tuple[int, int, int]:
    """What `_measured` itself counts around a request that allocates nothing.

    The ints and the float it creates after reading the start (a few dozen bytes, a few blocks)
    would otherwise show in every figure; the minimum over a few null measurements is subtracted.
    """
    figures = []
    for _ in range(runs):
        coro = _measured(_nothing())
        try:
            while True:  # asyncio.sleep(0) yields a bare None: no event loop is needed here
                coro.send(None)
        except StopIteration as done:
            figures.append(done.value)
    return (
        min(f[0] for f in figures),
        min(f[1] for f in figures),
        min(f[2] for f in figures),
    )
