"""The phases of a run. Each `run_<phase>(run, design, cfg, ..., progress=None)` writes under
`run.phase_dir(design, phase)` and returns its summary rows; the caller records them.

A phase that fails raises `harness.PhaseFailed`; when it measured something before failing
(partial results), it raises `FailedWithResults`, whose rows the caller still records.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from harness._errors import PhaseFailed
from harness.results import SummaryRow

# progress(done, total, text): how far a phase is; the CLI renders it (rich), tests ignore it.
ProgressFn = Callable[[float, float, str], None]


def no_progress(done: float, total: float, text: str) -> None:
    """The default progress callback: shows nothing."""


class FailedWithResults(PhaseFailed):
    """A phase failed, but the rows it measured before failing are worth recording."""

    def __init__(
        self,
        phase: str,
        reason: str,
        rows: Sequence[SummaryRow] = (),
        child_exit_code: int | None = None,
    ) -> None:
        super().__init__(phase, reason)
        self.rows = list(rows)
        self.child_exit_code = child_exit_code  # e.g. locust's; exit_code is the harness's
