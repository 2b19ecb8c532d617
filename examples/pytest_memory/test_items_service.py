"""Memory per request of the items service (FastAPI, ASGI), in its own test suite.

    pytest examples/pytest_memory

The app object is served in this process by memload's client (no server, no port); each
response carries its request's figures. The limits are the marker's; peak and retained figures
come from the helpers, which warm the request up first (the first requests of a process pay for
lazy imports and caches).
"""

from __future__ import annotations

from typing import Any

import pytest
from items_app import app

ITEMS = 1000


def resize(client: Any, n: int) -> None:
    """The service's own size knob (a /__probe/* request: never measured)."""
    assert client.put("/__probe/size", json={"n": n}).status_code == 200


@pytest.fixture
def items(memload: Any) -> Any:
    client = memload.client(app)
    resize(client, ITEMS)
    return client


@pytest.mark.memload(peak="32 KiB", retained="32 B")
def test_get_one_item(memload: Any, items: Any) -> None:
    memory = memload.peak(lambda: items.get("/items/1"))
    assert memory.status == 200
    memload.retained(lambda: items.get("/items/1"))


@pytest.mark.memload(peak="48 KiB")
def test_add_an_item(memload: Any, items: Any) -> None:
    memory = memload.peak(lambda: items.post("/items", json={"name": "pen", "size": 1}))
    assert memory.status == 201


@pytest.mark.memload(slope="192 B/item")
def test_listing_grows_with_the_items(memload: Any, items: Any) -> None:
    growth = memload.peak_growth(
        setup=lambda n: resize(items, n),
        request=lambda: items.get("/items"),
        sizes=[0, 1000, 5000],
        unit="item",
    )
    assert growth.peak_at(0) < 32 * 1024


def test_every_response_carries_its_figures(memload: Any, items: Any) -> None:
    response = items.get("/items/2")
    assert response.status_code == 200
    assert response.memory.peak_bytes > 0
    assert response.memory.request == "GET /items/2"
