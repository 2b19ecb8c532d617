"""A small Flask service on SQLite, with a data-size knob: a table of N notes.

    GET  /healthz               -> {"status": "ok"}
    GET  /notes                 -> {"notes": [...], "count": N}   (reads every row: grows with N)
    GET  /notes/<id>            -> the note, or 404                (one row)
    POST /notes {"text": T}     -> 201 {"id": ..., "count": N+1}

The database is the file NOTES_DB names (loadtest.toml sets it to {data_dir}/notes.db).
seed.py fills it with N notes: the harness runs it as the load's seed command and as the
probe's setup command (it brings the table to exactly N rows before each point).

A WSGI app: `python -m harness.serve notes_app:app` serves it through a2wsgi under uvicorn,
so the harness measures it like any ASGI app. Nothing here knows about the harness.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, abort, request
from seed import connect

app = Flask(__name__)


@contextmanager
def database() -> Iterator[sqlite3.Connection]:
    connection = connect(os.environ.get("NOTES_DB", "notes.db"))
    try:
        with connection:  # commits, or rolls back on an exception
            yield connection
    finally:
        connection.close()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/notes")
def list_notes() -> dict[str, Any]:
    with database() as db:
        rows = db.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    return {"notes": [{"id": i, "text": t} for i, t in rows], "count": len(rows)}


@app.get("/notes/<int:note_id>")
def get_note(note_id: int) -> dict[str, Any]:
    with database() as db:
        row = db.execute("SELECT id, text FROM notes WHERE id = ?", (note_id,)).fetchone()
    if row is None:
        abort(404)
    return {"id": row[0], "text": row[1]}


@app.post("/notes")
def add_note() -> tuple[dict[str, int], int]:
    body = request.get_json(silent=True) or {}
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= 2000:
        abort(422)
    with database() as db:
        note_id = db.execute("INSERT INTO notes (text) VALUES (?)", (text,)).lastrowid
        (count,) = db.execute("SELECT COUNT(*) FROM notes").fetchone()
    return {"id": int(note_id or 0), "count": int(count)}, 201
