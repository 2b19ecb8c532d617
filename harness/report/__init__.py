"""Reports from run directories: report.md, report.html (self-contained) and figures/*.png.

- `render_run(run_dir)` writes report.md, report.html and figures/*.png into the run directory.
- `render_compare(run_a, run_b, out_dir=None)` writes compare.md, compare.html and
  figures/over_time_<design>.png (default out_dir: RUN_B/compare-<run A id>/).

Both read only the run directories. They build a report object first (read, compute, draw
the figures in memory) and only its `render()` writes, so a failure leaves nothing half done.
Importing this package imports neither pandas nor matplotlib.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["render_compare", "render_run"]


def render_run(run_dir: Path) -> list[Path]:
    """Render the report of one run into its directory; return the files written."""
    from harness.report._render import RunReport

    return RunReport.build(Path(run_dir)).render()


def render_compare(run_a: Path, run_b: Path, out_dir: Path | None = None) -> list[Path]:
    """Compare two runs (headline metrics, the load phase over time); return the files written."""
    from harness.report._compare import CompareReport

    report = CompareReport.build(Path(run_a), Path(run_b))
    return report.render(Path(out_dir) if out_dir is not None else None)
