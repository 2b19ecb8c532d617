"""Per-request allocation figures from tracemalloc: a pure ASGI middleware.

`TracemallocProbe(app)` wraps any ASGI app. It starts tracemalloc when it is created (so before
the first request) and measures every HTTP request except `/__probe/*`:

- a few milliseconds for the event loop to finish earlier requests' cleanup (``_settle``);
- ``gc.collect()``, then ``tracemalloc.reset_peak()``; ``start`` = traced memory now (the first
  measured request first freezes what is alive, ``gc.freeze()``: the collections then walk only
  the objects created since, ``_freeze_what_is_alive``);
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
when the probe is created and subtracted; and only the last record is kept, so the probe does
not grow with the number of requests (a deque of 64 grew by a record a request until full, which
a leak run read as ~260 B retained per request). A request whose app raises is not recorded (the
record's ``seq`` then does not advance, which the harness checks).

A record is ``{"method", "path", "status", "alloc_peak_bytes", "alloc_net_bytes", "blocks",
"duration_s"}`` (docs/internals.md) plus ``"seq"`` (1 for the first measured request, +1 for each
next one) and ``"overlapped"``.

``GET /__probe/last`` answers the last record as JSON (404 before the first request), after any
measurement in flight has finished: the client has the response before the record is stored.

Leaks and allocation sites (the gate's figures, harness.analysis.probe and .sites):

- ``GET /__probe/retained``: traced memory and allocated blocks now, after the loop settled and a
  collection (``{"seq", "traced_bytes", "blocks"}``). Read at checkpoints of a run of requests,
  its slope is the bytes each request leaves behind for good.
- ``POST /__probe/sites/peak``: the next measured request runs under memray; its record then has
  ``"peak_sites"`` (what was held at its high-water mark, per line of the service's code) and
  ``"sited": true`` (its figures include memray's bookkeeping: never use them as a rep).
- ``POST /__probe/sites/retained``: a tracemalloc snapshot now; ``GET /__probe/sites/retained``
  later answers the lines that grew since, per request measured in between.
- ``POST /__probe/sites/step`` and ``GET /__probe/sites/step``: the same, at the current trace
  depth (no restart, so the figures measured meanwhile are not skewed) and in total bytes: the
  harness wraps an endpoint's leak run in them, from its first request in the process, to name
  the line where its one-time growth (a cache filling) was allocated.

Other ``/__probe/*`` paths go to the wrapped app unmeasured (the reference app's
``PUT /__probe/history/{user_id}``), and so does any request with the header
``x-memload-unmeasured`` (UNMEASURED_HEADER), whatever its path: the harness sends a recipe's setup
request with it, so a size knob on the service's own route (``PUT /admin/size``) never counts as a
probe record. Non-HTTP scopes (lifespan, websocket) pass through.

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

from harness.sampling.probe_sites import PeakSites, RetainedSites

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBE_PREFIX = "/__probe/"
LAST_PATH = "/__probe/last"
RETAINED_PATH = "/__probe/retained"
PEAK_SITES_PATH = "/__probe/sites/peak"
RETAINED_SITES_PATH = "/__probe/sites/retained"
STEP_SITES_PATH = "/__probe/sites/step"
# A request with this header goes to the app unmeasured (a recipe's setup request, on any path).
UNMEASURED_HEADER = "x-memload-unmeasured"
_UNMEASURED_KEY = UNMEASURED_HEADER.encode("latin-1")
# Only the last record is ever read. Keeping more would make the probe itself grow by a record
# per request until the deque is full, which a leak run would charge to the service.
DEFAULT_KEEP = 1
# Frames kept per allocation. One is enough for the figures and is cheapest: tracemalloc walks
# the stack at every allocation, and 16 frames made the naive design's requests 3-4x slower.
# Retained sites need the service's own line under a library call (json, sqlite3, pydantic),
# so a retained-sites run restarts tracing with SITES_NFRAME (harness.sampling.probe_sites).
DEFAULT_NFRAME = 1
LAST_WAIT_S = 30.0  # how long GET /__probe/last waits for a measurement in flight


class _Response:
    """What the probe watches of the response: its status, and the connection it goes out on.

    Allocated before the start is read. It also stops the connection reading from the last body
    message until the figures are read (:meth:`sent`): the client has the whole response at the
    app's last ``send``, and a client that sends its next request at once (the harness reads
    ``GET /__probe/last``) could have it read, parsed and its task started by uvicorn in the one
    loop turn before ``end`` (uvloop polls the sockets in every turn): ~3-5 KiB of the next
    request in the net figure, by chance (one request in ten on a busy machine, ASGI or WSGI).
    Paused, its bytes wait in the socket until the figures are read. The transport is uvicorn's:
    the ``send`` it passes is a method of its request cycle, which holds the transport; under
    another server there is none and nothing is paused.
    """

    __slots__ = ("code", "paused", "transport")

    def __init__(self, send: Send) -> None:
        self.code = 0
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        self.transport: Any = transport if hasattr(transport, "pause_reading") else None
        self.paused = False

    def sent(self, message: Message) -> None:
        """After each message: pause reading once the last body message is out."""
        if message["type"] != "http.response.body" or message.get("more_body", False):
            return
        transport = self.transport
        if transport is not None and not transport.is_closing() and transport.is_reading():
            transport.pause_reading()
            self.paused = True

    def resume_reading(self) -> None:
        """After the figures are read (whatever happened): read the connection again."""
        if self.paused and not self.transport.is_closing():
            self.transport.resume_reading()
        self.paused = False


class TracemallocProbe:
    """ASGI middleware that records tracemalloc figures for each HTTP request."""

    def __init__(
        self, app: ASGIApp, nframe: int = DEFAULT_NFRAME, keep: int = DEFAULT_KEEP
    ) -> None:
        self.app = app
        self.peak_sites = PeakSites()
        self.retained_sites = RetainedSites()
        self.step_sites = RetainedSites(deep=False, per_request=False)
        if not tracemalloc.is_tracing():
            tracemalloc.start(nframe)
        self.records: deque[dict[str, Any]] = deque(maxlen=keep)
        self.seq = 0  # requests measured so far (the number of the last record)
        self._inflight = 0
        self._started = 0  # requests started so far, measured or not
        self._frozen = False  # the objects alive at the first measured request are frozen
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
            handler = self._own_endpoint(path, str(scope.get("method", "")))
            if handler is not None:
                code, body = await handler()
                await _send_json(send, code, body)
            else:
                await self.app(scope, receive, send)
            return
        if _unmeasured(scope):
            await self.app(scope, receive, send)
            return
        await self._measure(scope, receive, send)

    async def _measure(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._inflight += 1
        self._started += 1
        started_as = self._started
        overlapped = self._inflight > 1
        status = _Response(send)

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.code = int(message["status"])
            await send(message)
            status.sent(message)

        await _settle()
        if not self._frozen:
            _freeze_what_is_alive()
            self._frozen = True
        sited = self.peak_sites.armed
        try:
            request = self.app(scope, receive, send_and_watch)
            if sited:
                with self.peak_sites.tracking():
                    peak, net, blocks, duration = await _measured(request)
            else:
                peak, net, blocks, duration = await _measured(request)
        finally:
            status.resume_reading()
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
                **self._sites_of_request(sited),
            }
        )

    def _sites_of_request(self, sited: bool) -> dict[str, Any]:
        if not sited or self.peak_sites.sites is None:
            return {}
        return {"sited": True, "peak_sites": [s.to_json() for s in self.peak_sites.sites]}

    def _own_endpoint(
        self, path: str, method: str
    ) -> Callable[[], Awaitable[tuple[int, dict[str, Any]]]] | None:
        routes = {
            (LAST_PATH, "GET"): self._last_record,
            (RETAINED_PATH, "GET"): self._retained,
            (PEAK_SITES_PATH, "POST"): self._arm_peak_sites,
            (RETAINED_SITES_PATH, "POST"): self._start_retained_sites,
            (RETAINED_SITES_PATH, "GET"): self._finish_retained_sites,
            (STEP_SITES_PATH, "POST"): self._start_step_sites,
            (STEP_SITES_PATH, "GET"): self._finish_step_sites,
        }
        return routes.get((path, method))

    async def _wait_for_inflight(self) -> None:
        # A client sees the response before the middleware has read the net figure and stored
        # the record (one event-loop turn later): wait for measurements in flight to finish.
        deadline = time.monotonic() + LAST_WAIT_S
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    async def _last_record(self) -> tuple[int, dict[str, Any]]:
        await self._wait_for_inflight()
        record = self.last
        if record is None:
            return 404, {"error": "no request measured yet"}
        return 200, record

    async def _retained(self) -> tuple[int, dict[str, Any]]:
        await self._wait_for_inflight()
        await _settle()
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0]
        return 200, {"seq": self.seq, "traced_bytes": traced, "blocks": sys.getallocatedblocks()}

    async def _arm_peak_sites(self) -> tuple[int, dict[str, Any]]:
        if not PeakSites.available():
            return 501, {"error": "memray is not installed in the service's environment"}
        self.peak_sites.armed = True
        return 200, {"armed": True}

    async def _start_retained_sites(self) -> tuple[int, dict[str, Any]]:
        return await self._start_sites(self.retained_sites)

    async def _finish_retained_sites(self) -> tuple[int, dict[str, Any]]:
        return await self._finish_sites(self.retained_sites)

    async def _start_step_sites(self) -> tuple[int, dict[str, Any]]:
        return await self._start_sites(self.step_sites)

    async def _finish_step_sites(self) -> tuple[int, dict[str, Any]]:
        return await self._finish_sites(self.step_sites)

    async def _start_sites(self, sites: RetainedSites) -> tuple[int, dict[str, Any]]:
        await self._wait_for_inflight()
        await _settle()
        gc.collect()
        sites.start(self.seq)
        return 200, {"seq": self.seq}

    async def _finish_sites(self, sites: RetainedSites) -> tuple[int, dict[str, Any]]:
        await self._wait_for_inflight()
        await _settle()
        gc.collect()
        try:
            return 200, sites.finish(self.seq)
        except RuntimeError as exc:
            return 409, {"error": str(exc)}


def _unmeasured(scope: Scope) -> bool:
    """The request asks not to be measured (UNMEASURED_HEADER; ASGI header names are lowercase)."""
    return any(name == _UNMEASURED_KEY for name, _ in scope.get("headers") or ())


async def _send_json(send: Send, code: int, body: dict[str, Any]) -> None:
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


def _freeze_what_is_alive() -> None:
    """Move every object alive now (modules, classes, the app and its clients) out of the
    collector's reach, so that the two ``gc.collect()`` of each measured request walk only what
    was created since. Walking a served app's ~60,000 import-time objects took ~20 ms per
    collection, two per request: most of a probe's time. The bytes are unchanged: a request's
    cyclic garbage is young and still collected; what stays is what was alive anyway. (An object
    frozen here that later becomes cyclic garbage is never freed: a one-time cost, not a rate.)
    """
    gc.collect()
    gc.freeze()


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
