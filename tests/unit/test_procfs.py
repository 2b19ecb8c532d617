"""The sampler's /proc readers, against this test process's own /proc and psutil."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from harness.sampling import procfs

pytestmark = pytest.mark.skipif(not procfs.available(), reason="needs Linux /proc")

STAT = (
    "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 1200 0 3 0 250 50 0 0 20 0 7 0 "
    "8600 300000000 5000 18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0"
)


def test_parse_stat_splits_at_the_last_parenthesis() -> None:
    stat = procfs.parse_stat(STAT)
    assert stat.name == "a (weird) name"
    assert stat.state == "S" and stat.ppid == 1
    assert stat.cpu_s == pytest.approx(300 / procfs.CLOCK_TICKS)
    assert stat.threads == 7
    assert stat.rss_bytes == 5000 * procfs.PAGE_SIZE


def test_parse_status_kib() -> None:
    text = "Name:\tpython\nVmHWM:\t  218220 kB\nVmRSS:\t   13588 kB\nThreads:\t3\n"
    assert procfs.parse_status_kib(text, "VmHWM") == 218220 * 1024
    assert procfs.parse_status_kib(text, "VmRSS") == 13588 * 1024
    assert procfs.parse_status_kib(text, "VmSwap") is None


def test_own_stat_agrees_with_psutil() -> None:
    stat = procfs.read_stat(os.getpid())
    assert stat is not None
    me = psutil.Process()
    assert stat.ppid == me.ppid() and stat.threads == me.num_threads()
    assert abs(stat.rss_bytes - me.memory_info().rss) < 4 * 2**20  # read a moment apart
    hwm = procfs.high_water_mark(os.getpid())
    assert hwm is not None and hwm >= stat.rss_bytes - 4 * 2**20
    assert procfs.read_stat(2**22 + 1) is None  # beyond pid_max: no such process


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    left, right = socket.socketpair()  # unix sockets: not inet
    opened = [tcp, udp, left, right]
    yield opened
    for sock in opened:
        sock.close()


def test_inet_sockets_counted_as_psutil_counts_them(sockets: list[socket.socket]) -> None:
    kinds = procfs.SocketKinds()
    before = len(psutil.Process().net_connections(kind="inet"))
    assert kinds.count(os.getpid()) == before
    sockets[0].close()
    assert kinds.count(os.getpid()) == before - 1
    kinds.prune()
    assert kinds.count(os.getpid()) == len(psutil.Process().net_connections(kind="inet"))


def test_descendants_are_psutils_children() -> None:
    sleep = "import time; time.sleep(30)"
    script = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {sleep!r}]); {sleep}"
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while len(psutil.Process(child.pid).children()) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        expected = {p.pid for p in psutil.Process().children(recursive=True)}
        found = procfs.descendants(os.getpid())
        assert set(found) == expected and len(found) == len(expected)
        assert found.index(child.pid) < len(found) - 1  # a parent before its children
        assert procfs.parent_pid(STAT) == 1
    finally:
        for proc in psutil.Process(child.pid).children(recursive=True):
            proc.kill()
        child.kill()
        child.wait()
