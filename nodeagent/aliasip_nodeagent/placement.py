"""Pure decisions: may this host take an alias, on which interface and with which prefix?

The rules follow classic hot-standby practice: an alias joins an interface that already
carries a *stationary* address whose subnet contains it, with that subnet's prefix, so the
alias never becomes an interface's first (primary) address and never changes routing.
Every refusal names the problem precisely and is raised before anything is changed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# One implementation of the address rules, shared with the API model; re-exported here
# (``as`` keeps them public for mypy) because callers and tests import them from placement.
from aliasip_api.addresses import parse_prefixlen, with_article
from aliasip_api.addresses import reserved_kind as reserved_kind
from aliasip_api.addresses import subnet_reserved_kind as subnet_reserved_kind
from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import HeldAlias, HostState, InterfaceState, IPAddress


@dataclass(frozen=True)
class AliasRequest:
    """What the caller asked for: an address, maybe a prefix, maybe an interface."""

    ip: IPAddress
    prefixlen: int | None = None
    interface: str | None = None

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}" if self.prefixlen is not None else str(self.ip)


@dataclass(frozen=True)
class Placement:
    """Where an alias goes: the interface (index, name, MAC) and the full address."""

    index: int
    interface: str
    mac: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    already_held: bool = False


def parse_request(text: str, interface: str | None = None) -> AliasRequest:
    """Parse ``ADDRESS`` or ``ADDRESS/PREFIX``; refuse addresses that can never be aliases."""
    address, sep, prefix = text.strip().partition("/")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise errors.InvalidInput(f"{text!r} is not an IPv4 or IPv6 address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        # "2001:2::2%eth1" compares unequal to "2001:2::2": it would slip past every check.
        raise errors.InvalidInput(
            f"{text!r}: a zone (%{ip.scope_id}) is not allowed; use --interface"
        )
    prefixlen: int | None = None
    if sep:
        prefixlen = parse_prefixlen(prefix, ip.max_prefixlen)
        if prefixlen is None:
            raise errors.InvalidInput(
                f"{text!r}: prefix must be a number from 0 to {ip.max_prefixlen}"
            )
    if interface is not None and not interface:
        raise errors.InvalidInput("--interface must not be empty")
    reserved = reserved_kind(ip)
    if reserved:
        raise errors.ReservedAddress(
            f"{ip} is {with_article(reserved)} address and cannot be an alias"
        )
    return AliasRequest(ip=ip, prefixlen=prefixlen, interface=interface)


def decide_placement(request: AliasRequest, host: HostState) -> Placement:
    """Choose the interface and prefix for ``request`` on ``host``, or raise why not."""
    ip = request.ip
    foreign = host.foreign_with_ip(ip)
    if foreign:
        iface, addr = foreign[0]
        raise errors.StationaryAddress(
            f"{ip} is already an address of this host ({addr.interface} on {iface.name}) "
            "that aliasip did not add"
        )
    iface = _covering_interface(request, host)
    covering = max(iface.stationary_covering(ip), key=lambda a: a.prefixlen)
    network = covering.interface.network
    kind = subnet_reserved_kind(ip, network)
    if kind:
        raise errors.ReservedAddress(
            f"{ip} is the {kind} address of {network} on {iface.name} and cannot be an alias"
        )
    if request.prefixlen is not None and request.prefixlen != network.prefixlen:
        raise errors.PrefixMismatch(
            f"{request} does not match the stationary subnet {network} on {iface.name}: "
            f"use /{network.prefixlen} or no prefix"
        )
    if not iface.admin_up:
        raise errors.InterfaceDown(f"interface {iface.name} is administratively down")
    if not iface.carrier:
        raise errors.InterfaceDown(f"interface {iface.name} has no carrier (link down)")
    address = ipaddress.ip_interface(f"{ip}/{network.prefixlen}")
    held = host.owned_with_ip(ip)
    for h in held:
        if h.index != iface.index or h.address != address:
            raise errors.HeldElsewhere(
                f"{ip} is already held by aliasip as {h.address} on {h.interface}; release it first"
            )
    return Placement(
        index=iface.index,
        interface=iface.name,
        mac=iface.mac,
        address=address,
        already_held=bool(held),
    )


def _covering_interface(request: AliasRequest, host: HostState) -> InterfaceState:
    ip = request.ip
    if request.interface is not None:
        iface = host.by_name(request.interface)
        if iface is None:
            raise errors.UnknownInterface(f"interface {request.interface} does not exist")
        if iface.loopback:
            raise errors.InterfaceNotCovering(f"{iface.name} is a loopback interface")
        if not iface.stationary_covering(ip):
            raise errors.InterfaceNotCovering(
                f"interface {iface.name} has no stationary address in a subnet containing {ip}"
                f" (it has: {_describe(iface, ip.version)})"
            )
        return iface
    candidates = [i for i in host.interfaces if not i.loopback and i.stationary_covering(ip)]
    if not candidates:
        seen = "; ".join(
            f"{i.name}: {_describe(i, ip.version)}" for i in host.interfaces if not i.loopback
        )
        raise errors.NoCoveringInterface(
            f"no interface has a stationary address in a subnet containing {ip}"
            f" (IPv{ip.version} stationary addresses: {seen or 'no interfaces'})"
        )
    if len(candidates) > 1:
        names = ", ".join(i.name for i in candidates)
        raise errors.AmbiguousInterface(
            f"{ip} is covered by stationary subnets on several interfaces ({names}); "
            "choose one with --interface"
        )
    return candidates[0]


def _describe(iface: InterfaceState, version: int) -> str:
    found = [str(a.interface) for a in iface.addresses if a.stationary and a.ip.version == version]
    return ", ".join(found) or "none"


def select_release(ip: IPAddress, host: HostState) -> list[HeldAlias]:
    """The held aliases to delete for ``ip``; refuse when ``ip`` is present but not ours."""
    held = host.owned_with_ip(ip)
    if not held:
        foreign = host.foreign_with_ip(ip)
        if foreign:
            iface, addr = foreign[0]
            raise errors.NotOwned(
                f"{addr.interface} on {iface.name} was not added by aliasip; left untouched"
            )
    return held
