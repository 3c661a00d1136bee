"""Rules for alias addresses, the one implementation shared by the model and the node agent.

An alias address is written ``ADDRESS/PREFIX`` in the API and parsed as Go's
``net.ParseCIDR`` does, because that is what kube-apiserver's ``format: cidr`` accepts: a
real API server and this model must agree on every string. Some addresses can never be an
alias (unspecified, loopback, multicast, link-local, the limited broadcast, IPv4-mapped),
and some cannot be one in a given subnet (its network address, and for IPv4 its broadcast
address).

Only the standard library is imported here: the node agent's CLI imports this module and
its start-up time is measured.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_prefixlen(text: str, max_prefixlen: int) -> int | None:
    """``text`` as a prefix length from 0 to ``max_prefixlen``, or None if it is not one.

    Only ASCII decimal digits count (as in Go's ``dtoi``): ``str.isdigit`` alone accepts
    U+00B2 SUPERSCRIPT TWO, which ``int`` then refuses; signs, spaces and netmasks are out.
    Leading zeros are accepted, as Go accepts them.
    """
    if not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= max_prefixlen else None


def parse_cidr(text: str) -> IPInterface:
    """Parse ``ADDRESS/PREFIX`` with Go's ``net.ParseCIDR`` semantics; keep the host bits.

    Raises ``ValueError`` with a message that says what is wrong (without repeating
    ``text``). Like Go: the prefix is required, no surrounding spaces, no IPv6 zone, no
    leading zeros in IPv4 octets.
    """
    address, sep, prefix = text.partition("/")
    if not sep:
        raise ValueError("the /PREFIX is missing (write ADDRESS/PREFIX, e.g. 198.18.0.50/24)")
    if not address.isascii():
        raise ValueError(f"{address!r} is not an IPv4 or IPv6 address")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise ValueError(f"{address!r} is not an IPv4 or IPv6 address") from None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        raise ValueError(f"a zone (%{ip.scope_id}) is not allowed")
    prefixlen = parse_prefixlen(prefix, ip.max_prefixlen)
    if prefixlen is None:
        raise ValueError(f"prefix must be a number from 0 to {ip.max_prefixlen}")
    return ipaddress.ip_interface((ip, prefixlen))


def reserved_kind(ip: IPAddress) -> str | None:
    """Which kind of never-an-alias address ``ip`` is (subnet-independent part)."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_multicast:
        return "multicast"
    if ip.is_link_local:
        return "link-local"
    if isinstance(ip, ipaddress.IPv4Address) and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    return None


def subnet_reserved_kind(ip: IPAddress, network: IPNetwork) -> str | None:
    """Network (and IPv4 broadcast) addresses of the subnet the alias would join."""
    if network.prefixlen >= network.max_prefixlen - 1:
        return None  # /31, /32, /127, /128 have no network or broadcast address
    if ip == network.network_address:
        return "network"
    if isinstance(network, ipaddress.IPv4Network) and ip == network.broadcast_address:
        return "broadcast"
    return None


def with_article(kind: str) -> str:
    """ "an unspecified", "a loopback": for messages that name a reserved kind."""
    return f"an {kind}" if kind[0] in "aeiouAEIOU" else f"a {kind}"
