"""What the model needs from Kubernetes Node objects: name, labels, stationary addresses.

A node's stationary addresses are the ``InternalIP`` and ``ExternalIP`` entries of its
``status.addresses`` (what kubelet reports). An alias equal to one of them would take a
node's own address away from it when it moves (kube-vip #1490 deleted a node's IP), so
the model refuses such an alias. Entries that are not IP addresses (hostnames, garbage)
are skipped: they cannot collide with an alias.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aliasip_api.addresses import IPAddress

STATIONARY_TYPES = ("InternalIP", "ExternalIP")


@dataclass(frozen=True)
class NodeInfo:
    """A node's name, labels and stationary addresses as ``(type, ip)`` pairs."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    addresses: tuple[tuple[str, IPAddress], ...] = ()

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
    )
