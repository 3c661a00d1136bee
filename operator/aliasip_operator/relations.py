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


def involved_nodes(body: Mapping[str, Any]) -> frozenset[str] | None:
    """The nodes whose Node or agent Lease the decision for the AliasIP ``body`` (raw, as
    served) reads: its listed candidates, the holder, every node with a view, and either
    end of the last move. None means every node: a ``nodeSelector`` may match any of them
    (their labels decide), and an object whose fields cannot be read involves them all."""
    spec = body.get("spec")
    status = body.get("status") or {}
    if not isinstance(spec, Mapping) or not isinstance(status, Mapping):
        return None
    if spec.get("nodeSelector") is not None:
        return None
    listed = spec.get("nodes") or []
    views = status.get("nodes") or {}
    moving = status.get("lastTransition") or {}
    if not isinstance(listed, list) or not isinstance(views, Mapping):
        return None
    nodes = {str(n) for n in listed} | {str(n) for n in views}
    if status.get("activeNode"):
        nodes.add(str(status["activeNode"]))
    if isinstance(moving, Mapping):
        nodes.update(str(moving[k]) for k in ("from", "to") if moving.get(k))
    return frozenset(nodes)


def involves(body: Mapping[str, Any], node: str) -> bool:
    """Whether the decision for the AliasIP ``body`` reads ``node``'s Node or Lease."""
    nodes = involved_nodes(body)
    return nodes is None or node in nodes


class Involvement:
    """Which AliasIPs involve which node, kept as objects change, so that a Node or Lease
    change finds its AliasIPs without reading all of them (at 1,000 AliasIPs and 50 agent
    Leases renewed every second, a scan per change took most of the operator's time)."""

    def __init__(self) -> None:
        self._of: dict[str, frozenset[str] | None] = {}
        self._by_node: dict[str, set[str]] = {}
        self._everywhere: set[str] = set()

    def update(self, name: str, body: Mapping[str, Any] | None) -> None:
        """Record what ``name`` involves now (None: it was deleted)."""
        nodes = involved_nodes(body) if body is not None else frozenset()
        old = self._of.get(name, frozenset())
        if name in self._of and old == nodes:
            return
        if old is None:
            self._everywhere.discard(name)
        else:
            for node in old:
                members = self._by_node.get(node)
                if members is not None:
                    members.discard(name)
                    if not members:
                        del self._by_node[node]
        if body is None:
            self._of.pop(name, None)
            return
        self._of[name] = nodes
        if nodes is None:
            self._everywhere.add(name)
        else:
            for node in nodes:
                self._by_node.setdefault(node, set()).add(name)

    def involving(self, node: str) -> list[str]:
        """The names of the AliasIPs that involve ``node``, sorted."""
        return sorted(self._by_node.get(node, set()) | self._everywhere)


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
    # the nodes this node's agent says are silent (evidence per node), with since when
    silent: tuple[tuple[str, datetime], ...] = ()

    @classmethod
    def of(cls, lease: AgentLease | None, node: str, now: datetime) -> LeaseState:
        if lease is None:
            return cls(None, False, None)
        valid = lease.valid_for(node, now)
        return cls(lease.holder, valid, None if valid else lease.expires_at, lease.silent)


def nodes_to_requeue(node: str, before: LeaseState | None, after: LeaseState) -> list[str]:
    """The nodes whose AliasIPs are decided again when ``node``'s Lease state goes from
    ``before`` to ``after``: ``node`` itself when what it vouches changed, and every node
    whose silence it started, moved or stopped claiming (evidence per node: those claims
    matter only to AliasIPs involving the claimed node). Sorted, ``node`` first.

    Why not ``node``'s own AliasIPs on a new claim: when node1 is lost, each of its ~50
    peers writes a claim into its Lease, and re-deciding every AliasIP of every claimer
    put ~1,000 decisions that change nothing into the queue ahead of node1's 100."""
    vouching = before is None or (before.holder, before.valid, before.expires_at) != (
        after.holder,
        after.valid,
        after.expires_at,
    )
    old = set(before.silent) if before is not None else set()
    claims = {claimed for claimed, _ in old ^ set(after.silent)}
    if vouching:  # as before: every node it claims, old or new, is looked at again
        claims |= {claimed for claimed, _ in old | set(after.silent)}
    return ([node] if vouching else []) + sorted(claims - {node})


def changed_findings(
    before: Mapping[str, Iterable[object]], after: Mapping[str, Iterable[object]]
) -> list[str]:
    """Names whose conflict findings differ between two results (missing reads as none)."""
    names = set(before) | set(after)
    return sorted(n for n in names if tuple(before.get(n, ())) != tuple(after.get(n, ())))
