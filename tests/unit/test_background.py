"""The thread a phase's tail runs on (harness.phases._background): rows and errors reach the
main thread through join(); stop() before the readers start makes them not start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from harness._errors import PhaseFailed
from harness.phases._background import Background
from harness.results import SummaryRow
from harness.stack.processes import ProcessGroup

ROW = SummaryRow("naive", "profile", "heap_peak_bytes", 1.0, "bytes")


def test_join_returns_the_rows() -> None:
    assert Background(lambda _on_readers: [ROW]).join() == [ROW]


def test_join_raises_the_tail_s_error_on_the_main_thread() -> None:
    def fails(_on_readers: Callable[[ProcessGroup], None]) -> list[SummaryRow]:
        raise PhaseFailed("profile", "memray stats exited 1")

    with pytest.raises(PhaseFailed, match="memray stats exited 1"):
        Background(fails).join()


def test_stopped_before_its_readers_exist_the_tail_starts_none(tmp_path: Path) -> None:
    go = threading.Event()
    started: list[str] = []

    def reads(on_readers: Callable[[ProcessGroup], None]) -> list[SummaryRow]:
        go.wait(10)
        with ProcessGroup(tmp_path) as group:
            on_readers(group)
            started.append("reader")
        return [ROW]

    tail = Background(reads)
    tail.stop()
    go.set()
    with pytest.raises(KeyboardInterrupt):
        tail.join()
    assert started == []
