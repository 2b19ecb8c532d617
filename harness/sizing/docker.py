"""The proof's other kernel limit: `docker run --memory`, when a Docker daemon answers.

A container is what a deployment runs, and Docker counts its OOM kills itself, so where a
daemon answers the proof runs the target's own command in one. The target is a command line
here, not an image: the container's root is an empty image (`HOST_ROOT_IMAGE`, imported once
from an empty tar) with the host's top-level folders bind-mounted at the same paths (read-only,
the run's own folder read-write), and the host's network (`--network host`: the load reaches
the target on the loopback, as without Docker). So the same interpreter runs the same code,
inside the limit (`--memory`, and `--memory-swap` equal to it: no swapping past it).

- OOM kills: `docker events` (`oom`) for the container since it started, at least 1 when
  `docker inspect` says `State.OOMKilled`;
- the cgroup's high-water mark: read from the container's own cgroup at the end of the load,
  while it still runs (Docker removes that cgroup when it stops);
- the container is removed (`docker rm -f`) on every way out, Ctrl-C included: killing the
  `docker run` client alone would leave it running.

The pure parts (the reason a daemon does not answer, the `docker run` prefix, the mounts,
the reading of `docker inspect` and `docker events`) are unit-tested; the rest is thin I/O.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.sizing.cgroup import CGROUP_ROOT, MemoryCgroup, own_path

HOST_ROOT_IMAGE = "memload-host-root:empty"
DOCKER_TIMEOUT_S = 10.0
# never bind-mounted: the kernel's and Docker's own (a container gets fresh ones)
NOT_MOUNTED = frozenset({"proc", "sys", "dev", "run", "lost+found", "boot", "media", "mnt"})
MIB = 2**20


def daemon_reason(cli: str | None, returncode: int | None, stderr: str) -> str:
    """'' when `docker info` answered, else the one-line reason there is no daemon."""
    if cli is None:
        return "no docker command on PATH"
    if returncode is None:
        return f"the Docker daemon did not answer `docker info` within {DOCKER_TIMEOUT_S:g} s"
    if returncode == 0:
        return ""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "no Docker daemon answers: " + (
        lines[-1] if lines else f"docker info exited {returncode}"
    )


def _docker(
    args: Sequence[str], timeout: float = DOCKER_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def detect_daemon() -> str:
    """'' when a Docker daemon answers here, else why not (one line)."""
    cli = shutil.which("docker")
    if cli is None:
        return daemon_reason(None, None, "")
    try:
        done = _docker(["info", "--format", "{{.ServerVersion}}"])
    except subprocess.TimeoutExpired:
        return daemon_reason(cli, None, "")
    return daemon_reason(cli, done.returncode, done.stderr)


@dataclass(frozen=True)
class Mount:
    path: str
    writable: bool = False

    def flag(self) -> str:
        return f"{self.path}:{self.path}:{'rw' if self.writable else 'ro'}"


def host_mounts(top_level: Iterable[str], writable: Iterable[Path]) -> list[Mount]:
    """The host's top-level folders, read-only, then the writable ones over them (a folder
    named both ways is mounted once, writable: Docker refuses a mount point twice)."""
    rw = sorted({str(path) for path in writable})
    names = sorted(set(top_level) - NOT_MOUNTED)
    return [Mount(f"/{n}") for n in names if f"/{n}" not in rw] + [Mount(p, True) for p in rw]


def run_prefix(
    name: str,
    limit_bytes: int,
    mounts: Sequence[Mount],
    env_names: Iterable[str],
    cwd: Path | None,
    image: str = HOST_ROOT_IMAGE,
) -> list[str]:
    """`docker run ... image`, for the target's command to follow: the limit, no swap past
    it, the host's network and files, the target's environment passed by name (docker takes
    each value from its own environment, which the harness sets for the target)."""
    limit = f"{math.ceil(limit_bytes / MIB)}m"
    # no --init: Docker would mount its init at /sbin, which is the host's here (read-only)
    argv = ["docker", "run", "--name", name, "--network", "host"]
    argv += ["--memory", limit, "--memory-swap", limit]
    for mount in mounts:
        argv += ["-v", mount.flag()]
    for env_name in sorted(set(env_names)):
        argv += ["-e", env_name]
    if cwd is not None:
        argv += ["-w", str(cwd.resolve())]
    return [*argv, image]


@dataclass(frozen=True)
class ContainerState:
    oom_killed: bool
    running: bool
    exit_code: int | None
    pid: int  # on the host; 0 when not running


def parse_inspect(text: str) -> ContainerState | None:
    """`docker inspect NAME` (a JSON list of one object): its State; None when absent."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return None
    state = data[0].get("State") or {}
    running = bool(state.get("Running"))
    code = state.get("ExitCode")
    return ContainerState(
        oom_killed=bool(state.get("OOMKilled")),
        running=running,
        exit_code=None if running or not isinstance(code, int) else code,
        pid=int(state.get("Pid") or 0),
    )


def count_oom_events(text: str) -> int:
    """Lines of `docker events --format '{{.Action}}'` that are an OOM event."""
    return sum(1 for line in text.splitlines() if line.strip() == "oom")


def ensure_image() -> None:
    """Import the empty image once (a tar with no file in it)."""
    if _docker(["image", "inspect", HOST_ROOT_IMAGE]).returncode == 0:
        return
    empty = io.BytesIO()
    with tarfile.open(fileobj=empty, mode="w"):
        pass
    done = subprocess.run(
        ["docker", "import", "-", HOST_ROOT_IMAGE],
        input=empty.getvalue(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"docker import failed: {done.stderr.decode(errors='replace').strip()}")


class Container:
    """The proof's container, by name: what the proof reads of it (as a MemoryCgroup)."""

    def __init__(self, name: str, argv_prefix: list[str]) -> None:
        self.name = name
        self.argv_prefix = argv_prefix
        self.since = time.time()

    def state(self) -> ContainerState | None:
        return parse_inspect(_docker(["inspect", self.name]).stdout)

    def host_pid(self, fallback: int) -> int:
        """The container's first process on the host (its tree is the app's), else fallback."""
        state = self.state()
        return state.pid if state is not None and state.pid > 0 else fallback

    def oom_kills(self) -> int:
        events = _docker(
            [
                "events",
                "--since",
                f"{self.since:.0f}",
                "--until",
                f"{time.time() + 1:.0f}",
                "--filter",
                f"container={self.name}",
                "--filter",
                "event=oom",
                "--format",
                "{{.Action}}",
            ]
        )
        counted = count_oom_events(events.stdout)
        state = self.state()
        return max(counted, 1 if state is not None and state.oom_killed else 0)

    def peak_bytes(self) -> int | None:
        """The container's cgroup high-water mark, while it runs (None once it stopped:
        Docker removes its cgroup then)."""
        state = self.state()
        if state is None or not state.running or state.pid <= 0:
            return None
        try:
            own = Path(f"/proc/{state.pid}/cgroup").read_text(encoding="utf-8")
        except OSError:
            return None
        version: Literal[1, 2] = 1 if (CGROUP_ROOT / "memory").is_dir() else 2
        mount = CGROUP_ROOT / "memory" if version == 1 else CGROUP_ROOT
        path = mount / own_path(own, version).lstrip("/")
        return MemoryCgroup(path, version).peak_bytes()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            _docker(["rm", "-f", self.name], timeout=30.0)


@contextlib.contextmanager
def container_on_exit(
    name: str,
    limit_bytes: int,
    writable: Sequence[Path],
    env_names: Iterable[str],
    cwd: Path | None,
) -> Iterator[Container]:
    """A container name and its `docker run` prefix for the `with` block; the container is
    removed on every way out, Ctrl-C included."""
    ensure_image()
    top = [p.name for p in Path("/").iterdir() if p.is_dir()]  # a link to a folder too (/lib64)
    mounts = host_mounts(top, [p.resolve() for p in writable])
    container = Container(name, run_prefix(name, limit_bytes, mounts, env_names, cwd))
    try:
        yield container
    finally:
        container.remove()
