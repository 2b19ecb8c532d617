"""Sample a server's whole process tree, from a thread of the harness process.

Every `interval_s` the sampler reads, for the root process and all its descendants: RSS,
the kernel's RSS high-water mark (VmHWM), open file descriptors, threads and CPU percent;
every `connections_every_s` (default 1 s) the inet connections, and every `uss_every_s`
(default 5 s) USS (psutil's memory_full_info; left empty where the platform or permissions
refuse it). It appends one row per process (`processes` = 1; a multi-worker server has one
per worker plus its supervisor) and one `pid="total"` row per sample (`processes` = how many
it sums) to a CSV file, flushed as it goes, so a crash still leaves the samples taken so far.
Timestamps are seconds since `t0` (the phase start, monotonic clock) plus the wall-clock
time, to line the samples up with Locust's history. An empty cell was not measured then.

What it costs: the sampler runs beside the server it measures, so it reads at every sample
only what is cheap (on Linux two small /proc files a process and its fd directory; see
harness.sampling.procfs). USS (a walk of the page tables, ~1 ms a process), the connections
and the list of the tree's processes (a scan of every process on the machine, ~1 ms) come
less often; between two listings a new process is not seen (a worker restarted by
its supervisor appears within `tree_every_s`, 2 s). VmHWM is recorded so that a peak
between two samples is not missed. The "psutil" method is the former way (every figure at
every sample through psutil, `net_connections` per process, no VmHWM: ~50 ms a sample on a
4-process tree), kept for platforms without /proc and for scripts/bench_sampler.py's
before/after comparison. `cpu_s` is the sampler thread's own CPU time.
"""

from __future__ import annotations

import contextlib
import csv
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import psutil

from harness.sampling import procfs

COLUMNS = (
    "t_s",
    "unix_s",
    "pid",
    "name",
    "rss_bytes",
    "uss_bytes",
    "num_fds",
    "num_threads",
    "connections",
    "cpu_percent",
    "processes",
    "hwm_bytes",  # VmHWM: the process's peak RSS since it started (the kernel's figure)
)
TOTAL = "total"
Method = Literal["procfs", "psutil"]
METHODS: tuple[Method, ...] = ("procfs", "psutil")
USS_EVERY_S = 5.0  # USS at most this often: ~1 ms of kernel time a process
CONNECTIONS_EVERY_S = 1.0  # inet connections at most this often
TREE_EVERY_S = 2.0  # the tree's process list at most this often: a scan of every process


def default_method() -> Method:
    """The method to use by default: "procfs" where /proc has what it reads (Linux)."""
    return "procfs" if procfs.available() else "psutil"


def every(period_s: float, interval_s: float) -> int:
    """Every how many samples a reading due every `period_s` comes (at least every one)."""
    if interval_s <= 0:
        return 1
    return max(1, math.floor(period_s / interval_s + 1e-9))


@dataclass(frozen=True)
class ProcessSample:
    pid: int
    name: str
    rss_bytes: int
    uss_bytes: int | None
    num_fds: int | None
    num_threads: int
    connections: int | None
    cpu_percent: float
    hwm_bytes: int | None = None


def total_of(samples: list[ProcessSample]) -> dict[str, Any]:
    """The totals row of one sampling instant (None where no process could tell)."""

    def add(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    return {
        "pid": TOTAL,
        "name": "",
        "rss_bytes": sum(s.rss_bytes for s in samples),
        "uss_bytes": add([s.uss_bytes for s in samples]),
        "num_fds": add([s.num_fds for s in samples]),
        "num_threads": sum(s.num_threads for s in samples),
        "connections": add([s.connections for s in samples]),
        "cpu_percent": round(sum(s.cpu_percent for s in samples), 1),
        "processes": len(samples),
        "hwm_bytes": add([s.hwm_bytes for s in samples]),
    }


class ProcessTreeSampler:
    """A daemon thread sampling the tree rooted at `pid` into `out_csv` until stopped.

    Use as a context manager. `gone` turns true when the root process has exited.
    """

    def __init__(
        self,
        pid: int,
        interval_s: float,
        out_csv: Path,
        t0: float | None = None,
        per_process: bool = True,
        *,
        method: Method | None = None,
        uss_every_s: float = USS_EVERY_S,
        connections_every_s: float = CONNECTIONS_EVERY_S,
        tree_every_s: float = TREE_EVERY_S,
    ) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.out_csv = out_csv
        self.t0 = time.monotonic() if t0 is None else t0
        self.per_process = per_process
        self.method: Method = method or default_method()
        if self.method not in METHODS:
            raise ValueError(f"unknown sampling method {self.method!r} (one of {METHODS})")
        legacy = self.method == "psutil"
        self._uss_every = 1 if legacy else every(uss_every_s, interval_s)
        self._conns_every = 1 if legacy else every(connections_every_s, interval_s)
        self._tree_every = 1 if legacy else every(tree_every_s, interval_s)
        self.samples = 0
        self.errors = 0
        self.last_error = ""
        self.cpu_s = 0.0  # CPU time of the sampler thread (user + system)
        self._ticks = 0
        self._gone = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}
        self._tree: list[int] = []  # pids at the last listing, root first
        self._cpu: dict[int, tuple[float, float]] = {}  # pid -> (monotonic, CPU seconds)
        self._sockets = procfs.SocketKinds()
        self._uss_ok = True
        self._conns_ok = True

    @property
    def gone(self) -> bool:
        return self._gone.is_set()

    @property
    def uss_available(self) -> bool:
        """False once memory_full_info() was refused (permissions, platform)."""
        return self._uss_ok

    # --- one sample ----------------------------------------------------------------------
    def _process(self, pid: int) -> psutil.Process:
        proc = self._procs.get(pid)
        if proc is None:
            proc = psutil.Process(pid)
            if self.method == "psutil":
                proc.cpu_percent(None)  # the first call only sets the reference point
            self._procs[pid] = proc
        return proc

    def _uss(self, proc: psutil.Process) -> int | None:
        if not self._uss_ok:
            return None
        try:
            return int(proc.memory_full_info().uss)
        except (psutil.AccessDenied, NotImplementedError, AttributeError):
            self._uss_ok = False
            return None

    def _read_psutil(self, proc: psutil.Process) -> ProcessSample:
        """The former way: every figure through psutil (no high-water mark)."""
        with proc.oneshot():
            rss = int(proc.memory_info().rss)
            uss = self._uss(proc)
            fds: int | None = None
            with contextlib.suppress(psutil.AccessDenied, NotImplementedError, AttributeError):
                fds = int(proc.num_fds())
            conns: int | None = None
            if self._conns_ok:
                try:
                    conns = len(proc.net_connections(kind="inet"))
                except (psutil.AccessDenied, NotImplementedError):
                    self._conns_ok = False
            return ProcessSample(
                pid=proc.pid,
                name=proc.name(),
                rss_bytes=rss,
                uss_bytes=uss,
                num_fds=fds,
                num_threads=int(proc.num_threads()),
                connections=conns,
                cpu_percent=float(proc.cpu_percent(None)),
            )

    def _cpu_percent(self, pid: int, cpu_s: float) -> float:
        """Percent of one core since the last sample of `pid` (0.0 at its first)."""
        now = time.monotonic()
        before = self._cpu.get(pid)
        self._cpu[pid] = (now, cpu_s)
        if before is None or now <= before[0]:
            return 0.0
        return round(100.0 * (cpu_s - before[1]) / (now - before[0]), 1)

    def _read_procfs(self, proc: psutil.Process, uss: bool, conns: bool) -> ProcessSample:
        """Two reads of /proc a process (USS and connections only when asked)."""
        stat = procfs.read_stat(proc.pid)
        if stat is None or stat.state == "Z":
            raise psutil.NoSuchProcess(proc.pid)
        status = procfs.read_status(proc.pid)
        hwm = procfs.parse_status_kib(status, "VmHWM") if status else None
        return ProcessSample(
            pid=proc.pid,
            name=stat.name,
            rss_bytes=stat.rss_bytes,
            uss_bytes=self._uss(proc) if uss else None,
            num_fds=procfs.count_fds(proc.pid),
            num_threads=stat.threads,
            connections=self._sockets.count(proc.pid) if conns else None,
            cpu_percent=self._cpu_percent(proc.pid, stat.cpu_s),
            hwm_bytes=None if hwm is None else max(hwm, stat.rss_bytes),
        )

    def _list_tree(self, root: psutil.Process) -> list[psutil.Process]:
        """The root and its descendants: listed anew every `tree_every_s`, else the last list."""
        if self._ticks % self._tree_every == 0 or not self._tree:
            tree = [root]
            if self.method == "procfs":
                pids = procfs.descendants(root.pid)
            else:
                pids = [child.pid for child in root.children(recursive=True)]
            for pid in pids:
                with contextlib.suppress(psutil.Error):
                    tree.append(self._process(pid))
            self._tree = [proc.pid for proc in tree]
            for pid in set(self._procs) - set(self._tree):
                del self._procs[pid]  # exited since the last listing
                self._cpu.pop(pid, None)
            self._sockets.prune()
            return tree
        return [self._procs[pid] for pid in self._tree if pid in self._procs]

    def _root(self) -> psutil.Process:
        root = self._process(self.pid)
        # With procfs the reading tells a gone (or zombie) root: no check of its own.
        if self.method == "psutil" and (
            not root.is_running() or root.status() == psutil.STATUS_ZOMBIE
        ):
            raise psutil.NoSuchProcess(self.pid)
        return root

    def sample_once(self) -> list[ProcessSample]:
        """Read the whole tree now; [] (and `gone`) when the root process has exited."""
        try:
            tree = self._list_tree(self._root())
        except psutil.NoSuchProcess:
            self._gone.set()
            return []
        uss = self._ticks % self._uss_every == 0
        conns = self._conns_ok and self._ticks % self._conns_every == 0
        self._ticks += 1
        samples: list[ProcessSample] = []
        for proc in tree:
            try:
                if self.method == "psutil":
                    samples.append(self._read_psutil(proc))
                else:
                    samples.append(self._read_procfs(proc, uss, conns))
            except psutil.NoSuchProcess:
                if proc.pid == self.pid:
                    self._gone.set()
                    return []
                self._procs.pop(proc.pid, None)  # a child that just exited
        return samples

    # --- the thread ----------------------------------------------------------------------
    def _write(self, writer: Any, handle: IO[str], samples: list[ProcessSample]) -> None:
        now = time.monotonic()
        stamp = {"t_s": round(now - self.t0, 3), "unix_s": round(time.time(), 3)}
        if self.per_process:  # one row per process, even for one: the same file in every mode
            for s in samples:
                writer.writerow(
                    {
                        **stamp,
                        "pid": s.pid,
                        "name": s.name,
                        "rss_bytes": s.rss_bytes,
                        "uss_bytes": s.uss_bytes,
                        "num_fds": s.num_fds,
                        "num_threads": s.num_threads,
                        "connections": s.connections,
                        "cpu_percent": s.cpu_percent,
                        "processes": 1,
                        "hwm_bytes": s.hwm_bytes,
                    }
                )
        writer.writerow({**stamp, **total_of(samples)})
        handle.flush()

    def _run(self) -> None:
        self.out_csv.parent.mkdir(parents=True, exist_ok=True)
        with self.out_csv.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            handle.flush()
            next_at = time.monotonic()
            while not self._stop.is_set():
                cpu_before = time.thread_time()
                try:
                    samples = self.sample_once()
                except Exception as exc:  # keep sampling; a sampler must not kill a phase
                    self.errors += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    samples = []
                if self.gone:
                    return
                if samples:
                    self._write(writer, handle, samples)
                    self.samples += 1
                self.cpu_s += time.thread_time() - cpu_before
                next_at += self.interval_s
                delay = next_at - time.monotonic()
                if delay < 0:  # sampling took longer than the interval: do not catch up
                    next_at = time.monotonic()
                    delay = 0.0
                self._stop.wait(delay)

    def start(self) -> ProcessTreeSampler:
        if self._thread is not None:
            raise RuntimeError("sampler already started")
        self._thread = threading.Thread(target=self._run, name=f"sampler-{self.pid}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> ProcessTreeSampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
