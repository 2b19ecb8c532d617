"""Acknowledged writes against what the store holds. Pure: mappings in, counts out.

Per user: expected messages = seeded history_len + 2 x acknowledged exchanges (each
acknowledged `POST /chat` stores the user's message and the reply). lost counts messages
missing against that, unexpected the surplus (e.g. a request in flight when Locust stopped
that the server completed without the client seeing it). Any loss fails the phase.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.results import SummaryRow

PHASE = "integrity"
MESSAGES_PER_EXCHANGE = 2
EXAMPLES = 20  # users listed by name in integrity.json when something is off


@dataclass(frozen=True)
class IntegrityCounts:
    users: int
    seeded: int  # messages in the seed
    acknowledged: int  # exchanges the client saw succeed
    expected: int  # messages
    stored: int  # messages
    lost: int  # messages
    unexpected: int  # messages
    lost_users: dict[str, int] = field(default_factory=dict)  # a few, for the reader
    unexpected_users: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "seeded_messages": self.seeded,
            "acknowledged_exchanges": self.acknowledged,
            "expected_messages": self.expected,
            "stored_messages": self.stored,
            "lost_messages": self.lost,
            "unexpected_messages": self.unexpected,
            "lost_by_user": self.lost_users,
            "unexpected_by_user": self.unexpected_users,
        }


def integrity_counts(
    seeded: Mapping[str, int],
    acknowledged: Mapping[str, int],
    stored: Mapping[str, int],
) -> IntegrityCounts:
    """Compare per user; a user absent from `stored` holds nothing."""
    users = sorted(set(seeded) | set(acknowledged))
    lost_by: dict[str, int] = {}
    extra_by: dict[str, int] = {}
    for user in users:
        expected = seeded.get(user, 0) + MESSAGES_PER_EXCHANGE * acknowledged.get(user, 0)
        held = stored.get(user, 0)
        if held < expected:
            lost_by[user] = expected - held
        elif held > expected:
            extra_by[user] = held - expected
    seeded_total = sum(seeded.get(u, 0) for u in users)
    acked_total = sum(acknowledged.get(u, 0) for u in users)
    return IntegrityCounts(
        users=len(users),
        seeded=seeded_total,
        acknowledged=acked_total,
        expected=seeded_total + MESSAGES_PER_EXCHANGE * acked_total,
        stored=sum(stored.get(u, 0) for u in users),
        lost=sum(lost_by.values()),
        unexpected=sum(extra_by.values()),
        lost_users=_largest(lost_by),
        unexpected_users=_largest(extra_by),
    )


def _largest(by_user: Mapping[str, int]) -> dict[str, int]:
    ranked = sorted(by_user.items(), key=lambda kv: (-kv[1], kv[0]))
    return dict(ranked[:EXAMPLES])


def integrity_rows(design: str, counts: IntegrityCounts) -> list[SummaryRow]:
    return [
        SummaryRow(design, PHASE, "acknowledged", float(counts.acknowledged), "count"),
        SummaryRow(design, PHASE, "expected", float(counts.expected), "count"),
        SummaryRow(design, PHASE, "stored", float(counts.stored), "count"),
        SummaryRow(design, PHASE, "lost", float(counts.lost), "count"),
        SummaryRow(design, PHASE, "unexpected", float(counts.unexpected), "count"),
    ]
