"""The open-model capacity search on a target's probe recipe (`[target.capacity] arrivals =
"recipe"`, docs/capacity.md, "Your own service").

HARNESS_CAPACITY_RECIPE holds the recipe (harness.config.probe_recipe.ProbeRecipe.to_json).
Each arrival of the schedule (scenarios.capacity.OpenModelPacing) sends the next of the
recipe's measured requests, in turn (every process keeps its own turn): the same requests the
probe measures one at a time, here at the schedule's rate. The recipe's setup is not an
arrival and is not sent: the search loads the service as its command serves it, as the load
phase does. Placeholders: `{i}` counts this process's arrivals, `{user}` is the recipe's
user, `{size}` is 0 (no size is set up); a request that needs another one cannot be driven
and says so in one line. A response outside the request's `expect_status` (default 2xx), or
without its `expect_body_contains`, fails the arrival.

Rows are named `<METHOD> <path as written>` (`GET /report/{i}`), so `[target.capacity]
objectives_p95_ms` use those names.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

from locust import FastHttpUser, constant

from harness.config.probe_recipe import (
    ProbeRequest,
    RequestTemplate,
    render_request,
)
from scenarios.capacity import CapacityShape, OpenModelPacing
from scenarios.open_model import Plan

__all__ = ["CapacityShape", "RecipeUser", "recipe_requests", "request_name"]

RECIPE_ENV = "HARNESS_CAPACITY_RECIPE"
SIZE = 0  # no size is set up: {size} renders as 0


class NotDrivable(RuntimeError):
    """The recipe cannot be sent by the capacity search (the message says why)."""


def recipe_requests(recipe: Mapping[str, Any]) -> tuple[ProbeRequest, ...]:
    """The recipe's measured requests, from ProbeRecipe.to_json()'s form."""
    return tuple(
        ProbeRequest(
            name=str(r["name"]),
            template=RequestTemplate(
                method=str(r["method"]),
                path=str(r["path"]),
                headers=dict(r.get("headers") or {}),
                json=r.get("json"),
                body=r.get("body"),
                content_type=r.get("content_type"),
            ),
            stream=bool(r.get("stream", False)),
            expect_status=tuple(int(s) for s in r.get("expect_status") or ()),
            expect_body_contains=str(r.get("expect_body_contains") or ""),
        )
        for r in recipe.get("requests") or ()
    )


def request_name(request: ProbeRequest) -> str:
    """The Locust name of a recipe request: `GET /report/{i}` (the path as written)."""
    return f"{request.template.method} {request.template.path}"


def _load() -> tuple[tuple[ProbeRequest, ...], str]:
    raw = os.environ.get(RECIPE_ENV)
    if not raw:
        raise NotDrivable(f"{RECIPE_ENV} is not set: which recipe to send?")
    recipe = json.loads(raw)
    requests = recipe_requests(recipe)
    if not requests:
        raise NotDrivable("the probe recipe has no request")
    user = str(recipe.get("user") or "probe-user")
    for request in requests:  # every placeholder must be one the search can fill
        try:
            render_request(request.template, {"size": SIZE, "i": 0, "user": user})
        except KeyError as missing:
            raise NotDrivable(
                f"recipe request {request.name!r} uses {{{missing.args[0]}}}, which the "
                "capacity search does not fill ({i}, {user} and {size} only)"
            ) from None
    return requests, user


REQUESTS, USER = _load()
_TURN = itertools.count()  # this process's arrivals: the recipe's requests in turn, and {i}


class RecipeUser(OpenModelPacing, FastHttpUser):
    """Sends one recipe request per arrival of the schedule."""

    abstract = False
    wait_time = constant(0)  # the schedule sets the pace

    def arrival_action(self, plan: Plan) -> tuple[str, Callable[[], None]]:
        i = next(_TURN)
        request = REQUESTS[i % len(REQUESTS)]
        rendered = render_request(request.template, {"size": SIZE, "i": i, "user": USER})
        name = request_name(request)

        def send() -> None:
            with self.client.request(
                rendered.method,
                rendered.path,
                name=name,
                headers=rendered.headers or None,
                json=rendered.json,
                data=rendered.content,
                catch_response=True,
            ) as response:  # the whole body is read: a streamed one too, to its end
                body = response.text or ""
                if not request.accepts(response.status_code):
                    response.failure(f"status {response.status_code}")
                elif request.expect_body_contains and request.expect_body_contains not in body:
                    response.failure(f"body lacks {request.expect_body_contains!r}")
                else:
                    response.success()

        return name, send


RecipeUser.tasks = [OpenModelPacing.paced]  # type: ignore[list-item]
