"""Node objects: stationary addresses, readiness and cordon as the operator needs them."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from aliasip_api.conditions import ConditionStatus
from aliasip_api.nodes import NodeInfo, parse_node
from tests.model.objects import node


def with_status(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body["status"].update(changes)
    return body


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ([{"type": "Ready", "status": "True"}], ConditionStatus.TRUE),
        ([{"type": "Ready", "status": "False"}], ConditionStatus.FALSE),
        ([{"type": "Ready", "status": "Unknown"}], ConditionStatus.UNKNOWN),
        (
            [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
            ConditionStatus.TRUE,
        ),
        ([{"type": "MemoryPressure", "status": "False"}], ConditionStatus.UNKNOWN),
        ([], ConditionStatus.UNKNOWN),
        ([{"type": "Ready", "status": "Maybe"}], ConditionStatus.UNKNOWN),
        (["garbage"], ConditionStatus.UNKNOWN),
    ],
    ids=[
        "ready",
        "not-ready",
        "unknown",
        "among-others",
        "no-ready-condition",
        "no-conditions",
        "unknown-value",
        "not-an-object",
    ],
)
def test_readiness_is_the_ready_condition(conditions: list[Any], expected: ConditionStatus) -> None:
    assert parse_node(with_status(node("node-a"), conditions=conditions)).ready is expected


def test_a_node_nobody_vouches_for_is_not_ready() -> None:
    assert parse_node(node("node-a")).ready is ConditionStatus.UNKNOWN
    assert NodeInfo("node-a").ready is ConditionStatus.UNKNOWN


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (None, False),
        ({}, False),
        ({"unschedulable": False}, False),
        ({"unschedulable": True}, True),
    ],
    ids=["no-spec", "empty-spec", "schedulable", "cordoned"],
)
def test_cordon_is_spec_unschedulable(spec: dict[str, Any] | None, expected: bool) -> None:
    body = node("node-a")
    if spec is not None:
        body["spec"] = spec
    assert parse_node(body).unschedulable is expected


def test_everything_at_once() -> None:
    body = with_status(
        node("node-a", {"zone": "a"}, InternalIP="198.18.0.10"),
        conditions=[{"type": "Ready", "status": "True"}],
    )
    body["spec"] = {"unschedulable": True}
    assert parse_node(body) == NodeInfo(
        "node-a",
        {"zone": "a"},
        (("InternalIP", ipaddress.ip_address("198.18.0.10")),),
        ready=ConditionStatus.TRUE,
        unschedulable=True,
    )
