"""Conditions follow metav1.Condition: lastTransitionTime moves only when status changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aliasip_api.conditions import Condition, ConditionStatus, find_condition, set_condition

T0 = datetime(2025, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def ready(
    status: ConditionStatus, reason: str, generation: int, now: datetime
) -> tuple[Condition, ...]:
    return set_condition(
        (), "Ready", status, reason, f"{reason} message", observed_generation=generation, now=now
    )


def test_a_new_condition_gets_now_in_whole_seconds() -> None:
    (condition,) = ready(TRUE, "Held", 1, T0)
    assert condition == Condition(
        "Ready", TRUE, "Held", "Held message", T0.replace(microsecond=0), 1
    )
    assert condition.to_dict() == {
        "type": "Ready",
        "status": "True",
        "reason": "Held",
        "message": "Held message",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
        "observedGeneration": 1,
    }
    assert Condition.from_dict(condition.to_dict()) == condition


@pytest.mark.parametrize(
    ("status", "reason", "generation", "moves"),
    [
        (TRUE, "Held", 1, False),
        (TRUE, "HeldAgain", 1, False),
        (TRUE, "Held", 2, False),
        (FALSE, "Released", 1, True),
        (UNKNOWN, "NoReport", 2, True),
    ],
    ids=["same", "new-reason", "new-generation", "status-changed", "status-unknown"],
)
def test_last_transition_time_moves_only_with_status(
    status: ConditionStatus, reason: str, generation: int, moves: bool
) -> None:
    before = ready(TRUE, "Held", 1, T0)
    (after,) = set_condition(
        before, "Ready", status, reason, f"{reason} message", observed_generation=generation, now=T1
    )
    assert after.last_transition_time == (T1 if moves else T0).replace(microsecond=0)
    assert (after.status, after.reason, after.observed_generation) == (status, reason, generation)
    assert after.message == f"{reason} message"


def test_other_conditions_and_their_order_are_kept() -> None:
    conditions = set_condition((), "Valid", TRUE, "Parsed", "", observed_generation=1, now=T0)
    conditions = set_condition(
        conditions, "Ready", FALSE, "Pending", "", observed_generation=1, now=T0
    )
    updated = set_condition(
        conditions, "Valid", FALSE, "ReservedAddress", "x", observed_generation=2, now=T1
    )
    assert [c.type for c in updated] == ["Valid", "Ready"]
    assert updated[1] is conditions[1]
    assert find_condition(updated, "Valid") == Condition(
        "Valid", FALSE, "ReservedAddress", "x", T1.replace(microsecond=0), 2
    )
    assert find_condition(updated, "Missing") is None


def test_setting_the_same_condition_changes_nothing() -> None:
    conditions = ready(TRUE, "Held", 1, T0)
    assert (
        set_condition(
            conditions, "Ready", TRUE, "Held", "Held message", observed_generation=1, now=T1
        )
        == conditions
    )


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        ready(TRUE, "Held", 1, datetime(2025, 1, 1))  # naive on purpose
