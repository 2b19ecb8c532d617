"""A small FastAPI service with a data-size knob: a store of N items.

    GET  /healthz                        -> {"status": "ok"}
    GET  /items                          -> {"items": [...], "count": N}   (cost grows with N)
    GET  /items/{id}                     -> the item, or 404                (cost independent of N)
    POST /items {"name": S, "size": K}   -> 201 {"id": ..., "count": N+1}
    PUT  /__probe/size {"n": N}          -> the store holds exactly N deterministic items

It starts with ITEMS_INITIAL items (an environment variable, default 0).

`PUT /__probe/size` is the probe's setup request (see loadtest.toml, [target.probe]): it
brings the service to size N before each point of the probe. It is for measuring only:
a real service would mount it only in a test build.

Nothing here knows about the harness; loadtest.toml next to this file tells the harness how to
start it, load it and probe it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

MAX_ITEMS = 200_000  # bounded: a demo must not eat the machine
PAYLOAD = "x" * 64  # every item carries a little data, so N items cost N times something

ITEMS: list[dict[str, object]] = []


@contextlib.asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    """ITEMS_INITIAL (default 0) items at startup: the load phase's data set."""
    n = min(int(os.environ.get("ITEMS_INITIAL", "0")), MAX_ITEMS)
    ITEMS[:] = [make_item(i + 1, f"item {i + 1}", i) for i in range(n)]
    yield


app = FastAPI(title="items service", lifespan=lifespan)


class NewItem(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    size: int = Field(default=0, ge=0)


class Size(BaseModel):
    n: int = Field(ge=0, le=MAX_ITEMS)


def make_item(number: int, name: str, size: int) -> dict[str, object]:
    return {"id": number, "name": name, "size": size, "payload": PAYLOAD}


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/items")
async def list_items() -> dict[str, object]:
    return {"items": ITEMS, "count": len(ITEMS)}


@app.get("/items/{item_id}")
async def get_item(item_id: int) -> dict[str, object]:
    if 1 <= item_id <= len(ITEMS):
        return ITEMS[item_id - 1]
    raise HTTPException(status_code=404, detail="no such item")


@app.post("/items", status_code=201)
async def add_item(item: NewItem) -> dict[str, int]:
    if len(ITEMS) >= MAX_ITEMS:
        raise HTTPException(status_code=507, detail=f"the store is full ({MAX_ITEMS} items)")
    ITEMS.append(make_item(len(ITEMS) + 1, item.name, item.size))
    return {"id": len(ITEMS), "count": len(ITEMS)}


@app.put("/__probe/size")
async def set_size(size: Size) -> dict[str, int]:
    ITEMS[:] = [make_item(i + 1, f"item {i + 1}", i) for i in range(size.n)]
    return {"count": len(ITEMS)}
