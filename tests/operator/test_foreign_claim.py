"""The ForeignClaim condition and its Warning Event, from the holder's own report.

The holder's agent reports another MAC claiming a held address (RFC 5227 section 2.4) as
``status.nodes.<holder>.foreignClaim``; the operator turns it into a condition (True
while the holder reports it) and one Warning Event per claim, not one per decision, and
leaves Ready and the placement alone (the holder still holds and defends).
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from aliasip_api.conditions import Condition, ConditionStatus, find_condition
from aliasip_api.status import ForeignClaim, NodeState, NodeView, Phase
from aliasip_operator.decide import FOREIGN_CLAIM, READY
from aliasip_operator.decision import EventType
from tests.operator.world import World, at

MAC = "02:00:00:00:00:99"
OTHER_MAC = "02:00:00:00:00:98"


def active_on_a() -> World:
    world = World.of("a", "b", "c")
    world.settle()
    assert (world.status.active_node, world.status.phase) == ("a", Phase.ACTIVE)
    return world


def condition(world: World, kind: str = FOREIGN_CLAIM) -> Condition:
    found = find_condition(world.status.conditions, kind)
    assert found is not None
    return found


def claim_on_a(world: World, mac: str, when: datetime, defended: bool = True) -> None:
    """a's agent reports holding, and the claim (as the real agent would)."""
    claim = ForeignClaim(mac, "198.18.0.50", when, defended)
    view = NodeView(
        NodeState.HOLDING, epoch=world.status.epoch, updated_at=world.now, foreign_claim=claim
    )
    world.status = dataclasses.replace(world.status, nodes={**world.status.nodes, "a": view})


def warnings(world: World) -> list[str]:
    return [e.message for e in world.decisions[-1].events if e.reason == FOREIGN_CLAIM]


def test_no_claim_is_a_false_condition() -> None:
    world = active_on_a()
    found = condition(world)
    assert (found.status, found.reason) == (ConditionStatus.FALSE, "NoForeignClaim")


def test_a_claim_is_a_true_condition_and_one_warning_and_ready_stays() -> None:
    world = active_on_a()
    world.tick(2)
    world.set_foreign(MAC)
    world.act_all()
    decision = world.operate()
    assert (world.status.active_node, world.status.phase, world.status.epoch) == (
        "a",
        Phase.ACTIVE,
        1,
    )
    assert condition(world, READY).status is ConditionStatus.TRUE
    found = condition(world)
    assert (found.status, found.reason) == (ConditionStatus.TRUE, "ForeignClaim")
    assert found.message == (
        f"a reports that MAC {MAC} claims 198.18.0.50 (seen at 2025-01-01T00:00:02Z); "
        "it defended the address with one announcement"
    )
    assert [(e.type, e.reason) for e in decision.events] == [(EventType.WARNING, FOREIGN_CLAIM)]
    assert warnings(world) == [found.message]
    # The claim goes on (the agents report again): no second Event.
    for _ in range(3):
        world.tick(1)
        world.act_all()
        assert world.operate().events == ()


def test_the_same_claim_seen_again_while_true_is_not_a_new_event() -> None:
    world = active_on_a()
    claim_on_a(world, MAC, at(1))
    world.operate()
    assert len(warnings(world)) == 1
    claim_on_a(world, MAC, at(5), defended=False)  # seen again, and given up
    world.operate()
    assert warnings(world) == []
    assert "it has given up defending the address" in condition(world).message
    assert condition(world).status is ConditionStatus.TRUE


def test_a_claim_by_another_mac_or_after_it_ended_is_a_new_event() -> None:
    world = active_on_a()
    claim_on_a(world, MAC, at(1))
    world.operate()
    claim_on_a(world, OTHER_MAC, at(2))
    world.operate()
    assert len(warnings(world)) == 1 and OTHER_MAC in warnings(world)[0]
    # The claim ends: False, no Event; a new claim later is told again.
    world.tick(3)
    world.act("a")
    decision = world.operate()
    assert condition(world).status is ConditionStatus.FALSE
    assert decision.events == ()
    claim_on_a(world, OTHER_MAC, at(10))
    world.operate()
    assert len(warnings(world)) == 1


def test_only_the_holders_report_counts() -> None:
    world = active_on_a()
    claim = ForeignClaim(MAC, "198.18.0.50", at(1))
    view = NodeView(NodeState.STANDBY, epoch=1, updated_at=at(1), foreign_claim=claim)
    world.status = dataclasses.replace(world.status, nodes={**world.status.nodes, "b": view})
    assert world.operate().events == ()
    assert condition(world).status is ConditionStatus.FALSE
