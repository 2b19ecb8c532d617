"""Memory per request of the Flask notes service (WSGI, SQLite), in its own test suite.

The WSGI app goes through a2wsgi, as `harness.serve` serves it, so its figures are the probe's.
The size knob is the service's own seed function, called directly: a setup callable is any
code that brings the service to N rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")
import notes_app
from seed import seed

NOTES = 1000


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "notes.db"
    monkeypatch.setenv("NOTES_DB", str(path))
    seed(path, NOTES)
    return path


@pytest.fixture
def notes(memload: Any, database: Path) -> Any:
    return memload.client(notes_app.app)


@pytest.mark.memload(peak="48 KiB", retained="32 B")
def test_get_one_note(memload: Any, notes: Any) -> None:
    memory = memload.peak(lambda: notes.get("/notes/1"))
    assert memory.status == 200
    memload.retained(lambda: notes.get("/notes/1"))


@pytest.mark.memload(slope="1 KiB/note")
def test_listing_grows_with_the_notes(memload: Any, notes: Any, database: Path) -> None:
    memload.peak_growth(
        setup=lambda n: seed(database, n),
        request=lambda: notes.get("/notes"),
        sizes=[0, 1000, 5000],
        unit="note",
    )
