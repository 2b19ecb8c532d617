"""`python -m harness.serve module:app --probe` on a WSGI app: adapted by a2wsgi, served by
uvicorn, measured by the same TracemallocProbe as an ASGI app, with figures as exact.

The app (tests/integration/wsgi_apps.py) allocates known buffers; the tolerances are those of
the ASGI calibration (test_probe_calibration.py): the peak above a bare request's within 5%
of N, the net of a kept buffer within 5% of N. A bare request costs more through a2wsgi (the
WSGI environ, the thread-pool hand-off) than on plain ASGI, so its own limit is wider.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.stack.processes import LOOPBACK, ProcessGroup, free_port, wait_healthy

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KIB = 1024
MIB = 1024 * KIB
BARE_LIMIT = 64 * KIB


@pytest.fixture(scope="module")
def wsgi_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("wsgi") / "logs"
    with ProcessGroup(logs) as group:
        port = free_port()
        argv = [
            sys.executable, "-m", "harness.serve", "tests.integration.wsgi_apps:app",
            "--host", LOOPBACK, "--port", str(port), "--probe",
        ]  # fmt: skip
        proc = group.start("wsgi-app", argv, cwd=ROOT)
        base = f"http://{LOOPBACK}:{port}"
        wait_healthy(proc, f"{base}/healthz", timeout=30)
        yield base


def _measure(client: httpx.Client, path: str, n: int) -> dict[str, Any]:
    response = client.get(path, params={"n": n})
    assert response.status_code == 200, response.text
    record: dict[str, Any] = client.get("/__probe/last").json()
    assert record["path"] == path and record["status"] == 200 and not record["overlapped"]
    return record


def test_a_wsgi_app_answers_and_its_requests_are_recorded(wsgi_app: str) -> None:
    with httpx.Client(base_url=wsgi_app, timeout=30) as client:
        assert client.get("/healthz").text == "ok"
        first = client.get("/__probe/last").json()
        assert first["path"] == "/healthz" and first["method"] == "GET"
        assert client.get("/nowhere").status_code == 404
        second = client.get("/__probe/last").json()
        assert (second["path"], second["status"]) == ("/nowhere", 404)
        assert second["seq"] == first["seq"] + 1


def test_a_wsgi_app_gets_the_asgi_figures(wsgi_app: str) -> None:
    n = 1 * MIB
    with httpx.Client(base_url=wsgi_app, timeout=30) as client:
        for _ in range(5):  # warm-up: a2wsgi's thread pool, free lists
            _measure(client, "/bytes", 0)
        bare = sorted(_measure(client, "/bytes", 0)["alloc_peak_bytes"] for _ in range(5))[2]
        assert 0 < bare < BARE_LIMIT
        held = [_measure(client, "/bytes", n) for _ in range(3)]
        kept = [_measure(client, "/keep", n) for _ in range(3)]
    for record in held:
        assert abs(record["alloc_peak_bytes"] - bare - n) <= 0.05 * n, (bare, record)
        assert abs(record["alloc_net_bytes"]) < 16 * KIB, record
    for record in kept:
        assert abs(record["alloc_net_bytes"] - n) <= 0.05 * n, record
        assert abs(record["alloc_peak_bytes"] - bare - n) <= 0.05 * n, (bare, record)
