"""The items service's load: a plain Locust file, nothing harness-specific in it.

The service starts with ITEMS_INITIAL items (loadtest.toml sets 1000), so ids 1..1000 exist.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

INITIAL_ITEMS = 1000


class ItemsUser(FastHttpUser):
    wait_time = between(0.2, 1.0)

    @task(4)
    def get_item(self) -> None:
        self.client.get(f"/items/{random.randint(1, INITIAL_ITEMS)}", name="GET /items/{id}")

    @task(2)
    def add_item(self) -> None:
        self.client.post(
            "/items", json={"name": f"item {random.randint(1, 10**6)}"}, name="POST /items"
        )

    @task(1)
    def list_items(self) -> None:
        self.client.get("/items", name="GET /items")
