"""What the model needs from Kubernetes Node objects: name, labels, stationary addresses,
readiness and cordon.

A node's stationary addresses are the ``InternalIP`` and ``ExternalIP`` entries of its
``status.addresses`` (what kubelet reports). An alias equal to one of them would take a
node's own address away from it when it moves (kube-vip #1490 deleted a node's IP), so
the model refuses such an alias. Entries that are not IP addresses (hostnames, garbage)
are skipped: they cannot collide with an alias.

Readiness is the ``Ready`` condition as kubelet and the node lifecycle controller write it
(True, False, or Unknown once kubelet stops posting); a node without one reads as Unknown,
never as Ready, because nothing vouches for it yet. ``spec.unschedulable`` is what
``kubectl cordon`` (and so ``kubectl drain``) sets: the operator moves aliases off such
a node, as workloads are moved off it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aliasip_api.addresses import IPAddress
from aliasip_api.conditions import ConditionStatus

STATIONARY_TYPES = ("InternalIP", "ExternalIP")


@dataclass(frozen=True)
class NodeInfo:
    """A node's name, labels, stationary addresses as ``(type, ip)`` pairs, its ``Ready``
    condition's status and whether it is cordoned (``spec.unschedulable``)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    addresses: tuple[tuple[str, IPAddress], ...] = ()
    ready: ConditionStatus = ConditionStatus.UNKNOWN
    unschedulable: bool = False

    def __post_init__(self) -> None:
        # Frozen all the way down: a snapshot nobody can change behind the decider's back.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


def parse_node(obj: Mapping[str, Any]) -> NodeInfo:
    """Read a Node object (a dict as the API returns it)."""
    metadata = obj.get("metadata") or {}
    found: list[tuple[str, IPAddress]] = []
    for entry in (obj.get("status") or {}).get("addresses") or ():
        kind = entry.get("type")
        if kind not in STATIONARY_TYPES:
            continue
        try:
            ip = ipaddress.ip_address(str(entry.get("address", "")))
        except ValueError:
            continue
        found.append((str(kind), ip))
    return NodeInfo(
        name=str(metadata["name"]),
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        addresses=tuple(found),
        ready=_ready(obj.get("status") or {}),
        unschedulable=(obj.get("spec") or {}).get("unschedulable") is True,
    )


def _ready(status: Mapping[str, Any]) -> ConditionStatus:
    """The ``Ready`` condition's status; Unknown when it is missing or not a known value."""
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            try:
                return ConditionStatus(str(condition.get("status")))
            except ValueError:
                return ConditionStatus.UNKNOWN
    return ConditionStatus.UNKNOWN
