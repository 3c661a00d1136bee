"""The data-path steps, shared by the one-shot CLI and the long-running daemon.

``apply_alias``: snapshot → decide (pure) → probe the wire → add → first announcement.
``release_alias``: snapshot → select our marked addresses → delete.

Never a partial change: refusals are raised before any change, and if the first
announcement cannot be sent after the address was added, the address is removed again.
Repeated announcements (``AnnounceSchedule``) are the caller's job, so that the daemon can
run them on its event loop while the CLI simply sleeps through them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import HeldAlias, HostState, IPAddress
from aliasip_nodeagent.placement import (
    AliasRequest,
    Placement,
    decide_placement,
    select_release,
)

DEFAULT_PROBE_WAIT_S = 0.03


class Netlink(Protocol):
    def snapshot(self, version: int | None = None, interface: str | None = None) -> HostState: ...
    def add(self, placement: Placement) -> bool: ...
    def delete(self, held: HeldAlias) -> bool: ...


class AgentNetlink(Netlink, Protocol):
    """What the daemon needs besides: the dead-man switch's renewal (``deadman``)."""

    def renew_lifetimes(self, lifetime_s: int | None = None) -> int: ...


class ProbeOutcome(Protocol):
    @property
    def conflict_mac(self) -> str | None: ...


class Announce(Protocol):
    def announce(self, interface: str, mac: str, ip: IPAddress) -> int: ...
    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> ProbeOutcome: ...


@dataclass(frozen=True)
class AnnounceSchedule:
    """How many announcement rounds, how far apart. The first round is sent at once.

    Default: 4 rounds 1.1 s apart (0, 1.1, 2.2, 3.3 s), like MetalLB's spamLoop (issue
    metallb#172): repeats reach past the neighbours' 1 s ARP locktime and past a lost frame.
    """

    count: int = 4
    interval_s: float = 1.1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 100:
            raise errors.InvalidInput("announce count must be between 1 and 100")
        if not 0.01 <= self.interval_s <= 60:
            raise errors.InvalidInput("announce interval must be between 10 ms and 60 s")

    def repeat_delays(self) -> Iterator[float]:
        """Delays before each round after the first."""
        for _ in range(self.count - 1):
            yield self.interval_s


@dataclass
class ApplyResult:
    placement: Placement
    changed: bool
    probe_ms: float | None = None
    rounds_sent: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": "apply",
            "address": str(self.placement.address.ip),
            "prefix": self.placement.address.network.prefixlen,
            "interface": self.placement.interface,
            "changed": self.changed,
            "probe_ms": None if self.probe_ms is None else round(self.probe_ms, 2),
            "announcements": self.rounds_sent,
        }


@dataclass
class ReleaseResult:
    released: list[HeldAlias]
    requested: str

    @property
    def changed(self) -> bool:
        return bool(self.released)

    def to_dict(self) -> dict[str, object]:
        return {
            "action": "release",
            "address": self.requested,
            "changed": self.changed,
            "released": [h.to_dict() for h in self.released],
        }


def apply_alias(
    request: AliasRequest,
    netlink: Netlink,
    announcer: Announce,
    *,
    probe_wait_s: float | None = DEFAULT_PROBE_WAIT_S,
    known: HostState | None = None,
) -> ApplyResult:
    """Make this host hold the alias and send the first announcement round.

    ``probe_wait_s=None`` skips the duplicate-address probe (the caller has other evidence
    that nobody holds the address, or accepts the risk). ``known``: a kernel snapshot the
    caller holds as still true, to place the alias without a dump of its own (2-10 ms
    through pyroute2: most of a direct handoff's add); a stale one fails the add, never
    misplaces it silently, and the caller's next full pass reads the kernel anyway.
    """
    if known is None:
        known = netlink.snapshot(request.ip.version, request.interface)
    placement = decide_placement(request, known)
    result = ApplyResult(placement=placement, changed=False)
    ip = placement.address.ip
    if not placement.already_held and probe_wait_s is not None:
        started = time.perf_counter()
        heard = announcer.probe(placement.interface, placement.mac, ip, probe_wait_s)
        result.probe_ms = (time.perf_counter() - started) * 1000
        if heard.conflict_mac:
            raise errors.AddressInUse(
                f"{ip} is answered on the wire by {heard.conflict_mac}; not taking it"
            )
    result.changed = netlink.add(placement)
    try:
        announcer.announce(placement.interface, placement.mac, ip)
    except Exception as exc:
        undone = "; address removed again" if result.changed else ""
        if result.changed:
            netlink.delete(_held(placement))
        raise errors.KernelError(
            f"announcing {ip} on {placement.interface} failed ({exc}){undone}"
        ) from exc
    result.rounds_sent = 1
    return result


def announce_repeats(
    result: ApplyResult,
    announcer: Announce,
    schedule: AnnounceSchedule,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """The remaining announcement rounds, blocking (the CLI's way)."""
    placement = result.placement
    for delay in schedule.repeat_delays():
        sleep(delay)
        announcer.announce(placement.interface, placement.mac, placement.address.ip)
        result.rounds_sent += 1


def release_alias(ip: IPAddress, netlink: Netlink) -> ReleaseResult:
    """Delete every address equal to ``ip`` that we marked; foreign ones are refused."""
    held = select_release(ip, netlink.snapshot(ip.version))
    released = [h for h in held if netlink.delete(h)]
    return ReleaseResult(released=released, requested=str(ip))


def release_all(netlink: Netlink) -> ReleaseResult:
    """Delete every address aliasip marked on this host (cleanup); foreign ones stay."""
    held = netlink.snapshot().owned()
    released = [h for h in held if netlink.delete(h)]
    return ReleaseResult(released=released, requested="all")


def list_aliases(netlink: Netlink) -> list[HeldAlias]:
    return netlink.snapshot().owned()


def _held(placement: Placement) -> HeldAlias:
    return HeldAlias(
        interface=placement.interface,
        index=placement.index,
        mac=placement.mac,
        address=placement.address,
    )
