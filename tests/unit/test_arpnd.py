"""The observer's frames: built with struct, checked by decoding them with scapy (an
independent decoder); classification of answers, announcements and probes."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether

from aliasip_lab import arpnd

ME = arpnd.Identity(
    mac=arpnd.mac_bytes("02:a1:00:00:00:65"),
    ipv4=ipaddress.IPv4Address("198.18.0.101"),
    ipv6=ipaddress.IPv6Address("2001:2::65"),
)
ALIAS4 = ipaddress.IPv4Address("198.18.0.50")
ALIAS6 = ipaddress.IPv6Address("2001:2::50")
WATCHED: frozenset[arpnd.Address] = frozenset({ALIAS4, ALIAS6})
NODE = "02:a1:00:00:00:0b"


def test_arp_request_is_broadcast_from_the_observers_own_address() -> None:
    frame = Ether(arpnd.arp_request(ME, ALIAS4))
    assert frame.dst == "ff:ff:ff:ff:ff:ff" and frame.src == "02:a1:00:00:00:65"
    arp = frame[ARP]
    assert (arp.op, arp.psrc, arp.pdst, arp.hwsrc) == (1, "198.18.0.101", str(ALIAS4), frame.src)
    # Not a claim: the observer's own question is ignored by classify.
    assert arpnd.classify(bytes(frame), ME, WATCHED) is None


def test_the_observer_never_asks_from_0_0_0_0() -> None:
    with pytest.raises(ValueError, match=r"not 0\.0\.0\.0"):
        arpnd.Identity(ME.mac, ipaddress.IPv4Address("0.0.0.0"), None)


def test_neighbour_solicitation_to_the_solicited_node_group_with_a_valid_checksum() -> None:
    raw = arpnd.neighbour_solicitation(ME, ALIAS6)
    frame = Ether(raw)
    assert frame.dst == "33:33:ff:00:00:50"
    ip6 = frame[IPv6]
    assert (ip6.src, ip6.dst, ip6.hlim) == ("2001:2::65", "ff02::1:ff00:50", 255)
    ns = frame[ICMPv6ND_NS]
    assert ns.tgt == str(ALIAS6)
    assert frame[ICMPv6NDOptSrcLLAddr].lladdr == "02:a1:00:00:00:65"
    rebuilt = Ether(raw)
    del rebuilt[ICMPv6ND_NS].cksum
    assert Ether(bytes(rebuilt))[ICMPv6ND_NS].cksum == ns.cksum


ZERO_MAC, BCAST = "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"


def _arp(op: int, psrc: str, pdst: str, hwdst: str = ZERO_MAC, dst: str = BCAST) -> bytes:
    return bytes(
        Ether(src=NODE, dst=dst) / ARP(op=op, hwsrc=NODE, psrc=psrc, pdst=pdst, hwdst=hwdst)
    )


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (_arp(2, str(ALIAS4), "198.18.0.101", "02:a1:00:00:00:65", "02:a1:00:00:00:65"), "answer"),
        (_arp(1, str(ALIAS4), str(ALIAS4)), "garp-request"),
        (_arp(2, str(ALIAS4), str(ALIAS4)), "garp-reply"),
        (_arp(1, str(ALIAS4), "198.18.0.100"), "arp-from-alias"),
        (_arp(1, "0.0.0.0", str(ALIAS4)), "probe"),
    ],
)
def test_arp_frames_are_classified(frame: bytes, kind: str) -> None:
    seen = arpnd.classify(frame, ME, WATCHED)
    assert seen == arpnd.Seen(ALIAS4, NODE, kind)  # type: ignore[arg-type]


def test_an_arp_reply_to_someone_else_is_an_announcement_not_an_answer() -> None:
    to_client = _arp(2, str(ALIAS4), "198.18.0.100", "02:a1:00:00:00:64", "02:a1:00:00:00:64")
    assert arpnd.classify(to_client, ME, WATCHED) == arpnd.Seen(ALIAS4, NODE, "garp-reply")


def test_unwatched_and_unrelated_frames_are_ignored() -> None:
    assert arpnd.classify(_arp(1, "198.18.0.99", "198.18.0.99"), ME, WATCHED) is None
    assert arpnd.classify(b"\x00" * 10, ME, WATCHED) is None


def _na(dst_mac: str, dst: str, solicited: bool, tll: str | None = NODE) -> bytes:
    packet = Ether(src=NODE, dst=dst_mac) / IPv6(src=str(ALIAS6), dst=dst, hlim=255)
    packet /= ICMPv6ND_NA(tgt=str(ALIAS6), S=int(solicited), O=1)
    if tll is not None:
        packet /= ICMPv6NDOptDstLLAddr(lladdr=tll)
    return bytes(packet)


def test_neighbour_advertisements_are_classified() -> None:
    answer = _na("02:a1:00:00:00:65", "2001:2::65", solicited=True)
    assert arpnd.classify(answer, ME, WATCHED) == arpnd.Seen(ALIAS6, NODE, "answer")
    unsolicited = _na("33:33:00:00:00:01", "ff02::1", solicited=False)
    assert arpnd.classify(unsolicited, ME, WATCHED) == arpnd.Seen(ALIAS6, NODE, "unsolicited-na")
    # Without a target link-layer option the frame's source MAC is the claimant.
    bare = _na("33:33:00:00:00:01", "ff02::1", solicited=False, tll=None)
    assert arpnd.classify(bare, ME, WATCHED) == arpnd.Seen(ALIAS6, NODE, "unsolicited-na")


def test_a_dad_solicitation_is_a_probe() -> None:
    dad = Ether(src=NODE, dst="33:33:ff:00:00:50") / IPv6(src="::", dst="ff02::1:ff00:50")
    dad /= ICMPv6ND_NS(tgt=str(ALIAS6))
    assert arpnd.classify(bytes(dad), ME, WATCHED) == arpnd.Seen(ALIAS6, NODE, "probe")
