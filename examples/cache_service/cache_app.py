"""A small FastAPI service whose report endpoint fills a bounded cache, then stops growing.

    GET  /healthz               -> {"status": "ok"}
    GET  /report/{key}          -> a rendered report (REPORT_BYTES of text), cached by key
    GET  /rows                  -> {"rows": [...], "count": N}   (cost grows with N)
    PUT  /admin/size {"n": N}   -> the table holds exactly N rows (a service route, not /__probe/)
    GET  /admin/cache           -> {"entries": E, "bytes": B}: what the cache holds now

The report cache is a bounded LRU of CACHE_ENTRIES entries (`REPORTS`): its first CACHE_ENTRIES
distinct keys each keep a REPORT_BYTES report for good, and from then on every new key evicts
the oldest one, so the process stops growing. That is how library caches behave (SQLAlchemy's
compiled statements, Jinja's templates, `re`): memory that grows during the first requests and
is not a leak. The memory gate must report it as a one-time growth of about
CACHE_ENTRIES x REPORT_BYTES, with a leak rate of about 0 B/request (docs/gate.md).

Nothing here knows about the harness; loadtest.toml next to this file tells the harness how to
start it, load it and probe it. Its size knob is a route of the service's own (`PUT
/admin/size`): the probe sends its setup unmeasured on any path.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict

from fastapi import FastAPI
from pydantic import BaseModel, Field

CACHE_ENTRIES = 100
REPORT_BYTES = 8192
MAX_ROWS = 200_000  # bounded: a demo must not eat the machine

ROWS: list[int] = list(range(min(int(os.environ.get("CACHE_ROWS", "0")), MAX_ROWS)))
# key -> rendered report, least recently used first; never more than CACHE_ENTRIES
REPORTS: OrderedDict[int, str] = OrderedDict()

app = FastAPI(title="cache service")


class Size(BaseModel):
    n: int = Field(ge=0, le=MAX_ROWS)


def render_report(key: int) -> str:
    """The expensive part: REPORT_BYTES of text that depend only on the key."""
    line = f"report {key}: " + "x" * 54 + "\n"
    return (line * (REPORT_BYTES // len(line) + 1))[:REPORT_BYTES]


def cached_report(key: int) -> str:
    """The report of `key` from the bounded cache (rendered on a miss, the oldest evicted)."""
    text = REPORTS.get(key)
    if text is None:
        text = render_report(key)
        REPORTS[key] = text
        if len(REPORTS) > CACHE_ENTRIES:
            REPORTS.popitem(last=False)
    else:
        REPORTS.move_to_end(key)
    return text


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/report/{key}")
async def report(key: int) -> dict[str, object]:
    text = cached_report(key)
    return {"key": key, "length": len(text), "head": text[:32]}


@app.get("/rows")
async def rows() -> dict[str, object]:
    return {"rows": ROWS, "count": len(ROWS)}


@app.put("/admin/size")
async def set_size(size: Size) -> dict[str, int]:
    ROWS[:] = range(size.n)
    return {"count": len(ROWS)}


@app.get("/admin/cache")
async def cache() -> dict[str, int]:
    """What the report cache holds: its entries and the bytes of the reports it keeps."""
    return {"entries": len(REPORTS), "bytes": sum(sys.getsizeof(t) for t in REPORTS.values())}
