"""A minimal FastAPI service: the example of pointing the harness at your own code.

    GET  /healthz           -> {"status": "ok"}            (the harness polls it until 200)
    GET  /hello?name=NAME   -> {"message": "hello, NAME"}
    POST /notes {"text": T} -> {"id": N, "count": C}       (kept in memory: watch the RSS grow)
    GET  /notes?limit=20    -> {"notes": [...], "count": C}

Nothing here knows about the harness: `loadtest.toml` next to this file tells the harness how
to start it (`python -m harness.serve hello_app:app ...`), where its health check is and which
locustfile loads it.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI(title="hello service")
NOTES: list[str] = []
MAX_NOTES = 100_000  # bounded: a demo must not eat the machine


class Note(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/hello")
async def hello(name: str = "world") -> dict[str, str]:
    return {"message": f"hello, {name}"}


@app.post("/notes")
async def add_note(note: Note) -> dict[str, int]:
    if len(NOTES) >= MAX_NOTES:
        del NOTES[: MAX_NOTES // 10]
    NOTES.append(note.text)
    return {"id": len(NOTES), "count": len(NOTES)}


@app.get("/notes")
async def list_notes(limit: int = 20) -> dict[str, object]:
    limit = max(1, min(limit, 200))
    return {"notes": NOTES[-limit:][::-1], "count": len(NOTES)}
