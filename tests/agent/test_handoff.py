"""The direct handoff's pure parts (docs/design.md, R11): who is a named successor
(``aliasip_api.succession``), what each end of a handoff does (``handoff.Handoffs``), and
how a taken handoff becomes a hold (``reconcile.plan``) and a report (``report.view_for``).
The sockets and processes are in test_process.py (``..._by_direct_handoff...``).
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest

from aliasip_api.status import AliasIPStatus, NodeState
from aliasip_api.succession import Succession, succession
from aliasip_nodeagent.handoff import READY_WAIT_S, TOLD_TTL_S, Handoffs
from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.reconcile import Observed, observe, plan
from aliasip_nodeagent.report import Outcome, view_for

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def status(
    epoch: int = 2,
    active: str | None = None,
    phase: str = "Switching",
    source: str | None = "node1",
    to: str | None = "node2",
    reason: str = "Switchover",
    finished: bool = False,
    nodes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    moving: dict[str, Any] = {"from": source, "to": to, "reason": reason}
    moving["startedAt"] = "2026-12-07T00:00:00.000000Z"
    if finished:
        moving["finishedAt"] = "2026-12-07T00:00:01.000000Z"
    return {
        "activeNode": active,
        "epoch": epoch,
        "phase": phase,
        "lastTransition": moving,
        "nodes": nodes or {},
    }


def aliasip(body_status: dict[str, Any], uid: str = "uid-web") -> Observed:
    return observe(
        {
            "apiVersion": "aliasip.io/v1alpha1",
            "kind": "AliasIP",
            "metadata": {"name": "web", "uid": uid, "resourceVersion": "7", "generation": 1},
            "spec": {"addresses": ["198.18.0.50/24"], "nodes": ["node1", "node2", "node3"]},
            "status": body_status,
        }
    )


def held(address: str = "198.18.0.50/24") -> HeldAlias:
    return HeldAlias("eth1", 2, "02:00:00:00:01:01", ipaddress.ip_interface(address))


# -- who is a named successor -------------------------------------------------------------


def test_a_planned_release_step_names_its_successor_at_its_epoch() -> None:
    assert succession(AliasIPStatus.from_dict(status())) == Succession("node1", "node2", 2)


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("a node is active", status(active="node1")),
        ("not switching (invalid, unavailable)", status(phase="Invalid")),
        ("the move is finished", status(finished=True)),
        ("a failover has no release to hand over", status(reason="Failover")),
        ("no node to release (a placement)", status(source=None)),
        ("no successor named (a release only)", status(to=None)),
        ("from and to are the same node", status(to="node1")),
    ],
)
def test_no_successor_outside_a_planned_release_step(case: str, body: dict[str, Any]) -> None:
    assert succession(AliasIPStatus.from_dict(body)) is None, case


# -- the successor's end ------------------------------------------------------------------


def test_the_successor_takes_a_handoff_from_the_node_its_view_names_at_that_epoch() -> None:
    obs = aliasip(status())
    ends = Handoffs("node2")
    assert ends.follow([obs], now=0.0) == {}  # named, nothing heard yet
    assert "uid-web" in ends.awaiting
    assert ends.heard("node1", [("uid-web", 2)], now=0.1)  # due: a pass takes it
    assert ends.follow([obs], now=0.1) == {"uid-web": 2}
    assert ends.holds(obs) and not ends.awaiting
    assert ends.follow([obs], now=5.0) == {"uid-web": 2}  # kept while the view is the same


@pytest.mark.parametrize(
    ("case", "sender", "epoch"),
    [
        ("another node says it released", "node3", 2),
        ("the release of another epoch", "node1", 1),
    ],
)
def test_a_handoff_that_does_not_match_the_view_is_not_taken(
    case: str, sender: str, epoch: int
) -> None:
    ends = Handoffs("node2")
    obs = aliasip(status())
    ends.follow([obs], now=0.0)
    assert not ends.heard(sender, [("uid-web", epoch)], now=0.1), case
    assert ends.follow([obs], now=0.1) == {}, case
    assert not ends.holds(obs)


def test_a_handoff_heard_before_the_view_caught_up_is_taken_once_it_does() -> None:
    ends = Handoffs("node2")
    before = aliasip({"activeNode": "node1", "epoch": 1, "phase": "Active"})
    ends.follow([before], now=0.0)
    assert not ends.heard("node1", [("uid-web", 2)], now=0.0)  # not named yet: kept
    assert ends.follow([aliasip(status())], now=0.5) == {"uid-web": 2}


def test_a_handoff_heard_too_long_before_the_view_is_dropped() -> None:
    ends = Handoffs("node2")
    ends.heard("node1", [("uid-web", 2)], now=0.0)
    ends.follow([], now=TOLD_TTL_S + 0.1)
    assert ends.follow([aliasip(status())], now=TOLD_TTL_S + 0.2) == {}


def test_only_the_named_successor_takes_it() -> None:
    ends = Handoffs("node3")
    obs = aliasip(status())
    ends.heard("node1", [("uid-web", 2)], now=0.0)
    assert ends.follow([obs], now=0.0) == {} and not ends.awaiting


def test_a_second_release_step_at_the_same_epoch_ends_the_taken_handoff() -> None:
    """The operator releases again from a successor that cannot take the addresses after
    all (same epoch: activeNode stays null): the successor holds no more."""
    ends = Handoffs("node2")
    ends.heard("node1", [("uid-web", 2)], now=0.0)
    assert ends.follow([aliasip(status())], now=0.0) == {"uid-web": 2}
    again = aliasip(status(source="node2", to="node3"))
    assert ends.follow([again], now=0.1) == {}
    assert not ends.holds(again)


# -- the old holder's end -----------------------------------------------------------------


def test_the_old_holder_tells_once_it_holds_none_of_the_addresses_and_only_once() -> None:
    ends = Handoffs("node1")
    obs = aliasip(status())
    assert ends.to_tell([obs], [held()]) == []  # still holds it: nothing to tell
    (tell,) = ends.to_tell([obs], [])
    assert (tell.to_node, tell.aliasip, tell.key, tell.epoch) == ("node2", "web", "uid-web", 2)
    assert ends.to_tell([obs], []) == []  # once per AliasIP and epoch
    # A new release step (another epoch) is told again.
    later = aliasip(status(epoch=4))
    assert [t.epoch for t in ends.to_tell([later], [])] == [4]


def test_an_address_held_for_another_aliasip_does_not_hold_up_the_tell() -> None:
    ends = Handoffs("node1")
    assert len(ends.to_tell([aliasip(status())], [held("198.18.0.51/24")])) == 1


def test_nobody_tells_outside_a_release_step_or_for_another_node() -> None:
    assert Handoffs("node1").to_tell([aliasip(status(reason="Failover"))], []) == []
    assert Handoffs("node3").to_tell([aliasip(status())], []) == []


# -- a taken handoff as a hold and a report -----------------------------------------------


def test_a_taken_handoff_is_a_hold_at_the_release_step_without_a_probe() -> None:
    obs = aliasip(status())
    (hold,) = plan("node2", [obs], [], {}, {"uid-web": 2}).holds
    assert (hold.epoch, hold.probe, hold.handed, hold.adopt) == (2, False, True, False)


@pytest.mark.parametrize(
    ("case", "body", "handed"),
    [
        ("nothing taken", status(), {}),
        ("taken at another epoch", status(), {"uid-web": 1}),
        ("the view no longer names it", status(source="node2", to="node3"), {"uid-web": 2}),
        ("the phase left Switching", status(phase="Invalid"), {"uid-web": 2}),
    ],
)
def test_without_a_matching_handoff_the_successor_holds_nothing(
    case: str, body: dict[str, Any], handed: dict[str, int]
) -> None:
    p = plan("node2", [aliasip(body)], [held()], {}, handed)
    assert p.holds == (), case
    assert [r.held.address.ip for r in p.releases] == [held().address.ip], case


def test_a_successor_reports_holding_at_the_release_step_once_it_holds() -> None:
    obs = aliasip(status())
    outcome = Outcome(holds_all=True, holds_any=True, interface="eth1")
    view = view_for("node2", obs, outcome, NOW, handed=True)
    assert view is not None
    assert (view.state, view.epoch, view.message) == (NodeState.HOLDING, 2, None)


def test_an_awaiting_successor_says_nothing_at_the_epoch_but_a_refusal_or_a_probe() -> None:
    """A ``standby`` at the release step's epoch would tell the operator the successor
    let go, while a handoff may still come."""
    obs = aliasip(status(nodes={"node2": {"state": "standby", "epoch": 1}}))
    assert view_for("node2", obs, Outcome(), NOW, awaiting=True) is None
    refused = view_for("node2", obs, Outcome(error="InterfaceDown: eth1"), NOW, awaiting=True)
    assert refused is not None and (refused.state, refused.epoch) == (NodeState.ERROR, 2)
    probed = view_for("node2", obs, Outcome(heard=True, observed_at=NOW), NOW, awaiting=True)
    assert probed is not None
    assert (probed.state, probed.epoch, probed.holder_heard) == (NodeState.STANDBY, 1, True)


# -- the old holder waits a moment for the successor's "ready" ------------------------------


def test_the_old_holder_waits_for_the_successors_ready_a_moment_at_most() -> None:
    ends = Handoffs("node1")
    obs = aliasip(status())
    heard = lambda peer: peer == "node2"  # noqa: E731 - the monitoring path hears node2
    assert ends.defer(obs, 10.0, heard) == pytest.approx(READY_WAIT_S)
    assert ends.defer(obs, 10.0 + READY_WAIT_S / 2, heard) == pytest.approx(READY_WAIT_S / 2)
    assert ends.defer(obs, 10.0 + READY_WAIT_S, heard) is None  # waited long enough
    ready = Handoffs("node1")
    ready.defer(obs, 10.0, heard)
    ready.readied("node2", [("uid-web", 2)])
    assert ready.defer(obs, 10.001, heard) is None  # ready: let go now


@pytest.mark.parametrize(
    ("case", "body", "ready_from", "heard"),
    [
        ("a successor the monitoring path does not hear", status(), None, False),
        ("a ready from another node", status(), "node3", True),
        ("not a release step", status(active="node1"), None, True),
    ],
)
def test_no_wait_where_no_ready_can_come(
    case: str, body: dict[str, Any], ready_from: str | None, heard: bool
) -> None:
    ends = Handoffs("node1")
    if ready_from is not None:
        ends.readied(ready_from, [("uid-web", 2)])
        assert ends.defer(aliasip(body), 0.0, lambda _p: heard) is not None, case
    else:
        assert ends.defer(aliasip(body), 0.0, lambda _p: heard) is None, case
