"""Build the served ASGI app: the design's FastAPI app, wrapped by the probe with --probe.

`create_from_env` is the factory uvicorn workers import (`reference_app.asgi:create_from_env`).
"""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp

from reference_app.api import create_app
from reference_app.settings import Settings


def build_app(
    settings: Settings, upstream_transport: httpx.AsyncBaseTransport | None = None
) -> ASGIApp:
    app: ASGIApp = create_app(settings.design, settings, upstream_transport=upstream_transport)
    if settings.probe:
        # Imported only here: without --probe, nothing of the probe (or tracemalloc) runs.
        from harness.sampling.tracemalloc_probe import TracemallocProbe

        app = TracemallocProbe(app)
    return app


def create_from_env() -> ASGIApp:
    return build_app(Settings.from_env())
