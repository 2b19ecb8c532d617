"""`harness loadtest` end to end, in-process, with the tiny profile (tests/data/loadtest-tiny.toml).

Real processes on loopback: the LLM emulator, each design's app, locust. About 10 s of load
per design; the whole module takes a minute or two on a busy 2-core machine.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
from schema_check import check_run_dir

from harness.cli import main
from harness.results import SCHEMA_VERSION

pytestmark = pytest.mark.integration

TINY = Path(__file__).resolve().parents[1] / "data" / "loadtest-tiny.toml"
DESIGNS = ("naive", "optimized")
LOAD_METRICS = {
    "rps", "requests", "failures", "failure_ratio", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "ttft_p50_ms", "ttft_p95_ms", "rss_peak_bytes", "rss_p95_bytes",
    "uss_peak_bytes", "rss_growth_bytes", "fds_max", "threads_max", "connections_max",
    "loadgen_cpu_max",
}  # fmt: skip
INTEGRITY_METRICS = {"acknowledged", "stored", "lost", "unexpected"}
UNITS = {  # docs/internals.md
    "bytes", "ms", "s", "req/s", "count", "percent", "ratio",
    "bytes/message", "bytes/request", "blocks/request",
}  # fmt: skip


def our_children() -> list[psutil.Process]:
    alive = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def the_run(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    return run_dir


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_tiny_loadtest_of_both_designs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A relative --out, as `make loadtest` uses (locust runs in another working directory).
    monkeypatch.chdir(tmp_path)
    out = Path("reports")
    assert our_children() == []
    code = main(["loadtest", "--config", str(TINY), "--out", str(out), "--duration", "10"])
    assert our_children() == [], "a child process survived the run"
    run_dir = the_run(out)
    run = read(run_dir / "run.json")
    phases = {(p["design"], p["phase"]): p for p in run["phases"]}
    assert code == 0, json.dumps(run["phases"], indent=1)

    # run.json
    assert run["schema_version"] == SCHEMA_VERSION
    assert run["status"] == "passed"
    assert run["config"]["profile"]["name"] == "tiny"
    assert run["config"]["profile"]["duration_s"] == 10
    for key in ("python", "packages", "cpu_count", "git_sha"):
        assert key in run["environment"]
    for design in DESIGNS:
        for phase in ("seed", "load", "integrity"):
            record = phases[(design, phase)]
            assert record["status"] == "passed"
            assert record["duration_s"] >= 0
        assert phases[(design, "load")]["exit_code"] in (0, 1)  # locust's
    assert phases[("naive", "load")]["duration_s"] >= 10

    # summary.json: tidy rows
    summary = read(run_dir / "summary.json")
    for row in summary:
        assert set(row) == {"design", "phase", "metric", "labels", "value", "unit"}
        assert isinstance(row["labels"], dict) and isinstance(row["value"], float)
        assert row["unit"] in UNITS
    for design in DESIGNS:
        mine = [r for r in summary if r["design"] == design]
        load = {r["metric"] for r in mine if r["phase"] == "load"}
        assert load >= LOAD_METRICS, LOAD_METRICS - load
        integrity = {r["metric"]: r["value"] for r in mine if r["phase"] == "integrity"}
        assert set(integrity) >= INTEGRITY_METRICS
        assert integrity["lost"] == 0 and integrity["acknowledged"] > 0
        endpoints = {r["labels"].get("endpoint") for r in mine if r["metric"] == "latency_p95_ms"}
        assert endpoints == {"chat", "chat_stream", "history"}

        # the run directory's files
        load_dir = run_dir / design / "load"
        for name in (
            "locust_stats.csv",
            "locust_stats_history.csv",
            "locust.html",
            "process_samples.csv",
            "acks.json",
        ):
            assert (load_dir / name).stat().st_size > 0, name
        samples = (load_dir / "process_samples.csv").read_text().splitlines()
        assert samples[0].startswith("t_s,unix_s,pid,")
        assert len(samples) > 20  # ~10 samples a second
        assert read(run_dir / design / "integrity.json")["lost_messages"] == 0
    assert (out / "latest").resolve() == run_dir.resolve()
    # every JSON file of the run has its documented format (docs/schemas/)
    checked = check_run_dir(run_dir)
    assert {"run", "summary", "integrity", "load-meta", "acks"} <= set(checked.values())


@pytest.mark.timeout(180)
def test_app_killed_mid_run_fails_the_phase(tmp_path: Path) -> None:
    """SIGKILL the app during the load phase: exit 1, run.json names the phase, no hang."""
    out = tmp_path / "reports"
    killed: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        locust_seen: float | None = None
        while not stop.is_set():
            app = None
            for proc in psutil.Process().children(recursive=True):
                try:
                    cmd = " ".join(proc.cmdline())
                except psutil.Error:
                    continue
                if "reference_app" in cmd and " serve " in cmd:
                    app = proc
                elif " locust " in f" {cmd} " or "-m locust" in cmd:
                    locust_seen = locust_seen or time.monotonic()
            # mid-run: locust has been under way for a few seconds
            if app is not None and locust_seen and time.monotonic() - locust_seen > 5.0:
                app.kill()
                killed.append(app.pid)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        code = main(
            [
                "loadtest", "--config", str(TINY), "--out", str(out),
                "--design", "naive", "--duration", "60",
            ]
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
    took = time.monotonic() - started
    assert killed, "the app was never seen"
    assert code == 1
    assert took < 45, f"the run went on for {took:.0f} s after the app died"
    assert our_children() == []
    run_dir = the_run(out)
    run = read(run_dir / "run.json")
    assert run["status"] == "failed"
    partial = {r["metric"] for r in read(run_dir / "summary.json") if r["phase"] == "load"}
    assert "rss_peak_bytes" in partial  # partial results are kept
    phases = {p["phase"]: p for p in run["phases"]}
    assert phases["load"]["status"] == "failed"
    assert "exited" in phases["load"]["detail"]
    assert phases["integrity"]["status"] == "skipped"
