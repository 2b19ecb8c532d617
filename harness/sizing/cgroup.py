"""A memory cgroup of our own: a kernel-enforced limit for a process tree, and its OOM count.

Chosen by detection, never assumed:

- cgroup v2 (the unified hierarchy) when its `cgroup.controllers` lists `memory`:
  `memory.max`, OOM kills from `memory.events` (`oom_kill N`), peak from `memory.peak`;
- cgroup v1 otherwise, when the memory controller is mounted (`<root>/memory`):
  `memory.limit_in_bytes` (and `memory.memsw.limit_in_bytes` when swap accounting exists, so
  the limit is not dodged by swapping), OOM kills from `memory.oom_control` (`oom_kill N`),
  peak from `memory.max_usage_in_bytes`.

The child cgroup is made under the harness's own cgroup (from /proc/self/cgroup), so it stays
inside whatever limit the harness itself runs under; a process joins it before it execs the
target (`join_argv`), so every byte of its start-up is charged to it. `removed_on_exit`
kills what is left in it and removes the directory on every way out, Ctrl-C included.
Without the rights or the controller, `detect` returns the one-line reason instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
REMOVE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Controller:
    """Where children with a memory limit can be made."""

    version: Literal[1, 2]
    parent: Path


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def own_path(self_cgroup: str, version: Literal[1, 2]) -> str:
    """The harness's cgroup in the hierarchy of `version` ('/' when not listed)."""
    for line in self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if version == 2 and hierarchy == "0" and controllers == "":
            return path or "/"
        if version == 1 and "memory" in controllers.split(","):
            return path or "/"
    return "/"


def _under(mount: Path, relative: str) -> Path:
    inside = mount / relative.lstrip("/")
    return inside if inside.is_dir() else mount


def detect(root: Path = CGROUP_ROOT, self_cgroup: str | None = None) -> Controller | str:
    """A v2 hierarchy with the memory controller, else the v1 memory controller; else why not.

    `root` is /sys/fs/cgroup (a fake tree in tests); v2 is looked for at `root` itself and at
    `root/unified` (the hybrid layout)."""
    text = _read(PROC_SELF_CGROUP) if self_cgroup is None else self_cgroup
    reasons = []
    for mount in (root, root / "unified"):
        controllers = _read(mount / "cgroup.controllers").split()
        if not (mount / "cgroup.controllers").exists():
            continue
        if "memory" not in controllers:
            reasons.append(f"the cgroup v2 hierarchy at {mount} has no memory controller")
            continue
        parent = _under(mount, own_path(text, 2))
        delegated = "memory" in _read(parent / "cgroup.subtree_control").split()
        if not delegated:
            try:
                (parent / "cgroup.subtree_control").write_text("+memory", encoding="utf-8")
            except OSError as exc:
                reasons.append(f"cannot enable the memory controller under {parent}: {exc}")
                continue
        if os.access(parent, os.W_OK):
            return Controller(2, parent)
        reasons.append(f"no write access to {parent}")
    v1 = root / "memory"
    if (v1 / "memory.limit_in_bytes").exists():
        parent = _under(v1, own_path(text, 1))
        if os.access(parent, os.W_OK):
            return Controller(1, parent)
        reasons.append(f"no write access to {parent} (root needed)")
    else:
        reasons.append(f"no cgroup v1 memory controller at {v1}")
    return "no memory cgroup available: " + "; ".join(reasons)


class MemoryCgroup:
    """One child cgroup with a memory limit (see the module docstring)."""

    def __init__(self, path: Path, version: Literal[1, 2]) -> None:
        self.path = path
        self.version = version

    @classmethod
    def create(cls, controller: Controller, name: str, limit_bytes: int) -> MemoryCgroup:
        path = controller.parent / name
        path.mkdir()
        group = cls(path, controller.version)
        try:
            group.set_limit(limit_bytes)
        except BaseException:
            group.remove()
            raise
        return group

    @property
    def procs_file(self) -> Path:
        return self.path / "cgroup.procs"

    @property
    def argv_prefix(self) -> list[str]:
        """Before the target's command: it joins this cgroup, then execs (join_argv)."""
        return join_argv(self.procs_file)

    def host_pid(self, fallback: int) -> int:
        """The pid whose tree is the app: the one started (it execs in place)."""
        return fallback

    def _write(self, name: str, value: str) -> None:
        (self.path / name).write_text(value, encoding="utf-8")

    def set_limit(self, limit_bytes: int) -> None:
        if self.version == 2:
            self._write("memory.max", str(limit_bytes))
            if (self.path / "memory.swap.max").exists():
                self._write("memory.swap.max", "0")
            return
        self._write("memory.limit_in_bytes", str(limit_bytes))
        if (self.path / "memory.memsw.limit_in_bytes").exists():
            with contextlib.suppress(OSError):  # swap accounting may be off
                self._write("memory.memsw.limit_in_bytes", str(limit_bytes))

    def add(self, pid: int) -> None:
        self._write("cgroup.procs", str(pid))

    def _counter(self, name: str, key: str) -> int:
        for line in _read(self.path / name).splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == key:
                return int(parts[1])
        return 0

    def oom_kills(self) -> int:
        """Processes the kernel's OOM killer killed in this cgroup."""
        if self.version == 2:
            return self._counter("memory.events", "oom_kill")
        return self._counter("memory.oom_control", "oom_kill")

    def limit_hits(self) -> int:
        """How often usage reached the limit (v1 failcnt, v2 `max` events)."""
        if self.version == 2:
            return self._counter("memory.events", "max")
        text = _read(self.path / "memory.failcnt").strip()
        return int(text) if text.isdigit() else 0

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        text = _read(self.path / name).strip()
        return int(text) if text.isdigit() else None

    def pids(self) -> list[int]:
        return [int(p) for p in _read(self.procs_file).split() if p.isdigit()]

    def remove(self, timeout: float = REMOVE_TIMEOUT_S) -> None:
        """SIGKILL whatever still runs in it, then remove the directory (a cgroup with
        processes cannot be removed: retried until they are gone or the timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno not in (errno.EBUSY, errno.ENOTEMPTY) or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


@contextlib.contextmanager
def removed_on_exit(controller: Controller, name: str, limit_bytes: int) -> Iterator[MemoryCgroup]:
    """A limited cgroup for the `with` block; removed on every way out, Ctrl-C included."""
    group = MemoryCgroup.create(controller, name, limit_bytes)
    try:
        yield group
    finally:
        group.remove()


def join_argv(procs_file: Path) -> list[str]:
    """A prefix for a command line: the shell writes its own pid into the cgroup, then execs
    the command (same pid, same process group), so the target starts inside the limit."""
    return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(procs_file)]
