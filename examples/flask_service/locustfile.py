"""The Flask notes service's load: a plain Locust file, nothing harness-specific in it.

The harness seeds [seed] users notes first (loadtest.toml: 500), so ids 1..500 exist.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task

SEEDED_NOTES = 500


class NotesUser(FastHttpUser):
    wait_time = between(0.2, 1.0)

    @task(4)
    def get_note(self) -> None:
        self.client.get(f"/notes/{random.randint(1, SEEDED_NOTES)}", name="GET /notes/{id}")

    @task(2)
    def add_note(self) -> None:
        self.client.post("/notes", json={"text": "y" * random.randint(10, 300)}, name="POST /notes")

    @task(1)
    def list_notes(self) -> None:
        self.client.get("/notes", name="GET /notes")
