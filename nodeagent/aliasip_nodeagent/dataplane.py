"""The data-path steps, shared by the one-shot CLI and the long-running daemon.

``apply_alias``: snapshot → decide (pure) → probe the wire → add → first announcement.
``apply_batch``: the same for many holds at once (the daemon's pass): one wire probe for
every address, one wait, then each hold nobody answered for is added.
``release_alias``: snapshot → select our marked addresses → delete.

Never a partial change: refusals are raised before any change, and if the first
announcement cannot be sent after the address was added, the address is removed again.
Repeated announcements (``AnnounceSchedule``) are the caller's job, so that the daemon can
run them on its event loop while the CLI simply sleeps through them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
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


ProbeTarget = tuple[str, str, IPAddress]
"""What one probe of a batch asks: (interface, our MAC there, the address)."""


class BatchAnnounce(Announce, Protocol):
    """What the daemon needs besides: many probes sent together, one wait for all."""

    def probe_many(
        self, targets: Sequence[ProbeTarget], wait_s: float
    ) -> Mapping[IPAddress, str]: ...


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
    return _add(placement, netlink, announcer, result.probe_ms)


@dataclass(frozen=True)
class BatchItem:
    """One hold for ``apply_batch``: its addresses, whether they are probed before the
    add, and the announcer of its first round (gated by holding, ``announcing``)."""

    requests: tuple[AliasRequest, ...]
    probe: bool
    announcer: Announce


BatchResult = list[ApplyResult] | errors.AliasError
"""Per hold: each address's result, or why the hold was refused (nothing added for a
refusal made before the adds; a failure during them is raised as ``apply_alias`` raises
it, after the adds that succeeded: the caller takes those back, as it does for one)."""


def apply_batch(
    items: Sequence[BatchItem],
    netlink: Netlink,
    prober: BatchAnnounce,
    probe_wait_s: float,
    known: HostState | None = None,
) -> list[BatchResult]:
    """``apply_alias`` for many holds, as one step on the data-path thread (``known``: a
    snapshot to place them on without a dump, as there).

    Why: a node that takes over 100 aliases at once probed them one after the other, 30 ms
    each: 3 s before the last one was added. Here the placements of every hold are decided
    first (pure, from one snapshot per address family and interface asked), the probes of
    every address that needs one leave together and are listened for during one
    ``probe_wait_s``, and only then is each hold added: a hold with an address another
    host answered for is refused with the same ``AddressInUse`` a single probe raises, and
    adds none of its addresses; so is a hold whose placement is refused. The holds that
    nobody answered for are added and announced in order, each as ``apply_alias`` does.
    """
    snapshots: dict[tuple[int, str | None], HostState] = {}
    decided: list[list[Placement] | errors.AliasError] = []
    for item in items:
        try:
            placements = []
            for request in item.requests:
                key = (request.ip.version, request.interface)
                if key not in snapshots:
                    snapshots[key] = known if known is not None else netlink.snapshot(*key)
                placements.append(decide_placement(request, snapshots[key]))
            decided.append(placements)
        except errors.AliasError as exc:
            decided.append(exc)
    targets = probe_targets(items, decided)
    heard: Mapping[IPAddress, str] = {}
    probe_ms: float | None = None
    if targets:
        started = time.perf_counter()
        heard = prober.probe_many(targets, probe_wait_s)
        probe_ms = (time.perf_counter() - started) * 1000
    results: list[BatchResult] = []
    for item, found in zip(items, decided, strict=True):
        refusal = found if isinstance(found, errors.AliasError) else refused(found, item, heard)
        if refusal is not None:
            results.append(refusal)
            continue
        assert not isinstance(found, errors.AliasError)
        done: list[ApplyResult] = []
        try:
            for placement in found:
                probed = item.probe and not placement.already_held
                done.append(_add(placement, netlink, item.announcer, probe_ms if probed else None))
        except errors.AliasError as exc:
            results.append(exc)
            continue
        results.append(done)
    return results


def probe_targets(
    items: Sequence[BatchItem], decided: Sequence[list[Placement] | errors.AliasError]
) -> list[ProbeTarget]:
    """Pure: the addresses a batch asks the wire about: those of holds that probe, placed,
    not in the kernel yet; each once."""
    found: dict[IPAddress, ProbeTarget] = {}
    for item, placements in zip(items, decided, strict=True):
        if not item.probe or isinstance(placements, errors.AliasError):
            continue
        for p in placements:
            if not p.already_held:
                found.setdefault(p.address.ip, (p.interface, p.mac, p.address.ip))
    return list(found.values())


def refused(
    placements: Sequence[Placement], item: BatchItem, heard: Mapping[IPAddress, str]
) -> errors.AddressInUse | None:
    """Pure: the refusal of a probed hold one of whose new addresses another host answered
    for (the first such address, as ``apply_alias`` names it), else None."""
    if not item.probe:
        return None
    for p in placements:
        mac = heard.get(p.address.ip)
        if mac and not p.already_held:
            return errors.AddressInUse(
                f"{p.address.ip} is answered on the wire by {mac}; not taking it"
            )
    return None


def _add(
    placement: Placement, netlink: Netlink, announcer: Announce, probe_ms: float | None
) -> ApplyResult:
    """Add one placed address and send its first round (``apply_alias`` after its probe)."""
    result = ApplyResult(placement=placement, changed=netlink.add(placement), probe_ms=probe_ms)
    ip = placement.address.ip
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
