"""The real operator process against the embedded API: placement, switchover, failover,
conflicts, invalid specs, and leader election between two replicas."""

from __future__ import annotations

import time

from aliasip_operator.kube import EVENTS_NAMESPACE
from aliasip_operator.leader import Timings
from aliasip_operator.observations import SWITCHOVER_ANNOTATION as SWITCHOVER
from tests.api.support import ApiLab, eventually
from tests.operatorproc.support import (
    ALIASIPS,
    NS,
    Agents,
    aliasip_body,
    create,
    events,
    leader,
    obj,
    operators,
    prepare,
    report,
    set_ready,
    status,
    wait_status,
)

TIMINGS = Timings()  # what aliasip-operator runs with


def test_create_places_on_the_first_preferred_node_then_active(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a") as (op,):
        create(lab, "web")
        try:
            got = wait_status(lab, "web", activeNode="node1", epoch=1, phase="Switching")
            report(lab, "web", "node1", "holding", 1)
            report(lab, "web", "node2", "standby", 1)
            wait_status(lab, "web", activeNode="node1", epoch=1, phase="Active")
        except AssertionError:
            print(op.output())
            raise
        assert got["conditions"][0]["type"] == "Ready"
        # Events are posted right after the status they describe: wait for them.
        eventually(lambda: any(e["reason"] == "Placement" for e in events(lab, "web")))
        # No timers, so no kopf finalizer: deleting an AliasIP never waits for an operator.
        assert "finalizers" not in obj(lab, "web")["metadata"]
    assert lab.client.delete(f"{ALIASIPS}/web").status == 200
    assert lab.client.get(f"{ALIASIPS}/web").status == 404


def test_kubectl_describe_lists_the_operators_events(lab: ApiLab) -> None:
    """The Events are about the cluster-scoped AliasIP (no involvedObject.namespace), in
    default: exactly what `kubectl describe aip NAME` asks for."""
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        create(lab, "web")
        wait_status(lab, "web", activeNode="node1", epoch=1)
        report(lab, "web", "node1", "holding", 1)
        wait_status(lab, "web", activeNode="node1", epoch=1, phase="Active")
        eventually(lambda: {"Placement", "Held"} <= {e["reason"] for e in events(lab, "web")})
    posted = events(lab, "web")
    assert all("namespace" not in e["involvedObject"] for e in posted)
    assert all(e["metadata"]["namespace"] == EVENTS_NAMESPACE for e in posted)
    assert lab.client.get(f"/api/v1/namespaces/{NS}/events").json["items"] == []
    described = lab.kubectl("describe", "aip", "web").stdout
    section = described.split("\nEvents:", 1)[1]
    rows = [line.split() for line in section.strip().splitlines()[2:]]
    assert {("Normal", "Placement"), ("Normal", "Held")} <= {(row[0], row[1]) for row in rows}
    assert len(rows) == len(posted)
    assert "aliasip-operator  node1 takes the addresses at epoch 1" in section
    assert "aliasip-operator  node1 holds the addresses at epoch 1" in section


def _active_on_node1(lab: ApiLab, name: str = "web") -> None:
    create(lab, name)
    wait_status(lab, name, activeNode="node1", epoch=1)
    report(lab, name, "node1", "holding", 1)
    report(lab, name, "node2", "standby", 1)
    wait_status(lab, name, activeNode="node1", epoch=1, phase="Active")


def test_planned_switchover_releases_then_assigns_and_consumes_the_annotation(
    lab: ApiLab,
) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        _active_on_node1(lab)
        patch = {"metadata": {"annotations": {SWITCHOVER: "node2"}}}
        assert lab.client.patch(f"{ALIASIPS}/web", patch).status == 200
        # Step 1: nobody may hold; node2 is not named before node1 reports released.
        wait_status(lab, "web", activeNode=None, epoch=2, phase="Switching")
        assert status(lab, "web").get("activeNode") is None
        report(lab, "web", "node1", "released", 2)
        wait_status(lab, "web", activeNode="node2", epoch=3)
        report(lab, "web", "node2", "holding", 3)
        wait_status(lab, "web", activeNode="node2", epoch=3, phase="Active")
        eventually(
            lambda: SWITCHOVER not in (obj(lab, "web")["metadata"].get("annotations") or {}),
            timeout=5,
        )
        time.sleep(1.2)  # the removal's own watch event is decided on too: no new Event
        reasons = [e["reason"] for e in events(lab, "web")]
        # The request the switchover served is not reported again as AlreadyActive.
        assert sorted(set(reasons) - {"Placement", "Held"}) == ["Switchover", "SwitchoverComplete"]
        assert reasons.count("Switchover") == 2 and reasons.count("SwitchoverComplete") == 1


def test_failover_when_the_holders_lease_expires_and_its_node_is_not_ready(
    lab: ApiLab,
) -> None:
    prepare(lab)
    with Agents(lab).running() as agents, operators(lab, "op-a"):
        _active_on_node1(lab)
        agents.alive.discard("node1")
        # The Lease alone is not evidence that node1 went silent: Degraded, nothing moves.
        wait_status(lab, "web", activeNode="node1", epoch=1, phase="Degraded")
        set_ready(lab, "node1", False)
        try:
            got = wait_status(lab, "web", timeout=10, activeNode="node2", epoch=2)
        except AssertionError:
            print(status(lab, "web"))
            print(lab.client.get("/api/v1/nodes/node1").json["status"])
            raise
        assert got["lastTransition"]["reason"] == "Failover"
        failover = ("Failover", "Warning")
        eventually(lambda: failover in [(e["reason"], e["type"]) for e in events(lab, "web")])


def test_the_younger_of_two_aliasips_with_one_address_is_a_conflict(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        _active_on_node1(lab, "older")
        before = status(lab, "older")
        create(lab, "younger")
        got = wait_status(lab, "younger", phase="Conflict", activeNode=None)
        assert "older" in got["conditions"][0]["message"]
        eventually(lambda: [e for e in events(lab, "younger") if e["type"] == "Warning"])
        assert status(lab, "older") == before


def test_an_invalid_spec_is_reported_not_retried(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a") as (op,):
        create(lab, "bad", "198.18.0.0/24")  # schema-valid, but the network address
        got = wait_status(lab, "bad", phase="Invalid", activeNode=None)
        message = got["conditions"][0]["message"]
        assert "198.18.0.0" in message
        warnings = eventually(lambda: [e for e in events(lab, "bad") if e["type"] == "Warning"])
        assert warnings[0]["message"] == message
        assert "Traceback" not in op.output()


def test_a_request_refused_along_with_a_status_change_is_reported_once(lab: ApiLab) -> None:
    """The status write's own watch event still shows the annotation (removed after it):
    deciding on it refuses the same request again, which must not post a second Event."""
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a"):
        body = aliasip_body("bad", "198.18.0.0/24")  # Invalid: the network address
        body["metadata"]["annotations"] = {SWITCHOVER: "node2"}
        assert lab.client.post(ALIASIPS, body).status == 201
        wait_status(lab, "bad", phase="Invalid", activeNode=None)
        eventually(
            lambda: SWITCHOVER not in (obj(lab, "bad")["metadata"].get("annotations") or {}),
            timeout=5,
        )
        time.sleep(1.2)  # the removal's own watch event is decided on too: no new Event
        reasons = sorted(e["reason"] for e in events(lab, "bad"))
        assert reasons == ["ReservedAddress", "SwitchoverRefused"]


def test_two_replicas_one_leader_and_failover_after_the_leader_is_killed(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running() as agents, operators(lab, "op-a", "op-b") as ops:
        first = eventually(lambda: leader(lab), timeout=10)
        _active_on_node1(lab)
        by_name = {op.identity: op for op in ops}
        by_name[first].kill()
        other = next(name for name in by_name if name != first)
        started = time.monotonic()
        # The standby takes over once the Lease has gone unrenewed for its whole duration,
        # seen on its own clock: within a duration and a retry period (plus start-up slack).
        bound = TIMINGS.lease_duration_s + TIMINGS.retry_period_s + 1.5
        eventually(lambda: leader(lab) == other, timeout=bound + 2, interval=0.05)
        took = time.monotonic() - started
        assert took < bound, took
        # The new leader still fails over.
        agents.alive.discard("node1")
        wait_status(lab, "web", activeNode="node1", epoch=1, phase="Degraded")
        set_ready(lab, "node1", False)
        wait_status(lab, "web", timeout=10, activeNode="node2", epoch=2)
        assert by_name[other].proc.poll() is None
