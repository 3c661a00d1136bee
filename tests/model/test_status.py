"""Typed status: read, write, the agents' merge patch, and the epoch transition rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aliasip_api.conditions import Condition, ConditionStatus
from aliasip_api.crd import packaged_crd
from aliasip_api.errors import INVALID_STATUS, Finding, InvalidAliasIP
from aliasip_api.status import (
    AliasIPStatus,
    LastTransition,
    NodeState,
    NodeView,
    Phase,
    node_view_patch,
    update_findings,
)

WHEN = datetime(2025, 1, 1, 0, 0, 1, 250000, tzinfo=UTC)
FULL: dict[str, Any] = {
    "activeNode": "node-a",
    "phase": "Active",
    "epoch": 7,
    "nodes": {
        "node-a": {
            "state": "holding",
            "epoch": 7,
            "interface": "eth1",
            "updatedAt": "2025-01-01T00:00:01.250000Z",
        },
        "node-b": {"state": "error", "message": "no covering interface"},
    },
    "conditions": [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Held",
            "message": "node-a holds every address",
            "lastTransitionTime": "2025-01-01T00:00:01Z",
            "observedGeneration": 3,
        }
    ],
    "lastTransition": {
        "from": None,
        "to": "node-a",
        "reason": "Failover",
        "startedAt": "2025-01-01T00:00:00.000000Z",
        "finishedAt": "2025-01-01T00:00:01.250000Z",
        "outageMs": 1250,
    },
}


def test_full_status_round_trips() -> None:
    status = AliasIPStatus.from_dict(FULL)
    assert status == AliasIPStatus(
        active_node="node-a",
        phase=Phase.ACTIVE,
        epoch=7,
        nodes={
            "node-a": NodeView(NodeState.HOLDING, epoch=7, interface="eth1", updated_at=WHEN),
            "node-b": NodeView(NodeState.ERROR, message="no covering interface"),
        },
        conditions=(
            Condition(
                "Ready",
                ConditionStatus.TRUE,
                "Held",
                "node-a holds every address",
                WHEN.replace(microsecond=0),
                3,
            ),
        ),
        last_transition=LastTransition(
            None, "node-a", "Failover", WHEN.replace(second=0, microsecond=0), WHEN, 1250
        ),
    )
    assert status.to_dict() == FULL


def test_an_empty_status_reads_as_defaults_and_kopf_fields_are_ignored() -> None:
    assert AliasIPStatus.from_dict(None) == AliasIPStatus()
    assert AliasIPStatus.from_dict({"kopf": {"progress": {}}}) == AliasIPStatus()
    assert AliasIPStatus().to_dict() == {"activeNode": None, "epoch": 0}


def test_the_operator_patch_leaves_the_agents_part_out() -> None:
    body = AliasIPStatus.from_dict(FULL).to_dict(nodes=False)
    assert "nodes" not in body
    assert body["activeNode"] == "node-a"


def test_an_agent_patches_only_its_own_key() -> None:
    view = NodeView(NodeState.RELEASED, epoch=8, interface="eth1", updated_at=WHEN)
    assert node_view_patch("node-a", view) == {
        "status": {
            "nodes": {
                "node-a": {
                    "state": "released",
                    "epoch": 8,
                    "interface": "eth1",
                    "updatedAt": "2025-01-01T00:00:01.250000Z",
                }
            }
        }
    }


def test_what_the_model_writes_satisfies_the_crd() -> None:
    schema = packaged_crd().status_schema
    assert schema.validate(AliasIPStatus.from_dict(FULL).to_dict()) == []
    view = NodeView(NodeState.STANDBY, updated_at=WHEN)
    assert schema.validate(node_view_patch("node-b", view)["status"]) == []


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            {"phase": "Running"},
            "status.phase",
            'must be one of "Pending", "Active", "Degraded", "Switching", "Unavailable",'
            ' "Invalid", "Conflict" (got "Running")',
        ),
        ({"epoch": -1}, "status.epoch", "must be greater than or equal to 0 (got -1)"),
        (
            {"nodes": {"node-a": {"epoch": 1}}},
            "status.nodes[node-a].state",
            "required value is missing",
        ),
        (
            {"nodes": {"node-a": {"state": "held"}}},
            "status.nodes[node-a].state",
            'must be one of "holding", "released", "standby", "error" (got "held")',
        ),
        (
            {"nodes": {"node-a": {"state": "holding", "extra": 1}}},
            "status.nodes[node-a].extra",
            "unknown field",
        ),
        (
            {"conditions": [FULL["conditions"][0], FULL["conditions"][0]]},
            "status.conditions[1]",
            'duplicate entry with type="Ready"',
        ),
        (
            {"conditions": [FULL["conditions"][0] | {"lastTransitionTime": "2025-01-01"}]},
            "status.conditions[0].lastTransitionTime",
            '"2025-01-01" is not a valid date-time:'
            " not an RFC 3339 date-time (like 2006-01-02T15:04:05Z)",
        ),
        (
            {"conditions": [FULL["conditions"][0] | {"reason": "not ok"}]},
            "status.conditions[0].reason",
            'must match the pattern ^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$ (got "not ok")',
        ),
        (
            {"lastTransition": {"outageMs": 1.5}},
            "status.lastTransition.outageMs",
            "must be of type integer (got number)",
        ),
    ],
    ids=[
        "unknown-phase",
        "negative-epoch",
        "node-state-missing",
        "node-state-unknown",
        "node-unknown-field",
        "condition-twice",
        "condition-time-not-rfc3339",
        "condition-reason-syntax",
        "outage-not-integer",
    ],
)
def test_invalid_status_names_the_field(body: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(InvalidAliasIP) as caught:
        AliasIPStatus.from_dict(body)
    assert caught.value.findings == (Finding(path, message, INVALID_STATUS),)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (3, 4, ()),
        (3, 3, ()),
        (
            3,
            2,
            (
                Finding(
                    "status.epoch",
                    "must never decrease (it is a fencing token): was 3, now 2",
                    INVALID_STATUS,
                ),
            ),
        ),
    ],
    ids=["forward", "same", "backwards"],
)
def test_the_epoch_never_decreases(old: int, new: int, expected: tuple[Finding, ...]) -> None:
    assert update_findings(AliasIPStatus(epoch=old), AliasIPStatus(epoch=new)) == expected


def test_a_standbys_wire_observation_round_trips_and_satisfies_the_crd() -> None:
    body = {
        "nodes": {
            "node-b": {
                "state": "standby",
                "epoch": 7,
                "holderHeard": False,
                "observedAt": "2025-01-01T00:00:01.250000Z",
            }
        }
    }
    status = AliasIPStatus.from_dict(body)
    assert status.nodes["node-b"] == NodeView(
        NodeState.STANDBY, epoch=7, holder_heard=False, observed_at=WHEN
    )
    assert status.to_dict() == {"activeNode": None, "epoch": 0, **body}


def test_holder_heard_must_be_a_boolean() -> None:
    with pytest.raises(InvalidAliasIP) as caught:
        AliasIPStatus.from_dict({"nodes": {"node-b": {"state": "standby", "holderHeard": "yes"}}})
    assert caught.value.findings == (
        Finding(
            "status.nodes[node-b].holderHeard",
            "must be of type boolean (got string)",
            INVALID_STATUS,
        ),
    )
