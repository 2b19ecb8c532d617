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
