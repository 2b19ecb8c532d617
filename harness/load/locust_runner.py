"""Run `locust --headless` as a subprocess, bounded in time, and say what came of it.

The harness never imports locust (it monkey-patches the standard library with gevent): the
locustfiles live in the `scenarios` package and are found through its import spec, without
importing them. The manifest and the acknowledged-writes file are passed through
HARNESS_MANIFEST and HARNESS_ACKS.

Locust's exit status 1 only means that some requests failed; a run is *crashed* when no
statistics were written (locust could not start, or died before the first CSV flush).

Three ways to generate the load, with the same files at the end:

- one process (default);
- `processes=N`: `locust --processes N` forks N worker processes on this machine, the
  parent is their master (it writes the CSVs and the HTML report);
- `master=MasterMode(...)`: `locust --master --expect-workers K`; the workers run on other
  machines (`locust -f <locustfile> --worker --master-host <this host>`), the master waits
  for K of them (at most `max_wait_s`) before it starts.

The acknowledged-writes files of several processes are merged into one when locust exits
(harness.load.acks).
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from harness.load import acks
from harness.phases import ProgressFn, no_progress
from harness.stack.processes import LOOPBACK, ManagedProcess, ProcessGroup, free_port

MANIFEST_ENV = "HARNESS_MANIFEST"
ACKS_ENV = "HARNESS_ACKS"
STOP_TIMEOUT_S = 5  # --stop-timeout: users finish their current task before the run stops
START_MARGIN_S = 30.0  # locust's start-up, stop-timeout and report writing, on a busy machine
POLL_S = 0.5
CPU_WINDOW_S = 1.0  # locust's CPU is measured over windows this long
OUTPUT_SUFFIXES = (
    "_stats.csv",
    "_stats_history.csv",
    "_failures.csv",
    "_exceptions.csv",
    ".html",
)
ABORT_GRACE_S = 15.0  # after SIGINT, how long locust may take to write its reports


@dataclass(frozen=True)
class MasterMode:
    """This side is a Locust master; `expect_workers` workers connect from elsewhere."""

    expect_workers: int = 1
    bind_host: str = "127.0.0.1"
    bind_port: int = 5557
    max_wait_s: float = 120.0

    def argv(self) -> list[str]:
        return [
            "--master",
            "--expect-workers", str(self.expect_workers),
            "--expect-workers-max-wait", f"{max(1, math.ceil(self.max_wait_s))}",
            "--master-bind-host", self.bind_host,
            "--master-bind-port", str(self.bind_port),
        ]  # fmt: skip


@dataclass(frozen=True)
class LocustResult:
    """What one locust run produced. `stats_csv` is None when locust wrote no statistics."""

    exit_code: int | None
    requests: int
    failures: int
    stats_csv: Path | None
    history_csv: Path | None
    html: Path | None
    cpu_max_percent: float
    duration_s: float
    started_unix: float
    timed_out: bool = False
    aborted: str = ""
    stderr_tail: str = ""
    cpu_total_max_percent: float = 0.0  # the whole locust process tree's, every worker
    processes: int = 1  # local locust worker processes (0: a master with remote workers)
    cpu_s: float = 0.0  # CPU of the whole locust tree during the test (first window left out)
    cpu_measured_s: float = 0.0  # the wall time over which cpu_s was counted

    @property
    def crashed(self) -> bool:
        """Locust failed to start or died before writing statistics."""
        return self.stats_csv is None

    @property
    def ok(self) -> bool:
        """Locust ran to the end; exit 1 (some requests failed) is still a run."""
        return (
            not self.crashed
            and not self.timed_out
            and not self.aborted
            and self.exit_code in (0, 1)
        )

    def problem(self) -> str:
        """One sentence on what went wrong, or '' when the run is ok."""
        if self.aborted:
            return f"locust stopped early: {self.aborted}"
        if self.timed_out:
            return f"locust did not finish within its time limit ({self.duration_s:.0f} s)"
        if self.crashed:
            return f"locust exited {self.exit_code} without statistics:\n{self.stderr_tail}"
        if self.exit_code not in (0, 1):
            return f"locust exited {self.exit_code}:\n{self.stderr_tail}"
        return ""


def scenarios_dir() -> Path:
    """The directory of the `scenarios` package, found without importing locust."""
    spec = importlib.util.find_spec("scenarios")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the 'scenarios' package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def is_locustfile_path(scenario: str) -> bool:
    """A scenario given as a file (`.py`, or a path), not a name in scenarios/."""
    return scenario.endswith(".py") or os.sep in scenario or "/" in scenario


def locustfile(scenario: str) -> Path:
    """A scenario name in scenarios/ (chat, spike, ...) or the path of any locustfile."""
    path = Path(scenario) if is_locustfile_path(scenario) else scenarios_dir() / f"{scenario}.py"
    if not path.is_file():
        raise FileNotFoundError(f"no locustfile for scenario {scenario!r} at {path}")
    return path.resolve()


def locust_argv(
    base_url: str,
    scenario_file: Path,
    users: int,
    spawn_rate: float,
    duration_s: float,
    out_dir: Path,
    csv_prefix: str = "locust",
    processes: int = 1,
    master: MasterMode | None = None,
    local_master_port: int | None = None,
) -> list[str]:
    """The locust command line. With `processes` > 1, `local_master_port` is where the parent
    and its forked workers meet (on the loopback): without it they use Locust's default 5557,
    and two runs on one machine (two harnesses, parallel tests) fail to bind."""
    distributed: list[str] = []
    if master is not None:
        distributed = master.argv()
    elif processes > 1:
        distributed = ["--processes", str(processes)]
        if local_master_port is not None:
            port = str(local_master_port)
            distributed += [
                "--master-bind-host", LOOPBACK, "--master-bind-port", port,
                "--master-host", LOOPBACK, "--master-port", port,
            ]  # fmt: skip
    return [
        sys.executable, "-m", "locust",
        *distributed,
        "-f", str(scenario_file),
        "--headless",
        "-H", base_url,
        "-u", str(users),
        "-r", f"{spawn_rate:g}",
        "-t", f"{max(1, math.ceil(duration_s))}s",
        "--csv", str(out_dir / csv_prefix),
        "--csv-full-history",
        "--html", str(out_dir / f"{csv_prefix}.html"),
        "--only-summary",
        "--stop-timeout", str(STOP_TIMEOUT_S),
        "--exit-code-on-error", "1",
    ]  # fmt: skip


def csv_with_rows(path: Path) -> Path | None:
    """path if it holds a header and at least one data row."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = sum(1 for line in handle if line.strip())
    except OSError:
        return None
    return path if lines >= 2 else None


def request_counts(stats_csv: Path | None) -> tuple[int, int]:
    """(requests, failures) over the endpoint rows of a Locust stats CSV."""
    if stats_csv is None:
        return 0, 0
    import pandas as pd

    from harness.analysis.load import request_totals

    return request_totals(pd.read_csv(stats_csv))


class _CpuMeter:
    """CPU of the busiest process of a tree (percent of one core) over windows of
    CPU_WINDOW_S, counted only while the test runs: Locust's imports before it and its report
    writing after it are busy moments that say nothing about saturation during the load.

    With `--processes N` every worker is its own process, bound to one core: the busiest one
    tells whether the load generator saturated. `max_total_percent` is the whole tree's.
    """

    def __init__(self, pid: int, history_csv: Path, duration_s: float) -> None:
        self.pid = pid
        self.history_csv = history_csv
        self.duration_s = duration_s
        self.max_percent = 0.0
        self.max_total_percent = 0.0
        self.cpu_s = 0.0  # the whole tree's CPU over the windows measured
        self.measured_s = 0.0  # wall time of those windows
        self.test_started: float | None = None
        self._last_t = time.monotonic()
        self._last_cpu = self._cpu_seconds()

    def _cpu_seconds(self) -> dict[int, float]:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return {}
        seconds: dict[int, float] = {}
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                seconds[proc.pid] = t.user + t.system
        return seconds

    def _started(self, now: float) -> bool:
        if self.test_started is None and csv_with_rows(self.history_csv) is not None:
            self.test_started = now  # the first per-second statistics row: users are running
        return self.test_started is not None

    def _elapsed(self, now: float) -> float:
        return now - self.test_started if self.test_started is not None else 0.0

    def sample(self) -> None:
        now = time.monotonic()
        if now - self._last_t < CPU_WINDOW_S:
            return
        cpu = self._cpu_seconds()
        was_running = self.test_started is not None
        # The first window after the test started still holds Locust's imports: skip it.
        if cpu and was_running and self._elapsed(now) <= self.duration_s:
            window = now - self._last_t
            deltas = [cpu[pid] - before for pid, before in self._last_cpu.items() if pid in cpu]
            if deltas:
                self.max_percent = max(self.max_percent, 100.0 * max(deltas) / window)
                self.max_total_percent = max(self.max_total_percent, 100.0 * sum(deltas) / window)
                self.cpu_s += sum(deltas)
                self.measured_s += window
        self._started(now)
        self._last_t, self._last_cpu = now, cpu


def run_locust(
    base_url: str,
    scenario: str,
    users: int,
    spawn_rate: float,
    duration_s: float,
    out_dir: Path,
    manifest_path: Path,
    csv_prefix: str = "locust",
    acks_path: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    *,
    abort_if: Callable[[], str] | None = None,
    progress: ProgressFn | None = None,
    log_dir: Path | None = None,
    processes: int = 1,
    master: MasterMode | None = None,
) -> LocustResult:
    """Run one headless locust test against base_url; never longer than duration + a margin.

    abort_if() is polled twice a second; a non-empty answer (e.g. "the app exited") stops
    locust early (SIGINT, so it still writes its statistics). The result's `aborted` says why.
    Files: <out_dir>/<csv_prefix>_stats.csv, _stats_history.csv, _failures.csv,
    _exceptions.csv, <csv_prefix>.html; locust's own output goes to log_dir (default out_dir).
    processes > 1 forks that many local workers; master waits for remote ones (module doc).
    """
    report = progress or no_progress
    label = Path(scenario).name if is_locustfile_path(scenario) else scenario
    # Locust runs with its working directory in out_dir: every path it is given is absolute.
    out_dir = out_dir.resolve()
    manifest_path = manifest_path.resolve()
    acks_path = acks_path.resolve() if acks_path is not None else None
    out_dir.mkdir(parents=True, exist_ok=True)
    argv = locust_argv(
        base_url,
        locustfile(scenario),
        users,
        spawn_rate,
        duration_s,
        out_dir,
        csv_prefix,
        processes=processes,
        master=master,
        local_master_port=free_port() if processes > 1 and master is None else None,
    )
    package_root = str(scenarios_dir().parent)
    env = {
        MANIFEST_ENV: str(manifest_path),
        "PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    stale = [out_dir / f"{csv_prefix}{suffix}" for suffix in OUTPUT_SUFFIXES]
    if acks_path is not None:
        env[ACKS_ENV] = str(acks_path)
        stale += acks.stale_files(acks_path)
    for path in stale:  # a file left by an earlier run must not pass for this run's
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    env.update(extra_env or {})

    limit_s = duration_s + STOP_TIMEOUT_S + START_MARGIN_S
    if master is not None:
        limit_s += master.max_wait_s  # the master waits for its workers before it starts
    timed_out = False
    aborted = ""
    started_unix = time.time()
    started = time.monotonic()
    with ProcessGroup(log_dir or out_dir) as group:
        proc = group.start("locust", argv, env=env, cwd=out_dir)
        meter = _CpuMeter(proc.pid, out_dir / f"{csv_prefix}_stats_history.csv", duration_s)
        code: int | None = None
        while True:
            code = proc.wait(POLL_S)
            if code is not None:
                break
            meter.sample()
            elapsed = time.monotonic() - started
            report(min(elapsed, duration_s), duration_s, f"{label}, {users} users")
            if abort_if is not None and (reason := abort_if()):
                aborted = reason
                code = _stop(proc)
                break
            if elapsed > limit_s:
                timed_out = True
                code = _stop(proc)
                break
        stderr_tail = proc.stderr_tail(30)
    elapsed = time.monotonic() - started
    report(duration_s, duration_s, "locust finished")
    if acks_path is not None:
        acks.merge_parts(acks_path)  # several locust processes: one file, as with one

    stats_csv = csv_with_rows(out_dir / f"{csv_prefix}_stats.csv")
    history_csv = csv_with_rows(out_dir / f"{csv_prefix}_stats_history.csv")
    html = out_dir / f"{csv_prefix}.html"
    requests, failures = request_counts(stats_csv)
    return LocustResult(
        exit_code=code,
        requests=requests,
        failures=failures,
        stats_csv=stats_csv,
        history_csv=history_csv,
        html=html if html.exists() else None,
        cpu_max_percent=round(meter.max_percent, 1),
        cpu_total_max_percent=round(meter.max_total_percent, 1),
        cpu_s=round(meter.cpu_s, 3),
        cpu_measured_s=round(meter.measured_s, 3),
        processes=processes if master is None else 0,
        duration_s=round(elapsed, 3),
        started_unix=started_unix,
        timed_out=timed_out,
        aborted=aborted,
        stderr_tail=stderr_tail,
    )


def _stop(proc: ManagedProcess) -> int:
    """SIGINT first, so locust still writes its CSVs and HTML; escalate after a grace time."""
    return proc.stop(timeout=ABORT_GRACE_S)
