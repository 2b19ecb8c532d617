"""A service whose /work fails, as a real one's does when its database is locked.

FAIL_EVERY=N (environment): every Nth request to /work raises; 1: all of them.
"""

from __future__ import annotations

import itertools
import os
import sqlite3

from fastapi import FastAPI

app = FastAPI()
_requests = itertools.count(1)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/work")
async def work() -> dict[str, int]:
    n = next(_requests)
    if n % int(os.environ.get("FAIL_EVERY", "1")) == 0:
        raise sqlite3.OperationalError("database is locked")
    return {"n": n}
