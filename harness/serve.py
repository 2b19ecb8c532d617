"""`python -m harness.serve module:app`: serve any ASGI app the way the harness needs it.

    python -m harness.serve MODULE:ATTR [--factory] [--host 127.0.0.1] --port P
                            [--workers N] [--probe]

A target with `python_app = "module:app"` is served through this (see
harness.target_spec): the module is imported from the working directory (the target's
`cwd`), and

- SIGINT and SIGTERM both end in a graceful shutdown and exit status 0 (uvicorn alone
  re-raises the signal, which leaves a memray capture unfinished), so the profile phase can
  run it under `memray run -m harness.serve ...`;
- `--probe` wraps the app in harness.sampling.tracemalloc_probe.TracemallocProbe (one
  process only);
- `--workers N` > 1 serves N uvicorn worker processes (spawned: they import MODULE:ATTR
  themselves).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Generator, Sequence
from typing import Any

import uvicorn

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 5


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.serve", description=__doc__)
    parser.add_argument("app", metavar="MODULE:ATTR", help="the ASGI app (or its factory)")
    parser.add_argument("--factory", action="store_true", help="ATTR is an app factory")
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
        # The supervisor stops its workers on SIGINT or SIGTERM and returns.
        uvicorn.run(args.app, factory=args.factory, workers=args.workers, **common)
        return 0
    app = load_app(args.app, args.factory)
    if args.probe:
        from harness.sampling.tracemalloc_probe import TracemallocProbe

        app = TracemallocProbe(app)
    server = _CleanExitServer(uvicorn.Config(app, **common))
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
