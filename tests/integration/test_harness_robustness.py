"""The harness tells the truth when things break: busy ports, apps that never come up,
a locustfile that cannot start, Ctrl-C in the middle of a run, and no half-written JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness._errors import PhaseFailed
from harness.config import SeedConfig, UpstreamConfig
from harness.config.target_spec import reference_target
from harness.load.locust_runner import run_locust
from harness.stack import processes
from harness.stack.processes import ProcessGroup, start_on_free_port, wait_healthy
from harness.stack.targets import running_stack, seed_store

pytestmark = pytest.mark.integration

TINY = Path(__file__).resolve().parents[1] / "data" / "loadtest-tiny.toml"
FAST_UPSTREAM = UpstreamConfig(first_token_ms=0, tokens_per_s=0, reply_tokens=8)
OPTIMIZED = reference_target("optimized")
SMALL_SEED = SeedConfig(users=5, whales=0, whale_history=10, seed=1)


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_taken_before_the_server_binds_it_is_replaced(
    busy_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ports = iter([busy_port])
    real_free_port = processes.free_port
    monkeypatch.setattr(
        processes, "free_port", lambda host="127.0.0.1": next(ports, None) or real_free_port(host)
    )
    data = tmp_path / "data"
    seed_store(OPTIMIZED, data, SMALL_SEED, tmp_path / "logs")
    with running_stack(OPTIMIZED, data, tmp_path / "logs", FAST_UPSTREAM) as stack:
        # the upstream got the busy port first, lost the race, and moved to another one
        assert f":{busy_port}" not in stack.upstream_url
        assert stack.app.poll() is None


def test_a_server_on_a_busy_port_fails_with_its_stderr(busy_port: int, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "reference_app", "upstream", "--port", str(busy_port)]
    with ProcessGroup(tmp_path) as group, pytest.raises(PhaseFailed) as info:
        start_on_free_port(group, "upstream", lambda port: argv, timeout=20)
    message = str(info.value)
    assert "exited" in message and "address already in use" in message.lower()


def test_an_app_that_never_becomes_healthy_fails_within_the_timeout(tmp_path: Path) -> None:
    script = (
        "import sys, time; print('stuck loading the model', file=sys.stderr, flush=True); "
        "time.sleep(60)"
    )
    with ProcessGroup(tmp_path) as group:
        proc = group.start("stuck", [sys.executable, "-c", script])
        started = time.monotonic()
        with pytest.raises(PhaseFailed) as info:
            wait_healthy(proc, "http://127.0.0.1:9/healthz", timeout=2.0)
        assert time.monotonic() - started < 6
    assert "not healthy" in str(info.value)
    assert "stuck loading the model" in str(info.value)
    assert proc.poll() is not None


def test_a_locustfile_that_cannot_start_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('this locustfile is broken')\n")
    monkeypatch.setattr("harness.load.locust_runner.locustfile", lambda scenario: broken)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"users": [{"user_id": "u1", "history_len": 0}]}))
    started = time.monotonic()
    result = run_locust("http://127.0.0.1:9", "broken", 1, 1, 5, tmp_path / "out", manifest)
    assert time.monotonic() - started < 60
    assert result.crashed and not result.ok
    assert "this locustfile is broken" in result.problem()


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:  # gone, or a zombie between exit and reaping
        return ""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


@pytest.mark.timeout(180)
def test_sigint_to_the_harness_stops_every_child_and_marks_the_run(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    stderr = (tmp_path / "harness.stderr").open("wb")
    harness = subprocess.Popen(
        [sys.executable, "-m", "harness", "loadtest", "--config", str(TINY), "--out", str(out),
         "--design", "naive", "--duration", "30"],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )  # fmt: skip
    stderr.close()
    try:
        # wait until locust is running under the harness
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            names = " ".join(_cmdline(p) for p in _descendants(harness.pid))
            if "locust" in names:
                break
            time.sleep(0.25)
        else:
            pytest.fail("locust never started")
        time.sleep(2)
        children = _descendants(harness.pid)
        assert children
        harness.send_signal(signal.SIGINT)
        started = time.monotonic()
        code = harness.wait(timeout=30)
        _gone, alive = psutil.wait_procs(
            children, timeout=max(0.1, 5 - (time.monotonic() - started))
        )
        assert not alive, f"survived SIGINT: {[p.pid for p in alive]}"
        assert time.monotonic() - started < 10
    finally:
        if harness.poll() is None:
            os.killpg(harness.pid, signal.SIGKILL)
            harness.wait(10)
    assert code == 130
    (run_dir,) = [p for p in out.iterdir() if p.is_dir() and not p.is_symlink()]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "interrupted"
    assert any(p["status"] == "interrupted" for p in run["phases"])
    # every JSON file in the run directory is whole, and no temp file is left behind
    for path in run_dir.rglob("*.json"):
        json.loads(path.read_text())
    assert not list(run_dir.rglob("*.tmp"))


def test_ctrl_c_while_reading_a_capture_leaves_no_memray_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sampling import memray_capture

    capture = tmp_path / "tiny.bin"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "memray",
            "run",
            "--quiet",
            "-o",
            str(capture),
            "-c",
            "x = [0] * 10**5",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    seen: list[int] = []

    def interrupted(*_args: object) -> None:
        # the three readers are running now; Ctrl-C arrives while they are awaited
        seen.extend(p.pid for p in psutil.Process().children())
        raise KeyboardInterrupt

    monkeypatch.setattr(memray_capture, "_finish", interrupted)
    with pytest.raises(KeyboardInterrupt):
        memray_capture.read_capture(capture, tmp_path, flamegraph=tmp_path / "flame.html")

    assert len(seen) == 3  # stats, high-water mark and flamegraph had started
    alive = [
        pid
        for pid in seen
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive
    assert (tmp_path / "logs" / "memray-stats.stderr.log").exists()


def test_ctrl_c_while_a_capture_is_read_on_a_thread_leaves_no_memray_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`harness loadtest` reads the profile's capture on a thread beside the probe; Ctrl-C lands
    on the main thread while that thread waits on the readers: they must go anyway. The readers
    here sleep (a tiny real capture is read before stop() could land, and tells nothing)."""
    from harness.phases._background import Background
    from harness.sampling import memray_capture

    capture = tmp_path / "big.bin"
    capture.write_bytes(b"a capture the readers take long to read")
    slow_reader = [sys.executable, "-c", "import time; time.sleep(60)"]
    for argv in ("stats_argv", "hwm_argv", "flamegraph_argv"):
        monkeypatch.setattr(memray_capture, argv, lambda *_args: slow_reader)
    tail = Background(
        lambda on_readers: [
            *memray_capture.read_capture(
                capture, tmp_path, flamegraph=tmp_path / "flame.html", on_readers=on_readers
            ).hwm_sites
        ]
    )
    deadline = time.monotonic() + 30
    while len(psutil.Process().children()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    readers = psutil.Process().children()
    assert len(readers) == 3
    started = time.monotonic()
    tail.stop()
    _gone, alive = psutil.wait_procs(readers, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert time.monotonic() - started < 10
    with pytest.raises(PhaseFailed):  # the readers were killed under it: not a silent pass
        tail.join()
