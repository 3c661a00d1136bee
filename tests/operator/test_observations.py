"""Observations: agent Lease liveness, reading Leases, the switchover annotation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from aliasip_api.nodes import NodeInfo
from aliasip_operator.observations import (
    SWITCHOVER_ANNOTATION,
    AgentLease,
    Observations,
    SwitchoverRequest,
    parse_lease,
    switchover_request,
)
from tests.operator.world import T0, at


@pytest.mark.parametrize(
    ("lease", "now", "expired"),
    [
        (AgentLease("a", T0, 10), at(0), False),
        (AgentLease("a", T0, 10), at(9.999999), False),
        (AgentLease("a", T0, 10), at(10), True),
        (AgentLease("a", T0, 10), at(3600), True),
        (AgentLease("a", None, 10), at(0), True),
        (AgentLease("a", T0, None), at(0), True),
    ],
    ids=[
        "just-renewed",
        "last-microsecond",
        "at-expiry",
        "long-gone",
        "never-renewed",
        "no-duration",
    ],
)
def test_a_lease_expires_at_renew_time_plus_duration(
    lease: AgentLease, now: Any, expired: bool
) -> None:
    assert lease.expired(now) is expired


@pytest.mark.parametrize(
    ("lease", "valid"),
    [
        (AgentLease("a", T0, 10), True),
        (AgentLease("b", T0, 10), False),
        (AgentLease(None, T0, 10), False),
        (AgentLease("a", T0 - timedelta(seconds=10), 10), False),
    ],
    ids=["own", "held-by-another", "given-up", "expired"],
)
def test_a_lease_vouches_only_for_its_own_node(lease: AgentLease, valid: bool) -> None:
    assert lease.valid_for("a", T0) is valid


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {
                "holderIdentity": "a",
                "renewTime": "2025-01-01T00:00:00.500000Z",
                "leaseDurationSeconds": 10,
            },
            AgentLease("a", at(0.5), 10),
        ),
        ({"holderIdentity": "", "leaseDurationSeconds": 10}, AgentLease(None, None, 10)),
        ({"holderIdentity": "a", "renewTime": "yesterday"}, AgentLease("a", None, None)),
        ({"holderIdentity": "a", "leaseDurationSeconds": 0}, AgentLease("a", None, None)),
        ({"holderIdentity": "a", "leaseDurationSeconds": "10"}, AgentLease("a", None, None)),
        (None, AgentLease(None, None, None)),
    ],
    ids=["renewed", "given-up", "bad-time", "zero-duration", "duration-not-int", "no-spec"],
)
def test_parse_lease(spec: dict[str, Any] | None, expected: AgentLease) -> None:
    body: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"}
    if spec is not None:
        body["spec"] = spec
    assert parse_lease(body) == expected


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        (None, None),
        ({}, None),
        ({"other": "b"}, None),
        ({SWITCHOVER_ANNOTATION: "b"}, SwitchoverRequest("b")),
        ({SWITCHOVER_ANNOTATION: " b\n"}, SwitchoverRequest("b")),
        ({SWITCHOVER_ANNOTATION: ""}, SwitchoverRequest(None)),
        ({SWITCHOVER_ANNOTATION: "  "}, SwitchoverRequest(None)),
    ],
    ids=["none", "empty", "unrelated", "named", "whitespace", "next-standby", "blank"],
)
def test_switchover_request(
    annotations: dict[str, str] | None, expected: SwitchoverRequest | None
) -> None:
    assert switchover_request(annotations) == expected


def test_a_request_says_what_it_asks_for() -> None:
    assert str(SwitchoverRequest("b")) == "b"
    assert str(SwitchoverRequest(None)) == "the next standby"


def test_observations_are_a_frozen_snapshot() -> None:
    nodes = [NodeInfo("a"), NodeInfo("b")]
    leases = {"a": AgentLease("a", T0, 10)}
    observed = Observations.of(nodes, leases)
    leases["b"] = AgentLease("b", T0, 10)
    assert set(observed.nodes) == {"a", "b"}
    assert set(observed.leases) == {"a"}
    with pytest.raises(TypeError):
        observed.leases["b"] = AgentLease("b", T0, 10)  # type: ignore[index]
