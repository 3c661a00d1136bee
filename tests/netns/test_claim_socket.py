"""The claim listener's socket on a real kernel: its BPF filter lets through exactly the
frames that may claim a held address, and none of our own. Frames are built with scapy
here and sent from other namespaces on the LAN."""

from __future__ import annotations

import ipaddress
import select
import time

from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.announce import Announcer, ClaimSocket
from tests.netns.support import send

ALIAS4 = ipaddress.ip_address("198.18.0.50")
ALIAS6 = ipaddress.ip_address("2001:2::50")
BCAST = "ff:ff:ff:ff:ff:ff"


def garp(mac: str, ip: str, op: int = 1, psrc: str | None = None) -> Packet:
    return Ether(dst=BCAST, src=mac) / ARP(
        op=op, hwsrc=mac, psrc=psrc or ip, hwdst="00:00:00:00:00:00", pdst=ip
    )


def drain(listener: ClaimSocket, quiet_s: float = 0.3) -> list[bytes]:
    """Everything the socket delivers until it has been quiet for ``quiet_s`` (bounded)."""
    got: list[bytes] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        ready, _, _ = select.select([listener], [], [], quiet_s)
        if not ready:
            break
        got += listener.read()
    return got


def test_only_claims_reach_the_listener(lan: Lan) -> None:
    holder, other, client = lan.nodes[0], lan.nodes[1], lan.client
    with netns(holder.netns):
        listener = ClaimSocket(holder.ifname, [ALIAS4, ALIAS6])
        ours = Announcer()
        ours.socket_for(holder.ifname, 4)
        ours.socket_for(holder.ifname, 6)
    try:
        claim4 = garp(other.mac, str(ALIAS4))
        reply4 = garp(other.mac, str(ALIAS4), op=2)
        claim6 = (
            Ether(dst="33:33:00:00:00:01", src=other.mac)
            / IPv6(src=str(ALIAS6), dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(tgt=str(ALIAS6), R=0, S=0, O=1)
            / ICMPv6NDOptDstLLAddr(lladdr=other.mac)
        )
        noise = [
            garp(client.mac, str(ALIAS4), psrc=str(client.ipv4.ip)),  # asks for it
            garp(other.mac, str(ALIAS4), psrc="0.0.0.0"),  # a standby's probe
            garp(other.mac, "198.18.0.51"),  # another address
        ]
        send(client, noise[:1])
        send(other, [*noise[1:], claim4, reply4])
        send(other, [claim6])
        # Our own announcements leave through the holder's interface: filtered out.
        ours.announce(holder.ifname, holder.mac, ALIAS4)
        ours.announce(holder.ifname, holder.mac, ALIAS6)
        got = drain(listener)
        assert sorted(got) == sorted([bytes(claim4), bytes(reply4), bytes(claim6)])

        # The filter follows the held set: without the IPv6 alias, its claim is dropped.
        listener.set_addresses([ALIAS4])
        send(other, [claim6, claim4])
        assert drain(listener) == [bytes(claim4)]
    finally:
        listener.close()
        ours.close()
