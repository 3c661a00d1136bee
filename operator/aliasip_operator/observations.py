"""What the operator observes about the cluster, as plain frozen data.

The decision (``decide``) is a pure function of these observations, the AliasIP and its
current status; the kopf glue builds them from watched objects and nothing here talks
to the API. Three kinds of evidence, each with its own source of truth:

- Nodes (``NodeInfo``): labels (candidates), ``Ready`` (is kubelet alive?) and
  ``spec.unschedulable`` (cordoned or drained: move the aliases away);
- agent Leases (``AgentLease``): is the node agent alive and reaching the API? An agent
  renews a ``coordination.k8s.io/v1`` Lease whose ``holderIdentity`` is its node's name;
- the agents' own reports for this AliasIP (``status.nodes.<node>``, read from the status
  passed to ``decide``, so there is one source for them): holding, released, standby or
  error at an epoch, and a standby's probe on the wire (``holderHeard``).

Plus the admin's switchover request, the ``aliasip.io/switchover-to`` annotation, and the
conflicts with other AliasIPs (which only the glue can compute, as it sees all of them).
Time is not observed here: ``decide`` takes ``now`` once, so tests control it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from aliasip_api import kubetime
from aliasip_api.errors import Finding
from aliasip_api.nodes import NodeInfo

SWITCHOVER_ANNOTATION = "aliasip.io/switchover-to"
"""Planned switchover request: a node name, or empty for "the best other node"."""


@dataclass(frozen=True)
class AgentLease:
    """A node agent's Lease, reduced to what liveness needs.

    ``holder`` is ``spec.holderIdentity``: the agent writes its node's name; client-go
    empties it when an agent gives the Lease up on shutdown, which reads as expired.
    """

    holder: str | None
    renew_time: datetime | None
    duration_s: int | None

    @property
    def expires_at(self) -> datetime | None:
        """``renewTime + leaseDurationSeconds``; None when either is missing."""
        if self.renew_time is None or self.duration_s is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_s)

    def expired(self, now: datetime) -> bool:
        """Whether the Lease vouches for nobody at ``now``.

        A Lease without a renew time or a duration never vouched for anyone, so it counts
        as expired: liveness must be proven, not assumed. Expiry is inclusive (at exactly
        ``renewTime + duration`` the Lease is expired), as client-go's leader election.
        """
        expires = self.expires_at
        return expires is None or now >= expires

    def valid_for(self, node: str, now: datetime) -> bool:
        """Whether this Lease proves ``node``'s agent alive at ``now``.

        The holder must be that node: a Lease given up (empty holder) or taken by
        someone else proves nothing about the node's agent.
        """
        return self.holder == node and not self.expired(now)


def parse_lease(obj: Mapping[str, Any]) -> AgentLease:
    """Read a ``coordination.k8s.io/v1`` Lease (a dict as the API returns it).

    A malformed ``renewTime`` reads as missing (so the Lease counts as expired) rather
    than raising: one bad Lease must not stop the decisions for every AliasIP.
    """
    spec = obj.get("spec") or {}
    renew: datetime | None = None
    raw = spec.get("renewTime")
    if raw is not None:
        try:
            renew = kubetime.parse_time(str(raw))
        except ValueError:
            renew = None
    duration = spec.get("leaseDurationSeconds")
    holder = spec.get("holderIdentity")
    return AgentLease(
        holder=str(holder) if holder else None,
        renew_time=renew,
        duration_s=duration if isinstance(duration, int) and duration > 0 else None,
    )


@dataclass(frozen=True)
class SwitchoverRequest:
    """The admin's request to move the aliases: to ``target``, or (None) to the best other
    healthy candidate in preference order."""

    target: str | None

    def __str__(self) -> str:
        return self.target if self.target is not None else "the next standby"


def switchover_request(annotations: Mapping[str, str] | None) -> SwitchoverRequest | None:
    """The request the annotations carry, or None when there is none.

    Surrounding whitespace is ignored (``kubectl annotate ... switchover-to=' b'`` is a
    typo, not a node called " b"); an empty value means "the next standby".
    """
    if not annotations or SWITCHOVER_ANNOTATION not in annotations:
        return None
    value = str(annotations[SWITCHOVER_ANNOTATION]).strip()
    return SwitchoverRequest(value or None)


@dataclass(frozen=True)
class Observations:
    """Everything observed besides the AliasIP, its status and the time.

    ``nodes`` and ``leases`` are keyed by node name; a node missing from ``nodes`` has no
    Node object, a node missing from ``leases`` has no agent Lease. ``conflicts`` are this
    AliasIP's findings from ``aliasip_api.findings.conflict_findings`` over all AliasIPs.
    """

    nodes: Mapping[str, NodeInfo] = field(default_factory=dict, hash=False)
    leases: Mapping[str, AgentLease] = field(default_factory=dict, hash=False)
    switchover: SwitchoverRequest | None = None
    conflicts: tuple[Finding, ...] = ()

    def __post_init__(self) -> None:
        # Frozen all the way down: a snapshot nobody can change behind the decider's back.
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))
        object.__setattr__(self, "leases", MappingProxyType(dict(self.leases)))

    @classmethod
    def of(
        cls,
        nodes: Iterable[NodeInfo],
        leases: Mapping[str, AgentLease],
        switchover: SwitchoverRequest | None = None,
        conflicts: Iterable[Finding] = (),
    ) -> Observations:
        """Build from a list of nodes (as the glue has them) rather than a mapping."""
        return cls({n.name: n for n in nodes}, leases, switchover, tuple(conflicts))
