"""What the process-tree sampler costs: CPU per tree sample and share of a core, per method.

Starts examples/hello_service under uvicorn with 2 workers on 127.0.0.1 (a 4-process tree:
the supervisor, its workers and multiprocessing's resource tracker), opens some idle
connections to it so that the workers hold sockets, then runs the ProcessTreeSampler on it at
`--interval` for `--seconds` with each method in turn ("psutil": every figure at every sample,
the former way; "procfs": the default on Linux). The CPU is the sampler thread's own
(time.thread_time: user + system), reading and writing included.

    .venv/bin/python scripts/bench_sampler.py [--seconds 20] [--interval 0.1] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import socket
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.sampling.process_sampler import METHODS, Method, ProcessTreeSampler
from harness.stack.processes import LOOPBACK, ProcessGroup, start_on_free_port

ROOT = Path(__file__).resolve().parents[1]
HELLO = ROOT / "examples" / "hello_service"


@dataclass(frozen=True)
class Cost:
    method: str
    samples: int
    wall_s: float
    cpu_s: float
    processes: int
    connections_max: int | None

    @property
    def per_sample_ms(self) -> float:
        return 1000 * self.cpu_s / self.samples if self.samples else float("nan")

    @property
    def core_percent(self) -> float:
        return 100 * self.cpu_s / self.wall_s if self.wall_s else float("nan")


def _tree_totals(path: Path) -> tuple[int, int | None]:
    """(processes, connections max) of a samples file's total rows."""
    processes, conns = 0, None
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["pid"] != "total":
                continue
            processes = max(processes, int(row["processes"]))
            if row["connections"]:
                conns = max(conns or 0, int(row["connections"]))
    return processes, conns


def measure(pid: int, method: Method, interval_s: float, seconds: float, out: Path) -> Cost:
    sampler = ProcessTreeSampler(pid, interval_s, out, method=method)
    started = time.monotonic()
    with sampler:
        time.sleep(seconds)
    wall = time.monotonic() - started
    processes, conns = _tree_totals(out)
    return Cost(method, sampler.samples, wall, sampler.cpu_s, processes, conns)


@contextlib.contextmanager
def idle_connections(base_url: str, count: int) -> Iterator[None]:
    host, port = base_url.rsplit("//", 1)[1].rsplit(":", 1)
    socks = [socket.create_connection((host, int(port)), timeout=5) for _ in range(count)]
    try:
        yield
    finally:
        for sock in socks:
            sock.close()


def uvicorn_argv(port: int, workers: int) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", "hello_app:app", "--host", LOOPBACK, "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per method (default 20)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds (default 0.1)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (default 2)")
    parser.add_argument("--connections", type=int, default=40, help="idle client connections")
    parser.add_argument(
        "--method", choices=METHODS, action="append", help="repeatable; default: every method"
    )
    args = parser.parse_args(argv)
    methods: list[Method] = args.method or list(METHODS)
    with (
        tempfile.TemporaryDirectory(prefix="bench-sampler-") as tmp,
        ProcessGroup(Path(tmp) / "logs") as group,
    ):
        app, base_url = start_on_free_port(
            group, "hello", lambda port: uvicorn_argv(port, args.workers), cwd=HELLO
        )
        time.sleep(2.0)  # let every worker finish its imports
        costs: list[Cost] = []
        with idle_connections(base_url, args.connections):
            for method in methods:
                costs.append(
                    measure(app.pid, method, args.interval, args.seconds, Path(tmp) / method)
                )
    print(
        f"sampler at {1 / args.interval:g} Hz for {args.seconds:g} s per method, "
        f"uvicorn with {args.workers} workers, {args.connections} idle connections"
    )
    print(f"{'method':8} {'procs':>5} {'conns':>5} {'samples':>7} {'CPU/sample':>11} {'core':>7}")
    for c in costs:
        conns = "-" if c.connections_max is None else str(c.connections_max)
        print(
            f"{c.method:8} {c.processes:>5} {conns:>5} {c.samples:>7} "
            f"{c.per_sample_ms:>8.2f} ms {c.core_percent:>6.2f}%"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
