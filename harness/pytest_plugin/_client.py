"""An ASGI or WSGI app served in this process, and an httpx client whose requests are measured.

No server and no port: requests go through an httpx transport straight to the app, inside the same
``TracemallocProbe`` middleware that ``harness probe`` puts in front of a served app (a WSGI app
is adapted to ASGI by a2wsgi first, as ``harness.serve`` does), so a request's figures are the
probe's. The app runs on an event loop in a thread of its own (an anyio blocking portal, uvloop
when installed, as uvicorn would pick), and the test calls it synchronously.

Tracing is on only while a request is measured: :class:`Tracing` starts tracemalloc before it
and stops it after (unless something else had it on), so tests that measure nothing, and the
unmeasured requests of a test, run at full speed.

What the in-process client changes, and how it is taken out:

- the response body stays referenced by the client until the app returns (a server would
  have written it to its socket): the traced size of those body chunks is subtracted from the
  request's net figure (the peak is unchanged: the chunks are the app's own objects, not copies);
- the lifespan (startup, shutdown) is run by :func:`lifespan` for an ASGI app, its state handed
  to every request, as uvicorn's ``lifespan="auto"`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping, Sequence
from typing import Any
from urllib.parse import unquote

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from harness.analysis.sites import Frame, Site, aggregate
from harness.pytest_plugin._figures import RequestMemory
from harness.sampling.probe_sites import SITES_NFRAME, display_roots, library_dirs
from harness.sampling.tracemalloc_probe import PROBE_PREFIX, TracemallocProbe
from harness.serve import as_asgi, interface_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
DEFAULT_BASE_URL = "http://testserver"
REQUEST_TIMEOUT_S = 120.0
LIFESPAN_TIMEOUT_S = 60.0
CLIENT_ADDRESS = ("127.0.0.1", 50000)
MERGED_URLS_KEPT = 256
TRACEMALLOC_FILE = "/tracemalloc.py"


class MeasurementError(RuntimeError):
    """A request was sent but its figures cannot be trusted (or were not recorded)."""


class Tracing:
    """tracemalloc on for the span of a measurement, then off, so nothing else pays for it.

    The objects that exist when a span starts are frozen (``gc.freeze``) for its length: they
    were allocated untraced, so collecting them cannot change a figure, and the probe's
    collections then scan only what the measured requests created (in a test process with
    pandas loaded, a full collection took ~40 ms, twice per request). Nested spans share one
    session (a leak run measures each of its requests inside its own
    span). If tracemalloc was already on (``python -X tracemalloc``, the test's own code), it
    is left on. ``traced_s`` and ``tables_peak_bytes`` are tracemalloc's own cost: the time
    spent traced and the most memory its trace tables took.
    """

    def __init__(self, nframe: int = SITES_NFRAME) -> None:
        self.nframe = nframe
        self._depth = 0
        self._ours = False
        self._froze = False
        self._started = 0.0
        self.traced_s = 0.0
        self.tables_peak_bytes = 0

    @property
    def fresh(self) -> bool:
        """This span started tracing itself: it holds only what was allocated since."""
        return self._depth == 1 and self._ours

    @contextlib.contextmanager
    def on(self, nframe: int | None = None) -> Iterator[None]:
        """Trace inside the block (`nframe` frames per allocation when this span starts it)."""
        if self._depth == 0:
            self._ours = not tracemalloc.is_tracing()
            self._froze = gc.get_freeze_count() == 0
            if self._froze:
                gc.freeze()
            if self._ours:
                tracemalloc.start(nframe or self.nframe)
            self._started = time.perf_counter()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self.traced_s += time.perf_counter() - self._started
                if tracemalloc.is_tracing():
                    self.tables_peak_bytes = max(
                        self.tables_peak_bytes, tracemalloc.get_tracemalloc_memory()
                    )
                if self._ours:
                    tracemalloc.stop()
                if self._froze:
                    gc.unfreeze()


class _Tap:
    """Outside the probe: hands the lifespan state to requests, notes the body chunks the
    transport keeps, and takes the snapshots that name a request's sites.

    Only the snapshots are taken here; comparing them is slow Python (tracemalloc's grouping)
    and is left until a site is asked for, when tracing is off.
    """

    def __init__(self, probe: TracemallocProbe, state: dict[str, Any]) -> None:
        self.probe = probe
        self.state = state
        self.measuring = False
        self.snapshots = False
        self.held_bytes = 0
        self.held: list[tuple[tracemalloc.Traceback, int]] = []
        self.before: tracemalloc.Snapshot | None = None
        self.after: tracemalloc.Snapshot | None = None

    def reset(self, measuring: bool, snapshots: bool) -> None:
        self.measuring, self.snapshots = measuring, snapshots
        self.held_bytes, self.held, self.before, self.after = 0, [], None, None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", dict(self.state))
        if scope["type"] != "http" or not self.measuring:
            await self.probe.app(scope, receive, send)  # unmeasured: past the probe
            return
        chunks: list[Any] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        self.before = tracemalloc.take_snapshot() if self.snapshots else None
        await self.probe(scope, receive, keep)
        if not tracemalloc.is_tracing():
            return
        for chunk in chunks:
            traceback = tracemalloc.get_object_traceback(chunk) if type(chunk) is bytes else None
            if traceback is not None:
                self.held.append((traceback, sys.getsizeof(chunk)))
        self.held_bytes = sum(size for _, size in self.held)
        self.after = tracemalloc.take_snapshot() if self.snapshots else None


def grown_stacks(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    held: Sequence[tuple[tracemalloc.Traceback, int]] = (),
) -> list[tuple[list[Frame], float, float]]:
    """(stack innermost first, bytes, blocks) that grew, less the body chunks the client holds
    and less the snapshots themselves (a stack through tracemalloc.py is one's own memory)."""
    held_at: dict[tracemalloc.Traceback, int] = {}
    for traceback, size in held:
        held_at[traceback] = held_at.get(traceback, 0) + size
    stacks = []
    for stat in after.compare_to(before, "traceback"):
        size = stat.size_diff - held_at.get(stat.traceback, 0)
        if size > 0 and not any(f.filename.endswith(TRACEMALLOC_FILE) for f in stat.traceback):
            frames = [(f.filename, f.lineno, "") for f in reversed(list(stat.traceback))]
            stacks.append((frames, float(size), float(stat.count_diff)))
    return stacks


@contextlib.asynccontextmanager
async def lifespan(app: Any, state: dict[str, Any]) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan around the block; an app without one is served as is."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
    task = asyncio.create_task(app({**scope, "state": state}, to_app.get, from_app.put))
    await to_app.put({"type": "lifespan.startup"})
    reply = asyncio.create_task(from_app.get())
    await asyncio.wait({task, reply}, timeout=LIFESPAN_TIMEOUT_S, return_when="FIRST_COMPLETED")
    if not reply.done():
        reply.cancel()
        if task.done():  # the app does not speak lifespan (it raised or returned): no lifespan
            yield
            return
        raise MeasurementError("the app's lifespan startup did not finish")
    message = reply.result()
    if message["type"] == "lifespan.startup.failed":
        raise MeasurementError(f"the app's lifespan startup failed: {message.get('message')}")
    try:
        yield
    finally:
        await to_app.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, LIFESPAN_TIMEOUT_S)


class _PortalTransport(httpx.BaseTransport):
    """A synchronous httpx transport that calls the ASGI app on the portal's event loop.

    Not httpx.ASGITransport: it tries ``import sniffio`` at every request, which fails where
    anyio no longer brings sniffio, and each failed import leaves a little in the import
    system's caches (~150 B per request, read as a leak by a retained-memory run).
    """

    def __init__(self, portal: BlockingPortal, app: Any) -> None:
        self._portal = portal
        self._app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        return self._portal.call(self._handle, request, body)

    async def _handle(self, request: httpx.Request, body: bytes) -> httpx.Response:
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
            "client": CLIENT_ADDRESS,
        }
        complete = asyncio.Event()
        request_sent = False
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal request_sent
            if not request_sent:
                request_sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers.extend(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                if chunk and request.method != "HEAD":
                    parts.append(chunk)
                if not message.get("more_body", False):
                    complete.set()

        await self._app(scope, receive, send)
        complete.set()
        if not status:
            raise MeasurementError(f"{request.method} {url.path}: the app sent no response")
        return httpx.Response(status, headers=headers, content=b"".join(parts))


class ServedApp:
    """One app object served in this process, behind the probe; closed with :meth:`close`."""

    def __init__(self, app: Any, tracing: Tracing, *, interface: str = "auto") -> None:
        chosen = interface_of(app) if interface == "auto" else interface
        self._stack = contextlib.ExitStack()
        self.portal = self._stack.enter_context(start_blocking_portal(**_loop_options()))
        asgi = as_asgi(app, chosen)
        with tracing.on():  # the probe measures its own bookkeeping once, traced
            self.probe = TracemallocProbe(asgi)
        state: dict[str, Any] = {}
        self._roots: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.tap = _Tap(self.probe, state)
        if chosen == "asgi":
            self._stack.enter_context(self.portal.wrap_async_context_manager(lifespan(asgi, state)))

    def transport(self) -> httpx.BaseTransport:
        return _PortalTransport(self.portal, self.tap)

    def close(self) -> None:
        self._stack.close()

    def record(self, seq_before: int, sites: bool) -> RequestMemory:
        """The probe's record of the request just sent (checked to be that request's)."""
        record = self.probe.last
        if record is None or int(record["seq"]) != seq_before + 1:
            raise MeasurementError(
                "the request was not measured (the app raised before it finished, or another "
                "request ran meanwhile)"
            )
        if record["overlapped"]:
            raise MeasurementError(
                f"{record['method']} {record['path']} overlapped another request: its figures "
                "count both (send one request at a time)"
            )
        before, after, held = self.tap.before, self.tap.after, list(self.tap.held)
        if self._roots is None:
            self._roots = (tuple(library_dirs()), tuple(display_roots()))
        libraries, roots = self._roots

        def sites_of() -> tuple[Site, ...]:
            if not sites or before is None or after is None:
                return ()
            return tuple(aggregate(grown_stacks(before, after, held), libraries, roots))

        return RequestMemory(
            method=str(record["method"]),
            path=str(record["path"]),
            status=int(record["status"]),
            peak_bytes=int(record["alloc_peak_bytes"]),
            net_bytes=int(record["alloc_net_bytes"]) - self.tap.held_bytes,
            blocks=int(record["blocks"]),
            duration_s=float(record["duration_s"]),
            sites_of=sites_of,
        )


def _loop_options() -> dict[str, Any]:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {"backend": "asyncio"}
    return {"backend": "asyncio", "backend_options": {"use_uvloop": True}}


class MemoryClient(httpx.Client):
    """An ``httpx.Client`` for one in-process app: each response carries ``.memory``, that
    request's :class:`RequestMemory` (``/__probe/*`` requests are sent unmeasured, as by the
    probe; so is everything sent while :attr:`paused`)."""

    def __init__(
        self,
        served: ServedApp,
        tracing: Tracing,
        on_measured: Callable[[RequestMemory], None],
        on_sent: Callable[[], None] = lambda: None,
        *,
        base_url: str = DEFAULT_BASE_URL,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT_S)
        super().__init__(transport=served.transport(), base_url=base_url, **kwargs)
        self._served = served
        self._tracing = tracing
        self._on_measured = on_measured
        self._on_sent = on_sent
        self.paused = False
        self.last: RequestMemory | None = None
        self._merged_urls: dict[str, httpx.URL] = {}

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL:
        """httpx parses the URL again at every request, and its parser leaves a trickle of
        small objects behind for hundreds of requests (~20 B a request, read as the app's
        retained memory): the merged URL of each path is parsed once (URLs are immutable)."""
        key = str(url)
        merged = self._merged_urls.get(key)
        if merged is None:
            merged = super()._merge_url(url)
            if len(self._merged_urls) < MERGED_URLS_KEPT:
                self._merged_urls[key] = merged
        return merged

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        __tracebackhide__ = True
        if request.url.path.startswith(PROBE_PREFIX):
            return super().send(request, **kwargs)
        self._on_sent()
        if self.paused:
            return super().send(request, **kwargs)
        with self._tracing.on():
            fresh = self._tracing.fresh
            tap = self._served.tap
            tap.reset(measuring=True, snapshots=fresh)
            seq = self._served.probe.seq
            try:
                response = super().send(request, **kwargs)
            finally:
                tap.measuring = tap.snapshots = False
            memory = self._served.record(seq, sites=fresh)
        response.memory = memory  # type: ignore[attr-defined]
        self.last = memory
        self._on_measured(memory)
        return response
