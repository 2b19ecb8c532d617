"""harness.phases.probe, its pure parts: the leak run's checkpoints and where it runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from harness.config import MIN_LEAK_REQUESTS
from harness.phases.probe import LEAK_EVERY, LEAK_REQUESTS, checkpointed, leak_history_len


class FakeServer:
    """Each send keeps `leak` bytes and one block; a checkpoint reads them (and is logged)."""

    def __init__(self, leak: int = 100) -> None:
        self.leak = leak
        self.sent = 0
        self.log: list[str] = []

    def send(self) -> None:
        self.sent += 1
        self.log.append("send")

    def checkpoint(self) -> Mapping[str, Any]:
        self.log.append("checkpoint")
        return {"traced_bytes": 1000 + self.leak * self.sent, "blocks": 10 + self.sent, "seq": 0}


def test_checkpointed_reads_before_the_first_and_after_every_nth() -> None:
    server = FakeServer()
    rows = checkpointed(server.send, server.checkpoint, requests=12, every=4)
    assert server.sent == 12
    assert [r["requests"] for r in rows] == [0, 4, 8, 12]
    assert [r["traced_bytes"] for r in rows] == [1000, 1400, 1800, 2200]
    assert [r["blocks"] for r in rows] == [10, 14, 18, 22]
    assert server.log == ["checkpoint"] + (["send"] * 4 + ["checkpoint"]) * 3
    assert all(set(r) == {"requests", "traced_bytes", "blocks"} for r in rows)


def test_checkpointed_a_tail_shorter_than_every_is_sent_but_not_read() -> None:
    server = FakeServer()
    rows = checkpointed(server.send, server.checkpoint, requests=10, every=4)
    assert server.sent == 10
    assert [r["requests"] for r in rows] == [0, 4, 8]
    assert server.log[-2:] == ["send", "send"]


def test_checkpointed_values_are_ints() -> None:
    rows = checkpointed(
        lambda: None, lambda: {"traced_bytes": "2048", "blocks": 3.0}, requests=2, every=1
    )
    assert rows == [
        {"requests": 0, "traced_bytes": 2048, "blocks": 3},
        {"requests": 1, "traced_bytes": 2048, "blocks": 3},
        {"requests": 2, "traced_bytes": 2048, "blocks": 3},
    ]


@pytest.mark.parametrize(("requests", "every"), [(7, 4), (0, 4), (1, 1), (8, 0), (8, -1)])
def test_checkpointed_needs_two_checkpoints(requests: int, every: int) -> None:
    server = FakeServer()
    with pytest.raises(ValueError, match="at least 2 checkpoints"):
        checkpointed(server.send, server.checkpoint, requests, every)
    assert server.log == []  # refused before sending anything


def test_checkpointed_the_smallest_run() -> None:
    server = FakeServer()
    rows = checkpointed(server.send, server.checkpoint, requests=8, every=4)
    assert [r["requests"] for r in rows] == [0, 4, 8]


def test_the_config_minimum_is_two_checkpoints_of_the_probe() -> None:
    assert MIN_LEAK_REQUESTS == 2 * LEAK_EVERY
    assert LEAK_REQUESTS >= MIN_LEAK_REQUESTS and LEAK_REQUESTS % LEAK_EVERY == 0


@pytest.mark.parametrize(
    ("history_lens", "expected"),
    [
        ([0, 100, 1000, 5000], 100),
        ([5000, 1000, 0, 100], 100),
        ([0], 0),
        ([0, 0], 0),
        ([1000], 1000),
        ([5000, 1], 1),
    ],
)
def test_leak_history_len_is_the_smallest_above_zero(
    history_lens: list[int], expected: int
) -> None:
    assert leak_history_len(history_lens) == expected


class FakeProber:
    """A server whose endpoint fills a cache of `fill` entries of `entry` bytes, then keeps
    `leak` bytes per request: what leak_run sees through reset, request and checkpoint."""

    def __init__(self, fill: int = 0, entry: int = 4096, leak: int = 0) -> None:
        self.fill, self.entry, self.leak = fill, entry, leak
        self.sent = 0
        self.resets: list[int] = []

    def reset(self, size: int) -> None:
        self.resets.append(size)

    def request(self, endpoint: str, size: int) -> dict[str, Any]:
        self.sent += 1
        return {}

    def checkpoint(self) -> Mapping[str, Any]:
        cached = min(self.sent, self.fill) * self.entry
        return {"traced_bytes": 50_000 + cached + self.leak * self.sent, "blocks": 0, "seq": 0}


def _leak_figures(prober: FakeProber) -> tuple[list[dict[str, Any]], Any]:
    import pandas as pd

    from harness.analysis.probe import CHECKPOINT_COLUMNS, RUN_COLUMN, retention
    from harness.phases.probe import leak_run

    rows = leak_run(prober, "get", 100, LEAK_REQUESTS, LEAK_EVERY)  # type: ignore[arg-type]
    frame = pd.DataFrame(rows, columns=[*CHECKPOINT_COLUMNS, RUN_COLUMN])
    return rows, retention(frame)[("get", 100)]


def test_leak_run_warms_a_filling_cache_up_and_reports_it_as_one_time_growth() -> None:
    prober = FakeProber(fill=100, entry=4096)
    rows, figures = _leak_figures(prober)
    warmup = [r for r in rows if r["run"] == 0]
    assert warmup[-1]["requests"] >= 100  # warmed until the cache stopped growing
    assert {r["run"] for r in rows} == {0, 1}  # no confirmation needed
    assert figures.bytes_per_request == pytest.approx(0.0, abs=1e-9)
    assert figures.step_bytes == pytest.approx(100 * 4096)


def test_leak_run_confirms_a_high_rate_with_a_longer_run() -> None:
    from harness.phases.probe import CONFIRM_FACTOR, LEAK_WARMUP_MAX

    prober = FakeProber(leak=256)
    rows, figures = _leak_figures(prober)
    assert max(r["requests"] for r in rows if r["run"] == 0) == LEAK_WARMUP_MAX  # never steady
    confirmation = [r for r in rows if r["run"] == 2]
    assert confirmation[-1]["requests"] - confirmation[0]["requests"] == (
        CONFIRM_FACTOR * LEAK_REQUESTS
    )
    assert figures.confirmed
    assert figures.bytes_per_request == pytest.approx(256.0)
    assert figures.step_bytes == pytest.approx(0.0, abs=1e-6)


def test_the_watch_brackets_the_whole_leak_run_after_the_size_is_set() -> None:
    """The step sites' snapshots must span exactly what the one-time growth spans: from the
    endpoint's first request (after the setup) to its last checkpoint."""
    from harness.phases.probe import leak_run

    prober = FakeProber(fill=100, entry=4096)
    seen: list[tuple[str, int, int, int]] = []

    def watch(endpoint: str, size: int) -> Any:
        seen.append((endpoint, size, len(prober.resets), prober.sent))
        return lambda: seen.append(("finish", size, len(prober.resets), prober.sent))

    rows = leak_run(prober, "get", 100, LEAK_REQUESTS, LEAK_EVERY, watch=watch)  # type: ignore[arg-type]
    assert seen == [("get", 100, 1, 0), ("finish", 100, 1, rows[-1]["requests"])]


def test_the_tick_runs_before_every_request_and_can_stop_the_run() -> None:
    from harness.phases.probe import leak_run

    prober = FakeProber(leak=0)
    ticks: list[int] = []
    rows = leak_run(
        prober, "get", 100, LEAK_REQUESTS, LEAK_EVERY, tick=lambda: ticks.append(prober.sent)
    )  # type: ignore[arg-type]
    assert ticks == list(range(rows[-1]["requests"]))  # one before each request, none after

    class Stop(KeyboardInterrupt):
        pass

    def interrupt() -> None:
        if prober.sent >= 5:
            raise Stop

    prober = FakeProber(leak=0)
    with pytest.raises(Stop):
        leak_run(prober, "get", 100, LEAK_REQUESTS, LEAK_EVERY, tick=interrupt)  # type: ignore[arg-type]
    assert prober.sent == 5
