"""harness.analysis.integrity: acknowledged writes against what the store holds, per user."""

from __future__ import annotations

from harness.analysis.integrity import (
    EXAMPLES,
    MESSAGES_PER_EXCHANGE,
    IntegrityCounts,
    integrity_counts,
    integrity_rows,
)


def test_an_exchange_is_two_messages() -> None:
    assert MESSAGES_PER_EXCHANGE == 2


def test_an_unseeded_user_with_acknowledged_writes_holds_exactly_those() -> None:
    # A user the seed never created (a new conversation): expected = 2 x acknowledged only.
    counts = integrity_counts({}, {"new": 3}, {"new": 6})
    assert counts.seeded == 0
    assert counts.expected == 6
    assert counts.lost == 0 and counts.unexpected == 0
    assert counts.lost_users == {} and counts.unexpected_users == {}


def test_a_user_the_store_does_not_know_holds_nothing() -> None:
    counts = integrity_counts({"a": 0, "b": 3}, {}, {"b": 3})
    assert counts.stored == 3
    assert counts.lost == 0 and counts.unexpected == 0
    assert counts.users == 2


def test_a_single_lost_message_is_counted() -> None:
    counts = integrity_counts({"a": 4}, {"a": 1}, {"a": 5})
    assert counts.lost == 1 and counts.lost_users == {"a": 1}
    assert counts.expected == 6 and counts.stored == 5 and counts.seeded == 4


def test_users_only_in_the_store_are_not_counted() -> None:
    counts = integrity_counts({"a": 1}, {}, {"a": 1, "stranger": 50})
    assert counts.stored == 1 and counts.users == 1 and counts.unexpected == 0


def test_the_examples_are_the_largest_first_ties_by_name_and_capped() -> None:
    lost_by = {f"u{i:03d}": 1 for i in range(EXAMPLES + 5)} | {"zz": 9, "yy": 9, "big": 40}
    seeded = {user: n for user, n in lost_by.items()}
    counts = integrity_counts(seeded, {}, {})
    assert len(counts.lost_users) == EXAMPLES
    assert list(counts.lost_users)[:3] == ["big", "yy", "zz"]
    assert list(counts.lost_users)[3:5] == ["u000", "u001"]
    assert counts.lost == sum(lost_by.values())


def test_rows_carry_design_phase_and_unit() -> None:
    counts = integrity_counts({"a": 10}, {"a": 2}, {"a": 13})
    rows = integrity_rows("optimized", counts)
    assert [(r.design, r.phase, r.metric, r.value, r.unit, dict(r.labels)) for r in rows] == [
        ("optimized", "integrity", "acknowledged", 2.0, "count", {}),
        ("optimized", "integrity", "expected", 14.0, "count", {}),
        ("optimized", "integrity", "stored", 13.0, "count", {}),
        ("optimized", "integrity", "lost", 1.0, "count", {}),
        ("optimized", "integrity", "unexpected", 0.0, "count", {}),
    ]


def test_to_json_names_every_count() -> None:
    counts = IntegrityCounts(
        users=3, seeded=10, acknowledged=2, expected=14, stored=15, lost=1, unexpected=2,
        lost_users={"a": 1}, unexpected_users={"b": 2},
    )  # fmt: skip
    assert counts.to_json() == {
        "users": 3,
        "seeded_messages": 10,
        "acknowledged_exchanges": 2,
        "expected_messages": 14,
        "stored_messages": 15,
        "lost_messages": 1,
        "unexpected_messages": 2,
        "lost_by_user": {"a": 1},
        "unexpected_by_user": {"b": 2},
    }
