"""The sizing's own measurements of one worker: idle, with its data, after its heaviest
requests (harness.analysis.sizing adds them up).

- idle RSS: one worker started on the seeded store, its RSS before any request;
- data growth: what it gains once the probe recipe's setup request has set its data to
  `max_units`, where the service serves that request outside probe mode;
- retained: what its RSS keeps after it has served each of the probe recipe's requests
  `EXERCISE_REPS` times at `max_units`, one at a time (freed memory the allocator does not
  give back). Where the setup is probe-only (the reference designs), the requests go to the
  seeded store's largest user instead (a whale), the manifest's `history_len` being its size.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

from harness.config import Config
from harness.config.probe_recipe import RenderedRequest, render_request
from harness.config.target_spec import TargetSpec
from harness.stack.targets import read_manifest, running_stack

SETTLE_S = 1.0  # after health (or the data setup): let start-up work finish before reading RSS
READS = 5  # RSS readings, 0.1 s apart; their median is the figure
EXERCISE_REPS = 3  # each probe request, one at a time, before the retained RSS is read
REQUEST_TIMEOUT_S = 120.0


def send(client: httpx.Client, request: RenderedRequest) -> httpx.Response:
    return client.request(
        request.method,
        request.path,
        headers=request.headers,
        json=request.json,
        content=request.content,
    )


def tree_rss_bytes(pid: int) -> float:
    """The RSS of a process and its descendants (median of a few readings)."""
    values = []
    for _ in range(READS):
        total = 0
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        values.append(total)
        time.sleep(0.1)
    values.sort()
    return float(values[len(values) // 2])


def apply_data(base_url: str, target: TargetSpec, max_units: int) -> str:
    """Send the probe recipe's setup request at max_units; '' when it was served, else why
    the data was left as seeded."""
    recipe = target.probe
    if recipe is None or recipe.setup is None or recipe.setup.request is None:
        return "no setup request in the target's probe recipe: the data is as seeded"
    request = render_request(recipe.setup.request, recipe.values(max_units, 0, {}))
    try:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
            response = send(client, request)
    except httpx.HTTPError as exc:
        return f"the setup request failed ({type(exc).__name__}): the data is as seeded"
    if not response.is_success:
        return (
            f"the setup request answered {response.status_code} outside probe mode: "
            "the data is as seeded"
        )
    return ""


def largest_user(manifest: Mapping[str, Any]) -> tuple[str, int] | None:
    """The seeded store's user with the longest history (id, length), if the manifest lists
    users."""
    users = [
        (str(u["user_id"]), int(u["history_len"]))
        for u in manifest.get("users", [])
        if isinstance(u, Mapping) and "user_id" in u and isinstance(u.get("history_len"), int)
    ]
    return max(users, key=lambda u: u[1]) if users else None


def exercise(base_url: str, target: TargetSpec, size: int, user: str | None) -> int:
    """Each probe request at `size`, EXERCISE_REPS times, one at a time (`user` over the
    recipe's own); how many were answered with a status the recipe accepts."""
    recipe = target.probe
    if recipe is None:
        return 0
    answered = 0
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(EXERCISE_REPS):
            for probe_request in recipe.requests:
                values = recipe.values(size, i, {})
                if user is not None:
                    values["user"] = user
                with contextlib.suppress(httpx.HTTPError):
                    response = send(client, render_request(probe_request.template, values))
                    answered += probe_request.accepts(response.status_code)
    return answered


@dataclass(frozen=True)
class Idle:
    idle_rss_bytes: float
    data_growth_bytes: float
    data_note: str  # '' when the data was set to max_units
    retained_rss_bytes: float | None = None  # RSS kept after the requests (None: none served)
    retained_note: str = ""  # at which size, for which user, how many answered


def measure_idle(cfg: Config, target: TargetSpec, data: Path, out: Path, max_units: int) -> Idle:
    """One worker on the seeded store: its idle RSS, what setting its data to max_units adds,
    and what it keeps after serving the probe's requests there (module docstring)."""
    with running_stack(
        target, data, out / "logs", cfg.upstream, workers=1, phase="size", env=None
    ) as stack:
        time.sleep(SETTLE_S)
        idle = tree_rss_bytes(stack.app.pid)
        note = apply_data(stack.base_url, target, max_units)
        time.sleep(SETTLE_S)
        with_data = tree_rss_bytes(stack.app.pid) if not note else idle
        size, user = max_units, None
        if note and (largest := largest_user(read_manifest(data))) is not None:
            user, size = largest
        answered = exercise(stack.base_url, target, size, user)
        time.sleep(SETTLE_S)
        after = tree_rss_bytes(stack.app.pid)
    retained = max(0.0, after - with_data) if answered else None
    who = f" of user {user} (the seeded store's largest)" if user is not None else ""
    retained_note = f"{answered} requests answered at {size:g} units{who}"
    return Idle(idle, max(0.0, with_data - idle), note, retained, retained_note)
