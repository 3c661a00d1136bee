"""Builders for hand-made host snapshots (plain data, no kernel).

Addresses come from 198.18.0.0/15 and 2001:2::/48 only. MACs are locally administered.
"""

from __future__ import annotations

import ipaddress

from aliasip_nodeagent.hoststate import (
    OWN_PROTO,
    SCOPE_HOST,
    SCOPE_LINK,
    HostAddress,
    HostState,
    InterfaceState,
)

MAC_ETH1 = "02:00:00:00:01:01"
MAC_ETH2 = "02:00:00:00:01:02"
MAC_OTHER = "02:00:00:00:09:09"


def stationary(text: str) -> HostAddress:
    """A global address the host had before aliasip (no mark)."""
    return HostAddress(interface=ipaddress.ip_interface(text))


def owned(text: str) -> HostAddress:
    """An address aliasip added (carries the mark)."""
    return HostAddress(interface=ipaddress.ip_interface(text), proto=OWN_PROTO)


def link_scope(text: str) -> HostAddress:
    return HostAddress(interface=ipaddress.ip_interface(text), scope=SCOPE_LINK)


def host_scope(text: str) -> HostAddress:
    return HostAddress(interface=ipaddress.ip_interface(text), scope=SCOPE_HOST)


def iface(
    name: str,
    *addresses: HostAddress,
    index: int | None = None,
    mac: str | None = None,
    admin_up: bool = True,
    carrier: bool = True,
    loopback: bool = False,
) -> InterfaceState:
    default_index = {"lo": 1, "eth1": 2, "eth2": 3}.get(name, 9)
    default_mac = {"lo": "00:00:00:00:00:00", "eth1": MAC_ETH1, "eth2": MAC_ETH2}.get(
        name, MAC_OTHER
    )
    return InterfaceState(
        index=default_index if index is None else index,
        name=name,
        mac=default_mac if mac is None else mac,
        admin_up=admin_up,
        carrier=carrier,
        loopback=loopback,
        addresses=tuple(addresses),
    )


def loopback(*extra: HostAddress) -> InterfaceState:
    return iface(
        "lo",
        host_scope("127.0.0.1/8"),
        host_scope("::1/128"),
        *extra,
        loopback=True,
    )


def host(*interfaces: InterfaceState) -> HostState:
    return HostState(interfaces=tuple(interfaces))
