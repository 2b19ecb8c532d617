"""Sample a server's whole process tree with psutil, from a thread of the harness process.

Every `interval_s` the sampler reads, for the root process and all its descendants: RSS,
USS (memory_full_info; left empty where the platform or permissions refuse it), open file
descriptors, threads, inet connections and CPU percent. It appends one row per process
(`processes` = 1; a multi-worker server has one per worker plus its supervisor) and one
`pid="total"` row per sample (`processes` = how many it sums) to a CSV file, flushed as it
goes, so a crash still leaves the samples taken so far. Timestamps are seconds since `t0`
(the phase start, monotonic clock) plus the wall-clock time, to line the samples up with
Locust's history.
"""

from __future__ import annotations

import contextlib
import csv
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

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
)
TOTAL = "total"


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
    ) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.out_csv = out_csv
        self.t0 = time.monotonic() if t0 is None else t0
        self.per_process = per_process
        self.samples = 0
        self.errors = 0
        self.last_error = ""
        self._gone = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._procs: dict[int, psutil.Process] = {}
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
            proc.cpu_percent(None)  # the first call only sets the reference point
            self._procs[pid] = proc
        return proc

    def _read(self, proc: psutil.Process) -> ProcessSample:
        with proc.oneshot():
            rss = int(proc.memory_info().rss)
            uss: int | None = None
            if self._uss_ok:
                try:
                    uss = int(proc.memory_full_info().uss)
                except (psutil.AccessDenied, NotImplementedError, AttributeError):
                    self._uss_ok = False
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

    def sample_once(self) -> list[ProcessSample]:
        """Read the whole tree now; [] (and `gone`) when the root process has exited."""
        try:
            root = self._process(self.pid)
            if not root.is_running() or root.status() == psutil.STATUS_ZOMBIE:
                raise psutil.NoSuchProcess(self.pid)
            tree = [root]
            for child in root.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    tree.append(self._process(child.pid))
        except psutil.NoSuchProcess:
            self._gone.set()
            return []
        samples: list[ProcessSample] = []
        for proc in tree:
            try:
                samples.append(self._read(proc))
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
