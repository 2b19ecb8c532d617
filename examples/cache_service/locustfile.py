"""The cache service's load: a plain Locust file, nothing harness-specific in it.

Reports of 200 keys (twice the cache: hits and misses), and the rows listing.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task


class CacheUser(FastHttpUser):
    wait_time = between(0.2, 1.0)

    @task(4)
    def report(self) -> None:
        self.client.get(f"/report/{random.randint(1, 200)}", name="GET /report/{key}")

    @task(1)
    def rows(self) -> None:
        self.client.get("/rows", name="GET /rows")
