"""What the agent reports under status.nodes.<node> (report.view_for), and when it writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aliasip_api.status import NodeState, NodeView
from aliasip_nodeagent.reconcile import observe
from aliasip_nodeagent.report import Outcome, needs_write, patch_body, view_for

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def obj(active: str | None, epoch: int, views: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"activeNode": active, "epoch": epoch}
    if views:
        status["nodes"] = views
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": "web", "uid": "u"},
        "spec": {"addresses": ["198.18.0.50/24"], "nodes": ["node1", "node2"]},
        "status": status,
    }


CASES = [
    (
        "holding",
        obj("node1", 2),
        Outcome(holds_all=True, holds_any=True),
        "node1",
        NodeState.HOLDING,
    ),
    ("error", obj("node1", 2), Outcome(error="InterfaceDown: eth1"), "node1", NodeState.ERROR),
    (
        "delete-failed-still-holding",
        obj("node2", 2),
        Outcome(holds_any=True, error="deleting failed"),
        "node1",
        NodeState.HOLDING,
    ),
    ("released-now", obj(None, 2), Outcome(released=True), "node1", NodeState.RELEASED),
    (
        "released-stays-released",
        obj("node2", 3, {"node1": {"state": "released", "epoch": 2}}),
        Outcome(),
        "node1",
        NodeState.RELEASED,
    ),
    ("standby", obj("node1", 2), Outcome(), "node2", NodeState.STANDBY),
]


@pytest.mark.parametrize(
    ("body", "outcome", "node", "state"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_view_for(body: dict[str, Any], outcome: Outcome, node: str, state: NodeState) -> None:
    view = view_for(node, observe(body), outcome, NOW)
    assert view is not None
    assert view.state is state
    assert view.epoch == body["status"]["epoch"]


def test_nothing_for_a_node_with_no_part() -> None:
    assert view_for("node9", observe(obj("node1", 1)), Outcome(), NOW) is None


def test_write_only_on_change_ignoring_times() -> None:
    old = NodeView(NodeState.HOLDING, None, 2, "eth1", NOW)
    same = NodeView(NodeState.HOLDING, None, 2, "eth1", datetime(2027, 1, 1, tzinfo=UTC))
    assert not needs_write(old, same)
    assert needs_write(old, NodeView(NodeState.HOLDING, None, 3, "eth1", NOW))
    assert needs_write(None, old)
    assert not needs_write(old, None)


def test_patch_clears_keys_the_view_leaves_out() -> None:
    body = patch_body("node1", NodeView(NodeState.HOLDING, None, 2, "eth1", NOW))
    mine = body["status"]["nodes"]["node1"]
    assert mine["message"] is None and mine["state"] == "holding"
    assert list(body["status"]) == ["nodes"] and list(body["status"]["nodes"]) == ["node1"]
