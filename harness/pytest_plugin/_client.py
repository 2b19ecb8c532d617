"""An ASGI or WSGI app served in this process, and an httpx client whose requests are measured.

No server and no port: a request's bytes go to uvicorn's HTTP protocol object in this process
(harness.pytest_plugin._wire), which calls the app through the same ``TracemallocProbe``
middleware that ``harness probe`` puts in front of a served app (a WSGI app is adapted to ASGI
by a2wsgi first, as ``harness.serve`` does), so a request's figures are the probe's, uvicorn's
share included. The app runs on an event loop of its own (uvloop when installed, as uvicorn
would pick), run in the test's thread for the span of each request (:class:`LoopInThread`); a
test that already runs a loop there (an async test) gets one in a thread beside it instead (an
anyio blocking portal). In the test's thread is the default because a loop driven from another
thread allocates a little at every call (~40 B a request that is never given back here, in the
loop's own machinery), which a retained-memory run would charge to the app.

Tracing is on only while a request is measured: :class:`Tracing` starts tracemalloc before it
and stops it after (unless something else had it on), so tests that measure nothing, and the
unmeasured requests of a test, run at full speed.

An exception of the app is raised in the test (uvicorn would log it and answer 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Protocol, TypeVar

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from harness.analysis.sites import Frame, Site, aggregate
from harness.pytest_plugin._figures import RequestMemory
from harness.pytest_plugin._wire import Wire, decode_response, encode_request
from harness.sampling.probe_sites import SITES_NFRAME, display_roots, library_dirs
from harness.sampling.tracemalloc_probe import PROBE_PREFIX, TracemallocProbe
from harness.serve import PROBE_WSGI_THREADS, as_asgi, interface_of

T = TypeVar("T")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
DEFAULT_BASE_URL = "http://testserver"
REQUEST_TIMEOUT_S = 120.0
MERGED_URLS_KEPT = 256
TRACEMALLOC_FILE = "/tracemalloc.py"
PLUGIN_DIR = "harness/pytest_plugin/"


class MeasurementError(RuntimeError):
    """A request was sent but its figures cannot be trusted (or were not recorded)."""


class Tracing:
    """tracemalloc on for the span of a measurement, then off, so nothing else pays for it.

    The objects that exist when a span starts are frozen (``gc.freeze``) for its length: they
    were allocated untraced, so collecting them cannot change a figure, and the probe's
    collections then scan only what the measured requests created (in a test process with
    pandas loaded, a full collection took 70-95 ms, twice a request). Nested spans share one
    session (a retained run's requests all run inside its span). If tracemalloc was already
    on (``python -X tracemalloc``, the test's own code), it is left on. ``traced_s`` and
    ``tables_peak_bytes`` are tracemalloc's own cost: the time spent traced and the most
    memory its trace tables took.
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
    """Between uvicorn and the probe: takes the snapshots that name a request's sites, and
    keeps an exception of the app for the test (uvicorn would log it and answer 500).

    Only the snapshots are taken here; comparing them is slow Python (tracemalloc's grouping)
    and is left until a site is asked for, when tracing is off.
    """

    def __init__(self, probe: TracemallocProbe) -> None:
        self.probe = probe
        self.measuring = False
        self.snapshots = False
        self.before: tracemalloc.Snapshot | None = None
        self.after: tracemalloc.Snapshot | None = None
        self.error: BaseException | None = None

    def reset(self, measuring: bool, snapshots: bool) -> None:
        self.measuring, self.snapshots = measuring, snapshots
        self.before, self.after, self.error = None, None, None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            if scope["type"] != "http" or not self.measuring:
                await self.probe.app(scope, receive, send)  # unmeasured: past the probe
                return
            self.before = tracemalloc.take_snapshot() if self.snapshots else None
            await self.probe(scope, receive, send)
            if self.snapshots and tracemalloc.is_tracing():
                self.after = tracemalloc.take_snapshot()
        except Exception as exc:
            self.error = exc
            raise


def grown_stacks(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot
) -> list[tuple[list[Frame], float, float]]:
    """(stack innermost first, bytes, blocks) that grew, less the snapshots themselves (a stack
    through tracemalloc.py is one's own memory)."""
    stacks = []
    for stat in after.compare_to(before, "traceback"):
        size = stat.size_diff
        if size > 0 and not any(f.filename.endswith(TRACEMALLOC_FILE) for f in stat.traceback):
            stacks.append((inside_the_plugin(stat.traceback), float(size), float(stat.count_diff)))
    return stacks


def inside_the_plugin(traceback: tracemalloc.Traceback) -> list[Frame]:
    """The frames inside the plugin's own outermost call, innermost first.

    The app's loop runs in the test's thread, so every stack continues through the plugin's
    frames into httpx and the test itself; the test's line would otherwise be "the first frame
    of the service's own code" for everything uvicorn or a library allocated.
    """
    frames: list[Frame] = []
    for f in reversed(list(traceback)):  # a Traceback lists the oldest frame first
        if PLUGIN_DIR in f.filename:
            break
        frames.append((f.filename, f.lineno, ""))
    return frames


class LoopRunner(Protocol):
    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T: ...


class LoopInThread:
    """An event loop of the app's own, run in this thread only while a call runs."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop
        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:
            self.loop = asyncio.new_event_loop()

    def call(self, func: Callable[..., Awaitable[T]], *args: Any) -> T:
        async def run() -> T:
            return await func(*args)

        return self.loop.run_until_complete(run())

    def close(self) -> None:
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def _loop_runner(stack: contextlib.ExitStack) -> LoopRunner:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        runner = LoopInThread()
        stack.callback(runner.close)
        return runner
    portal: BlockingPortal = stack.enter_context(start_blocking_portal(**_loop_options()))
    return portal


class _PortalTransport(httpx.BaseTransport):
    """A synchronous httpx transport: the request's bytes to uvicorn's protocol on the app's
    loop (harness.pytest_plugin._wire), the response parsed from what it wrote.

    Not httpx.ASGITransport: besides skipping uvicorn's share of the request, it tries
    ``import sniffio`` at every request, which fails where anyio no longer brings sniffio, and
    each failed import leaves a little in the import system's caches (read as a leak).
    """

    def __init__(self, portal: LoopRunner, wire: Wire) -> None:
        self._portal = portal
        self._wire = wire

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        connection, raw = encode_request(request, request.read())
        written = self._portal.call(self._wire.exchange, raw)
        status, headers, body = decode_response(connection, written)
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


class ServedApp:
    """One app object served in this process, behind the probe; closed with :meth:`close`."""

    def __init__(self, app: Any, tracing: Tracing, *, interface: str = "auto") -> None:
        chosen = interface_of(app) if interface == "auto" else interface
        self._stack = contextlib.ExitStack()
        self.portal = _loop_runner(self._stack)
        asgi = as_asgi(app, chosen, wsgi_threads=PROBE_WSGI_THREADS)  # as harness probe's
        with tracing.on():  # the probe measures its own bookkeeping once, traced
            self.probe = TracemallocProbe(asgi)
        self._roots: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self.tap = _Tap(self.probe)
        self.wire = Wire(self.tap)
        self.portal.call(self.wire.start)
        self._stack.callback(self.portal.call, self.wire.stop)
        self.portal.call(_fill_future_iterator_free_list)

    def transport(self) -> httpx.BaseTransport:
        return _PortalTransport(self.portal, self.wire)

    def close(self) -> None:
        self._stack.close()

    def record(self, seq_before: int, sites: bool) -> RequestMemory:
        """The probe's record of the request just sent (checked to be that request's)."""
        if self.tap.error is not None:
            raise self.tap.error
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
        before, after = self.tap.before, self.tap.after
        if self._roots is None:
            self._roots = (tuple(library_dirs()), tuple(display_roots()))
        libraries, roots = self._roots

        def sites_of() -> tuple[Site, ...]:
            if not sites or before is None or after is None:
                return ()
            return tuple(aggregate(grown_stacks(before, after), libraries, roots))

        return RequestMemory(
            method=str(record["method"]),
            path=str(record["path"]),
            status=int(record["status"]),
            peak_bytes=int(record["alloc_peak_bytes"]),
            net_bytes=int(record["alloc_net_bytes"]),
            blocks=int(record["blocks"]),
            duration_s=float(record["duration_s"]),
            sites_of=sites_of,
        )


FUTURE_ITERATORS = 300  # CPython's _asyncio keeps up to 255 spare future iterators


async def _fill_future_iterator_free_list() -> None:
    """Fill the free list of ``await future`` iterators before anything is traced.

    CPython's _asyncio module keeps up to 255 freed iterator objects (56 B each) for reuse and
    never gives them back, not even to gc.collect(). A list that starts short grows by a
    traced iterator now and then for hundreds of requests (~25 B a request here), which a
    retained-memory run read as the app's leak; a server that has run a while has it full.
    """
    loop = asyncio.get_running_loop()
    iterators = [loop.create_future().__await__() for _ in range(FUTURE_ITERATORS)]
    del iterators


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
