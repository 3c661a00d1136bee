"""The lab prober's pure logic: report arithmetic, echo-reply parsing, the checksum."""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_lab.prober import Gap, ProbeReport, Reply, _checksum, parse_echo_reply

A = "02:00:00:00:01:01"
B = "02:00:00:00:02:01"
CLIENT = "02:00:00:00:0c:01"


def report(*replies: Reply, sent: int = 0) -> ProbeReport:
    return ProbeReport(
        target="198.18.0.50",
        interval_ms=10.0,
        started_at=0.0,
        sent=sent,
        replies=list(replies),
    )


def reply(seq: int, mac: str, rtt_ms: float = 1.0) -> Reply:
    return Reply(seq=seq, sent_ms=seq * 10.0, rtt_ms=rtt_ms, mac=mac)


def test_no_gaps_when_every_probe_is_answered() -> None:
    r = report(*(reply(s, A) for s in range(5)), sent=5)
    assert r.gaps() == []
    assert r.outage_ms() == 0.0
    assert r.answered == 5
    assert r.split_brain_samples() == []


def test_empty_report() -> None:
    r = report()
    assert (r.gaps(), r.outage_ms(), r.segments(), r.split_brain_samples()) == ([], 0.0, [], [])


def test_gap_across_a_failover() -> None:
    # Seqs 3..6 unanswered; A answered before, B after. Outage: reply of 7 minus reply of 2.
    r = report(
        reply(0, A),
        reply(1, A),
        reply(2, A, rtt_ms=0.5),
        reply(7, B, rtt_ms=2.0),
        reply(8, B),
        sent=9,
    )
    assert r.gaps() == [
        Gap(after_seq=2, before_seq=7, lost=4, outage_ms=51.5, mac_before=A, mac_after=B)
    ]
    assert r.outage_ms() == 51.5
    assert r.answered == 5


def test_outage_is_the_longest_gap_and_order_of_replies_does_not_matter() -> None:
    r = report(reply(9, A), reply(5, A), reply(0, A), reply(1, A), reply(2, A))
    assert [(g.after_seq, g.before_seq, g.lost) for g in r.gaps()] == [(2, 5, 2), (5, 9, 3)]
    assert [g.outage_ms for g in r.gaps()] == [30.0, 40.0]
    assert r.outage_ms() == 40.0


def test_split_brain_samples_are_seqs_answered_by_two_macs() -> None:
    r = report(
        reply(0, A),
        reply(1, A),
        reply(1, B),
        reply(2, A),
        reply(2, A),  # a duplicate from one MAC is not split brain
        reply(3, B),
        reply(4, B),
        reply(4, A),
    )
    assert r.split_brain_samples() == [1, 4]
    assert r.answered == 5
    assert r.gaps() == []


def test_segments_are_runs_of_one_mac() -> None:
    r = report(reply(0, A), reply(1, A), reply(3, B, rtt_ms=1.25), reply(4, B), reply(5, A))
    assert r.segments() == [
        {"mac": A, "first_seq": 0, "last_seq": 1, "first_ms": 1.0, "last_ms": 11.0, "replies": 2},
        {"mac": B, "first_seq": 3, "last_seq": 4, "first_ms": 31.25, "last_ms": 41.0, "replies": 2},
        {"mac": A, "first_seq": 5, "last_seq": 5, "first_ms": 51.0, "last_ms": 51.0, "replies": 1},
    ]


def test_to_dict_summarises_the_report() -> None:
    r = report(reply(0, A), reply(3, B), reply(3, A), sent=4)
    summary = r.to_dict()
    assert summary["sent"] == 4
    assert summary["answered"] == 2
    assert summary["outage_ms"] == 30.0
    assert summary["split_brain_samples"] == [3]
    assert summary["gaps"] == [
        {
            "after_seq": 0,
            "before_seq": 3,
            "lost": 2,
            "outage_ms": 30.0,
            "mac_before": A,
            "mac_after": B,
        }
    ]


# ---- parse_echo_reply ---------------------------------------------------------------------

V4 = ipaddress.IPv4Address("198.18.0.50")
V6 = ipaddress.IPv6Address("2001:2::50")
IDENT = 0x1234


def v4_reply(
    src: str = "198.18.0.50",
    ident: int = IDENT,
    seq: int = 7,
    kind: int = 0,
    options: bytes = b"",
) -> Packet:
    frame: Packet = (
        Ether(src=A, dst=CLIENT)
        / IP(src=src, dst="198.18.0.100", options=options)
        / ICMP(type=kind, id=ident, seq=seq)
        / b"aliasip-probe"
    )
    return frame


def v6_reply(src: str = "2001:2::50", ident: int = IDENT, seq: int = 7) -> Packet:
    frame: Packet = (
        Ether(src=B, dst=CLIENT)
        / IPv6(src=src, dst="2001:2::100")
        / ICMPv6EchoReply(id=ident, seq=seq, data=b"aliasip-probe")
    )
    return frame


@pytest.mark.parametrize(
    ("frame", "target", "expected"),
    [
        (v4_reply(), V4, (A, 7)),
        (v4_reply(seq=0xFFFF), V4, (A, 0xFFFF)),
        (v4_reply(options=b"\x01\x01\x01\x00"), V4, (A, 7)),
        (v6_reply(), V6, (B, 7)),
        (v6_reply(seq=0), V6, (B, 0)),
        (v4_reply(ident=IDENT + 1), V4, None),
        (v6_reply(ident=IDENT + 1), V6, None),
        (v4_reply(src="198.18.0.51"), V4, None),
        (v6_reply(src="2001:2::51"), V6, None),
        (v4_reply(kind=8), V4, None),
        (
            Ether(src=B, dst=CLIENT)
            / IPv6(src="2001:2::50", dst="2001:2::100")
            / ICMPv6EchoRequest(id=IDENT, seq=7),
            V6,
            None,
        ),
        (v4_reply(), V6, None),
        (v6_reply(), V4, None),
        (Ether(src=A, dst=CLIENT) / ARP(psrc="198.18.0.50", pdst="198.18.0.100"), V4, None),
        (
            Ether(src=A, dst=CLIENT) / IP(src="198.18.0.50", dst="198.18.0.100", proto=17),
            V4,
            None,
        ),
    ],
    ids=[
        "v4-reply",
        "v4-seq-max",
        "v4-ip-options",
        "v6-reply",
        "v6-seq-0",
        "v4-wrong-ident",
        "v6-wrong-ident",
        "v4-other-source",
        "v6-other-source",
        "v4-echo-request",
        "v6-echo-request",
        "v4-frame-v6-target",
        "v6-frame-v4-target",
        "arp",
        "v4-udp",
    ],
)
def test_parse_echo_reply(
    frame: Packet,
    target: ipaddress.IPv4Address | ipaddress.IPv6Address,
    expected: tuple[str, int] | None,
) -> None:
    assert parse_echo_reply(bytes(frame), target, IDENT) == expected


@pytest.mark.parametrize(
    ("frame", "target"),
    [
        (b"", V4),
        (b"\x02" * 13, V4),
        (bytes(v4_reply())[:20], V4),
        (bytes(v4_reply())[:30], V4),
        (bytes(v6_reply())[:21], V6),
        (bytes(v6_reply())[:40], V6),
    ],
    ids=["empty", "short-ethernet", "v4-cut-in-header", "v4-cut-in-source", "v6-cut", "v6-cut-src"],
)
def test_parse_echo_reply_truncated_frames_are_ignored(
    frame: bytes, target: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> None:
    assert parse_echo_reply(frame, target, IDENT) is None


# ---- _checksum ----------------------------------------------------------------------------


def test_checksum_rfc1071_example() -> None:
    # RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to 0xddf2 (with end-around carry).
    assert _checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_checksum_odd_length_pads_with_zero() -> None:
    assert _checksum(b"\x01") == _checksum(b"\x01\x00") == 0xFEFF


def test_checksum_matches_scapy_icmp() -> None:
    packet = ICMP(type=8, id=IDENT, seq=0x0102) / b"aliasip-probe"
    raw = bytes(packet)
    zeroed = raw[:2] + b"\x00\x00" + raw[4:]
    assert _checksum(zeroed) == int.from_bytes(raw[2:4], "big")
    assert _checksum(raw) == 0
