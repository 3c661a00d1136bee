"""ARP and NDP frames for the wire observer: built and decoded with ``struct`` (pure).

The observer asks "who has ADDRESS?" from its own stationary address and MAC, never from
0.0.0.0 and never from the alias, so nobody on the LAN can take its questions for a claim
(RFC 5227 treats any ARP frame whose *sender* address is ours as a conflict; an ARP probe
from 0.0.0.0 is someone about to claim it). Answers are the frames addressed back to it;
everything else that names a watched alias as its sender (a gratuitous ARP request or
reply) or as an unsolicited neighbour advertisement's target is an announcement.

No scapy here: the observer decodes every frame of the LAN at 100 rounds a second, and
``struct`` over bytes costs microseconds where building a scapy packet costs a
millisecond (bench figures in the observer's docstring).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Literal

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
BROADCAST = b"\xff" * 6
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT = 135, 136
NA_FLAG_SOLICITED = 0x40000000
OPT_SOURCE_LLADDR, OPT_TARGET_LLADDR = 1, 2
UNSPECIFIED6 = ipaddress.IPv6Address("::")
ZERO4 = ipaddress.IPv4Address("0.0.0.0")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Kind = Literal[
    "answer",  # an ARP reply / solicited NA to the observer: the address answered one round
    "garp-request",  # ARP request, sender = target = the alias (a gratuitous ARP)
    "garp-reply",  # ARP reply, sender = the alias, not to the observer (gratuitous)
    "arp-from-alias",  # an ARP request from the alias for another address (still a claim)
    "unsolicited-na",  # NA for the alias not answering the observer (an announcement)
    "probe",  # ARP probe from 0.0.0.0 or DAD NS from :: for the alias (about to claim)
]


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


@dataclass(frozen=True)
class Identity:
    """The observer's own stationary addresses and MAC: the sender of every question."""

    mac: bytes
    ipv4: ipaddress.IPv4Address
    ipv6: ipaddress.IPv6Address | None

    def __post_init__(self) -> None:
        if self.ipv4 == ZERO4:
            raise ValueError("the observer asks from its own stationary address, not 0.0.0.0")


def arp_request(me: Identity, target: ipaddress.IPv4Address) -> bytes:
    """Broadcast "who has TARGET? tell ME" (sender = the observer's address and MAC)."""
    ethernet = BROADCAST + me.mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
    arp += me.mac + me.ipv4.packed + b"\x00" * 6 + target.packed
    return ethernet + arp


def solicited_node(target: ipaddress.IPv6Address) -> ipaddress.IPv6Address:
    """ff02::1:ffXX:XXXX, the group a host joins for each of its addresses (RFC 4291)."""
    return ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + target.packed[13:])


def neighbour_solicitation(me: Identity, target: ipaddress.IPv6Address) -> bytes:
    """An NS for TARGET to its solicited-node group, from ME with my link-layer address."""
    if me.ipv6 is None:
        raise ValueError("the observer has no IPv6 address to ask from")
    group = solicited_node(target)
    dst_mac = b"\x33\x33" + group.packed[12:]
    icmp = struct.pack("!BBHI", ND_NEIGHBOR_SOLICIT, 0, 0, 0) + target.packed
    icmp += struct.pack("!BB", OPT_SOURCE_LLADDR, 1) + me.mac
    checksum = _icmpv6_checksum(me.ipv6, group, icmp)
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    ipv6 = struct.pack("!IHBB", 0x60000000, len(icmp), IPPROTO_ICMPV6, 255)
    ipv6 += me.ipv6.packed + group.packed
    return dst_mac + me.mac + struct.pack("!H", ETH_P_IPV6) + ipv6 + icmp


def question(me: Identity, target: Address) -> bytes:
    if isinstance(target, ipaddress.IPv4Address):
        return arp_request(me, target)
    return neighbour_solicitation(me, target)


def _icmpv6_checksum(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, payload: bytes) -> int:
    pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(payload), IPPROTO_ICMPV6)
    data = pseudo + payload
    if len(data) % 2:
        data += b"\x00"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Seen:
    """A frame that concerns a watched alias: which one, which MAC, what kind."""

    alias: Address
    mac: str
    kind: Kind


def classify(frame: bytes, me: Identity, watched: frozenset[Address]) -> Seen | None:
    """What ``frame`` says about a watched alias, or None (the observer's own questions,
    other traffic). Pure: the observer's loop and the tests call it on raw bytes."""
    if len(frame) < 14:
        return None
    ethertype = int.from_bytes(frame[12:14], "big")
    if ethertype == ETH_P_ARP:
        return _classify_arp(frame, me, watched)
    if ethertype == ETH_P_IPV6:
        return _classify_nd(frame, me, watched)
    return None


def _classify_arp(frame: bytes, me: Identity, watched: frozenset[Address]) -> Seen | None:
    if len(frame) < 42:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        return None
    sha, tha = frame[22:28], frame[32:38]
    spa = ipaddress.IPv4Address(frame[28:32])
    tpa = ipaddress.IPv4Address(frame[38:42])
    if spa == ZERO4 and op == 1 and tpa in watched:
        return Seen(tpa, mac_text(sha), "probe")
    if spa not in watched:
        return None
    if op == 2 and tpa == me.ipv4 and tha == me.mac:
        return Seen(spa, mac_text(sha), "answer")
    if op == 1:
        return Seen(spa, mac_text(sha), "garp-request" if tpa == spa else "arp-from-alias")
    if op == 2:
        return Seen(spa, mac_text(sha), "garp-reply")
    return None


def _classify_nd(frame: bytes, me: Identity, watched: frozenset[Address]) -> Seen | None:
    # ND messages carry no extension headers (RFC 4861 hop limit 255, next header 58).
    if len(frame) < 78 or frame[20] != IPPROTO_ICMPV6:
        return None
    src = ipaddress.IPv6Address(frame[22:38])
    dst = ipaddress.IPv6Address(frame[38:54])
    kind_byte = frame[54]
    target = ipaddress.IPv6Address(frame[62:78])
    if target not in watched:
        return None
    if kind_byte == ND_NEIGHBOR_SOLICIT and src == UNSPECIFIED6:
        return Seen(target, mac_text(frame[6:12]), "probe")
    if kind_byte != ND_NEIGHBOR_ADVERT:
        return None
    flags = int.from_bytes(frame[58:62], "big")
    mac = _option_lladdr(frame[78:], OPT_TARGET_LLADDR) or frame[6:12]
    to_me = dst == me.ipv6 and frame[0:6] == me.mac
    if to_me and flags & NA_FLAG_SOLICITED:
        return Seen(target, mac_text(mac), "answer")
    return Seen(target, mac_text(mac), "unsolicited-na")


def _option_lladdr(options: bytes, wanted: int) -> bytes | None:
    offset = 0
    for _ in range(16):  # bounded: a frame has a handful of options
        if offset + 8 > len(options):
            return None
        kind, length = options[offset], options[offset + 1]
        if length == 0:
            return None
        if kind == wanted:
            return options[offset + 2 : offset + 8]
        offset += length * 8
    return None
