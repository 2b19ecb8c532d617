"""What `harness loadtest` shows while it runs: phase progress, warnings, the final table.

Rendering only: figures arrive computed (summary rows, the comparison frame). On a terminal
each phase gets a live rich progress bar; otherwise (CI, pipes, tests) plain lines, a few
per phase, so logs stay readable.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

import pandas as pd
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.analysis.bounds import QUALIFIERS_COLUMN, qualified
from harness.phases import ProgressFn
from harness.report._units import MISSING, format_ratio, format_value

PLAIN_WIDTH = 120  # columns when the output is not a terminal
PLAIN_EVERY_S = 10.0  # plain mode: one progress line per phase at most this often

STATUS_STYLE = {
    "passed": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "skipped": ("-", "yellow"),
    "interrupted": ("!", "bold yellow"),
}


class Console:
    def __init__(self, file: IO[str] | None = None, live: bool | None = None) -> None:
        self.out = RichConsole(file=file or sys.stdout, highlight=False)
        if not self.out.is_terminal:
            # Logs and pipes: wide enough that the table's lines do not wrap.
            self.out = RichConsole(file=file or sys.stdout, highlight=False, width=PLAIN_WIDTH)
        self.live = self.out.is_terminal if live is None else live

    # --- messages ----------------------------------------------------------------------
    def info(self, text: str) -> None:
        self.out.print(escape(text))

    def warn(self, text: str) -> None:
        self.out.print(f"[bold yellow]warning:[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.out.print(f"[bold red]error:[/] {escape(text)}")

    def heading(self, text: str) -> None:
        self.out.rule(escape(text))

    # --- phases ------------------------------------------------------------------------
    @contextlib.contextmanager
    def phase(self, design: str, phase: str, total_s: float | None = None) -> Iterator[ProgressFn]:
        """Show a phase while it runs; yields its progress(done, total, text) callback."""
        label = f"{phase} · {design}"
        if not self.live:
            planned = f" (~{total_s:.0f} s)" if total_s else ""
            self.out.print(f"▶ {escape(label)}{planned}")
            last = [time.monotonic()]

            def plain(done: float, total: float, text: str) -> None:
                now = time.monotonic()
                if now - last[0] < PLAIN_EVERY_S:
                    return
                last[0] = now
                self.out.print(f"  {escape(label)}: {_amount(done, total)} {escape(text)}")

            yield plain
            return
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[amount]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[text]}", style="dim"),
        )
        with Progress(*columns, console=self.out, transient=True) as bar:
            task = bar.add_task(label, total=total_s or None, amount="", text="")

            def live(done: float, total: float, text: str) -> None:
                bar.update(
                    task,
                    completed=done,
                    total=total or None,
                    amount=_amount(done, total),
                    text=escape(text),
                )

            yield live

    def phase_done(
        self, design: str, phase: str, status: str, duration_s: float, detail: str = ""
    ) -> None:
        mark, style = STATUS_STYLE.get(status, ("?", "white"))
        first = detail.strip().splitlines()[0] if detail.strip() else ""
        why = f": {escape(first)}" if first else ""
        self.out.print(
            f"[{style}]{mark} {escape(phase)} · {escape(design)} {status}[/] "
            f"in {duration_s:.1f} s{why}"
        )
        rest = detail.strip().splitlines()[1:]
        if status == "failed" and rest:
            self.out.print(escape("\n".join("    " + line for line in rest[-15:])), style="dim")

    # --- the result --------------------------------------------------------------------
    def comparison(
        self, frame: pd.DataFrame, designs: Sequence[str], ratio_col: str | None
    ) -> None:
        """The headline table: one column per design, a ratio column, the phase of each figure."""
        if frame.empty:
            self.warn("no figures to compare (every phase failed or was skipped)")
            return
        table = Table(title="Headline figures", title_justify="left")
        table.add_column("metric")
        table.add_column("phase", style="dim")
        for design in designs:
            table.add_column(design, justify="right")
        if ratio_col:
            table.add_column(ratio_col, justify="right", style="bold")
        for record in frame.to_dict("records"):
            unit = str(record["unit"])
            bound = record.get(QUALIFIERS_COLUMN) or {}
            cells = [escape(str(record["title"])), str(record["phase"])]
            cells += [
                qualified(format_value(_value(record.get(d)), unit), bound.get(d, ""))
                for d in designs
            ]
            if ratio_col:
                ratio = _value(record.get(ratio_col))
                text = format_ratio(ratio) if ratio is not None else MISSING
                cells.append(qualified(text, bound.get(ratio_col, "")))
            table.add_row(*cells)
        self.out.print(table)

    def run_dir(self, path: Path, status: str) -> None:
        mark, style = STATUS_STYLE.get(status, ("?", "white"))
        self.out.print(f"[{style}]{mark} run {status}[/]: {escape(str(path))}")


def _amount(done: float, total: float) -> str:
    if total and total > 0:
        return f"{done:.0f}/{total:.0f}"
    return f"{done:.0f}"


def _value(raw: object) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value
