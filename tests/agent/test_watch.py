"""When a standby probes for a holder whose Lease lapsed, and when it reports (watch.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aliasip_api import kubetime
from aliasip_api.lease import AgentLease, parse_lease
from aliasip_api.status import NodeState, NodeView
from aliasip_nodeagent.reconcile import observe
from aliasip_nodeagent.watch import lease_lapsed, report_due, watched_holder

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
S = timedelta(seconds=1)


def obj(
    active: str | None, nodes: list[str], views: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"activeNode": active, "epoch": 1, **extra}
    if views:
        status["nodes"] = views
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": "web", "uid": "u"},
        "spec": {"addresses": ["198.18.0.50/24"], "nodes": nodes},
        "status": status,
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (obj("node1", ["node1", "node2"]), "node1"),
        (obj("node2", ["node1", "node2"]), None),
        (obj(None, ["node1", "node2"]), None),
        (obj("node1", ["node1", "node3"]), None),
        (obj("node1", ["node1"], {"node2": {"state": "standby"}}), "node1"),
        (obj("node1", ["node1", "node2"], phase="Bogus"), None),
        ({**obj("node1", ["node1", "node2"]), "spec": {"addresses": []}}, None),
    ],
    ids=[
        "standby-of-another-holder",
        "this-node-holds",
        "nobody-holds",
        "not-a-candidate",
        "already-reporting-a-view",
        "status-does-not-parse",
        "spec-does-not-parse",
    ],
)
def test_watched_holder(body: dict[str, Any], expected: str | None) -> None:
    assert watched_holder("node2", observe(body)) == expected


def lease(holder: str | None, renewed: datetime | None, duration: int | None = 3) -> AgentLease:
    return AgentLease(holder, renewed, duration)


@pytest.mark.parametrize(
    ("held", "lapsed"),
    [
        (lease("node1", NOW - 2 * S), False),
        (lease("node1", NOW - 3 * S), True),  # inclusive, as the operator and client-go
        (lease("node1", NOW - 10 * S), True),
        (None, True),
        (lease(None, NOW), True),
        (lease("node9", NOW), True),
        (lease("node1", None), True),
        (lease("node1", NOW, None), True),
    ],
    ids=[
        "valid",
        "at-expiry",
        "expired",
        "no-lease",
        "given-up",
        "other-identity",
        "no-renew-time",
        "no-duration",
    ],
)
def test_lease_lapsed(held: AgentLease | None, lapsed: bool) -> None:
    assert lease_lapsed(held, "node1", NOW) is lapsed


def test_parse_lease() -> None:
    body = {
        "spec": {
            "holderIdentity": "node1",
            "renewTime": kubetime.format_micro_time(NOW),
            "leaseDurationSeconds": 3,
        }
    }
    assert parse_lease(body) == AgentLease("node1", NOW, 3)
    assert parse_lease(body).expires_at == NOW + 3 * S
    bad = parse_lease({"spec": {"renewTime": "yesterday", "leaseDurationSeconds": 0}})
    assert bad == AgentLease(None, None, None) and bad.expires_at is None
    muted = {**body, "metadata": {"annotations": {"aliasip.io/mute-window-ms": "200"}}}
    assert parse_lease(muted).mute_window_ms == 200
    claims = "node2=2026-01-01T12:00:00.5Z, node3=yesterday,=x,node4"
    claimed = parse_lease({**body, "metadata": {"annotations": {"aliasip.io/silent": claims}}})
    assert claimed.silent == (("node2", NOW.replace(microsecond=500000)),)  # bad ones dropped
    assert claimed.silent_since("node2") is not None and claimed.silent_since("node3") is None
    for raw in ("0", "-1", "0.2", "fast"):  # malformed: no window (the lifetime's, safe)
        odd = {**body, "metadata": {"annotations": {"aliasip.io/mute-window-ms": raw}}}
        assert parse_lease(odd).mute_window_ms is None, raw


def seen(heard: bool | None, at: datetime | None) -> NodeView:
    return NodeView(NodeState.STANDBY, None, 1, None, at, heard, at)


EXPIRED = lease("node1", NOW - 10 * S)  # expired at NOW - 7 s


@pytest.mark.parametrize(
    ("current", "heard", "held", "due"),
    [
        (None, True, EXPIRED, True),
        (seen(None, None), True, EXPIRED, True),
        (seen(True, NOW - 5 * S), True, EXPIRED, False),
        (seen(True, NOW - 5 * S), False, EXPIRED, True),
        (seen(False, NOW - 5 * S), True, EXPIRED, True),
        (seen(True, NOW - 8 * S), True, EXPIRED, True),
        (seen(True, NOW - 7 * S), True, EXPIRED, False),
        (seen(True, NOW - 5 * S), True, None, False),
        (seen(True, NOW - 5 * S), True, lease("node1", NOW - 4 * S), True),
    ],
    ids=[
        "no-view-yet",
        "view-without-observation",
        "same-value-after-this-expiry",
        "holder-fell-silent",
        "holder-answers-again",
        "observation-before-this-expiry",
        "observation-at-the-expiry",
        "no-lease-same-value",
        "renewed-and-lapsed-again",
    ],
)
def test_report_due(
    current: NodeView | None, heard: bool, held: AgentLease | None, due: bool
) -> None:
    assert report_due(current, heard, held) is due
