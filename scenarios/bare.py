"""A bare Locust at its maximum: the calibration of the load generator itself.

Closed model, no wait time: each FastHttpUser sends `GET <health path>` again as soon as its
reply is in, so the rate is whatever Locust (and the server behind it) can do. The ceiling
phase runs it right after its open-model search, against the same server, with the same
number of Locust processes: its throughput is what this generator reaches at all, the figure
the ceiling (the open-model capacity of the same path) is a fraction of.

HARNESS_CEILING_PATH: the path (default /healthz).
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

import scenarios.common as _common  # noqa: F401  (a master forwards HARNESS_CEILING_PATH)

CEILING_PATH_ENV = "HARNESS_CEILING_PATH"
NAME = "GET [bare]"

__all__ = ["BareUser"]


class BareUser(FastHttpUser):
    """One request to the health path after another, no wait."""

    wait_time = constant(0)

    @task
    def health(self) -> None:
        self.client.get(os.environ.get(CEILING_PATH_ENV, "/healthz"), name=NAME)
