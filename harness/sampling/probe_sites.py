"""Where a probed request's memory goes: allocation sites, inside the server process.

Two instruments, each the one that can see what is asked:

- **peak sites**, what was held at the request's high-water mark: the request runs under a
  ``memray.Tracker`` (Python allocators traced one by one), and the capture's high-water-mark
  records are its peak, since memray counts only what was allocated while it tracked. tracemalloc
  cannot say this: it keeps the peak's size, not its contents.
- **retained sites**, what a run of requests left behind: a tracemalloc snapshot before and after
  the run, compared per traceback; a leak grows by the same lines every request, a one-off does
  not divide into many.

Both fold stacks to sites with harness.analysis.sites (the first frame of the service's own code).
"""

from __future__ import annotations

import os
import sys
import sysconfig
import tempfile
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.analysis.sites import Frame, Site, aggregate

SITES_NFRAME = 16


def library_dirs() -> tuple[str, ...]:
    """The standard library and site-packages of this interpreter (not the service's code)."""
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    paths = {sysconfig.get_path(n) for n in names}
    return tuple(sorted(p.rstrip("/") + "/" for p in paths if p))


def display_roots() -> tuple[str, ...]:
    """Directories sites are shown relative to: the working directory, the import path, and
    the directory above each imported top-level package (an editable install is found by an
    import hook, not through sys.path: its files would otherwise show as absolute paths)."""
    roots = {os.getcwd(), *sys.path}
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if "." not in name and path and os.path.basename(path) == "__init__.py":
            roots.add(os.path.dirname(os.path.dirname(path)))
    return tuple(p for p in roots if p and os.path.isdir(p))


class PeakSites:
    """Runs one request under memray and keeps the sites held at its high-water mark."""

    def __init__(self) -> None:
        self.armed = False
        self.sites: list[Site] | None = None

    @staticmethod
    def available() -> bool:
        try:
            import memray  # noqa: F401
        except ImportError:
            return False
        return True

    @contextmanager
    def tracking(self) -> Iterator[None]:
        """Track allocations inside the block; `self.sites` holds its high-water-mark sites."""
        import memray

        self.armed = False
        with tempfile.TemporaryDirectory(prefix="memload-sites-") as tmp:
            capture = Path(tmp) / "request.bin"
            with memray.Tracker(capture, native_traces=False, trace_python_allocators=True):
                yield
            reader = memray.FileReader(capture)
            stacks = [
                (_memray_frames(record), float(record.size), float(record.n_allocations))
                for record in reader.get_high_watermark_allocation_records(merge_threads=True)
            ]
            reader.close()
        self.sites = aggregate(stacks, library_dirs(), display_roots())


def _memray_frames(record: Any) -> list[Frame]:
    # memray gives (function, file, line), innermost first.
    return [(str(f), int(line), str(fn)) for fn, f, line in record.stack_trace()]


class RetainedSites:
    """A tracemalloc snapshot at the start of a run; the lines that grew since, per request
    (``per_request``) or in total.

    ``deep`` runs restart tracing SITES_NFRAME frames deep, so the service's own line is found
    under a library call; the others keep the current depth (one frame in the probe): they
    cost no restart, so they can watch a run whose figures are being measured, such as an
    endpoint's first requests in the process, where a cache fills once (its step sites).
    """

    def __init__(self, *, deep: bool = True, per_request: bool = True) -> None:
        self.deep = deep
        self.per_request = per_request
        self._start: tracemalloc.Snapshot | None = None
        self._start_seq = 0

    def start(self, seq: int) -> None:
        """Snapshot now (deep: tracing SITES_NFRAME frames deep from here on).

        Restarting tracemalloc forgets the blocks traced so far; later figures are differences
        within the run (and frees of forgotten blocks are ignored), so nothing measured after
        this point is skewed, but peak figures taken before it cannot be compared with after.
        """
        self._start = None  # the previous snapshot, if any, must not be in the next one
        if self.deep and tracemalloc.get_traceback_limit() < SITES_NFRAME:
            tracemalloc.stop()
            tracemalloc.start(SITES_NFRAME)
        self._start = tracemalloc.take_snapshot()
        self._start_seq = seq

    def finish(self, seq: int) -> dict[str, Any]:
        if self._start is None:
            raise RuntimeError("no retained-sites run was started")
        requests = seq - self._start_seq
        if requests < 1:
            raise RuntimeError("no request was measured since the run started")
        diff = tracemalloc.take_snapshot().compare_to(self._start, "traceback")
        self._start = None
        stacks = [
            (_tracemalloc_frames(stat.traceback), float(stat.size_diff), float(stat.count_diff))
            for stat in diff
            if stat.size_diff
        ]
        per = float(requests) if self.per_request else 1.0
        sites = aggregate(stacks, library_dirs(), display_roots(), per=per, positive_only=True)
        return {"requests": requests, "sites": [s.to_json() for s in sites]}


def _tracemalloc_frames(traceback: tracemalloc.Traceback) -> list[Frame]:
    # A tracemalloc Traceback lists the oldest frame first; sites want the innermost first.
    return [(f.filename, f.lineno, "") for f in reversed(list(traceback))]
