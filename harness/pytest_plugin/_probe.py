"""The ``memload`` fixture's object: in-process clients, the helpers, and the marker's limits.

- ``memload.client(app)``: an httpx client for an ASGI or WSGI app object; every response has
  ``.memory`` (peak, net, sites);
- ``memload.retained(request)``: bytes kept per request over a run of the same request, after a
  warm-up until steady, with the gate's estimator (harness.analysis.leak): a cache that fills
  once is a step, not a rate;
- ``memload.peak_growth(setup, request, sizes)``: the request's peak at each size the test's own
  ``setup(n)`` brings the app to, and the slope per unit;
- ``memload.peak(request)``: the request's peak after a warm-up (median of a few);
- a limit of the test's ``@pytest.mark.memload(...)`` is checked as soon as its figure exists:
  a helper fails at the test's line that ran it; a request the test sent itself is checked
  when the test has finished (an exception raised inside httpx's call would point at httpx),
  every request over its limit named in the message.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from harness.analysis.leak import estimate_leak, warm_until_steady
from harness.analysis.sites import Site, aggregate
from harness.pytest_plugin._client import (
    MeasurementError,
    MemoryClient,
    ServedApp,
    Tracing,
    grown_stacks,
)
from harness.pytest_plugin._figures import (
    Limits,
    PeakGrowth,
    RequestMemory,
    Retained,
    peak_violation,
    retained_violation,
    slope_violation,
)
from harness.sampling.probe_sites import SITES_NFRAME, display_roots, library_dirs

MAD_TO_SIGMA = 1.4826
SETTLE_S = 0.002  # lets a loop in a thread finish what a request left pending before a reading
SITES_TRIGGER_BYTES = 128.0  # as the gate: retained sites are looked for above this rate
SITES_REQUESTS = 10
# The peak's warm-up (see MemoryProbe._warm_peak): one measured request per window of this many,
# until two readings agree within PEAK_TOLERANCE of the peak (or PEAK_FLOOR_BYTES), at most
# PEAK_MAX_WARMUP requests after the caller's own warm-up.
PEAK_WINDOW = 5
PEAK_TOLERANCE = 0.005
PEAK_FLOOR_BYTES = 64.0
PEAK_MAX_WARMUP = 100


class MemoryLimitError(AssertionError):
    """A figure is above the limit the test's memload marker sets."""


class MemoryProbe:
    """What a test gets as ``memload``. ``requests`` lists every request it measured."""

    def __init__(
        self,
        limits: Limits,
        tracing: Tracing,
        on_figure: Callable[[str, Any], None] = lambda kind, figure: None,
    ) -> None:
        self.limits = limits
        self.requests: list[RequestMemory] = []
        self.retained_runs: list[Retained] = []
        self.growths: list[PeakGrowth] = []
        self._tracing = tracing
        self._on_figure = on_figure
        self._served: list[ServedApp] = []
        self._clients: list[MemoryClient] = []
        self._in_helper = 0
        self.measured = 0  # requests measured one by one, the helpers' included
        self._helper_sent = 0
        self._helper_last: RequestMemory | None = None
        self._sent = 0  # requests sent through the clients, measured or not
        self._checked: set[str] = set()  # the limits a figure was checked against
        self.violations: list[str] = []  # requests over the peak limit, reported at the end

    # --- clients ---------------------------------------------------------------------------

    def client(self, app: Any, *, interface: str = "auto", **httpx_kwargs: Any) -> MemoryClient:
        """An in-process client for `app` (ASGI or WSGI: told apart like harness.serve does,
        or say ``interface="asgi"`` / ``"wsgi"``); closed when the test ends."""
        served = ServedApp(app, self._tracing, interface=interface)
        self._served.append(served)
        client = MemoryClient(
            served, self._tracing, self._measured, self._count_sent, **httpx_kwargs
        )
        self._clients.append(client)
        return client

    @property
    def last(self) -> RequestMemory:
        if not self.requests:
            raise LookupError("memload: no request measured yet")
        return self.requests[-1]

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Requests sent inside the block are not measured (seeding data, logging in)."""
        before = [c.paused for c in self._clients]
        for c in self._clients:
            c.paused = True
        try:
            yield
        finally:
            for c, was in zip(self._clients, before, strict=False):
                c.paused = was

    def close(self) -> None:
        for client in self._clients:
            client.close()
        for served in reversed(self._served):
            served.close()

    def _count_sent(self) -> None:
        self._sent += 1

    def _measured(self, memory: RequestMemory) -> None:
        __tracebackhide__ = True
        self.measured += 1
        if self._in_helper:
            # Nothing may accumulate per request during a helper's run: a list of figures
            # would grow by a record a request and read as a leak of the app.
            self._helper_last = memory
            self._helper_sent += 1
            return
        self.requests.append(memory)
        self._checked.add("peak")
        self._on_figure("request", memory)
        violation = peak_violation(memory, self.limits)
        if violation is not None:
            self.violations.append(violation)

    # --- helpers ---------------------------------------------------------------------------

    def measure(self, request: Callable[[], object]) -> RequestMemory:
        """Call `request` (one request through a memload client); its figures."""
        with self._helper():
            self._helper_sent = 0
            request()
            sent, memory = self._helper_sent, self._helper_last
        if sent != 1 or memory is None:
            raise MeasurementError(
                f"memload: the request callable sent {sent} measured requests; it must send one"
            )
        self._helper_last = None
        return memory

    def unmeasured(self, request: Callable[[], object]) -> None:
        """Call `request` (one request through a memload client) without measuring it."""
        with self.paused():
            before = self._sent
            request()
            sent = self._sent - before
        if sent != 1:
            raise MeasurementError(
                f"memload: the request callable sent {sent} requests; it must send one"
            )

    def peak(
        self, request: Callable[[], object], *, warmup: int = 10, reps: int = 3
    ) -> RequestMemory:
        """The peak of `request` once warm: `warmup` calls unmeasured, more until the peak is
        steady (:meth:`_warm_peak`), then the rep with the median peak of `reps` (the first
        requests of a process pay one-time costs: lazy imports, caches, the interpreter's
        free lists)."""
        __tracebackhide__ = True
        if reps < 1 or warmup < 0:
            raise ValueError("peak() needs reps >= 1 and warmup >= 0")
        self._warm_peak(request, warmup)
        with self._helper():
            figures = sorted((self.measure(request) for _ in range(reps)), key=_peak_of)
        median = figures[(len(figures) - 1) // 2]
        self._checked.add("peak")
        self._on_figure("request", median)
        _fail_if(peak_violation(median, self.limits))
        return median

    def retained(
        self,
        request: Callable[[], object],
        *,
        requests: int = 40,
        every: int = 4,
        warmup_window: int = 20,
        max_warmup: int = 160,
        tolerance_bytes: float = 256.0,
        sites: bool | None = None,
    ) -> Retained:
        """Bytes each call of `request` keeps for good.

        Everything runs traced (one frame per allocation: fast) and unmeasured one by one.
        Warm-up: windows of `warmup_window` requests until two consecutive windows' traced
        memory agrees within `tolerance_bytes` (at most `max_warmup` requests); then
        `requests` more, traced memory read (after a collection) before the first and after
        every `every`-th, and the step-and-slope estimate of harness.analysis.leak (a cache
        that fills once is a step, not a rate). With `sites` (default: when the rate is over
        the marker's limit, or over 128 B without one), 10 more requests traced 16 frames
        deep name the lines that grew, per request.
        """
        __tracebackhide__ = True
        if every < 1 or requests < 2 * every:
            raise ValueError(f"retained() needs requests >= 2 * every: {requests}, {every}")
        first = self.measure(request)
        with self._tracing.on(nframe=1):
            warm = warm_until_steady(
                lambda: self.unmeasured(request),
                _traced_now,
                window=warmup_window,
                max_requests=max_warmup,
                tolerance_bytes=tolerance_bytes,
                min_requests=warmup_window,
            )
            # Readings go into a buffer allocated beforehand: a list of floats would grow by
            # a float a reading (32 B every `every` requests) and be read as the app's leak.
            xs = np.arange(0, requests + 1, every, dtype=float)
            ys = np.zeros(xs.size)
            ys[0] = _traced_now()
            for i in range(1, requests + 1):
                self.unmeasured(request)
                if i % every == 0:
                    ys[i // every] = _traced_now()
            estimate = estimate_leak(xs, ys)
            limit = self.limits.retained
            threshold = limit if limit is not None else SITES_TRIGGER_BYTES
            if sites is None:
                sites = estimate.rate_bytes_per_request > threshold
            found = self._retained_sites(request) if sites else ()
        result = Retained(
            request=first.request,
            bytes_per_request=estimate.rate_bytes_per_request,
            stderr_bytes=estimate.stderr_bytes,
            requests=requests,
            warmup_requests=warm.requests,
            steady=warm.steady,
            one_time_bytes=warm.growth_bytes + estimate.step_bytes,
            sites=found,
        )
        self.retained_runs.append(result)
        self._checked.add("retained")
        self._on_figure("retained", result)
        _fail_if(retained_violation(result, self.limits))
        return result

    def _retained_sites(self, request: Callable[[], object]) -> tuple[Site, ...]:
        """The lines that grew over SITES_REQUESTS requests, per request: tracing restarted
        16 frames deep (the service's own line under a library call), as many requests again
        before the first snapshot (a restart forgets what was traced, and the first requests
        re-trace what they replace), then a snapshot before and after, compared."""
        if tracemalloc.get_traceback_limit() < SITES_NFRAME:
            tracemalloc.stop()
            tracemalloc.start(SITES_NFRAME)
        for _ in range(SITES_REQUESTS):
            self.unmeasured(request)
        _traced_now()
        before = tracemalloc.take_snapshot()
        for _ in range(SITES_REQUESTS):
            self.unmeasured(request)
        _traced_now()
        stacks = grown_stacks(before, tracemalloc.take_snapshot())
        found = aggregate(
            stacks, library_dirs(), display_roots(), per=SITES_REQUESTS, positive_only=True
        )
        return tuple(found)

    def peak_growth(
        self,
        setup: Callable[[int], object],
        request: Callable[[], object],
        sizes: Sequence[int],
        *,
        unit: str = "item",
        reps: int = 3,
        warmup: int = 10,
        reset_after: bool = False,
    ) -> PeakGrowth:
        """The peak of `request` at each of `sizes`, after ``setup(size)`` (unmeasured), and
        the least-squares slope of the median peaks per `unit` of size.

        At each size, `warmup` requests are discarded, more until the peak is steady
        (:meth:`_warm_peak`), then `reps` are measured (the median counts).
        ``reset_after=True``: the request changes the size (it adds a row), so ``setup(size)``
        runs again after each one.
        """
        __tracebackhide__ = True
        if len(set(sizes)) < 2 or reps < 1 or warmup < 0:
            raise ValueError("peak_growth() needs two distinct sizes, reps >= 1, warmup >= 0")
        ordered = sorted(set(sizes))
        peaks: list[float] = []
        spreads: list[float] = []
        largest: RequestMemory | None = None
        name = ""
        with self._helper():
            for size in ordered:
                with self.paused():
                    setup(size)
                reset = None
                if reset_after:
                    reset = functools.partial(self._unmeasured_setup, setup, size)
                self._warm_peak(request, warmup, reset)
                figures = []
                for _ in range(reps):
                    memory = self.measure(request)
                    name = memory.request
                    figures.append(float(memory.peak_bytes))
                    largest = memory
                    if reset is not None:
                        reset()
                peaks.append(float(np.median(figures)))
                spreads.append(_spread(figures))
        slope = float(np.polyfit(np.asarray(ordered, float), np.asarray(peaks), 1)[0])
        result = PeakGrowth(
            name, unit, tuple(ordered), tuple(peaks), tuple(spreads), slope, largest
        )
        self.growths.append(result)
        self._checked.add("slope")
        self._on_figure("growth", result)
        _fail_if(slope_violation(result, self.limits))
        return result

    def _unmeasured_setup(self, setup: Callable[[int], object], size: int) -> None:
        with self.paused():
            setup(size)

    def _warm_peak(
        self,
        request: Callable[[], object],
        warmup: int,
        reset: Callable[[], None] | None = None,
    ) -> None:
        """`warmup` requests unmeasured, then more until the request's peak stops moving: one
        measured request after each window of PEAK_WINDOW, until two consecutive readings
        agree within PEAK_TOLERANCE of the peak (at least PEAK_FLOOR_BYTES), at most
        PEAK_MAX_WARMUP requests. `reset` runs after each request (one that adds a row).

        A fixed warm-up was not enough: a process's first 25-30 requests of the Flask notes
        service peaked higher and higher less (28 KB falling to a steady 23.2 KB, served and
        in-process alike), so after 10 the plugin read +5.4% against `harness probe`, whose
        figures come after its 20-round process warm-up. Once warm (a later size, a later
        test) the first window agrees and this costs PEAK_WINDOW + 2 requests.
        """

        def send() -> None:
            self.unmeasured(request)
            if reset is not None:
                reset()

        def read() -> float:
            memory = self.measure(request)
            if reset is not None:
                reset()
            return float(memory.peak_bytes)

        for _ in range(warmup):
            send()
        tolerance = max(PEAK_FLOOR_BYTES, PEAK_TOLERANCE * read())
        warm_until_steady(
            send,
            read,
            window=PEAK_WINDOW,
            max_requests=PEAK_MAX_WARMUP,
            tolerance_bytes=tolerance,
        )

    def unchecked_limits(self) -> list[str]:
        """Limits of the marker that no figure of the test was checked against."""
        needs = {
            "peak": "the test measured no request",
            "retained": "the test ran no memload.retained()",
            "slope": "the test ran no memload.peak_growth()",
        }
        return [
            f"{key}={self.limits.given[key]!r}: {why}"
            for key, why in needs.items()
            if key in self.limits.given and key not in self._checked
        ]

    @contextlib.contextmanager
    def _helper(self) -> Iterator[None]:
        self._in_helper += 1
        try:
            yield
        finally:
            self._in_helper -= 1


def _fail_if(message: str | None) -> None:
    __tracebackhide__ = True
    if message is not None:
        raise MemoryLimitError(message)


def _peak_of(memory: RequestMemory) -> int:
    return memory.peak_bytes


LOOP_MACHINERY = (
    tracemalloc.Filter(False, "*/harness/pytest_plugin/*"),
    tracemalloc.Filter(False, "*/asyncio/events.py", 80),
    tracemalloc.Filter(False, "*/asyncio/runners.py"),
)


def _traced_now() -> float:
    """Traced memory after the app's loop settled and a collection, less what the event loop
    allocated itself, between Python frames (and the plugin's own bookkeeping).

    Driving an event loop call by call leaves small blocks behind for the first several hundred
    requests of each loop (~25 B a request, allocated by the loop's own C code, with no Python
    frame of the app or a library under it); they are the harness's cost, not the app's: an
    object the app keeps is allocated under one of its own frames, or a library's. The reading
    leaves out the blocks whose innermost frame is the loop's run call (one frame a block is
    traced in a retained run, so that frame is the allocation's own).
    """
    time.sleep(SETTLE_S)
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(LOOP_MACHINERY)
    return float(sum(trace.size for trace in snapshot.traces))


def _spread(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    return MAD_TO_SIGMA * float(np.median(np.abs(v - np.median(v))))
