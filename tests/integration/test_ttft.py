"""Time to first token, as `make loadtest` measures it, against a stream of known timing.

A real uvicorn process (tests/integration/instrument_apps.py:make_sse_app) answers the chat
API's requests; a streamed reply sends its headers at once, its first token after 150 ms and
three more 300 ms apart. `harness.load.locust_runner.run_locust` runs the chat scenario
(scenarios/chat.py, the load phase's own) against it for a few seconds. The TTFT Locust
reports must be the first token's delay, within 15 ms: not the headers' time (~0 ms), and not
the time at which some fixed number of bytes had arrived (with 1 KiB chunks, the whole
stream: ~1050 ms).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

from harness.load.locust_runner import run_locust
from harness.stack.processes import LOOPBACK, ProcessGroup, free_port, wait_healthy
from tests.integration.instrument_apps import FIRST_TOKEN_S, LATER_TOKENS, TOKEN_GAP_S

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE_MS = 15.0


def _stats(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return {(row["Type"], row["Name"]): row for row in csv.DictReader(handle)}


def test_ttft_is_the_first_tokens_delay(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    users = [{"user_id": f"u{n}", "history_len": 2, "whale": False} for n in range(4)]
    manifest.write_text(json.dumps({"users": users}), encoding="utf-8")
    with ProcessGroup(tmp_path / "logs") as group:
        port = free_port()
        argv = [
            sys.executable, "-m", "uvicorn", "--factory",
            "tests.integration.instrument_apps:make_sse_app",
            "--host", LOOPBACK, "--port", str(port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        app = group.start("sse-app", argv, cwd=ROOT)
        base = f"http://{LOOPBACK}:{port}"
        wait_healthy(app, f"{base}/healthz", timeout=30)
        result = run_locust(base, "chat", 4, 4.0, 8.0, tmp_path / "load", manifest)
    assert result.ok, result.problem()
    assert result.stats_csv is not None
    assert result.cpu_s > 0 and result.cpu_measured_s > 4.0  # Locust's own CPU was counted
    stats = _stats(result.stats_csv)
    ttft = stats[("TTFT", "POST /chat [stream]")]
    stream = stats[("POST", "POST /chat [stream]")]
    assert int(ttft["Request Count"]) >= 3, ttft
    assert int(stream["Failure Count"]) == 0, stream

    delay_ms = FIRST_TOKEN_S * 1000
    assert float(ttft["Min Response Time"]) >= delay_ms - 1.0, ttft  # never before it was sent
    assert abs(float(ttft["Average Response Time"]) - delay_ms) <= TOLERANCE_MS, ttft
    assert abs(float(ttft["50%"]) - delay_ms) <= TOLERANCE_MS, ttft
    # The stream itself was read to its end: its latency is the whole exchange.
    whole_ms = (FIRST_TOKEN_S + LATER_TOKENS * TOKEN_GAP_S) * 1000
    assert float(stream["Min Response Time"]) >= whole_ms - 1.0, stream
