"""The safety properties, checked independently of how ``decide`` is written.

``check_decision`` judges one decision from the previous status and the observations
(re-deriving eligibility and release from the raw data, not from ``health``);
``check_wire`` judges the simulated truth. Both raise AssertionError with the reason.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from aliasip_api.conditions import ConditionStatus
from aliasip_api.spec import AliasIP
from aliasip_api.status import AliasIPStatus, NodeState, Phase
from aliasip_operator.decide import decide
from aliasip_operator.decision import Decision
from aliasip_operator.observations import Observations
from aliasip_operator.relations import involves
from tests.operator.world import World

REQUEST_REASONS = {"SwitchoverComplete", "SwitchoverRefused", "SwitchoverFailed", "AlreadyActive"}


def lease_valid(observed: Observations, node: str, now: datetime) -> bool:
    lease = observed.leases.get(node)
    if lease is None or lease.holder != node or lease.renew_time is None:
        return False
    expires = lease.expires_at
    return expires is not None and now < expires


def eligible(
    aliasip: AliasIP, observed: Observations, prev: AliasIPStatus, node: str, now: datetime
) -> bool:
    info = observed.nodes.get(node)
    view = prev.nodes.get(node)
    return (
        node in aliasip.spec.candidates(observed.nodes.values())
        and info is not None
        and info.ready is ConditionStatus.TRUE
        and not info.unschedulable
        and lease_valid(observed, node, now)
        and (view is None or view.state is not NodeState.ERROR)
    )


def might_hold(prev: AliasIPStatus) -> set[str]:
    """Nodes that may hold the addresses according to the previous status: the named
    successor of a planned move's release step too (it may hold on a direct handoff)."""
    nodes = {n for n, v in prev.nodes.items() if v.state is NodeState.HOLDING}
    if prev.active_node is not None:
        nodes.add(prev.active_node)
    last = prev.last_transition
    releasing = prev.active_node is None and last is not None and last.finished_at is None
    if releasing and last is not None and last.from_node is not None:
        nodes.add(last.from_node)
    successor = named_successor(prev)
    if successor is not None:
        nodes.add(successor)
    return nodes


def named_successor(prev: AliasIPStatus) -> str | None:
    """The node a planned move's release step named to take over (R11), re-derived: no
    holder, an unfinished move from one node to another that is not a failover. (Any
    phase: a successor that took a handoff while Switching may not have let go since.)"""
    last = prev.last_transition
    if prev.active_node is not None or last is None or last.finished_at is not None:
        return None
    if last.reason == "Failover" or not last.from_node or last.to_node in (None, last.from_node):
        return None
    return last.to_node


def holds_by_handoff(observed: Observations, prev: AliasIPStatus, node: str, now: datetime) -> bool:
    """``node`` is the named successor and its live agent reports holding at the epoch."""
    view = prev.nodes.get(node)
    return (
        named_successor(prev) == node
        and lease_valid(observed, node, now)
        and view is not None
        and view.state is NodeState.HOLDING
        and view.epoch is not None
        and view.epoch >= prev.epoch
    )


def silent_by_peers(aliasip: AliasIP, observed: Observations, node: str, now: datetime) -> bool:
    """Evidence per node, re-derived: two or more live candidates other than ``node``,
    every one of them claiming ``node`` silent since after its Lease's last renewal."""
    lease = observed.leases.get(node)
    renewed = lease.renew_time if lease is not None and lease.holder == node else None
    candidates = aliasip.spec.candidates(observed.nodes.values())
    reporters = [c for c in candidates if c != node and lease_valid(observed, c, now)]
    if len(reporters) < 2:
        return False
    for reporter in reporters:
        claims = dict(observed.leases[reporter].silent)
        since = claims.get(node)
        if since is None or since > now or (renewed is not None and since <= renewed):
            return False
    return True


def let_go(
    aliasip: AliasIP, observed: Observations, prev: AliasIPStatus, node: str, now: datetime
) -> bool:
    """Released at the previous epoch or later, its agent Lease has expired, or its
    peers proved it silent."""
    view = prev.nodes.get(node)
    released = (
        view is not None
        and view.state is not NodeState.HOLDING
        and view.epoch is not None
        and view.epoch >= prev.epoch
    )
    return (
        released
        or not lease_valid(observed, node, now)
        or silent_by_peers(aliasip, observed, node, now)
    )


def releasing(prev: AliasIPStatus) -> str | None:
    """The node an unfinished move waits on to let go (no holder now, one before)."""
    last = prev.last_transition
    if prev.active_node is not None or last is None or last.finished_at is not None:
        return None
    return last.from_node


def proven_silent(
    aliasip: AliasIP, observed: Observations, prev: AliasIPStatus, node: str, now: datetime
) -> bool:
    """``node``'s peers proved it silent; or its agent lost its Lease and the wire proves
    it silent: no live node probed at or after the expiry and heard the addresses
    answered, and either its Node is gone or not Ready, or a live node probed at or after
    the expiry and heard nobody."""
    if silent_by_peers(aliasip, observed, node, now):
        return True
    if lease_valid(observed, node, now):
        return False
    lease = observed.leases.get(node)
    expiry = lease.expires_at if lease is not None else None
    if expiry is None and prev.last_transition is not None:
        expiry = prev.last_transition.started_at
    probes = [
        view.holder_heard
        for name, view in prev.nodes.items()
        if name != node
        and lease_valid(observed, name, now)
        and view.holder_heard is not None
        and view.observed_at is not None
        and (expiry is None or view.observed_at >= expiry)
    ]
    if any(probes):
        return False
    info = observed.nodes.get(node)
    return info is None or info.ready is not ConditionStatus.TRUE or False in probes


def check_decision(
    aliasip: AliasIP,
    observed: Observations,
    prev: AliasIPStatus,
    now: datetime,
    decision: Decision,
    annotation: str | None,
) -> None:
    new = decision.status
    moved = new.active_node != prev.active_node
    # Epoch: one more at every change of activeNode, never otherwise, never less.
    assert new.epoch == prev.epoch + (1 if moved else 0), "epoch must follow activeNode"
    assert not new.nodes, "the operator never writes the agents' part"
    if moved and new.active_node is not None:
        target = new.active_node
        # Only an eligible node is chosen: Lease valid, Ready, not cordoned, no error; or
        # the named successor that already holds on a handoff (it is the holder: R11).
        assert eligible(aliasip, observed, prev, target, now) or holds_by_handoff(
            observed, prev, target, now
        ), f"{target} is not eligible"
        # Never two holders: every node that might hold has let go (or is gone).
        for node in might_hold(prev) - {target}:
            assert let_go(aliasip, observed, prev, node, now), (
                f"{target} assigned while {node} holds"
            )
        # The holder and the node asked to release are watched: each has released at the
        # previous epoch or later, or is provably silent (a lapsed Lease is not enough).
        # So is a named successor (R11): it may hold on a handoff.
        watched = {
            n for n in (prev.active_node, releasing(prev), named_successor(prev)) if n is not None
        }
        for node in watched - {target}:
            view = prev.nodes.get(node)
            released = (
                view is not None
                and view.state is not NodeState.HOLDING
                and view.epoch is not None
                and view.epoch >= prev.epoch
            )
            assert released or proven_silent(aliasip, observed, prev, node, now), (
                f"{target} assigned while {node} may still hold"
            )
    holder = prev.active_node
    if (
        holder is not None
        and new.phase not in (Phase.INVALID, Phase.CONFLICT)
        and lease_valid(observed, holder, now)
        and (info := observed.nodes.get(holder)) is not None
        and info.unschedulable
        and (prev.nodes.get(holder) is None or prev.nodes[holder].state is not NodeState.ERROR)
        and any(
            eligible(aliasip, observed, prev, n, now)
            for n in aliasip.spec.candidates(observed.nodes.values())
            if n != holder
        )
    ):
        assert new.active_node is None, f"cordoned holder {holder} must be released"
    # The annotation: consumed exactly with a request Event, and only if present; or
    # without one if it names the node the last, finished switchover moved to (the
    # request that switchover served, seen again before the glue removed it).
    reasons = [e.reason for e in decision.events]
    served = [r for r in reasons if r in REQUEST_REASONS]
    assert len(served) <= 1
    last = prev.last_transition
    switched_to = (
        last.to_node
        if last is not None and last.finished_at is not None and last.reason == "Switchover"
        else None
    )
    if decision.remove_switchover and not served:
        assert annotation is not None and annotation == prev.active_node == switched_to, (
            "a request is consumed silently only after its own switchover completed"
        )
    else:
        assert decision.remove_switchover == bool(served)
    if decision.remove_switchover:
        assert annotation is not None, "only a present annotation is removed"
    if served == ["AlreadyActive"]:
        assert annotation != switched_to, "AlreadyActive for the switchover just completed"
    if served == ["SwitchoverComplete"]:
        assert new.phase is Phase.ACTIVE and new.active_node == prev.active_node
        assert annotation in ("", new.active_node)
    if served == ["SwitchoverRefused"] and moved and annotation:
        assert new.active_node != annotation, "a refused request moved the addresses"
    if (
        annotation is not None
        and new.phase is Phase.ACTIVE
        and last is not None
        and last.finished_at is None
        and last.reason == "Switchover"
        and annotation in ("", new.active_node)
    ):
        assert served == ["SwitchoverComplete"], "a completed switchover consumes its request"
    if not decision.changed(prev) and not decision.remove_switchover:
        assert decision.events == (), "an unchanged decision emits nothing"
    if decision.recheck_at is not None:
        assert decision.recheck_at > now
        # The glue re-decides at Lease expiries per node, for the AliasIPs that involve
        # that node (relations): the node whose expiry this is must be one of them, in the
        # status as written before and after this decision.
        due = {n for n, lease in observed.leases.items() if lease.expires_at == decision.recheck_at}
        for status in (prev, dataclasses.replace(new, nodes=prev.nodes)):
            body = {"spec": aliasip.spec.to_dict(), "status": status.to_dict()}
            assert any(involves(body, n) for n in due), "recheck_at names an uninvolved node"


def check_converges(world: World, rounds: int = 4) -> None:
    """The decision reaches a fixed point on its own output: level-triggered and stable."""
    status = world.status
    observed = world.observations()
    for _ in range(rounds):
        decision = decide(world.aliasip, observed, status, world.now)
        if not decision.changed(status):
            assert decision.events == () or decision.remove_switchover
            return
        status = dataclasses.replace(decision.status, nodes=status.nodes)
    raise AssertionError("the decision does not converge on its own output")


def check_wire(world: World) -> None:
    """At most one node with a working agent answers for the addresses.

    The one overlap the design accepts: an orphan, i.e. a node whose agent is dead, cut
    off from the API, past its Lease or not yet reconciled since, still answering (nobody
    can fence it; its agent removes the addresses as soon as it reconciles). A working
    agent never adds them while another node answers, thanks to the release-then-assign
    protocol and its own probe.
    """
    working = {
        n
        for n in world.answering()
        if (host := world.hosts[n]).agent and host.api and host.synced and world.lease_valid(n)
    }
    assert len(working) <= 1, f"two nodes answer: {sorted(world.answering())}"
