"""Who this agent exchanges heartbeats with, at which address, telling what (pure).

The monitoring path runs per node pair, between the nodes that share AliasIPs, and only
in the direction someone listens: a node sends to the other candidates of the AliasIPs it
holds (or is named for): their standbys watch it, and an old holder among them must hear
that it holds at a newer epoch (R10). A node that holds nothing sends nothing; a standby
hears its holders. Heartbeats travel over
the *service* LAN, the one the aliases live on (a heartbeat heard over another network
says nothing about the path clients use): each agent advertises, in its Lease's
``aliasip.io/monitor`` annotation, the stationary addresses that cover its candidate
aliases, and sends to a peer's advertised addresses that lie in one of its own such
subnets. What a heartbeat carries for a peer is limited to the AliasIPs that peer is a
candidate of (a node holding 100 aliases tells each peer of its few, not of all 100).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import HostState, IPAddress, IPInterface
from aliasip_nodeagent.placement import decide_placement
from aliasip_nodeagent.reconcile import Observed, requests_for


@dataclass(frozen=True)
class Peer:
    """One peer: where to send its heartbeats, and what to tell it (``(uid, epoch)``)."""

    node: str
    targets: tuple[IPAddress, ...]
    held: tuple[tuple[str, int], ...] = ()


def candidates(obs: Observed) -> frozenset[str]:
    """The nodes an AliasIP concerns: its listed nodes, every node reporting a view, its
    holder."""
    nodes = set(obs.status.nodes)
    if obs.spec is not None:
        nodes.update(obs.spec.nodes)
    if obs.status.active_node:
        nodes.add(obs.status.active_node)
    return frozenset(nodes)


def service_addresses(observed: Iterable[Observed], host: HostState) -> tuple[IPInterface, ...]:
    """This node's stationary addresses that cover an alias it may carry (the subnet
    placement would put it in), as ``address/prefix``; sorted, IPv4 first."""
    found: set[IPInterface] = set()
    for obs in observed:
        if obs.spec is None:
            continue
        for request in requests_for(obs.spec):
            try:
                placement = decide_placement(request, host)
            except errors.AliasError:
                continue
            iface = host.by_name(placement.interface)
            if iface is None:
                continue
            covering = iface.stationary_covering(request.ip)
            if covering:
                found.add(max(covering, key=lambda a: a.prefixlen).interface)
    return tuple(sorted(found, key=lambda a: (a.version, int(a.ip))))


def format_addresses(addresses: Iterable[IPInterface]) -> str:
    return ",".join(str(a) for a in addresses)


def parse_addresses(text: str | None) -> tuple[IPInterface, ...]:
    """The annotation's addresses; anything unparsable is skipped (a peer's bad word must
    not stop this agent's heartbeats to the others)."""
    out: list[IPInterface] = []
    for part in (text or "").split(","):
        try:
            out.append(ipaddress.ip_interface(part.strip()))
        except ValueError:
            continue
    return tuple(out)


def reachable(
    advertised: Iterable[IPInterface], mine: tuple[IPInterface, ...]
) -> tuple[IPAddress, ...]:
    """The ``advertised`` addresses of a peer that lie in one of our subnets (``mine``):
    where a datagram to it goes on the service LAN."""
    return tuple(
        a.ip
        for a in advertised
        if any(a.ip.version == m.version and a.ip in m.network for m in mine)
    )


def plan_peers(
    node: str,
    observed: Iterable[Observed],
    holding: Mapping[str, int],
    mine: tuple[IPInterface, ...],
    advertised: Callable[[str], tuple[IPInterface, ...]],
) -> dict[str, Peer]:
    """Every peer ``node`` sends to: the other candidates of what it holds (``holding``:
    uid -> epoch) or is named for; the targets among each one's advertised addresses that
    share a subnet with ``mine``, and the ``holding`` entries it is a candidate of."""
    shared: dict[str, set[str]] = {}
    for obs in observed:
        if obs.spec is None:
            continue
        if obs.key not in holding and obs.status.active_node != node:
            continue
        nodes = candidates(obs)
        for other in nodes - {node}:
            shared.setdefault(other, set()).add(obs.key)
    peers: dict[str, Peer] = {}
    for other in sorted(shared):
        targets = reachable(advertised(other), mine)
        held = tuple(sorted((k, holding[k]) for k in shared[other] if k in holding))
        peers[other] = Peer(other, targets, held)
    return peers
