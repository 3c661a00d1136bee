"""The frames aliasip sends, built as bytes (pure; no scapy on the sending path).

Why not scapy here: building one announcement round with scapy's layers took 0.6-1.5 ms
of the data-path thread, and in a direct handoff (R11) that time lies between the old
holder's delete and the first frame that tells the LAN where the address went: nobody
answers meanwhile. These are a few ``struct.pack`` calls (microseconds). scapy stays the
decoder: ``tests/unit/test_frames.py`` parses every frame built here with it, field by
field, checksum included, against RFC literals.

The forms (why both ARP frames, why no source link-layer option in an NA) are explained
in ``announce``, which sends them.
"""

from __future__ import annotations

import ipaddress
import struct

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

BROADCAST = b"\xff" * 6
ZERO_MAC = b"\0" * 6
ALL_NODES_MAC = bytes.fromhex("333300000001")
ALL_NODES = ipaddress.IPv6Address("ff02::1").packed
UNSPECIFIED6 = b"\0" * 16
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800
ARP_REQUEST, ARP_REPLY = 1, 2
ICMPV6 = 58
ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT = 135, 136
NA_OVERRIDE = 0x20000000  # RFC 4861 4.4: R, S, O are the three top bits of the flags word
OPT_TARGET_LLADDR = 2
HOP_LIMIT_ND = 255

_ETHER = struct.Struct("!6s6sH")
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_IPV6 = struct.Struct("!IHBB16s16s")


def mac_bytes(mac: str) -> bytes:
    """``02:a1:00:00:00:0b`` as 6 bytes (any case)."""
    raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(raw) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return raw


def _arp(op: int, mac: str, sender: bytes, target_mac: bytes, target: bytes) -> bytes:
    own = mac_bytes(mac)
    ether = _ETHER.pack(BROADCAST, own, ETH_P_ARP)
    return ether + _ARP.pack(1, ETH_P_IP, 6, 4, op, own, sender, target_mac, target)


def garp_request(mac: str, ip: IPAddress) -> bytes:
    """Gratuitous ARP request: sender IP = target IP = the alias (RFC 5227 announcement)."""
    return _arp(ARP_REQUEST, mac, ip.packed, ZERO_MAC, ip.packed)


def garp_reply(mac: str, ip: IPAddress) -> bytes:
    """Gratuitous ARP reply, target MAC = sender MAC (taken inside Linux's locktime)."""
    return _arp(ARP_REPLY, mac, ip.packed, mac_bytes(mac), ip.packed)


def arp_probe(mac: str, ip: IPAddress) -> bytes:
    """RFC 5227 ARP probe: sender IP 0.0.0.0, so no neighbour learns anything from it."""
    return _arp(ARP_REQUEST, mac, b"\0" * 4, ZERO_MAC, ip.packed)


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _icmpv6(dst_mac: bytes, mac: str, src: bytes, dst: bytes, message: bytes) -> bytes:
    """An ICMPv6 message (its checksum field zero) in IPv6 and Ethernet, checksummed."""
    pseudo = src + dst + struct.pack("!IxxxB", len(message), ICMPV6)
    checksum = _checksum(pseudo + message)
    message = message[:2] + struct.pack("!H", checksum) + message[4:]
    ipv6 = _IPV6.pack(6 << 28, len(message), ICMPV6, HOP_LIMIT_ND, src, dst)
    return _ETHER.pack(dst_mac, mac_bytes(mac), ETH_P_IPV6) + ipv6 + message


def unsolicited_na(mac: str, ip: IPAddress) -> bytes:
    """Unsolicited neighbour advertisement to all-nodes: Override set, target LL option;
    no source link-layer option (not allowed in an NA), Solicited clear (RFC 4861 7.2.6)."""
    option = struct.pack("!BB6s", OPT_TARGET_LLADDR, 1, mac_bytes(mac))
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_ADVERT, 0, 0, NA_OVERRIDE, ip.packed) + option
    return _icmpv6(ALL_NODES_MAC, mac, ip.packed, ALL_NODES, message)


def solicited_node_group(ip: ipaddress.IPv6Address) -> bytes:
    """RFC 4291 2.7.1: ff02::1:ff00:0/104 plus the address's low 24 bits."""
    return bytes.fromhex("ff0200000000000000000001ff") + ip.packed[13:]


def dad_solicitation(mac: str, ip: IPAddress) -> bytes:
    """RFC 4862 duplicate address detection: NS from :: to the solicited-node group."""
    group = solicited_node_group(ipaddress.IPv6Address(ip.packed))
    message = struct.pack("!BBHI16s", ND_NEIGHBOR_SOLICIT, 0, 0, 0, ip.packed)
    return _icmpv6(b"\x33\x33" + group[12:], mac, UNSPECIFIED6, group, message)


def announcement_frames(mac: str, ip: IPAddress) -> list[bytes]:
    """The frames of one announcement round for ``ip``."""
    if ip.version == 4:
        return [garp_request(mac, ip), garp_reply(mac, ip)]
    return [unsolicited_na(mac, ip)]


def probe_frame(mac: str, ip: IPAddress) -> bytes:
    """The frame that asks the wire whether anyone holds ``ip``."""
    return arp_probe(mac, ip) if ip.version == 4 else dad_solicitation(mac, ip)
