"""Scale-out end to end: Locust with several processes (local, and as a master with a worker
started apart), a multi-process server, the ceiling phase, and a target that is not the
reference app (examples/hello_service). Real processes on loopback, ~10 s of load each.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.results import SCHEMA_VERSION
from harness.stack.processes import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCALE = ROOT / "tests" / "data" / "loadtest-scale.toml"
EXAMPLE = ROOT / "examples" / "hello_service" / "loadtest.toml"
LOAD_FILES = (
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust.html",
    "process_samples.csv",
    "acks.json",
    "meta.json",
)


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def the_run(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    return run_dir


def rows_of(run_dir: Path) -> dict[tuple[str, str, str], float]:
    return {
        (r["design"], r["phase"], r["metric"]): r["value"]
        for r in read(run_dir / "summary.json")
        if not r["labels"]
    }


def assert_passed(code: int, run_dir: Path) -> dict[str, Any]:
    run = read(run_dir / "run.json")
    assert code == 0, json.dumps(run["phases"], indent=1)
    assert run["schema_version"] == SCHEMA_VERSION and run["status"] == "passed"
    return run


def samples(run_dir: Path, design: str) -> list[dict[str, str]]:
    with (run_dir / design / "load" / "process_samples.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_two_app_workers_and_two_load_workers_with_the_ceiling(tmp_path: Path) -> None:
    """One run checks both sides of scale-out (they were two runs of the same config): Locust
    in two processes (the ceiling's search among them), and the service in two. Nothing here
    judges a rate, so it runs beside other tests."""
    out = tmp_path / "reports"
    code = main(
        [
            "loadtest", "--config", str(SCALE), "--out", str(out),
            "--app-workers", "2", "--load-workers", "2", "--ceiling-duration", "3",
        ]
    )  # fmt: skip
    run_dir = the_run(out)
    run = assert_passed(code, run_dir)
    phases = {(p["design"], p["phase"]): p["status"] for p in run["phases"]}
    assert phases == {
        ("ceiling", "ceiling"): "passed",
        ("optimized", "seed"): "passed",
        ("optimized", "load"): "passed",
        ("optimized", "integrity"): "passed",
    }
    assert run["config"]["profile"]["load_workers"] == 2

    # the usual files, one acknowledged-writes file merged from both Locust workers
    load = run_dir / "optimized" / "load"
    for name in LOAD_FILES:
        assert (load / name).stat().st_size > 0, name
    merged = read(load / "acks.json")
    assert merged["source"] == "workers" and len(merged["merged_from"]) == 2
    assert not list(load.glob("acks.json.*"))
    assert read(load / "meta.json")["load_workers"] == 2

    rows = rows_of(run_dir)
    assert rows[("optimized", "load", "load_workers")] == 2
    assert rows[("optimized", "load", "app_workers")] == 2
    assert rows[("optimized", "load", "requests")] > 0
    assert rows[("optimized", "integrity", "lost")] == 0
    assert rows[("optimized", "integrity", "acknowledged")] == sum(merged["acknowledged"].values())
    assert rows[("optimized", "integrity", "acknowledged")] > 0

    # the ceiling: the capacity search on the health path, the design's throughput as a
    # fraction of it (when even its first step met the objective on this machine)
    ceiling = rows[("ceiling", "ceiling", "capacity_rps")]
    if ceiling > 0:
        fraction = rows[("optimized", "load", "rps_ceiling_fraction")]
        assert fraction == pytest.approx(rows[("optimized", "load", "rps")] / ceiling)
    assert (run_dir / "ceiling" / "ceiling" / "capacity_steps.csv").stat().st_size > 0

    # the service's processes: sampled one by one, and their sum
    table = samples(run_dir, "optimized")
    totals = [r for r in table if r["pid"] == "total"]
    per_process = [r for r in table if r["pid"] != "total"]
    assert len(totals) > 20
    # the uvicorn supervisor and its 2 workers (and multiprocessing's helper), per process
    assert len({r["pid"] for r in per_process}) >= 3
    assert max(int(r["processes"]) for r in totals) >= 3
    at = totals[-1]["t_s"]
    same_instant = [r for r in per_process if r["t_s"] == at]
    assert sum(int(r["rss_bytes"]) for r in same_instant) == int(totals[-1]["rss_bytes"])
    assert sum(int(r["hwm_bytes"]) for r in same_instant) == int(totals[-1]["hwm_bytes"])
    # the summary's memory figures are the totals': the RSS peak the larger of the sampled
    # peak and the kernel's high-water marks
    sampled = max(int(r["rss_bytes"]) for r in totals)
    hwm = max(int(r["hwm_bytes"]) for r in totals)
    assert rows[("optimized", "load", "rss_peak_sampled_bytes")] == sampled
    assert rows[("optimized", "load", "rss_hwm_bytes")] == hwm
    assert rows[("optimized", "load", "rss_peak_bytes")] == max(sampled, hwm)


@pytest.mark.e2e
@pytest.mark.serial
@pytest.mark.timeout(300)
def test_locust_master_with_a_worker_started_apart(tmp_path: Path) -> None:
    """--locust-master waits for a worker that knows nothing of the run (no HARNESS_*
    variables, another working directory): it gets the seed manifest from the master, and its
    acknowledged writes come back in its reports. A worker quits with its master, so it is
    restarted in a loop, as docs/scale-out.md says to do on other machines."""
    out = tmp_path / "reports"
    port = free_port()
    argv = [
        sys.executable, "-m", "locust", "-f", "-",
        "--worker", "--master-host", "127.0.0.1", "--master-port", str(port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    stop = threading.Event()
    workers: list[subprocess.Popen[bytes]] = []

    def keep_a_worker() -> None:
        with (tmp_path / "worker.log").open("ab") as log:
            while not stop.is_set():
                worker = subprocess.Popen(
                    argv, cwd=tmp_path, stdout=log, stderr=log, env=env, start_new_session=True
                )
                workers.append(worker)
                while worker.poll() is None and not stop.is_set():
                    time.sleep(0.2)

    thread = threading.Thread(target=keep_a_worker, daemon=True)
    thread.start()
    try:
        code = main(
            [
                "loadtest", "--config", str(SCALE), "--out", str(out),
                "--locust-master", "--expect-workers", "1",
                "--master-bind", f"127.0.0.1:{port}",
                # the open-model searches too: the plan and t0 reach the worker in a message
                "--phases", "ceiling,load,capacity,integrity",
            ]
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(10)
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    run_dir = the_run(out)
    assert_passed(code, run_dir)
    rows = rows_of(run_dir)
    assert rows[("optimized", "load", "load_workers")] == 0  # the workers ran elsewhere
    # the ceiling's and the design's open-model searches got their arrivals through the worker
    for design, phase in (("ceiling", "ceiling"), ("optimized", "capacity")):
        steps = (run_dir / design / phase / "capacity_steps.csv").read_text(encoding="utf-8")
        assert len(steps.splitlines()) >= 2, f"{design} {phase}: no step"
        assert rows[(design, phase, "steps_run")] >= 1
    timeline = read(run_dir / "optimized" / "capacity" / "timeline.json")
    assert timeline["workers"] == 1
    merged = read(run_dir / "optimized" / "load" / "acks.json")
    assert merged["source"] == "master"
    assert rows[("optimized", "integrity", "acknowledged")] > 0
    assert rows[("optimized", "integrity", "lost")] == 0


@pytest.mark.e2e
@pytest.mark.timeout(300)
def test_the_example_target_runs_through_the_same_command(tmp_path: Path) -> None:
    """examples/hello_service: a FastAPI service of its own, its own locustfile; the ceiling,
    load and (memray) profile phases apply, the probe and integrity would not."""
    out = tmp_path / "reports"
    code = main(
        [
            "loadtest", "--config", str(EXAMPLE), "--out", str(out), "--duration", "8",
            "--ceiling-duration", "4",
        ]
    )  # fmt: skip
    run_dir = the_run(out)
    run = assert_passed(code, run_dir)
    phases = {(p["design"], p["phase"]): p["status"] for p in run["phases"]}
    assert phases == {
        ("ceiling", "ceiling"): "passed",
        ("hello", "seed"): "passed",
        ("hello", "load"): "passed",
        ("hello", "profile"): "passed",
    }
    rows = rows_of(run_dir)
    assert rows[("hello", "load", "requests")] > 0
    assert rows[("hello", "load", "failures")] == 0
    assert rows[("hello", "load", "rss_peak_bytes")] > 0
    assert ("ceiling", "ceiling", "capacity_rps") in rows
    assert rows[("hello", "profile", "heap_peak_bytes")] > 0
    stats = (run_dir / "hello" / "load" / "locust_stats.csv").read_text()
    assert "GET /hello" in stats and "POST /notes" in stats
    assert (out / "latest" / "report.md").exists()


@pytest.mark.timeout(60)
def test_harness_serve_wraps_any_asgi_app_in_the_probe(tmp_path: Path) -> None:
    """`python -m harness.serve module:app --probe`: the tracemalloc probe around an app the
    harness did not write; SIGINT ends it with status 0 (what a memray capture needs)."""
    import httpx

    from harness.stack.processes import ProcessGroup, start_on_free_port

    cwd = EXAMPLE.parent
    with ProcessGroup(tmp_path / "logs") as group:
        app, url = start_on_free_port(
            group,
            "hello",
            lambda port: [
                sys.executable,
                "-m",
                "harness.serve",
                "hello_app:app",
                "--port",
                str(port),
                "--probe",
            ],
            cwd=cwd,
        )
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/hello", params={"name": "probe"}).json() == {
                "message": "hello, probe"
            }
            record = client.get("/__probe/last").json()
        assert record["path"] == "/hello" and record["status"] == 200
        assert record["alloc_peak_bytes"] > 0
        assert app.stop() == 0


RACE = """
[run]
designs = ["naive"]
out = "reports"
profile = "race"
[seed]
users = 40
whales = 2
whale_history = 3000
seed = 1
[upstream]
first_token_ms = 5
tokens_per_s = 0
reply_tokens = 20
[profiles.race]
phases = ["load", "integrity"]
scenario = "chat"
users = 16
spawn_rate = 16
duration_s = 12
"""


@pytest.mark.e2e
@pytest.mark.serial
@pytest.mark.timeout(240)
def test_naive_with_two_app_workers_loses_writes_and_integrity_catches_it(
    tmp_path: Path,
) -> None:
    """Two uvicorn workers each hold their own `_history_lock`: their read-modify-write cycles
    of the one (here ~1 MB) JSON file interleave, and acknowledged messages disappear."""
    config = tmp_path / "race.toml"
    config.write_text(RACE, encoding="utf-8")
    out = tmp_path / "reports"
    code = main(["loadtest", "--config", str(config), "--out", str(out), "--app-workers", "2"])
    run_dir = the_run(out)
    phases = {(p["design"], p["phase"]): p for p in read(run_dir / "run.json")["phases"]}
    assert phases[("naive", "load")]["status"] == "passed"
    integrity = read(run_dir / "naive" / "integrity.json")
    assert integrity["acknowledged_exchanges"] > 0
    assert integrity["lost_messages"] > 0, integrity
    assert phases[("naive", "integrity")]["status"] == "failed"
    assert code == 1
