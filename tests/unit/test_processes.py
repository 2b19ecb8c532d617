"""Teardown: leaving a ProcessGroup leaves no process of ours running, however stubborn."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

from harness._errors import PhaseFailed
from harness.stack.processes import ProcessGroup, free_port, port_is_free, wait_healthy

# Ignores SIGINT (and, with "term", SIGTERM), starts a child that does the same, and waits.
STUBBORN = r"""
import signal, subprocess, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
if "term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(120)"
subprocess.Popen([sys.executable, "-c", child])
print("ready", flush=True)
time.sleep(120)
"""


def tree(pid: int, expect: int = 2, timeout: float = 15.0) -> list[psutil.Process]:
    """The process and its descendants, once `expect` of them exist."""
    root = psutil.Process(pid)
    deadline = time.monotonic() + timeout
    while True:
        procs = [root, *root.children(recursive=True)]
        if len(procs) >= expect or time.monotonic() > deadline:
            return procs
        time.sleep(0.05)


def survivors(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


def wait_gone(procs: list[psutil.Process], timeout: float = 5.0) -> list[psutil.Process]:
    """Grandchildren are reparented to init, which reaps them a moment after SIGKILL."""
    deadline = time.monotonic() + timeout
    while (left := survivors(procs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("mode", ["int", "term"])
def test_stop_all_leaves_nothing(tmp_path: Path, mode: str) -> None:
    with ProcessGroup(tmp_path) as group:
        proc = group.start("stubborn", [sys.executable, "-c", STUBBORN, mode])
        procs = tree(proc.pid)
        assert len(procs) == 2, "the stubborn process did not start its child"
        started = time.monotonic()
        codes = group.stop_all(timeout=0.5)
        took = time.monotonic() - started
    assert wait_gone(procs) == []
    assert codes["stubborn"] < 0  # killed by a signal, it never exited on its own
    assert took < 8.0


def test_interrupt_stops_everything_within_seconds(tmp_path: Path) -> None:
    procs: list[psutil.Process] = []
    started = 0.0
    with pytest.raises(KeyboardInterrupt), ProcessGroup(tmp_path) as group:
        for name in ("a", "b"):
            proc = group.start(name, [sys.executable, "-c", STUBBORN, "term"])
            procs += tree(proc.pid)
        assert len(procs) == 4
        started = time.monotonic()
        raise KeyboardInterrupt
    took = time.monotonic() - started
    assert wait_gone(procs) == []
    assert took < 5.0


def test_wait_healthy_reports_an_early_exit(tmp_path: Path) -> None:
    with ProcessGroup(tmp_path) as group:
        proc = group.start(
            "broken", [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"]
        )
        with pytest.raises(PhaseFailed) as info:
            wait_healthy(proc, f"http://127.0.0.1:{free_port()}/healthz", timeout=10, phase="load")
    assert info.value.phase == "load"
    assert "status 3" in info.value.reason and "boom" in info.value.reason


def test_free_port_is_free() -> None:
    assert port_is_free(free_port())
