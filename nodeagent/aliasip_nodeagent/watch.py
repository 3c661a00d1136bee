"""Pure decisions of a standby that watches the holder: when to probe, when to report.

The operator fails over from a holder whose agent Lease expired only with evidence that
the holder is silent on the wire: a live standby's ``holderHeard`` with an ``observedAt``
at or after that expiry (docs/design.md, "Unplanned failover"). If a standby still hears the
addresses answered, the agent alone died and nothing moves ("What is not a failover").

So on each full pass a standby (listed in ``spec.nodes``, or already reporting a view) of
an AliasIP whose status names another node reads that holder's agent Lease, once per
holder per pass, and only when the Lease has lapsed — a failure — probes the addresses
(the bounded probe, tens of milliseconds). The result is written only when it says
something new (API-write budget): no observation yet, another value, or an observation
older than the current expiry (each expiry gets one fresh observation after it; a Lease
renewed and lapsed again has a later expiry). Never periodically otherwise.

Nodes matched only by ``spec.nodeSelector`` are not known here: the agent never reads
Node objects (its RBAC), so it cannot evaluate the selector against its own labels.
"""

from __future__ import annotations

from datetime import datetime

from aliasip_api.lease import AgentLease
from aliasip_api.status import NodeView
from aliasip_nodeagent.reconcile import Observed


def watched_holder(node: str, obs: Observed) -> str | None:
    """The holder ``node`` should watch for ``obs``, or None.

    ``node`` must be a candidate this agent knows of (listed in ``spec.nodes``, or already
    reporting a view, exactly the AliasIPs ``report.view_for`` reports for) and the status,
    which must parse, must name another node, or name none while a move waits for another
    node to let go (``lastTransition.from`` of an unfinished move): a *releasing* node is
    watched like a holder, so that if it dies before it reports ``released`` its silence
    can be proven and the move completes (docs/design.md, "A releasing node is watched").
    """
    if obs.spec is None or not obs.status_valid:
        return None
    active = obs.status.active_node
    if active is None:
        moving = obs.status.last_transition
        if moving is not None and moving.finished_at is None:
            active = moving.from_node
    if active is None or active == node:
        return None
    if node not in obs.spec.nodes and obs.view_of(node) is None:
        return None
    return active


def lease_lapsed(lease: AgentLease | None, holder: str, now: datetime) -> bool:
    """Whether the holder's agent Lease vouches for nobody at ``now``: it is missing, given
    up or held by another identity, or ``renewTime + leaseDurationSeconds <= now``.

    Clock skew: ``renewTime`` is written with the holder's clock and compared with ours.
    The operator makes the same comparison (``observedAt`` against the expiry), so a probe
    made when this says lapsed is one the operator accepts; a skew only shifts the moment
    of the probe, never lets a probe from before the expiry count.
    """
    return lease is None or not lease.valid_for(holder, now)


def report_due(current: NodeView | None, heard: bool, lease: AgentLease | None) -> bool:
    """Whether a probe result ``heard`` must be written, given the view the object carries.

    Yes when the object carries no observation, another value, or one made before the
    current Lease's expiry (a new expiry needs one fresh observation after it).
    """
    if current is None or current.holder_heard is None or current.observed_at is None:
        return True
    if current.holder_heard != heard:
        return True
    expires = lease.expires_at if lease is not None else None
    return expires is not None and current.observed_at < expires
