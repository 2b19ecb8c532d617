"""harness.wsgi_adapter: a WSGI response completes to the client only after the WSGI call has
returned, and the thread pool lets go of a call before its future completes."""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from harness.wsgi_adapter import ReleasingThreadPool, ResponseHold


def start(status: int = 200, length: int | None = None) -> dict[str, Any]:
    headers = [(b"content-type", b"text/plain")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {"type": "http.response.start", "status": status, "headers": headers}


def body(data: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def test_the_chunk_that_reaches_the_content_length_is_held_with_what_follows() -> None:
    hold = ResponseHold("GET")
    last, final = body(b"world"), body(b"", more=False)
    assert not hold.takes(start(length=10))
    assert not hold.takes(body(b"hello"))  # 5 of 10 bytes: the client still waits
    assert hold.takes(last)  # 10 of 10: the client would have the whole response
    assert hold.takes(final)
    assert hold.release() == [last, final]
    assert hold.release() == []


def test_without_a_content_length_only_the_last_body_message_is_held() -> None:
    hold = ResponseHold("GET")
    chunks = [body(b"a" * 100) for _ in range(3)]
    assert not hold.takes(start())
    assert not any(hold.takes(chunk) for chunk in chunks)  # a stream's chunks go out at once
    final = body(b"", more=False)
    assert hold.takes(final)
    assert hold.release() == [final]


def test_a_single_complete_body_message_is_held() -> None:
    hold = ResponseHold("GET")
    assert not hold.takes(start(length=2))
    assert hold.takes({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_a_response_without_a_body_is_held_from_its_start(method: str, status: int) -> None:
    hold = ResponseHold(method)
    first = start(status, length=10)
    assert hold.takes(first)
    assert hold.takes(body(b"", more=False))
    assert hold.release()[0] is first


def test_other_messages_pass() -> None:
    assert not ResponseHold("GET").takes({"type": "http.response.trailers"})


class Argument:
    """An argument the call gets; weakly referenced to see when the pool lets go of it."""


def _argument_alive_when_done(pool: ThreadPoolExecutor) -> bool:
    argument = Argument()
    alive = weakref.ref(argument)
    seen: list[bool] = []
    done = threading.Event()

    def on_done(_: Future[bool]) -> None:  # runs in the worker, as it completes the future
        seen.append(alive() is not None)
        done.set()

    registered = threading.Event()
    with pool:
        future = pool.submit(lambda arg: registered.wait(10), argument)
        del argument
        future.add_done_callback(on_done)  # before the call returns: called by the worker
        registered.set()
        assert done.wait(10)
    return seen[0]


def test_the_pool_drops_the_call_before_it_completes_its_future() -> None:
    assert _argument_alive_when_done(ReleasingThreadPool(max_workers=1)) is False


def test_a_plain_pool_still_holds_the_call_when_it_completes_its_future() -> None:
    # Why ReleasingThreadPool exists: the event loop can resume the request while the worker
    # still references its arguments (the WSGI environ and all it holds).
    assert _argument_alive_when_done(ThreadPoolExecutor(max_workers=1)) is True
