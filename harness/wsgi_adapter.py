"""A WSGI app as an ASGI one whose response completes only once the WSGI call has returned.

a2wsgi's ``WSGIMiddleware`` runs the WSGI app in a thread and hands each part of the response to
the event loop as it is produced. The client therefore has the whole response (a Flask body
carries a Content-Length) while the thread still runs the app's teardown (``iterable.close()``,
Flask's context pop) and before the loop hears that the thread is done, several loop turns later.
A sequential client sends its next request in that gap (the harness reads ``GET /__probe/last``
at once), and uvicorn reads and parses it, and starts its task, before the tracemalloc probe
reads the measured request's end: ~5.4 KiB of the next request (its scope, headers, request
cycle, task) counted in one request out of two or three, by chance, and ~1.2 KiB more peak when
it lands at the high-water mark (tracemalloc snapshots at the probe's ``end``: docs/internals.md,
"WSGI apps").

``WholeResponseWSGIMiddleware`` keeps the message that would complete the response to the client
(``ResponseHold``) until the WSGI call has returned and the worker thread has let go of the
request, then sends it. From the client's side a WSGI request then ends as an ASGI one does: in
the app's last ``send``, after all of the app's work. Nothing else is delayed: a streamed body's
earlier chunks go out as they come.

``ReleasingThreadPool`` is the thread pool the WSGI calls run in: its worker drops the call (the
environ, Flask's request, the copied context) before it completes the future, so the loop never
resumes the request while the thread still holds them (ThreadPoolExecutor's worker keeps the
work item, and so the call's arguments, until after it has set the result).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, MutableMapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from a2wsgi import WSGIMiddleware

Message = MutableMapping[str, Any]
T = TypeVar("T")

WSGI_THREADS = 10  # a2wsgi's default pool size
# Responses that carry no body whatever their headers say (RFC 9110 6.4.1): complete at the start.
BODYLESS_STATUSES = frozenset({204, 304})


class ResponseHold:
    """Which ASGI response messages to keep back: the one that completes the response to the
    client, and any after it.

    A response is complete to the client at the first of: its ``http.response.start`` when it can
    have no body (a HEAD request, 1xx, 204, 304); the body chunk that reaches its Content-Length;
    the last ``http.response.body`` (``more_body`` false). Pure bookkeeping, no I/O.
    """

    def __init__(self, method: str) -> None:
        self.method = method.upper()
        self.held: list[Message] = []
        self._length: int | None = None  # the Content-Length, when the response has one
        self._sent = 0  # body bytes let through so far

    def takes(self, message: Message) -> bool:
        """True when `message` is kept back (then send it later, from :meth:`release`)."""
        if self.held or self._completes(message):
            self.held.append(message)
            return True
        if message.get("type") == "http.response.body":
            self._sent += len(message.get("body", b""))
        return False

    def release(self) -> list[Message]:
        """The messages kept back, in order; the hold is empty after."""
        held, self.held = self.held, []
        return held

    def _completes(self, message: Message) -> bool:
        kind = message.get("type")
        if kind == "http.response.start":
            self._length = _content_length(message.get("headers") or ())
            status = int(message.get("status", 200))
            return self.method == "HEAD" or status < 200 or status in BODYLESS_STATUSES
        if kind != "http.response.body":
            return False
        if not message.get("more_body", False):
            return True
        body_size = len(message.get("body", b""))
        return self._length is not None and self._sent + body_size >= self._length


def _content_length(headers: Any) -> int | None:
    for name, value in headers:
        if bytes(name).lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _run_released(job: list[Callable[[], T]]) -> T:
    """Run the one call in `job`, leaving nothing of it referenced once it has returned."""
    return job.pop()()


class ReleasingThreadPool(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose worker has dropped the call and its arguments by the time
    the future completes (see the module docstring)."""

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        job: list[Callable[[], T]] = [functools.partial(fn, *args, **kwargs)]
        return super().submit(_run_released, job)


class WholeResponseWSGIMiddleware(WSGIMiddleware):
    """a2wsgi's WSGIMiddleware, completing each response only after the WSGI call returned."""

    def __init__(self, app: Any, workers: int = WSGI_THREADS) -> None:
        super().__init__(app, workers=workers)
        self.executor.shutdown(wait=False)  # a2wsgi's own pool: never used, has no thread
        self.executor = ReleasingThreadPool(thread_name_prefix="WSGI", max_workers=workers)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        hold = ResponseHold(str(scope.get("method", "GET")))

        async def send_unless_held(message: Any) -> None:
            if not hold.takes(message):
                await send(message)

        try:
            await super().__call__(scope, receive, send_unless_held)
        finally:
            for message in hold.release():
                await send(message)
