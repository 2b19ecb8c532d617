"""The locustfiles' pure helpers, checked in a subprocess: importing locust monkey-patches the
standard library (gevent), which must never happen inside the test process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import time
from scenarios.spike import spike_users
from scenarios.common import AckLedger, pools_from_manifest, read_stream

# spike: peak until 55% of the run, then a tenth of it (at least 1), then stop
assert spike_users(0, 60, 20) == 20
assert spike_users(32.9, 60, 20) == 20
assert spike_users(33.1, 60, 20) == 2
assert spike_users(59.9, 5, 5) is None
assert spike_users(4, 5, 5) == 1
assert spike_users(60, 60, 20) is None

# SSE: the first token and the done event, across chunk boundaries
started = time.perf_counter()
chunks = [b"event: tok", b"en\ndata: {\"token\": \"a\"}\n\n", "event: token\ndata: {}\n\n",
          b"event: done\ndata: {\"history_len\": 4}\n\n"]
out = read_stream(chunks, started)
assert out.tokens == 2 and out.done and out.first_token_s is not None
cut = read_stream([b"event: token\ndata: {}\n\n"], started)
assert not cut.done and cut.tokens == 1
assert read_stream([b"event: done"], started).done

# pools: whales apart; an empty pool falls back to everyone
pools = pools_from_manifest({"users": [
    {"user_id": "u1", "history_len": 3, "whale": False},
    {"user_id": "w1", "history_len": 900, "whale": True},
]})
assert pools.get("ordinary") == ("u1",) and pools.get("whales") == ("w1",)
assert pools_from_manifest({"users": [{"user_id": "u", "history_len": 1}]}).get("whales") == ("u",)

ledger = AckLedger()
ledger.attempt("u1"); ledger.attempt("u1"); ledger.ack("u1")
data = ledger.to_json()
assert data["acknowledged"] == {"u1": 1} and data["attempted"] == {"u1": 2}
print("ok")
"""


def test_scenario_helpers() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_harness_does_not_import_locust() -> None:
    code = (
        "import sys, harness.cli.loadtest, harness.load.locust_runner, harness.phases.load; "
        "from harness.load.locust_runner import locustfile; "
        "assert locustfile('spike').name == 'spike.py'; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
