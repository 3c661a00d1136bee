"""Pure decisions about foreign claims on held addresses (RFC 5227 section 2.4).

A *claim* is a frame in which another host says it has one of our held addresses:

- an ARP packet, request or reply, whose *sender* IP is the held address and whose sender
  MAC (and Ethernet source) is not the MAC the address is held on;
- an IPv6 neighbour advertisement whose target is the held address and whose target
  link-layer address (else the Ethernet source) is not ours.

Not claims: ARP probes (sender IP 0.0.0.0, RFC 5227 2.1.1; a standby checking the holder
sends them), ARP requests *asking* for the address (their sender IP is the asker's own:
clients, the lab's wire observer), DAD solicitations, and our own frames.

The reaction (``on_conflict``) is RFC 5227 2.4 (b): the first conflict after a quiet
``DEFEND_INTERVAL_S`` is defended with one announcement and the address is kept; another
conflict within ``DEFEND_INTERVAL_S`` of the previous one means the other host insists,
and this node ceases to use the address. Two refinements, both stated here:

- frames from the same MAC less than ``SAME_ROUND_S`` apart are one conflict: every
  announcer of the kind aliasip, IPaddr2 or MetalLB is sends a request *and* a reply per
  round (Linux's locktime, see ``announce``), which is one announcement, not two;
- a holder cut off from the API (``fenced``) ceases at the first conflict: the operator
  has most likely moved the alias while it could not hear, and defending would send the
  clients back to it for a round.

An *episode* is a run of conflicts on one address with less than ``FORGET_AFTER_S`` of
quiet between them; what the agent reports (``ForeignClaim``) changes only when an episode
starts, its claimer changes, or it turns from defended to ceased: one status write per
episode and step, never one per frame. Times are inputs, so every rule is table-tested.

``claim_filter`` is the same classification's coarse half, as a classic BPF program
attached to the listening socket, so that the kernel drops every frame that cannot be a
claim (the wire observer's 100 requests a second, other hosts' chatter, our own frames)
before it wakes the agent.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from aliasip_nodeagent.hoststate import IPAddress

DEFEND_INTERVAL_S = 10.0  # RFC 5227 DEFEND_INTERVAL
SAME_ROUND_S = 0.2
FORGET_AFTER_S = 60.0

ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_IP = 0x0800
IPPROTO_ICMPV6 = 58
ND_NEIGHBOR_ADVERT = 136
ND_OPT_TARGET_LL = 2
ND_HOP_LIMIT = 255
ARP_REQUEST = 1
ARP_REPLY = 2


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


@dataclass(frozen=True)
class Heard:
    """The facts of one ARP or NA frame that matter for a claim.

    ``ip``: the ARP sender IP, or the NA's target; ``lladdr``: the ARP sender MAC, or the
    NA's target link-layer option (None when absent).
    """

    kind: str  # "arp" or "na"
    eth_src: str
    ip: IPAddress
    lladdr: str | None
    op: int = 0


def parse_frame(data: bytes) -> Heard | None:
    """Decode an Ethernet frame carrying ARP (IPv4 over Ethernet) or an ICMPv6 neighbour
    advertisement; None for anything else or anything malformed (never raises)."""
    if len(data) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", data, 12)
    eth_src = _mac(data[6:12])
    if ethertype == ETH_P_ARP:
        if len(data) < 42:
            return None
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", data, 14)
        if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) or op not in (
            ARP_REQUEST,
            ARP_REPLY,
        ):
            return None
        sender = ipaddress.IPv4Address(data[28:32])
        return Heard("arp", eth_src, sender, _mac(data[22:28]), op)
    if ethertype == ETH_P_IPV6:
        if len(data) < 78 or data[14] >> 4 != 6:
            return None
        if data[20] != IPPROTO_ICMPV6 or data[21] != ND_HOP_LIMIT:
            return None  # RFC 4861 7.1.2: a valid NA has hop limit 255 (it is on-link)
        if data[54] != ND_NEIGHBOR_ADVERT or data[55] != 0:
            return None
        target = ipaddress.IPv6Address(data[62:78])
        return Heard("na", eth_src, target, _target_lladdr(data, 78))
    return None


def _target_lladdr(data: bytes, offset: int) -> str | None:
    """The NA's target link-layer address option, if any (bounded walk of the options)."""
    for _ in range(64):
        if offset + 2 > len(data):
            return None
        kind, length = data[offset], data[offset + 1]
        if length == 0:
            return None  # malformed (RFC 4861 4.6: a zero length must be discarded)
        if kind == ND_OPT_TARGET_LL and length == 1 and offset + 8 <= len(data):
            return _mac(data[offset + 2 : offset + 8])
        offset += length * 8
    return None


def claimer(heard: Heard, held: Mapping[IPAddress, str]) -> str | None:
    """The MAC of the other host that claims a held address in ``heard``, else None.

    ``held`` maps each held address to the MAC it is held on (lower case).
    """
    own = held.get(heard.ip)
    if own is None or heard.ip.is_unspecified:
        return None  # asks for it, probes for it, or concerns another address
    own = own.lower()
    if heard.eth_src == own:
        return None  # our own frame
    # ARP names its sender's MAC; an NA may leave out its target link-layer option.
    mac = heard.lladdr if heard.kind == "arp" else (heard.lladdr or heard.eth_src)
    if mac is None or mac == own:
        return None
    return mac


class Act(StrEnum):
    NONE = "none"  # the same announcement as a conflict already counted
    DEFEND = "defend"
    CEASE = "cease"


@dataclass(frozen=True)
class Conflicts:
    """One address's claim episode. ``last_at`` is the monotonic time of the last counted
    conflict; ``started_at`` the episode's first, ``started_wall`` the same on the wall
    clock (for the report); ``mac`` the latest claimer."""

    address: IPAddress
    mac: str
    started_at: float
    started_wall: datetime
    last_at: float
    defended: bool = True
    ceased: bool = False

    def current(self, now: float) -> bool:
        """Whether the episode is still to be reported at ``now``."""
        return now - self.last_at < FORGET_AFTER_S


def on_conflict(
    state: Conflicts | None,
    address: IPAddress,
    mac: str,
    now: float,
    wall: datetime,
    *,
    fenced: bool = False,
) -> tuple[Conflicts, Act]:
    """RFC 5227 2.4 (b) for one conflicting frame heard at ``now`` (monotonic seconds)."""
    if state is None or not state.current(now):
        fresh = Conflicts(address, mac, now, wall, now)
        if fenced:
            return replace(fresh, defended=False, ceased=True), Act.CEASE
        return fresh, Act.DEFEND
    if mac == state.mac and now - state.last_at < SAME_ROUND_S:
        return state, Act.NONE
    if fenced or now - state.last_at < DEFEND_INTERVAL_S:
        return replace(state, mac=mac, last_at=now, defended=False, ceased=True), Act.CEASE
    return replace(state, mac=mac, last_at=now, defended=True, ceased=False), Act.DEFEND


# ---------------------------------------------------------------------- the kernel's half

# Classic BPF (linux/filter.h).
_LD_W_ABS = 0x20
_LD_H_ABS = 0x28
_LD_B_ABS = 0x30
_JMP_JA = 0x05
_JMP_JEQ_K = 0x15
_RET_K = 0x06
_SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF (-0x1000) + SKF_AD_PKTTYPE, as u32
_PACKET_OUTGOING = 4
BPF_MAXINSNS = 4096
ACCEPT = 0xFFFF
Instruction = tuple[int, int, int, int]  # code, jt, jf, k


def claim_filter(addresses: list[IPAddress]) -> list[Instruction]:
    """A classic BPF program that accepts only frames that may claim one of ``addresses``:
    incoming ARP (IPv4) whose sender IP is one of them, or incoming ICMPv6 NA whose target
    is one of them. Every conditional jump is short (to the next instruction or over one
    block), so the program is valid for any number of addresses.

    Beyond ``BPF_MAXINSNS`` it falls back to accepting every incoming ARP and NA frame
    (``claimer`` still decides): correct, only less cheap.
    """
    v4 = sorted({a for a in addresses if a.version == 4}, key=int)
    v6 = sorted({a for a in addresses if a.version == 6}, key=int)
    coarse = 2 * len(v4) + 9 * len(v6) + 32 > BPF_MAXINSNS
    prog: list[Instruction] = [
        (_LD_H_ABS, 0, 0, _SKF_AD_PKTTYPE),
        (_JMP_JEQ_K, 0, 1, _PACKET_OUTGOING),
        (_RET_K, 0, 0, 0),
        (_LD_H_ABS, 0, 0, 12),
        (_JMP_JEQ_K, 0, 1, ETH_P_ARP),
    ]
    arp: list[Instruction] = [
        (_LD_H_ABS, 0, 0, 16),
        (_JMP_JEQ_K, 1, 0, ETH_P_IP),
        (_RET_K, 0, 0, 0),
    ]
    if coarse:
        arp.append((_RET_K, 0, 0, ACCEPT))
    else:
        arp.append((_LD_W_ABS, 0, 0, 28))
        for a4 in v4:
            arp += [(_JMP_JEQ_K, 0, 1, int(a4)), (_RET_K, 0, 0, ACCEPT)]
        arp.append((_RET_K, 0, 0, 0))
    na: list[Instruction] = [
        (_LD_B_ABS, 0, 0, 20),
        (_JMP_JEQ_K, 1, 0, IPPROTO_ICMPV6),
        (_RET_K, 0, 0, 0),
        (_LD_B_ABS, 0, 0, 21),
        (_JMP_JEQ_K, 1, 0, ND_HOP_LIMIT),
        (_RET_K, 0, 0, 0),
        (_LD_B_ABS, 0, 0, 54),
        (_JMP_JEQ_K, 1, 0, ND_NEIGHBOR_ADVERT),
        (_RET_K, 0, 0, 0),
    ]
    if coarse:
        na.append((_RET_K, 0, 0, ACCEPT))
    else:
        for a6 in v6:
            words = struct.unpack("!IIII", a6.packed)
            na += [
                (_LD_W_ABS, 0, 0, 62),
                (_JMP_JEQ_K, 0, 7, words[0]),
                (_LD_W_ABS, 0, 0, 66),
                (_JMP_JEQ_K, 0, 5, words[1]),
                (_LD_W_ABS, 0, 0, 70),
                (_JMP_JEQ_K, 0, 3, words[2]),
                (_LD_W_ABS, 0, 0, 74),
                (_JMP_JEQ_K, 0, 1, words[3]),
                (_RET_K, 0, 0, ACCEPT),
            ]
        na.append((_RET_K, 0, 0, 0))
    # 5: (ARP) jump to the ARP block at 9; 6: IPv6? 8 : 7; 7: drop; 8: jump to the NA block.
    prog += [
        (_JMP_JA, 0, 0, 3),
        (_JMP_JEQ_K, 1, 0, ETH_P_IPV6),
        (_RET_K, 0, 0, 0),
        (_JMP_JA, 0, 0, len(arp)),
    ]
    return prog + arp + na
