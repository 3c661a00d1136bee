"""The pure part of leader election: who may take or keep the Lease, and what to write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aliasip_operator.leader import (
    LeaseRecord,
    Timings,
    Verdict,
    judge,
    next_spec,
    parse_record,
    still_leading,
)

ME = "op-a"
NOW = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)


def record(holder: str | None, duration: int | None = 3, transitions: int = 0) -> LeaseRecord:
    return LeaseRecord(holder, duration, "2026-01-02T03:04:00.000000Z", transitions, "7")


@pytest.mark.parametrize(
    ("lease", "observed_at", "now", "expected"),
    [
        (None, 0.0, 0.0, Verdict.CREATE),
        (record(ME), 0.0, 100.0, Verdict.RENEW),  # mine, even if I was slow: still mine
        (record(None), 10.0, 10.0, Verdict.TAKE),  # given up (released)
        (record("op-b"), 10.0, 12.9, Verdict.WAIT),  # not yet a whole duration unchanged
        (record("op-b"), 10.0, 13.0, Verdict.TAKE),  # inclusive expiry, as client-go
        (record("op-b", duration=10), 10.0, 13.0, Verdict.WAIT),  # the Lease's own duration
        (record("op-b", duration=None), 10.0, 13.0, Verdict.TAKE),  # none: the default (3)
    ],
    ids=["none", "mine", "released", "fresh", "expired", "own-duration", "default-duration"],
)
def test_judge(
    lease: LeaseRecord | None, observed_at: float, now: float, expected: Verdict
) -> None:
    assert judge(lease, ME, observed_at, now, default_duration_s=3) is expected


def test_every_candidate_sees_at_most_one_holder_allowed() -> None:
    # Run the judgement for every candidate on one valid record: exactly the holder may act.
    lease = record("op-b")
    allowed = [
        c for c in ("op-a", "op-b", "op-c") if judge(lease, c, 0.0, 1.0, 3) is not Verdict.WAIT
    ]
    assert allowed == ["op-b"]


@pytest.mark.parametrize(
    ("lease", "verdict", "acquire", "transitions"),
    [
        (None, Verdict.CREATE, True, 0),
        (record(ME, transitions=4), Verdict.RENEW, False, None),
        (record("op-b", transitions=4), Verdict.TAKE, True, 5),
    ],
    ids=["create", "renew", "take"],
)
def test_next_spec(
    lease: LeaseRecord | None, verdict: Verdict, acquire: bool, transitions: int | None
) -> None:
    spec = next_spec(lease, ME, verdict, NOW, 3)
    assert spec["holderIdentity"] == ME
    assert spec["leaseDurationSeconds"] == 3
    assert spec["renewTime"] == "2026-01-02T03:04:05.123456Z"
    assert ("acquireTime" in spec) is acquire
    assert spec.get("leaseTransitions") == transitions


def test_next_spec_refuses_to_write_for_wait() -> None:
    with pytest.raises(ValueError):
        next_spec(record("op-b"), ME, Verdict.WAIT, NOW, 3)


@pytest.mark.parametrize(
    ("last", "now", "expected"),
    [(None, 0.0, False), (10.0, 11.9, True), (10.0, 12.0, False)],
    ids=["never", "within", "deadline"],
)
def test_still_leading(last: float | None, now: float, expected: bool) -> None:
    assert still_leading(last, now, 2.0) is expected


def test_parse_record() -> None:
    body = {
        "metadata": {"name": "aliasip-operator", "resourceVersion": "42"},
        "spec": {"holderIdentity": "", "leaseDurationSeconds": 0, "leaseTransitions": 2},
    }
    assert parse_record(body) == LeaseRecord(None, None, None, 2, "42")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lease_duration_s": 3, "renew_deadline_s": 2.6, "call_timeout_s": 0.5},
        {"retry_period_s": 2.0, "renew_deadline_s": 2.0},
    ],
    ids=["deadline-too-long", "retry-too-slow"],
)
def test_timings_that_would_allow_two_leaders_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Timings(**kwargs)  # type: ignore[arg-type]
