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
from types import MappingProxyType

from aliasip_api.errors import Finding
from aliasip_api.lease import AgentLease, parse_lease
from aliasip_api.nodes import NodeInfo

__all__ = [
    "SWITCHOVER_ANNOTATION",
    "AgentLease",
    "Observations",
    "SwitchoverRequest",
    "parse_lease",
    "switchover_request",
]

SWITCHOVER_ANNOTATION = "aliasip.io/switchover-to"
"""Planned switchover request: a node name, or empty for "the best other node"."""


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
