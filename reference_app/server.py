"""Run an ASGI app with uvicorn so that SIGINT and SIGTERM both end in exit status 0.

uvicorn.Server re-raises the signal that stopped it once shutdown is done: SIGTERM then kills
the process with status -15 and SIGINT becomes a KeyboardInterrupt. A memray capture needs a
normal interpreter exit, and the harness stops servers with either signal, so the signal is
handled here and not re-raised: both run the same graceful shutdown (lifespan included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Generator, Mapping
from typing import Any

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 5
EXIT_STARTUP_FAILED = 1


class CleanExitServer(uvicorn.Server):
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


def exit_cleanly_on_signals() -> None:
    """Until uvicorn installs its own handlers (imports, app creation: nothing is open yet),
    make SIGINT and SIGTERM a plain exit with status 0 as well."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    for sig in HANDLED_SIGNALS:
        signal.signal(sig, _exit)


def _config(app: Any, host: str, port: int, **extra: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        # One log line per request would cost the server under load more than some endpoints.
        access_log=False,
        # "auto" is uvloop when installed (it is a dependency, as in uvicorn[standard]). Its
        # reads go into one preallocated buffer per loop; asyncio's default loop allocates a
        # 256 KiB bytes object per socket read and then shrinks it, which alone was ~85% of
        # an optimized request's tracemalloc peak. Both designs run on the same loop.
        loop="auto",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **extra,
    )


def run_app(app: Any, host: str, port: int, **extra: Any) -> int:
    """Serve `app` in this process until SIGINT or SIGTERM; 0 after a clean shutdown.
    `extra`: more uvicorn.Config settings."""
    server = CleanExitServer(_config(app, host, port, **extra))
    server.run()
    return 0 if server.started else EXIT_STARTUP_FAILED


def run_workers(factory: str, env: Mapping[str, str], host: str, port: int, workers: int) -> int:
    """Serve the app `factory` (an import string) in `workers` processes.

    Workers are fresh interpreters that import the factory by name: their settings travel
    in the environment. uvicorn's supervisor stops them on SIGINT or SIGTERM and returns.
    """
    os.environ.update(env)
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        lifespan="on",
        access_log=False,
        # "auto" is uvloop when installed (it is a dependency, as in uvicorn[standard]). Its
        # reads go into one preallocated buffer per loop; asyncio's default loop allocates a
        # 256 KiB bytes object per socket read and then shrinks it, which alone was ~85% of
        # an optimized request's tracemalloc peak. Both designs run on the same loop.
        loop="auto",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0
