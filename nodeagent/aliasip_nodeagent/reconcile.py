"""Pure decisions of the agent daemon: what must this node's kernel do for the AliasIPs?

``plan(node, aliasips, held, newest)`` compares what the API says (each AliasIP's
``status.activeNode`` and ``status.epoch``) with what the kernel holds (the addresses we
marked, ``HostState.owned()``) and returns the actions; ``daemon`` applies them. No I/O
here, so every rule below is table- and property-tested (tests/agent/test_reconcile.py).

Invariants, and why:

- **Only the named node holds.** A ``Hold`` is returned only for an AliasIP whose status
  names this node; an AliasIP that names another node (or none) makes this node release
  its addresses. Two holders would answer ARP from two MACs (MetalLB #740).
- **Fencing token.** ``newest`` is the highest ``status.epoch`` seen per AliasIP (keyed by
  uid, so a deleted and re-created AliasIP starts again at 0). An object whose epoch is
  older than that is *stale* (a late watch event, a lagging cache): nothing is done for
  it, neither hold nor release, and its addresses are left as they are.
- **Level-triggered.** The plan depends only on the current inputs, never on history, so
  after a crash, a restart or a missed event the same call converges; applying a plan and
  planning again yields nothing new (idempotent).
- **Adopt, never blip.** An alias the kernel already holds, marked by us, that the status
  says is ours is adopted: ``Hold.adopt`` tells the daemon not to probe the wire (it would
  hear itself) and nothing is deleted and re-added.
- **Probe only without a confirmed release.** Before adding, a node probes the wire
  (RFC 5227) unless the previous holder, named by ``status.lastTransition.from``, has
  reported ``released`` at the epoch just before this assignment: then the operator saw it
  let go (a planned switchover or cordon), nobody answers for the address, and the probe
  would only add its 30 ms to the outage. After a failover the old holder reported nothing,
  so the probe stays (it is what catches a holder that is still alive).
- **A taken handoff is a hold.** In the release step of a planned move the operator names
  the next holder (``aliasip_api.succession``); once the old holder told this node it let
  go (``handoff``, R11), ``handed`` carries the AliasIP's uid at that epoch, and this node
  holds as if named, without a probe on its first add at that epoch.
- **Only our own marks.** Releases come from ``held`` (addresses carrying our mark); an
  address is released when no AliasIP that names this node wants it, also when its
  AliasIP no longer exists. A held address with the wanted IP but another prefix or
  interface is released, then held again correctly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aliasip_api.errors import InvalidAliasIP
from aliasip_api.spec import AliasIPSpec, parse_aliasip
from aliasip_api.status import AliasIPStatus, NodeState, NodeView
from aliasip_api.succession import succession
from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.placement import AliasRequest


@dataclass(frozen=True)
class Observed:
    """One AliasIP as the agent read it from the API.

    ``spec`` is None when the object does not parse (``problem`` says why): the agent then
    wants nothing for it, and the operator reports it Invalid. ``key`` is the uid (the
    name when the server gave none): the fencing token belongs to one object's life.
    """

    name: str
    key: str
    spec: AliasIPSpec | None
    status: AliasIPStatus
    problem: str | None = None
    resource_version: str | None = None
    status_valid: bool = True
    generation: int | None = None

    def view_of(self, node: str) -> NodeView | None:
        return self.status.nodes.get(node)


def observe(obj: Mapping[str, Any]) -> Observed:
    """Parse an AliasIP object (a dict from the API) with the one model; never raises."""
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name", ""))
    key = str(metadata.get("uid") or name)
    rv = metadata.get("resourceVersion")
    generation = metadata.get("generation")
    problems: list[str] = []
    spec: AliasIPSpec | None = None
    try:
        spec = parse_aliasip(obj).spec
    except InvalidAliasIP as exc:
        problems.append(f"invalid spec: {exc}")
    try:
        status = AliasIPStatus.from_dict(obj.get("status"))
    except InvalidAliasIP as exc:
        # A status the CRD forbids comes from a buggy writer: acting on it would be
        # guessing, so ``plan`` leaves this AliasIP's addresses as they are.
        problems.append(f"invalid status: {exc}")
        status = AliasIPStatus()
        status_valid = False
    else:
        status_valid = True
    return Observed(
        name=name,
        key=key,
        spec=spec,
        status=status,
        problem="; ".join(problems) or None,
        resource_version=str(rv) if rv is not None else None,
        status_valid=status_valid,
        generation=generation if isinstance(generation, int) else None,
    )


@dataclass(frozen=True)
class Hold:
    """Make this node hold every address of one AliasIP (probe, add, announce).

    ``adopt``: every address is already held exactly as wanted, so there is nothing to
    probe or add (a restarted agent, or the periodic pass on a healthy holder).
    ``probe``: probe the wire before adding (False after a confirmed release, see above).
    ``handed``: held on a direct handoff at ``epoch`` (named successor, not yet active).
    ``unprobed``: why ``probe`` is False, as the hold's log says it.
    """

    aliasip: str
    key: str
    epoch: int
    requests: tuple[AliasRequest, ...]
    announce_count: int
    announce_interval_s: float
    adopt: bool
    probe: bool = True
    generation: int | None = None
    handed: bool = False
    unprobed: str = "the old holder confirmed"


@dataclass(frozen=True)
class Release:
    """Delete one address we marked. ``aliasip`` names the AliasIP it served, if known."""

    held: HeldAlias
    aliasip: str | None
    epoch: int | None
    reason: str


@dataclass(frozen=True)
class Plan:
    """What to do now: releases first (a move within this node must not collide), then holds.

    ``newest`` is the updated fencing state to keep for the next call; ``stale`` names the
    AliasIPs skipped because their epoch is older than one seen before (or their status
    does not parse).
    """

    releases: tuple[Release, ...]
    holds: tuple[Hold, ...]
    newest: Mapping[str, int] = field(default_factory=dict, hash=False)
    stale: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "newest", MappingProxyType(dict(self.newest)))

    @property
    def empty(self) -> bool:
        return not self.releases and not any(not h.adopt for h in self.holds)


def requests_for(spec: AliasIPSpec) -> tuple[AliasRequest, ...]:
    """The data path's requests for a spec's addresses (each with the subnet's prefix)."""
    return tuple(
        AliasRequest(ip=a.ip, prefixlen=a.network.prefixlen, interface=spec.interface)
        for a in spec.addresses
    )


def moved_from(node: str, status: AliasIPStatus) -> str | None:
    """The node the last move took this AliasIP from, if that move went to ``node`` from
    another node."""
    moving = status.last_transition
    if moving is None or moving.to_node != node or moving.from_node in (None, node):
        return None
    return moving.from_node


def released_before(node: str, status: AliasIPStatus) -> bool:
    """Whether the previous holder confirmed its release right before ``node`` was named:
    ``lastTransition`` goes from another node to this one, and that node's own report says
    ``released`` at the epoch before this assignment, or later."""
    moving = status.last_transition
    if moving is None or moving.to_node != node or moving.from_node in (None, node):
        return False
    view = status.nodes.get(moving.from_node) if moving.from_node else None
    return (
        view is not None
        and view.state is NodeState.RELEASED
        and view.epoch is not None
        and view.epoch >= status.epoch - 1
    )


def matches(held: HeldAlias, request: AliasRequest) -> bool:
    """Whether a held address is exactly what ``request`` wants (IP, prefix, interface)."""
    return (
        held.address.ip == request.ip
        and (request.prefixlen is None or held.address.network.prefixlen == request.prefixlen)
        and (request.interface is None or held.interface == request.interface)
    )


def plan(
    node: str,
    aliasips: Iterable[Observed],
    held: Sequence[HeldAlias],
    newest: Mapping[str, int],
    handed: Mapping[str, int] | None = None,
) -> Plan:
    """The actions that make this node's kernel agree with the newest status of each AliasIP.

    ``aliasips`` must be a complete list (after a successful list or relist): an address
    whose AliasIP is absent from it is released as orphaned. ``handed``: the direct
    handoffs taken (uid -> epoch, ``handoff.Handoffs.follow``); each is held while the
    status is still at that epoch and names this node its successor.
    """
    handed = handed or {}
    aliasips = tuple(aliasips)
    fencing: dict[str, int] = {}
    stale: list[str] = []
    wanted: list[tuple[Observed, tuple[AliasRequest, ...]]] = []
    protected: list[AliasRequest] = []
    for obs in sorted(aliasips, key=lambda o: o.name):
        seen = newest.get(obs.key)
        requests = requests_for(obs.spec) if obs.spec is not None else ()
        if not obs.status_valid or (seen is not None and obs.status.epoch < seen):
            stale.append(obs.name)
            if seen is not None:
                fencing[obs.key] = seen
            protected.extend(requests)
            continue
        fencing[obs.key] = obs.status.epoch
        if obs.spec is not None and (obs.status.active_node == node or _handed(node, obs, handed)):
            wanted.append((obs, requests))

    holds = []
    keep: list[HeldAlias] = []
    for obs, requests in wanted:
        have = [next((h for h in held if matches(h, r)), None) for r in requests]
        keep.extend(h for h in have if h is not None)
        assert obs.spec is not None
        holds.append(
            Hold(
                aliasip=obs.name,
                key=obs.key,
                epoch=obs.status.epoch,
                requests=requests,
                announce_count=obs.spec.announce.count,
                announce_interval_s=obs.spec.announce.interval_s,
                adopt=all(h is not None for h in have),
                probe=not (released_before(node, obs.status) or _handed(node, obs, handed)),
                generation=obs.generation,
                handed=_handed(node, obs, handed),
            )
        )

    owner = {r.ip: (obs.name, obs.status.epoch) for obs, rs in wanted for r in rs}
    releases = []
    for h in held:
        if h in keep or any(h.address.ip == r.ip for r in protected):
            continue
        named = _owner_of(h, aliasips)
        if h.address.ip in owner:
            name, epoch = owner[h.address.ip]
            reason = "held with another prefix or interface than wanted"
        elif named is not None:
            name, epoch = named.name, named.status.epoch
            active = named.status.active_node
            reason = f"status names {active}" if active else "status names no node"
        else:
            name, epoch, reason = None, None, "no AliasIP wants it here"
        releases.append(Release(held=h, aliasip=name, epoch=epoch, reason=reason))
    return Plan(releases=tuple(releases), holds=tuple(holds), newest=fencing, stale=tuple(stale))


def _handed(node: str, obs: Observed, handed: Mapping[str, int]) -> bool:
    """Whether ``node`` took a handoff of ``obs`` at its current epoch as its successor."""
    if handed.get(obs.key) != obs.status.epoch:
        return False
    named = succession(obs.status)
    return named is not None and named.to_node == node


def _owner_of(held: HeldAlias, aliasips: Iterable[Observed]) -> Observed | None:
    """The AliasIP whose spec lists ``held``'s address (for the log and the status report)."""
    for obs in aliasips:
        if obs.spec is not None and any(a.ip == held.address.ip for a in obs.spec.addresses):
            return obs
    return None
