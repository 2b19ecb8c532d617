"""Grouping the exceptions an app logged (tests/data/server_logs: real uvicorn + FastAPI and
Flask-under-a2wsgi stderr, paths rewritten to /srv)."""

from __future__ import annotations

from pathlib import Path

from harness.analysis.server_errors import (
    ServerException,
    console_lines,
    from_json,
    parse_exceptions,
    to_json,
)

LOGS = Path(__file__).resolve().parents[1] / "data" / "server_logs"


def log(name: str) -> str:
    return (LOGS / name).read_text(encoding="utf-8")


def test_uvicorn_tracebacks_are_grouped_by_type_and_message() -> None:
    groups = parse_exceptions(log("uvicorn_fastapi.stderr.log"))
    assert [(g.type, g.message, g.count) for g in groups] == [
        ("sqlite3.OperationalError", "database is locked", 3),
        ("RuntimeError", "upstream said no", 1),  # chained: counted under its last exception
        ("boom_asgi.APIConnectionError", "Connection error.", 1),
    ]
    locked = groups[0]
    first = locked.first_traceback.splitlines()
    assert first[0] == "ERROR:    Exception in ASGI application"
    assert first[1] == "Traceback (most recent call last):"
    assert first[-1] == "sqlite3.OperationalError: database is locked"
    assert locked.last_frame() == 'File "/srv/app/boom_asgi.py", line 8, in locked'
    assert locked.title == "sqlite3.OperationalError: database is locked"


def test_a_chained_traceback_keeps_its_cause() -> None:
    chained = parse_exceptions(log("uvicorn_fastapi.stderr.log"))[1]
    text = chained.first_traceback
    assert "KeyError: 'missing'" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert text.count("Traceback (most recent call last):") == 2
    assert text.splitlines()[-1] == "RuntimeError: upstream said no"
    assert chained.last_frame() == 'File "/srv/app/boom_asgi.py", line 14, in chain'


def test_flask_tracebacks_under_a2wsgi() -> None:
    groups = parse_exceptions(log("flask_a2wsgi.stderr.log"))
    assert [(g.type, g.message, g.count) for g in groups] == [
        ("sqlite3.OperationalError", "database is locked", 2),
        ("ValueError", "line one", 1),  # a message's first line names it
    ]
    first = groups[0].first_traceback.splitlines()
    assert first[0].endswith("ERROR in app: Exception on /locked [GET]")
    assert groups[1].last_frame() == 'File "/srv/app/boom_flask.py", line 11, in multi'


def test_logs_without_tracebacks_and_cut_tracebacks_give_nothing() -> None:
    assert parse_exceptions("") == []
    assert parse_exceptions("INFO:     Started server process [1]\nINFO:     ready\n") == []
    cut = "ERROR:    Exception in ASGI application\nTraceback (most recent call last):\n"
    assert parse_exceptions(cut + '  File "x.py", line 1, in f\n') == []
    # a log line right after the frames is no exception line
    assert parse_exceptions(cut + '  File "x.py", line 1, in f\nINFO:     Shutting down\n') == []


def test_long_tracebacks_keep_their_head_and_end() -> None:
    frames = "".join(f'  File "m.py", line {n}, in f{n}\n    call()\n' for n in range(200))
    (group,) = parse_exceptions(
        f"Traceback (most recent call last):\n{frames}RecursionError: deep\n"
    )
    lines = group.first_traceback.splitlines()
    assert len(lines) == 80
    assert lines[0] == "Traceback (most recent call last):"
    assert any("lines)" in line and "..." in line for line in lines)
    assert lines[-1] == "RecursionError: deep"


def test_console_lines_put_locusts_counts_next_to_the_servers() -> None:
    groups = parse_exceptions(log("uvicorn_fastapi.stderr.log"))
    lines = console_lines(groups, requests=1200, failures=5, log="server_errors.json", limit=2)
    assert lines[0] == (
        "5 of 1,200 requests failed; over the phase the server logged 5 exception(s) of 3 kind(s) "
        "(server_errors.json):"
    )
    assert lines[1].split() == ["3", "×", "sqlite3.OperationalError:", "database", "is", "locked"]
    assert lines[2].strip() == 'at File "/srv/app/boom_asgi.py", line 8, in locked'
    assert lines[-1] == "  ... and 1 more kind(s)"


def test_json_round_trip() -> None:
    groups = parse_exceptions(log("flask_a2wsgi.stderr.log"))
    assert from_json(to_json(groups)) == groups
    assert isinstance(groups[0], ServerException)
