"""A tiny WSGI app for the harness.serve WSGI test (served by `python -m harness.serve`).

- ``GET /bytes?n=N`` allocates ``bytearray(N)`` and drops it once the response is built:
  peak ~ N, net ~ 0.
- ``GET /keep?n=N`` appends ``bytearray(N)`` to a module-level list: peak ~ N, net ~ N.
- ``GET /healthz`` answers 200.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

KEPT: list[bytearray] = []


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    n = int(parse_qs(environ.get("QUERY_STRING", "")).get("n", ["0"])[0])
    body = b"ok"
    if path == "/bytes":
        buf = bytearray(n)
        body = str(len(buf)).encode()
        del buf
    elif path == "/keep":
        KEPT.append(bytearray(n))
        body = str(len(KEPT)).encode()
    elif path != "/healthz":
        start_response("404 Not Found", [("content-type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("content-type", "text/plain")])
    return [body]
