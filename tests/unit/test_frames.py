"""Announcement and probe frames, decoded from bytes with scapy and checked field by field.

Expected values are literals written here (RFC 5227, RFC 4861, RFC 4862), never the
announce module's own constants: a self-consistent test would hide a wrong bit.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet6 import (
    ICMPv6EchoReply,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_nodeagent import announce, frames

MAC = "02:00:00:00:01:01"
OTHER = "02:00:00:00:09:09"


def decode(frame: Packet | bytes) -> Packet:
    """The frame as a receiver sees it: bytes on the wire, parsed afresh."""
    decoded: Packet = Ether(bytes(frame))
    return decoded


def addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# ---- IPv4: ARP --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "op", "psrc", "hwdst"),
    [
        (frames.garp_request, 1, "198.18.0.50", "00:00:00:00:00:00"),
        (frames.garp_reply, 2, "198.18.0.50", MAC),
        (frames.arp_probe, 1, "0.0.0.0", "00:00:00:00:00:00"),
    ],
    ids=["garp-request", "garp-reply", "probe"],
)
def test_arp_frames(build: object, op: int, psrc: str, hwdst: str) -> None:
    assert callable(build)
    raw = bytes(build(MAC, addr("198.18.0.50")))
    frame = Ether(raw)
    assert raw[0:6] == b"\xff" * 6  # broadcast destination
    assert raw[6:12] == bytes.fromhex("020000000101")
    assert raw[12:14] == b"\x08\x06"  # ARP ethertype
    assert raw[20:22] == op.to_bytes(2, "big")
    arp = frame[ARP]
    assert (arp.hwtype, arp.ptype, arp.hwlen, arp.plen) == (1, 0x0800, 6, 4)
    assert arp.op == op
    assert arp.hwsrc == MAC
    assert arp.psrc == psrc
    assert arp.hwdst == hwdst
    assert arp.pdst == "198.18.0.50"
    assert frame[Ether].dst == "ff:ff:ff:ff:ff:ff"


def test_announcement_round_v4_is_request_then_reply() -> None:
    decoded = [
        decode(f) for f in frames.announcement_frames(MAC, ipaddress.ip_address("198.18.0.50"))
    ]
    assert [f[ARP].op for f in decoded] == [1, 2]
    assert all(f[ARP].psrc == f[ARP].pdst == "198.18.0.50" for f in decoded)


def test_probe_frame_v4_is_an_arp_probe() -> None:
    frame = decode(frames.probe_frame(MAC, ipaddress.ip_address("198.18.0.50")))
    assert (frame[ARP].op, frame[ARP].psrc, frame[ARP].pdst) == (1, "0.0.0.0", "198.18.0.50")


# ---- IPv6: unsolicited NA and DAD NS -----------------------------------------------------


@pytest.mark.parametrize("ip", ["2001:2::50", "2001:2:0:ffff::abcd"], ids=["short", "long"])
def test_unsolicited_na(ip: str) -> None:
    raw = frames.unsolicited_na(MAC, addr(ip))
    frame = Ether(raw)
    assert frame[Ether].dst == "33:33:00:00:00:01"
    assert raw[12:14] == b"\x86\xdd"
    ipv6 = frame[IPv6]
    assert ipv6.src == ip
    assert ipv6.dst == "ff02::1"
    assert ipv6.hlim == 255
    assert ipv6.nh == 58
    na = frame[ICMPv6ND_NA]
    assert na.type == 136
    assert na.code == 0
    assert (na.R, na.S, na.O) == (0, 0, 1)
    # RFC 4861 4.4: R is the top bit, S the next, O the third of the first flags byte.
    assert raw[14 + 40 + 4] == 0x20
    assert na.tgt == ip
    assert frame.haslayer(ICMPv6NDOptDstLLAddr)
    assert frame[ICMPv6NDOptDstLLAddr].type == 2
    assert frame[ICMPv6NDOptDstLLAddr].lladdr == MAC
    assert not frame.haslayer(ICMPv6NDOptSrcLLAddr)
    # Option type 2, length 1 (8 octets), then the MAC: and nothing after it.
    assert raw[14 + 40 + 24 :] == bytes.fromhex("0201020000000101")


def test_unsolicited_na_checksum_is_valid() -> None:
    frame = decode(frames.unsolicited_na(MAC, addr("2001:2::50")))
    sent = frame[ICMPv6ND_NA].cksum
    del frame[ICMPv6ND_NA].cksum
    assert Ether(bytes(frame))[ICMPv6ND_NA].cksum == sent


@pytest.mark.parametrize(
    ("ip", "group", "group_mac"),
    [
        ("2001:2::50", "ff02::1:ff00:50", "33:33:ff:00:00:50"),
        ("2001:2::abcd:1234", "ff02::1:ffcd:1234", "33:33:ff:cd:12:34"),
        ("2001:2:0:1::ff:fffe", "ff02::1:ffff:fffe", "33:33:ff:ff:ff:fe"),
    ],
    ids=["low-bits", "all-24-bits", "high-bits"],
)
def test_dad_solicitation(ip: str, group: str, group_mac: str) -> None:
    frame = decode(frames.dad_solicitation(MAC, addr(ip)))
    assert frame[Ether].dst == group_mac
    assert frame[Ether].src == MAC
    assert frame[IPv6].src == "::"
    assert frame[IPv6].dst == group
    assert frame[IPv6].hlim == 255
    ns = frame[ICMPv6ND_NS]
    assert ns.type == 135
    assert ns.tgt == ip
    # RFC 4862 5.4.2: a DAD NS from the unspecified address carries no source LL option.
    assert not frame.haslayer(ICMPv6NDOptSrcLLAddr)


def test_announcement_round_v6_is_one_na() -> None:
    decoded = [
        decode(f) for f in frames.announcement_frames(MAC, ipaddress.ip_address("2001:2::50"))
    ]
    assert len(decoded) == 1
    assert decoded[0][ICMPv6ND_NA].tgt == "2001:2::50"


def test_probe_frame_v6_is_a_dad_solicitation() -> None:
    frame = decode(frames.probe_frame(MAC, ipaddress.ip_address("2001:2::50")))
    assert frame[IPv6].src == "::"
    assert frame[ICMPv6ND_NS].tgt == "2001:2::50"


# ---- conflicting_mac ----------------------------------------------------------------------


def arp(op: int, hwsrc: str, psrc: str, pdst: str, eth_src: str | None = None) -> Packet:
    return Ether(dst="ff:ff:ff:ff:ff:ff", src=eth_src or hwsrc) / ARP(
        op=op, hwsrc=hwsrc, psrc=psrc, hwdst="00:00:00:00:00:00", pdst=pdst
    )


def na(src_mac: str, src: str, tgt: str) -> Packet:
    frame: Packet = (
        Ether(dst="33:33:00:00:00:01", src=src_mac)
        / IPv6(src=src, dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt=tgt, R=0, S=0, O=1)
        / ICMPv6NDOptDstLLAddr(lladdr=src_mac)
    )
    return frame


def ns(src_mac: str, src: str, tgt: str) -> Packet:
    frame: Packet = (
        Ether(dst="33:33:ff:00:00:50", src=src_mac)
        / IPv6(src=src, dst="ff02::1:ff00:50", hlim=255)
        / ICMPv6ND_NS(tgt=tgt)
    )
    return frame


@pytest.mark.parametrize(
    ("frame", "ip", "expected"),
    [
        (frames.garp_request(MAC, addr("198.18.0.50")), "198.18.0.50", None),
        (frames.garp_reply(MAC, addr("198.18.0.50")), "198.18.0.50", None),
        (frames.arp_probe(MAC, addr("198.18.0.50")), "198.18.0.50", None),
        (frames.garp_request(OTHER, addr("198.18.0.50")), "198.18.0.50", OTHER),
        (frames.garp_reply(OTHER, addr("198.18.0.50")), "198.18.0.50", OTHER),
        (arp(2, OTHER, "198.18.0.50", "198.18.0.2"), "198.18.0.50", OTHER),
        (frames.arp_probe(OTHER, addr("198.18.0.50")), "198.18.0.50", None),
        (arp(1, OTHER, "198.18.0.7", "198.18.0.50"), "198.18.0.50", None),
        (frames.garp_request(OTHER, addr("198.18.0.51")), "198.18.0.50", None),
        (frames.arp_probe(OTHER, addr("198.18.0.51")), "198.18.0.50", None),
        (
            arp(2, OTHER, "198.18.0.50", "198.18.0.2", eth_src="02:00:00:00:08:08"),
            "198.18.0.50",
            OTHER,
        ),
        (na(OTHER, "2001:2::9", "2001:2::50"), "198.18.0.50", None),
        (frames.unsolicited_na(MAC, addr("2001:2::50")), "2001:2::50", None),
        (frames.dad_solicitation(MAC, addr("2001:2::50")), "2001:2::50", None),
        (frames.unsolicited_na(OTHER, addr("2001:2::50")), "2001:2::50", OTHER),
        (na(OTHER, "fe80::9", "2001:2::50"), "2001:2::50", OTHER),
        (frames.dad_solicitation(OTHER, addr("2001:2::50")), "2001:2::50", None),
        (ns(OTHER, "2001:2::9", "2001:2::50"), "2001:2::50", None),
        (frames.unsolicited_na(OTHER, addr("2001:2::51")), "2001:2::50", None),
        (frames.dad_solicitation(OTHER, addr("2001:2::51")), "2001:2::50", None),
        (frames.garp_request(OTHER, addr("198.18.0.50")), "2001:2::50", None),
        (
            Ether(src=OTHER, dst=MAC) / IPv6(src="2001:2::50", dst="2001:2::2") / ICMPv6EchoReply(),
            "2001:2::50",
            None,
        ),
    ],
    ids=[
        "own-garp-request",
        "own-garp-reply",
        "own-probe",
        "other-garp-request",
        "other-garp-reply",
        "other-arp-reply-to-a-neighbour",
        "other-probe-is-not-a-claim",
        "neighbour-asks-who-has-alias",
        "other-announces-other-address",
        "other-probes-other-address",
        "claim-reports-the-arp-sender-mac",
        "v6-frame-for-v4-alias",
        "own-na",
        "own-dad",
        "other-na",
        "other-na-from-link-local",
        "other-dad-is-not-a-claim",
        "neighbour-resolves-alias",
        "other-na-other-address",
        "other-dad-other-address",
        "v4-frame-for-v6-alias",
        "v6-non-nd-traffic",
    ],
)
def test_conflicting_mac(frame: Packet | bytes, ip: str, expected: str | None) -> None:
    assert announce.conflicting_mac(decode(frame), ipaddress.ip_address(ip), MAC) == expected


@pytest.mark.parametrize(
    "frame",
    [frames.garp_reply(MAC, addr("198.18.0.50")), frames.unsolicited_na(MAC, addr("2001:2::50"))],
    ids=["v4", "v6"],
)
def test_conflicting_mac_own_mac_in_any_case(frame: bytes) -> None:
    heard = decode(frame)
    ip = ipaddress.ip_address(heard[ARP].psrc if heard.haslayer(ARP) else heard[IPv6].src)
    assert announce.conflicting_mac(decode(frame), ip, MAC.upper()) is None
    assert announce.conflicting_mac(decode(frame), ip, OTHER) == MAC


@pytest.mark.parametrize(
    "address", ["198.18.0.50", "198.19.255.254", "2001:2::50", "2001:2:0:ffff::abcd", "fe80::1"]
)
def test_every_frame_is_what_scapy_builds(address: str) -> None:
    """Byte for byte the frames scapy's own layers build for the same fields (the
    reference: the agent sent these until frames were built with struct)."""
    from scapy.utils6 import in6_getnsma, in6_getnsmac

    a = addr(address)
    if a.version == 4:
        expected = [
            Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC)
            / ARP(op=1, hwsrc=MAC, psrc=address, hwdst="00:00:00:00:00:00", pdst=address),
            Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC)
            / ARP(op=2, hwsrc=MAC, psrc=address, hwdst=MAC, pdst=address),
        ]
        probe = Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC) / ARP(
            op=1, hwsrc=MAC, psrc="0.0.0.0", hwdst="00:00:00:00:00:00", pdst=address
        )
    else:
        expected = [
            Ether(dst="33:33:00:00:00:01", src=MAC)
            / IPv6(src=address, dst="ff02::1", hlim=255)
            / ICMPv6ND_NA(tgt=address, R=0, S=0, O=1)
            / ICMPv6NDOptDstLLAddr(lladdr=MAC)
        ]
        group = in6_getnsma(a.packed)
        probe = (
            Ether(dst=in6_getnsmac(group), src=MAC)
            / IPv6(src="::", dst=str(ipaddress.IPv6Address(group)), hlim=255)
            / ICMPv6ND_NS(tgt=address)
        )
    assert frames.announcement_frames(MAC, a) == [bytes(f) for f in expected]
    assert frames.probe_frame(MAC, a) == bytes(probe)


def test_a_malformed_mac_is_refused() -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        frames.garp_request("02:00:00:00:01", addr("198.18.0.50"))
