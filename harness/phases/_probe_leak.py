"""The probe's leak runs: a warm-up until steady, the run, its confirmation (harness.phases.probe).

Each endpoint's run gives checkpoint rows (traced memory after a collection, every few
requests) that harness.analysis.probe turns into retained_bytes_per_request (a step-and-slope
rate, harness.analysis.leak) and retained_step_bytes (the one-time growth); docs/gate.md, "Leak
rate". `Prober` is what these need of harness.phases.probe's request sender.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from harness.analysis import probe as analysis
from harness.analysis.leak import estimate_leak, warm_until_steady
from harness.phases import ProgressFn, no_progress


class Prober(Protocol):
    """Sends one request of an endpoint at a size, resets the size, reads traced memory."""

    @property
    def endpoints(self) -> tuple[str, ...]: ...

    def reset(self, size: int) -> None: ...

    def request(self, endpoint: str, size: int) -> dict[str, Any]: ...

    def checkpoint(self) -> dict[str, Any]: ...


PROCESS_WARMUP = 20
# The leak run: consecutive requests at one history length, traced memory read every
# LEAK_EVERY requests. 40 requests put a 256 B/request leak 10 KiB above the start, far above
# the wobble of a steady server's traced memory (docs/gate.md, "Leak rate").
LEAK_REQUESTS = 40
LEAK_EVERY = 4
# Before it, the endpoint is warmed up until its traced memory is steady: windows of
# LEAK_WINDOW requests until two consecutive readings differ by at most LEAK_STEADY_BYTES (a
# growth under 64 B/request, which the run then measures), after at least LEAK_WARMUP_MIN
# requests and at most LEAK_WARMUP_MAX (a leak is never steady). What grew meanwhile is a
# one-time growth (a cache filling), reported apart from the rate (retained_step_bytes).
LEAK_WINDOW = 8
LEAK_STEADY_BYTES = 512
LEAK_WARMUP_MIN = 16
LEAK_WARMUP_MAX = 200
# A rate above CONFIRM_TRIGGER_BYTES/request is confirmed by a second run CONFIRM_FACTOR times
# longer before it is reported: the rate of that run is the figure (a fill that was still going
# on in the first run shows there as a step, a leak as the same rate).
CONFIRM_TRIGGER_BYTES = 128
CONFIRM_FACTOR = 2


def warm_process(prober: Prober, history_len: int, progress: ProgressFn = no_progress) -> None:
    """Requests whose figures are thrown away, once per process, at the cheapest history length.

    tracemalloc sees a block only when it comes from the allocator; Python's free lists (tuples,
    lists, dicts, frames...) fill up over the first few dozen requests, and until they are full
    each request draws a little less from the allocator than the one before (seen: the optimized
    POST /chat at 0 messages fell by ~250 B per request for 15 requests, a CV of 2.9%; after
    30 warm-up requests the CV was 1.2%). A round is one request of each endpoint; 20 rounds
    (60 requests) keep every optimized CV under 1% since the stream and cursor fixes
    (docs/gate.md). The per-point warm-ups then only absorb what is specific to a size.
    """
    prober.reset(history_len)
    for i in range(PROCESS_WARMUP):
        for endpoint in prober.endpoints:
            prober.request(endpoint, history_len)
        progress(0, 1, f"warming the process up ({i + 1}/{PROCESS_WARMUP})")


def leak_history_len(history_lens: Sequence[int]) -> int:
    """Where the leak run goes: the smallest history length above 0 (a request at 0 may take
    another path: GET /history answers 404), else 0."""
    positive = [h for h in history_lens if h > 0]
    return min(positive) if positive else 0


def checkpointed(
    send: Callable[[], object],
    checkpoint: Callable[[], Mapping[str, Any]],
    requests: int,
    every: int,
    start: int = 0,
) -> list[dict[str, int]]:
    """`requests` calls of `send`, with traced memory read before the first and after every
    `every`-th: rows {"requests", "traced_bytes", "blocks"} (the leak run's raw material);
    `requests` counts from `start` (the requests sent before this run)."""
    if requests < 2 * every or every < 1:
        raise ValueError(f"a leak run needs at least 2 checkpoints: {requests} requests / {every}")
    rows: list[dict[str, int]] = []

    def read(done: int) -> None:
        point = checkpoint()
        rows.append(
            {
                "requests": start + done,
                "traced_bytes": int(point["traced_bytes"]),
                "blocks": int(point["blocks"]),
            }
        )

    read(0)
    for i in range(1, requests + 1):
        send()
        if i % every == 0:
            read(i)
    return rows


def leak_run(
    prober: Prober,
    endpoint: str,
    history_len: int,
    requests: int,
    every: int,
    *,
    watch: Callable[[str, int], Callable[[], object]] | None = None,
    tick: Callable[[], object] | None = None,
) -> list[dict[str, Any]]:
    """The checkpoint rows of `endpoint` at `history_len`, column ``run``: 0 for the warm-up
    until steady, 1 for the run of `requests` requests, 2 for its confirmation (a run
    CONFIRM_FACTOR times longer, only when the first run's rate is above CONFIRM_TRIGGER_BYTES).
    ``requests`` counts every request sent, from the first of the warm-up.

    `watch(endpoint, history_len)`, when given, is called after the size is set and before the
    first request; what it returns is called after the last checkpoint: it brackets exactly the
    span whose growth is the one-time growth (the step sites' snapshots). `tick` is called
    before every request: the caller's progress, which raises to stop the run at once when the
    user interrupts (a naive leak run is minutes long on a busy machine)."""
    prober.reset(history_len)
    finish = watch(endpoint, history_len) if watch is not None else None
    rows: list[dict[str, Any]] = []
    sent = [0]

    def send() -> None:
        if tick is not None:
            tick()
        prober.request(endpoint, history_len)
        sent[0] += 1

    def read_warmup() -> float:
        point = prober.checkpoint()
        rows.append(
            {
                "requests": sent[0],
                "traced_bytes": int(point["traced_bytes"]),
                "blocks": int(point["blocks"]),
                analysis.RUN_COLUMN: 0,
            }
        )
        return float(point["traced_bytes"])

    warm_until_steady(
        send,
        read_warmup,
        window=LEAK_WINDOW,
        max_requests=LEAK_WARMUP_MAX,
        tolerance_bytes=LEAK_STEADY_BYTES,
        min_requests=LEAK_WARMUP_MIN,
    )
    first = checkpointed(send, prober.checkpoint, requests, every, start=sent[0])
    rows += [{**p, analysis.RUN_COLUMN: 1} for p in first]
    rate = estimate_leak([p["requests"] for p in first], [p["traced_bytes"] for p in first])
    if rate.rate_bytes_per_request > CONFIRM_TRIGGER_BYTES:
        longer = checkpointed(
            send, prober.checkpoint, requests * CONFIRM_FACTOR, every, start=sent[0]
        )
        rows += [{**p, analysis.RUN_COLUMN: 2} for p in longer]
    if finish is not None:
        finish()
    return [{"endpoint": endpoint, "history_len": history_len, **p} for p in rows]
