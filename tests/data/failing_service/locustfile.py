"""Load for failing_app.py: GET /work, as fast as a few users go."""

from __future__ import annotations

from locust import FastHttpUser, constant, task


class WorkUser(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def work(self) -> None:
        self.client.get("/work", name="GET /work")
