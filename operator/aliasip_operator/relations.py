"""Pure: which AliasIPs must be decided again when a Node or an agent Lease changes.

The decision for an AliasIP reads the Nodes and agent Leases of its candidates, of its
holder and of every node that reported a view (``health.recheck_at`` names the same set).
Re-deciding every AliasIP on a timer (session 2: every 0.5 s each, through kopf) made the
operator's work O(AliasIPs) per half second whether or not anything changed, and at 1,000
AliasIPs its decisions fell minutes behind. Instead a change of one node's observable
state re-queues exactly the AliasIPs that involve that node.

An agent Lease renewed on time changes nothing a decision reads (it is valid before and
after); what matters is when it starts or stops vouching for its node, so a Lease is
reduced to ``LeaseState``, and a change of that state (seen on a watch event, or at the
expiry instant itself, which no event announces) is the trigger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aliasip_api.lease import AgentLease


def involves(body: Mapping[str, Any], node: str) -> bool:
    """Whether the decision for the AliasIP ``body`` (raw, as served) reads ``node``'s
    Node or agent Lease: a listed candidate, any node at all when a ``nodeSelector`` may
    match it (its labels decide), the holder, a node with a view, or either end of the
    last move. An object whose fields cannot be read involves every node."""
    spec = body.get("spec")
    status = body.get("status") or {}
    if not isinstance(spec, Mapping) or not isinstance(status, Mapping):
        return True
    if spec.get("nodeSelector") is not None:
        return True
    listed = spec.get("nodes") or []
    if not isinstance(listed, list) or node in listed:
        return True
    if status.get("activeNode") == node:
        return True
    views = status.get("nodes") or {}
    if not isinstance(views, Mapping) or node in views:
        return True
    moving = status.get("lastTransition") or {}
    return isinstance(moving, Mapping) and node in (moving.get("from"), moving.get("to"))


def involving(bodies: Mapping[str, Mapping[str, Any]], node: str) -> list[str]:
    """The names of the AliasIPs among ``bodies`` that involve ``node``, sorted."""
    return sorted(name for name, body in bodies.items() if involves(body, node))


@dataclass(frozen=True)
class LeaseState:
    """What a decision can learn from one node's agent Lease at some instant.

    ``expires_at`` is kept only while the Lease does not vouch: a lapsed Lease's expiry is
    compared with the standbys' observations (``health.silence``), so a Lease that lapses
    again later is news; a valid one's expiry moves forward with every renewal and is not.
    """

    holder: str | None
    valid: bool
    expires_at: datetime | None

    @classmethod
    def of(cls, lease: AgentLease | None, node: str, now: datetime) -> LeaseState:
        if lease is None:
            return cls(None, False, None)
        valid = lease.valid_for(node, now)
        return cls(lease.holder, valid, None if valid else lease.expires_at)


def changed_findings(
    before: Mapping[str, Iterable[object]], after: Mapping[str, Iterable[object]]
) -> list[str]:
    """Names whose conflict findings differ between two results (missing reads as none)."""
    names = set(before) | set(after)
    return sorted(n for n in names if tuple(before.get(n, ())) != tuple(after.get(n, ())))
