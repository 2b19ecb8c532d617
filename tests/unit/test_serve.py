"""harness.serve tells ASGI from WSGI apps and adapts WSGI ones (a2wsgi)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest
from a2wsgi import WSGIMiddleware
from fastapi import FastAPI
from flask import Flask

from harness.serve import PROBE_WSGI_THREADS, as_asgi, build_parser, interface_of


def wsgi_function(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    return [b""]


async def asgi_function(scope: Any, receive: Any, send: Any) -> None:
    return None


class WsgiCallable:
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return [b""]


@pytest.mark.parametrize(
    ("app", "interface"),
    [
        (Flask(__name__), "wsgi"),
        (wsgi_function, "wsgi"),
        (WsgiCallable(), "wsgi"),
        (FastAPI(), "asgi"),
        (asgi_function, "asgi"),
        (WSGIMiddleware(wsgi_function), "asgi"),
    ],
    ids=["flask", "wsgi-function", "wsgi-callable", "fastapi", "asgi-function", "adapted"],
)
def test_interface_is_told_by_the_call_signature(app: Any, interface: str) -> None:
    assert interface_of(app) == interface


def test_only_wsgi_apps_are_adapted() -> None:
    flask = Flask(__name__)
    adapted = as_asgi(flask)
    assert isinstance(adapted, WSGIMiddleware) and adapted.app is flask
    fastapi = FastAPI()
    assert as_asgi(fastapi) is fastapi
    assert isinstance(as_asgi(wsgi_function, "wsgi"), WSGIMiddleware)
    assert as_asgi(wsgi_function, "asgi") is wsgi_function  # the flag wins over the guess


def test_the_interface_flag_is_checked() -> None:
    parser = build_parser()
    assert parser.parse_args(["m:app", "--port", "1"]).interface == "auto"
    assert parser.parse_args(["m:app", "--port", "1", "--interface", "wsgi"]).interface == "wsgi"
    with pytest.raises(SystemExit):
        parser.parse_args(["m:app", "--port", "1", "--interface", "rsgi"])


def test_a_probed_wsgi_app_gets_a_pool_of_one_thread() -> None:
    """One request at a time needs one thread; a2wsgi's ten started threads mid-run, which
    timing decided and the measured request paid for."""
    adapted = as_asgi(wsgi_function, "wsgi", wsgi_threads=PROBE_WSGI_THREADS)
    assert PROBE_WSGI_THREADS == 1
    assert adapted.executor._max_workers == 1
    assert as_asgi(wsgi_function, "wsgi").executor._max_workers == 10  # a2wsgi's, under load
