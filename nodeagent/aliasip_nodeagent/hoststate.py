"""Plain data describing a host's interfaces and addresses, as read from the kernel.

Nothing here does I/O: ``netlink`` builds these snapshots and ``placement`` decides on
them, so every decision can be tested without a kernel.

Ownership invariant: an address is *ours* only if it carries the aliasip mark
(``IFA_PROTO == OWN_PROTO``). Everything else is *foreign* and is never deleted. Global
foreign addresses are the host's *stationary* addresses: an alias may only join an
interface that already has one whose subnet contains it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import cached_property

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# The IFA_PROTO value that marks addresses added by aliasip (kernel >= 6.3 keeps it for
# IPv4 and IPv6 alike). 0-3 are taken by the kernel (unspec, kernel_lo, kernel_ra,
# kernel_ll); 0xa1 ("a"liasip) is free in iproute2's rt_addrprotos.
OWN_PROTO = 0xA1
# Suffix of the IPv4 address label, for humans reading `ip addr` (labels are at most
# 15 characters and must start with the interface name; IPv6 has no labels).
LABEL_TAG = "aip"
MAX_LABEL_LEN = 15

SCOPE_UNIVERSE = 0
SCOPE_LINK = 253
SCOPE_HOST = 254


def own_label(ifname: str) -> str | None:
    """The IPv4 label for an alias on ``ifname``, or None when the name leaves no room."""
    label = f"{ifname}:{LABEL_TAG}"
    return label if len(label) <= MAX_LABEL_LEN else None


@dataclass(frozen=True)
class HostAddress:
    """One address on one interface."""

    interface: IPInterface
    scope: int = SCOPE_UNIVERSE
    proto: int | None = None
    label: str | None = None

    @property
    def ip(self) -> IPAddress:
        return self.interface.ip

    @property
    def prefixlen(self) -> int:
        return self.interface.network.prefixlen

    @property
    def owned(self) -> bool:
        return self.proto == OWN_PROTO

    @property
    def stationary(self) -> bool:
        return not self.owned and self.scope == SCOPE_UNIVERSE


@dataclass(frozen=True)
class InterfaceState:
    """One link and its addresses."""

    index: int
    name: str
    mac: str
    admin_up: bool
    carrier: bool
    loopback: bool = False
    addresses: tuple[HostAddress, ...] = ()

    @cached_property
    def _stationary(self) -> tuple[HostAddress, ...]:
        return tuple(a for a in self.addresses if a.stationary)

    def stationary_covering(self, ip: IPAddress) -> list[HostAddress]:
        """Stationary addresses of this interface whose subnet contains ``ip``."""
        return [
            a for a in self._stationary if a.ip.version == ip.version and ip in a.interface.network
        ]


@dataclass(frozen=True)
class HostState:
    """A snapshot of every interface of the host (one network namespace)."""

    interfaces: tuple[InterfaceState, ...]

    # A snapshot is immutable and asked once per alias per pass (placement, the peers'
    # service addresses): at hundreds of aliases, scanning every address for each ask made
    # a node's 5 s resync pass cost tens of ms. Each index is built on first use.

    def by_name(self, name: str) -> InterfaceState | None:
        return next((i for i in self.interfaces if i.name == name), None)

    @cached_property
    def _owned(self) -> tuple[HeldAlias, ...]:
        return tuple(
            HeldAlias(interface=i.name, index=i.index, mac=i.mac, address=a.interface)
            for i in self.interfaces
            for a in i.addresses
            if a.owned
        )

    @cached_property
    def _foreign_by_ip(self) -> dict[IPAddress, tuple[tuple[InterfaceState, HostAddress], ...]]:
        found: dict[IPAddress, list[tuple[InterfaceState, HostAddress]]] = {}
        for i in self.interfaces:
            for a in i.addresses:
                if not a.owned:
                    found.setdefault(a.ip, []).append((i, a))
        return {ip: tuple(pairs) for ip, pairs in found.items()}

    @cached_property
    def _owned_by_ip(self) -> dict[IPAddress, tuple[HeldAlias, ...]]:
        found: dict[IPAddress, list[HeldAlias]] = {}
        for held in self._owned:
            found.setdefault(held.address.ip, []).append(held)
        return {ip: tuple(held) for ip, held in found.items()}

    def owned(self) -> list[HeldAlias]:
        """Every address aliasip added, with the interface that carries it."""
        return list(self._owned)

    def owned_with_ip(self, ip: IPAddress) -> list[HeldAlias]:
        """The addresses aliasip added that equal ``ip`` (normally one at most)."""
        return list(self._owned_by_ip.get(ip, ()))

    def foreign_with_ip(self, ip: IPAddress) -> list[tuple[InterfaceState, HostAddress]]:
        """Addresses equal to ``ip`` that aliasip did not add."""
        return list(self._foreign_by_ip.get(ip, ()))


@dataclass(frozen=True)
class HeldAlias:
    """An alias this host holds (an address carrying our mark)."""

    interface: str
    index: int
    mac: str
    address: IPInterface

    def to_dict(self) -> dict[str, object]:
        return {
            "address": str(self.address.ip),
            "prefix": self.address.network.prefixlen,
            "interface": self.interface,
        }
