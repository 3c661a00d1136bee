"""The real operator process on issue 10's operator-side rules: a move whose releasing
node dies completes as a failover, a refusal every node repeats is one stable phase with
one Event, and a holder's foreign-claim report is a condition with one Warning."""

from __future__ import annotations

import time
from typing import Any

from aliasip_api import kubetime
from aliasip_operator.observations import SWITCHOVER_ANNOTATION as SWITCHOVER
from tests.api.support import ApiLab, eventually
from tests.operatorproc.support import (
    AGENT_LEASE_S,
    ALIASIPS,
    Agents,
    create,
    events,
    now,
    operators,
    prepare,
    report,
    status,
    wait_status,
)


def view(lab: ApiLab, name: str, node: str, **fields: Any) -> None:
    """An agent's report with any fields (holderHeard, observedAt, foreignClaim, ...)."""
    body = {"updatedAt": kubetime.format_micro_time(now()), **fields}
    reply = lab.client.patch(f"{ALIASIPS}/{name}/status", {"status": {"nodes": {node: body}}})
    assert reply.status == 200, reply.body


def condition(got: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in got.get("conditions") or [] if c["type"] == kind)
    return found


def _active_on_node1(lab: ApiLab) -> None:
    create(lab, "web")
    wait_status(lab, "web", activeNode="node1", epoch=1)
    report(lab, "web", "node1", "holding", 1)
    report(lab, "web", "node2", "standby", 1)
    wait_status(lab, "web", activeNode="node1", epoch=1, phase="Active")


def test_a_switchover_whose_old_holder_dies_mid_release_completes_as_a_failover(
    lab: ApiLab,
) -> None:
    prepare(lab)
    with Agents(lab).running() as agents, operators(lab, "op-a") as (op,):
        _active_on_node1(lab)
        patch = {"metadata": {"annotations": {SWITCHOVER: "node2"}}}
        assert lab.client.patch(f"{ALIASIPS}/web", patch).status == 200
        wait_status(lab, "web", activeNode=None, epoch=2, phase="Switching")
        agents.alive.discard("node1")  # node1 stops before it reports released
        # Its Lease lapses; nothing proves it silent yet (its Node stays Ready).
        wait_status(lab, "web", timeout=AGENT_LEASE_S + 5, activeNode=None, phase="Degraded")
        # node2 probes the wire after the lapse and hears nobody: the move completes.
        view(lab, "web", "node2", state="standby", epoch=2, holderHeard=False,
             observedAt=kubetime.format_micro_time(now()))  # fmt: skip
        try:
            got = wait_status(lab, "web", activeNode="node2", epoch=3, phase="Switching")
        except AssertionError:
            print(status(lab, "web"), op.output()[-3000:])
            raise
        assert got["lastTransition"]["reason"] == "Failover"
        assert got["lastTransition"]["from"] == "node1"
        eventually(lambda: ("Failover", "Warning") in {(e["reason"], e["type"]) for e in
                                                        events(lab, "web")})  # fmt: skip


def test_a_refusal_every_node_repeats_is_one_phase_and_one_event(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        create(lab, "web", "198.18.77.5/24")
        wait_status(lab, "web", activeNode="node1", epoch=1)
        for round_ in range(5):  # the agents keep reporting (resync): nothing moves
            for node in ("node1", "node2"):
                message = f"NoCoveringInterface: no interface of {node} covers 198.18.77.5/24"
                view(lab, "web", node, state="error", epoch=1, message=message)
            if round_ == 0:
                got = wait_status(lab, "web", activeNode="node1", epoch=1, phase="Unavailable")
            time.sleep(0.4)
        got = status(lab, "web")
        assert (got["activeNode"], got["epoch"], got["phase"]) == ("node1", 1, "Unavailable")
        ready = condition(got, "Ready")
        assert (ready["status"], ready["reason"]) == ("False", "NoCoveringInterface")
        assert "node1 reports an error: NoCoveringInterface" in ready["message"]
        assert "node2 reports an error: NoCoveringInterface" in ready["message"]
        time.sleep(1.0)
        refusals = [e for e in events(lab, "web") if e["reason"] == "NoCoveringInterface"]
        assert [e["type"] for e in refusals] == ["Warning"]


def test_a_foreign_claim_is_a_condition_and_one_warning(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        _active_on_node1(lab)
        assert condition(status(lab, "web"), "ForeignClaim")["status"] == "False"
        for _ in range(3):  # the claim seen again: the same claim
            claim = {"mac": "02:00:00:00:00:99", "address": "198.18.0.50",
                     "at": kubetime.format_micro_time(now()), "defended": True}  # fmt: skip
            view(lab, "web", "node1", state="holding", epoch=1, foreignClaim=claim)
            time.sleep(0.5)
        got = eventually(
            lambda: (
                (s := status(lab, "web")) and condition(s, "ForeignClaim")["status"] == "True" and s
            )
        )
        found = condition(got, "ForeignClaim")
        assert found["reason"] == "ForeignClaim"
        assert "02:00:00:00:00:99" in found["message"] and "198.18.0.50" in found["message"]
        assert got["phase"] == "Active" and condition(got, "Ready")["status"] == "True"
        time.sleep(1.0)
        claims = [e for e in events(lab, "web") if e["reason"] == "ForeignClaim"]
        assert [e["type"] for e in claims] == ["Warning"]
        # The claim ends: False again, and no Event says so.
        view(lab, "web", "node1", state="holding", epoch=1, foreignClaim=None)
        eventually(lambda: condition(status(lab, "web"), "ForeignClaim")["status"] == "False")
