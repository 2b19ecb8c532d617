"""A closed load against a trivial endpoint: the chat scenarios' users, hitting only health.

Same users, spawn rate and wait times (ChatBehaviour's, 0.5-1.5 s between tasks) as the
designs' load, but every task is one `GET` of the target's health path (HARNESS_CEILING_PATH,
default /healthz), which does no work. With HARNESS_SHAPE=spike the spike shape drives the
user count. Its throughput is the closed load's own maximum (users / (wait + reply)), not the
machine's: the ceiling phase no longer uses it, it runs the open-model capacity search
(scenarios/capacity.py, docs/capacity.md) on the health path instead.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, task

from scenarios.common import ChatBehaviour

CEILING_PATH_ENV = "HARNESS_CEILING_PATH"
SHAPE_ENV = "HARNESS_SHAPE"
NAME = "GET /healthz [ceiling]"

__all__ = ["CeilingUser"]


class CeilingUser(FastHttpUser):
    """One request to the health path per task, with the chat users' wait time."""

    wait_time = ChatBehaviour.wait_time
    network_timeout = ChatBehaviour.network_timeout
    connection_timeout = ChatBehaviour.connection_timeout

    @task
    def health(self) -> None:
        self.client.get(os.environ.get(CEILING_PATH_ENV, "/healthz"), name=NAME)


if os.environ.get(SHAPE_ENV) == "spike":
    from scenarios.spike import SpikeShape

    __all__ += ["SpikeShape"]
