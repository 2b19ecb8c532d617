"""Start, wait-ready and stop child processes, each in its own process group.

Every process the harness starts goes through a `ProcessGroup`; leaving the group
(success, failure, Ctrl-C) stops them all: SIGINT first (so uvicorn shuts down
cleanly and memray finishes its capture), then SIGTERM, then SIGKILL to the whole
process group, so no grandchild (uvicorn workers, locust workers) is orphaned.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from harness._errors import PhaseFailed

LOOPBACK = "127.0.0.1"
INTERRUPT_GRACE_S = 1.0  # Ctrl-C: SIGINT, then SIGTERM after this, then SIGKILL


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    stdout_path: Path
    stderr_path: Path
    started_at: float = field(default_factory=time.monotonic)
    stop_signal: int = signal.SIGINT  # the first signal of stop(); SIGTERM, SIGKILL follow

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        return self.popen.poll()

    def stderr_tail(self, lines: int = 20) -> str:
        return tail(self.stderr_path, lines)

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT (or the process's stop_signal), then SIGTERM, then SIGKILL to the process
        group; returns the exit status.

        The group is killed at the end in any case, so stray grandchildren go too.
        """
        code = self.popen.poll()
        if code is None:
            for sig, wait_s in ((self.stop_signal, timeout), (signal.SIGTERM, 5.0)):
                self.signal_group(sig)
                waited = self.wait(wait_s)
                if waited is not None:
                    code = waited
                    break
            else:
                self.signal_group(signal.SIGKILL)
                code = self.popen.wait()
        self.signal_group(signal.SIGKILL)
        return code


def start(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGINT,
) -> ManagedProcess:
    """Start argv in a new session (its own process group); output goes to log files."""
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout_path = log_dir / f"{name}.stdout.log"
    stderr_path = log_dir / f"{name}.stderr.log"
    full_env = dict(os.environ)
    full_env["PYTHONUNBUFFERED"] = "1"
    if env:
        full_env.update(env)
    with stdout_path.open("wb") as out, stderr_path.open("wb") as err:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    return ManagedProcess(
        name, list(argv), popen, stdout_path, stderr_path, stop_signal=stop_signal
    )


def wait_healthy(proc: ManagedProcess, url: str, timeout: float = 30.0, phase: str = "") -> float:
    """Poll url until it answers 200; return the seconds it took.

    Raises PhaseFailed (with the tail of the process's stderr) if the process exits
    or the timeout passes first.
    """
    deadline = time.monotonic() + timeout
    start_t = time.monotonic()
    with httpx.Client(timeout=2.0) as client:
        while True:
            code = proc.poll()
            if code is not None:
                raise PhaseFailed(
                    phase or proc.name,
                    f"{proc.name} exited with status {code} before it was healthy; "
                    f"stderr tail:\n{proc.stderr_tail()}",
                )
            with contextlib.suppress(httpx.HTTPError):
                if client.get(url).status_code == 200:
                    return time.monotonic() - start_t
            if time.monotonic() > deadline:
                raise PhaseFailed(
                    phase or proc.name,
                    f"{proc.name} was not healthy at {url} within {timeout:.0f} s; "
                    f"stderr tail:\n{proc.stderr_tail()}",
                )
            time.sleep(0.1)


PORT_ATTEMPTS = 3
_BIND_FAILURES = ("address already in use", "errno 98", "eaddrinuse")


def _lost_port_race(proc: ManagedProcess) -> bool:
    return proc.poll() is not None and any(
        marker in proc.stderr_tail(40).lower() for marker in _BIND_FAILURES
    )


def start_on_free_port(
    group: ProcessGroup,
    name: str,
    argv_for_port: Callable[[int], Sequence[str]],
    health_path: str = "/healthz",
    timeout: float = 30.0,
    phase: str = "",
    env: Mapping[str, str] | Callable[[int], Mapping[str, str]] | None = None,
    host: str = LOOPBACK,
    cwd: Path | None = None,
    stop_signal: int = signal.SIGINT,
) -> tuple[ManagedProcess, str]:
    """Start a server on a free loopback port and wait until it is healthy.

    A port that was free when picked can be taken before the server binds it (another
    process, another test): then the server exits with EADDRINUSE and another port is tried.
    Returns the process and its base URL. `env` may depend on the port (a callable).
    """
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = free_port(host)
        port_env = env(port) if callable(env) else env
        proc = group.start(
            name, argv_for_port(port), env=port_env, cwd=cwd, stop_signal=stop_signal
        )
        base_url = f"http://{host}:{port}"
        try:
            wait_healthy(proc, f"{base_url}{health_path}", timeout, phase=phase)
        except PhaseFailed:
            if attempt < PORT_ATTEMPTS and _lost_port_race(proc):
                group.processes.remove(proc)
                proc.stop()
                continue
            raise
        return proc, base_url
    raise AssertionError("unreachable")


class ProcessGroup:
    """Owns the processes of a phase; leaving the `with` block stops all of them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[ManagedProcess] = []

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGINT,
    ) -> ManagedProcess:
        proc = start(name, argv, self.log_dir, env=env, cwd=cwd, stop_signal=stop_signal)
        self.processes.append(proc)
        return proc

    def stop_all(self, timeout: float = 10.0) -> dict[str, int]:
        codes: dict[str, int] = {}
        # Stop in reverse order of start: the app before the upstream it calls.
        for proc in reversed(self.processes):
            codes[proc.name] = proc.stop(timeout)
        self.processes.clear()
        return codes

    def stop_all_now(self, grace_s: float = INTERRUPT_GRACE_S) -> None:
        """Interrupted: signal every process at once, SIGKILL what is left after grace_s.

        Bounded by about 1.5 x grace_s however many processes there are, so that Ctrl-C
        leaves nothing running within seconds.
        """
        procs = list(reversed(self.processes))
        for first, wait_s in ((True, grace_s), (False, grace_s / 2)):
            alive = [p for p in procs if p.poll() is None]
            if not alive:
                break
            for proc in alive:
                proc.signal_group(proc.stop_signal if first else signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            for proc in alive:
                proc.wait(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            proc.signal_group(signal.SIGKILL)
            if proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.popen.wait(1.0)
        self.processes.clear()

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.stop_all_now()
        else:
            self.stop_all()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Make SIGTERM to the harness behave like Ctrl-C, so teardown still runs."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
