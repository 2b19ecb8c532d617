"""What the sampler reads from Linux's /proc itself, where psutil's way costs too much.

- /proc/PID/stat (name, state, CPU time, threads, RSS) and /proc/PID/status (VmHWM: the
  kernel's high-water mark of RSS, the largest RSS the process ever had, even between two
  samples; psutil does not expose it), read directly: two reads a process, no objects.
- The inet sockets a process holds: psutil's `net_connections` reads /proc/net/tcp, tcp6,
  udp and udp6 once per process, and the kernel builds those tables by walking its whole
  connection hash (about 5 ms a table here, however few sockets there are). Here each socket
  of the process (its /proc/PID/fd links) is asked its protocol once (the socket file
  system's `system.sockprotoname` attribute, a few microseconds), and the answer is kept
  by inode. A socket shared by several processes (an inherited listening socket) counts in
  each, as with psutil. Unlike psutil's table rows, a socket not yet bound or already
  closed by the kernel (but still open in the process) counts too.

Parsers are pure functions; readers return None where /proc does not tell (another platform,
a process that just exited, permissions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INET_PROTOCOLS",
    "SocketKinds",
    "Stat",
    "available",
    "count_fds",
    "descendants",
    "high_water_mark",
    "parent_pid",
    "parse_stat",
    "parse_status_kib",
    "read_stat",
    "read_status",
]

PROC = Path("/proc")
INET_PROTOCOLS = frozenset({"TCP", "TCPv6", "UDP", "UDPv6"})  # psutil's kind="inet"
PROTOCOL_XATTR = "system.sockprotoname"
_SOCKET_PREFIX = "socket:["
_READ_SIZE = 8192
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def available() -> bool:
    """True where /proc has the files this module reads (Linux)."""
    return (PROC / "self" / "status").is_file() and (PROC / "self" / "stat").is_file()


def parse_status_kib(text: str, key: str) -> int | None:
    """The value in bytes of a `Key:   N kB` line of /proc/PID/status, or None."""
    prefix = f"{key}:"
    for line in text.splitlines():
        if line.startswith(prefix):
            fields = line[len(prefix) :].split()
            if fields and fields[0].isdigit():
                return int(fields[0]) * 1024
            return None
    return None


def _read(path: str) -> str | None:
    """A small /proc file as text, without Python's file objects (None: unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("ascii", "replace")


def high_water_mark(pid: int) -> int | None:
    """VmHWM of `pid` in bytes: the peak RSS over its life (None: unknown, e.g. gone)."""
    text = read_status(pid)
    return None if text is None else parse_status_kib(text, "VmHWM")


def read_status(pid: int) -> str | None:
    """/proc/PID/status as text, or None (gone, unreadable)."""
    return _read(f"/proc/{pid}/status")


@dataclass(frozen=True)
class Stat:
    """The fields of /proc/PID/stat the sampler uses."""

    name: str
    state: str
    ppid: int
    cpu_s: float  # user + system
    threads: int
    rss_bytes: int


def parse_stat(text: str) -> Stat:
    """Parse /proc/PID/stat (the name may hold spaces and parentheses: split at the last ')')."""
    left, _, right = text.rpartition(")")
    name = left.partition("(")[2]
    fields = right.split()
    # fields[0] is field 3 of proc(5): state, ppid, ..., utime (14), stime (15), ...
    return Stat(
        name=name,
        state=fields[0],
        ppid=int(fields[1]),
        cpu_s=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        threads=int(fields[17]),
        rss_bytes=int(fields[21]) * PAGE_SIZE,
    )


def read_stat(pid: int) -> Stat | None:
    """/proc/PID/stat parsed; None when the process is gone (or the file is cut short)."""
    text = _read(f"/proc/{pid}/stat")
    if text is None:
        return None
    try:
        return parse_stat(text)
    except (IndexError, ValueError):
        return None


def parent_pid(stat_text: str) -> int:
    """The parent's pid from /proc/PID/stat text (the field after the state)."""
    return int(stat_text.rpartition(")")[2].split(maxsplit=2)[1])


def descendants(root: int) -> list[int]:
    """Every descendant of `root`, parents before their children: one scan of /proc.

    psutil's `children(recursive=True)` does the same scan with an object a process (about 4x
    the CPU); /proc/PID/task/TID/children would be cheaper but the kernel may lack it.
    """
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        text = _read(f"/proc/{name}/stat")
        try:
            parent = parent_pid(text or "")
        except (IndexError, ValueError):
            continue  # exited since the listing
        children.setdefault(parent, []).append(int(name))
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children.get(todo.pop(0), ()):
            found.append(child)
            todo.append(child)
    return found


def count_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def _socket_inode(link: str) -> int | None:
    if link.startswith(_SOCKET_PREFIX):
        return int(link[len(_SOCKET_PREFIX) : -1])
    return None


class SocketKinds:
    """Counts a process's inet sockets; remembers each socket inode's protocol."""

    def __init__(self) -> None:
        self._inet: dict[int, bool] = {}
        self._recent: set[int] = set()  # inodes seen since the last prune

    def is_inet(self, path: str, inode: int) -> bool | None:
        known = self._inet.get(inode)
        if known is None:
            try:
                raw = os.getxattr(path, PROTOCOL_XATTR)
            except OSError:
                return None  # closed since the listing, or no such attribute here
            known = raw.rstrip(b"\0").decode("ascii", "replace") in INET_PROTOCOLS
            self._inet[inode] = known
        return known

    def count(self, pid: int) -> int | None:
        """How many inet sockets `pid` holds open; None if its fds cannot be read."""
        fd_dir = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fd_dir)
        except OSError:
            return None
        found = 0
        for name in names:
            path = f"{fd_dir}/{name}"
            try:
                inode = _socket_inode(os.readlink(path))
            except OSError:
                continue  # closed since the listing
            if inode is None:
                continue
            self._recent.add(inode)
            if self.is_inet(path, inode):
                found += 1
        return found

    def prune(self) -> None:
        """Forget sockets not seen since the last prune (bounds the memory under churn)."""
        self._inet = {k: v for k, v in self._inet.items() if k in self._recent}
        self._recent = set()
