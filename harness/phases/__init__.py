"""The phases of a run. Each `run_<phase>(run, design, cfg, ..., progress=None)` writes under
`run.phase_dir(design, phase)` and returns its summary rows; the caller records them.
"""

from __future__ import annotations

from collections.abc import Callable

# progress(done, total, text): how far a phase is; the CLI renders it (rich), tests ignore it.
ProgressFn = Callable[[float, float, str], None]


def no_progress(done: float, total: float, text: str) -> None:
    """The default progress callback: shows nothing."""
