"""The hello service's load: a plain Locust file, nothing harness-specific in it.

The harness runs it as `locust -f locustfile.py --headless -H http://127.0.0.1:<port> ...`
(its users, spawn rate and duration come from the profile).
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task


class HelloUser(FastHttpUser):
    wait_time = between(0.5, 1.5)

    @task(3)
    def hello(self) -> None:
        self.client.get(f"/hello?name=user{random.randint(1, 1000)}", name="GET /hello")

    @task(2)
    def add_note(self) -> None:
        self.client.post("/notes", json={"text": "x" * random.randint(10, 500)}, name="POST /notes")

    @task(1)
    def list_notes(self) -> None:
        self.client.get("/notes?limit=50", name="GET /notes")
