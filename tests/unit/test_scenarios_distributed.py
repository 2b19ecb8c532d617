"""The locustfiles' side of several Locust processes, checked in a subprocess (importing locust
monkey-patches the standard library): where each process writes its acknowledged writes, the
merge of workers' reports, and per-worker random sequences. Plus the sampler's per-process rows."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.sampling.process_sampler import ProcessTreeSampler

ROOT = Path(__file__).resolve().parents[2]

CHECKS = r"""
import os
from pathlib import Path
from locust.runners import LocalRunner, MasterRunner, WorkerRunner
from scenarios.common import ack_file, merge_counts, next_rng

os.environ["HARNESS_ACKS"] = "/tmp/x/acks.json"
local = object.__new__(LocalRunner)
worker = object.__new__(WorkerRunner)
master = object.__new__(MasterRunner)
assert ack_file(local) == Path("/tmp/x/acks.json")
assert ack_file(worker) == Path(f"/tmp/x/acks.json.worker-{os.getpid()}")
assert ack_file(master) is None  # a master runs no users
del os.environ["HARNESS_ACKS"]
assert ack_file(local) is None

merged = merge_counts([
    {"acknowledged": {"u1": 2}, "attempted": {"u1": 3}},
    {"acknowledged": {"u1": 1, "u2": 4}, "attempted": {"u2": 4}},
])
assert merged == {"acknowledged": {"u1": 3, "u2": 4}, "attempted": {"u1": 3, "u2": 4}}

# worker 0 replays the single-process sequence; worker 1 gets another one
a = [next_rng(0).random() for _ in range(3)]
b = [next_rng(1).random() for _ in range(3)]
assert not set(a) & set(b)
print("ok")
"""


def test_acks_per_process_and_worker_seeds() -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHECKS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_ceiling_locustfile_imports(tmp_path: Path) -> None:
    code = (
        "import os; os.environ['HARNESS_SHAPE'] = 'spike'; "
        "import scenarios.ceiling as c; assert c.SpikeShape and c.CeilingUser; print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(
    "MUTANT_UNDER_TEST" in os.environ,
    reason="under mutmut the sampled tree is mutmut's, not the one this test sets up",
)
def test_sampler_writes_per_process_rows_and_totals(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        out = tmp_path / "samples.csv"
        with ProcessTreeSampler(os.getpid(), 0.05, out):
            time.sleep(0.3)
    finally:
        child.kill()
        child.wait()
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pids = {r["pid"] for r in rows}
    assert "total" in pids and str(os.getpid()) in pids and str(child.pid) in pids
    totals = [r for r in rows if r["pid"] == "total"]
    assert all(int(r["processes"]) >= 2 for r in totals)
    # One sample is its per-process rows followed by its total (two samples a millisecond
    # apart can share a rounded t_s, so the time stamp does not tell samples apart).
    per_process = rows[: rows.index(totals[0])]
    assert sum(int(r["rss_bytes"]) for r in per_process) == int(totals[0]["rss_bytes"])
