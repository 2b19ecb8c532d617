"""`python -m harness.serve module:app`: serve any ASGI or WSGI app the way the harness needs it.

    python -m harness.serve MODULE:ATTR [--factory] [--interface auto|asgi|wsgi]
                            [--host 127.0.0.1] --port P [--workers N] [--probe]

A target with `python_app = "module:app"` is served through this (see
harness.config.target_spec): the module is imported from the working directory (the target's
`cwd`), and

- SIGINT and SIGTERM both end in a graceful shutdown and exit status 0 (uvicorn alone
  re-raises the signal, which leaves a memray capture unfinished), so the profile phase can
  run it under `memray run -m harness.serve ...`;
- a WSGI app (Flask, Django...) is adapted to ASGI by a2wsgi's WSGIMiddleware (its
  requests run in a thread pool) and served by uvicorn like any ASGI app; a response completes
  to the client only once the WSGI call has returned (harness.wsgi_adapter).
  `--interface auto` (the default) tells them apart: an ASGI app's `__call__` is a
  coroutine function, a WSGI app's takes two arguments (environ, start_response);
- `--probe` wraps the (adapted) app in
  harness.sampling.tracemalloc_probe.TracemallocProbe (one process only), so a WSGI app
  gets the same per-request figures as an ASGI one; a2wsgi's pool then has one thread
  (PROBE_WSGI_THREADS), so no measured request pays for starting one;
- `--workers N` > 1 serves N uvicorn worker processes (spawned: they import MODULE:ATTR
  themselves, through `worker_app`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import os
import signal
import sys
import threading
from collections.abc import Generator, Sequence
from typing import Any

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 5
INTERFACES = ("auto", "asgi", "wsgi")
# What the spawned uvicorn workers of a WSGI app read to build it (see worker_app).
WORKER_APP_ENV = "HARNESS_SERVE_APP"
WORKER_FACTORY_ENV = "HARNESS_SERVE_FACTORY"
WORKER_INTERFACE_ENV = "HARNESS_SERVE_INTERFACE"
WORKER_FACTORY = "harness.serve:worker_app"
# The probe sends one request at a time, so a WSGI app's pool needs one thread. With a2wsgi's
# ten, a request submitted before the last one's thread had marked itself idle started a new
# thread (+5.4 KB kept, 52 blocks, ~1-3 KB more peak) until ten existed: timing decided which
# requests paid, and the notes service's 404 median moved 11% between two probe runs.
PROBE_WSGI_THREADS = 1


class _CleanExitServer(uvicorn.Server):
    """uvicorn.Server that does not re-raise the signal that stopped it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def load_app(spec: str, factory: bool = False) -> Any:
    """The object `module:attr` names (called when it is a factory)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"expected MODULE:ATTR, got {spec!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj() if factory else obj


def interface_of(app: Any) -> str:
    """ "asgi" or "wsgi": an ASGI app's __call__ is a coroutine function (ASGI 3); a WSGI
    app is called with (environ, start_response). Anything else is left to uvicorn."""
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else type(app).__call__
    if inspect.iscoroutinefunction(call) or inspect.isclass(app):
        return "asgi"
    try:
        params = [
            p
            for p in inspect.signature(app).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return "asgi"
    return "wsgi" if len(params) == 2 else "asgi"


def as_asgi(app: Any, interface: str = "auto", *, wsgi_threads: int | None = None) -> Any:
    """The app as an ASGI app: a WSGI one behind a2wsgi's WSGIMiddleware (its thread pool of
    `wsgi_threads` threads; a2wsgi's default, 10, when None), in the variant that completes a
    response only once the WSGI call has returned (harness.wsgi_adapter: else the client's
    next request lands inside the probe's measurement of this one)."""
    chosen = interface_of(app) if interface == "auto" else interface
    if chosen != "wsgi":
        return app
    from harness.wsgi_adapter import WholeResponseWSGIMiddleware

    if wsgi_threads is None:
        return WholeResponseWSGIMiddleware(app)
    return WholeResponseWSGIMiddleware(app, workers=wsgi_threads)


def worker_app() -> Any:
    """The app, as ASGI, in each of uvicorn's spawned workers (a factory uvicorn imports)."""
    app = load_app(os.environ[WORKER_APP_ENV], os.environ.get(WORKER_FACTORY_ENV) == "1")
    return as_asgi(app, os.environ.get(WORKER_INTERFACE_ENV, "auto"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.serve", description=__doc__)
    parser.add_argument("app", metavar="MODULE:ATTR", help="the ASGI or WSGI app (or its factory)")
    parser.add_argument("--factory", action="store_true", help="ATTR is an app factory")
    parser.add_argument(
        "--interface",
        choices=INTERFACES,
        default="auto",
        help="asgi, wsgi, or auto: tell them apart by the app's call signature (default)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--probe", action="store_true", help="wrap in the tracemalloc probe")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        print("python -m harness.serve: error: --workers must be >= 1", file=sys.stderr)
        return 2
    if args.probe and args.workers > 1:
        print("python -m harness.serve: error: --probe needs one worker", file=sys.stderr)
        return 2
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # the target's cwd, as `python -m` has it
    common: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "lifespan": "auto",
        "access_log": False,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
    }
    if args.workers > 1:
        # The supervisor stops its workers on SIGINT or SIGTERM and returns. It does not
        # import the app (its memory would count in the tree): each spawned worker builds it
        # with worker_app, which adapts a WSGI app there.
        os.environ[WORKER_APP_ENV] = args.app
        os.environ[WORKER_FACTORY_ENV] = "1" if args.factory else "0"
        os.environ[WORKER_INTERFACE_ENV] = args.interface
        uvicorn.run(WORKER_FACTORY, factory=True, workers=args.workers, **common)
        return 0
    threads = PROBE_WSGI_THREADS if args.probe else None
    app = as_asgi(load_app(args.app, args.factory), args.interface, wsgi_threads=threads)
    if args.probe:
        from harness.sampling.tracemalloc_probe import TracemallocProbe

        app = TracemallocProbe(app)
    server = _CleanExitServer(uvicorn.Config(app, **common))
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
