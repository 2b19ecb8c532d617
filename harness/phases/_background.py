"""A phase's tail that needs no quiet machine, run on a thread beside phases that need none.

The profile phase needs the machine to itself only while the app runs under memray. Reading
its capture afterwards (three full scans, 40 s of a 146 MB naive capture here) measures
nothing, and neither does the probe, whose figures are bytes counted by tracemalloc. So
`harness loadtest` reads the capture on a thread while the probe runs, and waits for it
(`Background.join`) before any phase that times something and before the report.

The reading starts processes (memray stats, memray flamegraph): `stop` stops them from the
main thread, so Ctrl-C leaves none behind even while the thread is busy in-process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from harness.results import SummaryRow
from harness.stack.processes import ProcessGroup

__all__ = ["Background"]

Work = Callable[[Callable[[ProcessGroup], None]], list[SummaryRow]]


class Background:
    """`work(on_readers)` on a daemon thread; `join()` returns its rows or raises its error."""

    def __init__(self, work: Work) -> None:
        self._work = work
        self._rows: list[SummaryRow] = []
        self._error: BaseException | None = None
        self._groups: list[ProcessGroup] = []
        self._lock = threading.Lock()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="background-phase", daemon=True)
        self._thread.start()

    def _readers(self, group: ProcessGroup) -> None:
        with self._lock:
            if self._stopped:
                raise KeyboardInterrupt  # the group's exit stops whatever it started
            self._groups.append(group)

    def _run(self) -> None:
        try:
            self._rows = self._work(self._readers)
        except BaseException as exc:  # handed to join(), on the main thread
            self._error = exc

    def join(self) -> list[SummaryRow]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._rows

    def stop(self) -> None:
        """Interrupted: stop the reader processes now; the thread ends with the process."""
        with self._lock:
            self._stopped = True
            groups = list(self._groups)
        for group in groups:
            group.stop_all_now()
