"""The decision's output and edges that the scenario tables do not show."""

from __future__ import annotations

import ast
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from aliasip_api.conditions import ConditionStatus
from aliasip_api.errors import Finding, InvalidAliasIP
from aliasip_api.spec import parse_aliasip
from aliasip_api.status import AliasIPStatus, LastTransition, Phase
from aliasip_operator.decide import READY, decide, decide_invalid
from aliasip_operator.decision import Decision, EventType
from aliasip_operator.observations import Observations, SwitchoverRequest
from tests.model.objects import aliasip as aliasip_body
from tests.model.objects import spec as spec_body
from tests.operator.world import T0, World, at

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "aliasip_operator"
PURE = ("observations", "decision", "health", "decide", "freshness")
ALLOWED = {"__future__", "collections", "dataclasses", "datetime", "enum", "types", "typing"}
ALLOWED |= {"aliasip_api", *(f"aliasip_operator.{m}" for m in PURE)}


def imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", PURE)
def test_the_decision_modules_import_no_io(module: str) -> None:
    """Decide purely: the decision modules import only the standard library's data
    types, the model and each other; no kopf, Kubernetes client, sockets or packets.
    (The kopf glue lives in other modules of the package.)"""
    for name in imports(module):
        assert name in ALLOWED or name.split(".")[0] in ALLOWED - {"aliasip_operator"}, name


def test_the_status_patch_clears_what_a_new_move_no_longer_has() -> None:
    done = LastTransition("a", "b", "Switchover", at(0), at(1), 1000)
    fresh = LastTransition("b", "c", "Failover", started_at=at(5))
    decision = Decision(AliasIPStatus("c", Phase.SWITCHING, 4, last_transition=fresh))
    assert decision.changed(AliasIPStatus("b", Phase.ACTIVE, 3, last_transition=done))
    assert decision.status_patch() == {
        "status": {
            "activeNode": "c",
            "phase": "Switching",
            "epoch": 4,
            "lastTransition": {
                "from": "b",
                "to": "c",
                "reason": "Failover",
                "startedAt": "2025-01-01T00:00:05.000000Z",
                "finishedAt": None,
                "outageMs": None,
            },
        }
    }


def test_an_unparsable_object_is_invalid_and_releases() -> None:
    with pytest.raises(InvalidAliasIP) as caught:
        parse_aliasip(aliasip_body(body=spec_body(failback="Sometimes")))
    current = AliasIPStatus("a", Phase.ACTIVE, 3)
    observed = Observations(switchover=SwitchoverRequest("b"))
    decision = decide_invalid(caught.value.findings, observed, current, at(1), generation=2)
    assert (decision.status.active_node, decision.status.phase, decision.status.epoch) == (
        None,
        Phase.INVALID,
        4,
    )
    condition, claim = decision.status.conditions
    assert (claim.type, claim.status, claim.reason) == (
        "ForeignClaim",
        ConditionStatus.FALSE,
        "NoForeignClaim",
    )
    assert claim.observed_generation == 2
    assert (condition.type, condition.status, condition.reason) == (
        READY,
        ConditionStatus.FALSE,
        "InvalidSpec",
    )
    assert condition.message == str(caught.value.findings[0])
    assert condition.observed_generation == 2
    assert [(e.type, e.reason) for e in decision.events] == [
        (EventType.WARNING, "InvalidSpec"),
        (EventType.WARNING, "SwitchoverRefused"),
    ]
    assert decision.remove_switchover
    assert decision.status.last_transition == LastTransition("a", None, "InvalidSpec", at(1))
    with pytest.raises(ValueError, match="at least one finding"):
        decide_invalid((), observed, current, at(1), generation=2)


def test_a_new_finding_message_is_told_again() -> None:
    world = World.of("a")
    first = (Finding("spec.addresses[0]", "claimed by x", "AddressConflict"),)
    second = (Finding("spec.addresses[0]", "claimed by y", "AddressConflict"),)
    world.conflicts = first
    assert [e.reason for e in world.operate().events] == ["AddressConflict"]
    assert world.operate().events == ()
    world.conflicts = second
    assert [e.message for e in world.operate().events] == ["spec.addresses[0]: claimed by y"]


def test_recheck_at_is_the_next_lease_expiry() -> None:
    world = World.of("a", "b")
    world.hosts["b"].renewed = 4.0
    world.settle()
    decision = world.operate()
    assert decision.recheck_at == at(world.hosts["a"].renewed or 0) + timedelta(seconds=10)
    world.tick(100)
    assert world.operate().recheck_at is None


def test_the_ready_condition_keeps_its_transition_time_while_true() -> None:
    world = World.of("a", "b")
    world.settle()
    held, _ = world.status.conditions
    world.tick(3)
    world.act_all()
    world.operate()
    again, _ = world.status.conditions
    assert again.status is ConditionStatus.TRUE
    assert again.last_transition_time == held.last_transition_time


def test_a_planned_move_measures_the_outage_from_the_agents_reports() -> None:
    world = World.of("a", "b")
    world.settle()
    world.annotation = "b"
    world.operate()
    world.tick(0.25)
    world.act("a")
    world.operate()
    world.tick(0.5)
    world.act("b")
    world.operate()
    last = world.status.last_transition
    assert last is not None
    assert (last.from_node, last.to_node, last.reason, last.outage_ms) == (
        "a",
        "b",
        "Switchover",
        500,
    )
    assert (last.started_at, last.finished_at) == (T0, at(0.75))


def test_selector_candidates_follow_the_listed_ones() -> None:
    body = spec_body(nodes=["c"], nodeSelector={"matchLabels": {"pool": "edge"}})
    aliasip = parse_aliasip(aliasip_body(body=body))
    world = World.of("a", "b", "c", aliasip=aliasip)
    world.hosts["c"].cordoned = True
    observed = world.observations()
    labelled = Observations(
        {
            name: dataclasses.replace(info, labels={"pool": "edge"} if name == "b" else {})
            for name, info in observed.nodes.items()
        },
        observed.leases,
    )
    # c is listed first but cordoned; b is the one node the selector adds; a matches not.
    decision = decide(aliasip, labelled, AliasIPStatus(), world.now)
    assert decision.status.active_node == "b"


def test_without_a_lease_only_probes_since_the_last_move_count() -> None:
    """A deleted Lease has no expiry; a probe from before the holder was chosen (when
    nobody answered because nobody held) proves nothing about the holder now."""
    world = World.of("a", "b")
    world.tick(1)
    world.act("b")  # b probes: nobody answers yet
    world.tick(1)
    world.settle()
    assert world.status.active_node == "a"
    started = world.status.last_transition
    assert started is not None and started.started_at == at(2)
    world.hosts["a"].agent = False
    world.hosts["a"].renewed = None  # the Lease object is gone
    world.hosts["b"].renewed = world.t
    stale = dataclasses.replace(world.status.nodes["b"], holder_heard=False, observed_at=at(1))
    world.status = dataclasses.replace(world.status, nodes={**world.status.nodes, "b": stale})
    assert (world.operate().status.active_node, world.status.phase) == ("a", Phase.DEGRADED)
    world.act("b")  # a fresh probe: a still answers
    assert (world.operate().status.active_node, world.status.phase) == ("a", Phase.DEGRADED)
    world.hosts["a"].link = False
    world.act("b")  # a fresh probe: nobody answers
    assert (world.operate().status.active_node, world.status.epoch) == ("b", 2)


def test_a_failover_keeps_its_words_until_the_new_holder_holds() -> None:
    """One Switching write per move: the other standby's report at the new epoch does not
    reword the Ready condition (a second write for one move in ten at 100 failovers)."""
    world = World.of("a", "b", "c")
    world.settle()
    world.tick(1)
    world.hosts["a"].powered = False
    for standby in ("b", "c"):
        world.hosts[standby].claims["a"] = world.t
        world.act(standby)
    first = world.operate()
    assert (first.status.active_node, first.status.phase) == ("b", Phase.SWITCHING)
    ready = next(c for c in first.status.conditions if c.type == READY)
    assert "b takes over at epoch" in ready.message
    world.tick(0.1)
    world.act("c")  # a standby at the new epoch
    again = world.operate()
    assert again.status.phase is Phase.SWITCHING
    assert next(c for c in again.status.conditions if c.type == READY) == ready
    world.tick(0.1)
    world.act("b")
    done = world.operate()
    assert done.status.phase is Phase.ACTIVE
