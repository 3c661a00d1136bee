"""Pure tables: what is a foreign claim (frames built with scapy here, independently of the
agent's own decoder), how the holder reacts (RFC 5227 2.4 (b), times as inputs), the
kernel filter that mirrors the classification, and the retry back-off."""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_api.status import ForeignClaim, NodeState
from aliasip_nodeagent.backoff import Backoff, delay_for
from aliasip_nodeagent.claims import (
    DEFEND_INTERVAL_S,
    FORGET_AFTER_S,
    SAME_ROUND_S,
    Act,
    Conflicts,
    claim_filter,
    claimer,
    on_conflict,
    parse_frame,
)
from aliasip_nodeagent.hoststate import IPAddress
from aliasip_nodeagent.reconcile import observe
from aliasip_nodeagent.report import Outcome, needs_write, patch_body, view_for

HELD4 = ipaddress.ip_address("198.18.0.50")
HELD6 = ipaddress.ip_address("2001:2::50")
OURS = "02:a1:00:00:00:0b"
OTHER = "02:a1:00:00:00:99"
ASKER = "02:a1:00:00:00:0a"
HELD: dict[IPAddress, str] = {HELD4: OURS, HELD6: OURS}
BCAST = "ff:ff:ff:ff:ff:ff"


def arp(op: int, hwsrc: str, psrc: str, pdst: str, src: str | None = None) -> Packet:
    return Ether(dst=BCAST, src=src or hwsrc) / ARP(
        op=op, hwsrc=hwsrc, psrc=psrc, hwdst="00:00:00:00:00:00", pdst=pdst
    )


def na(src: str, target: str, lladdr: str | None, hlim: int = 255) -> Packet:
    frame = (
        Ether(dst="33:33:00:00:00:01", src=src)
        / IPv6(src=target, dst="ff02::1", hlim=hlim)
        / ICMPv6ND_NA(tgt=target, R=0, S=0, O=1)
    )
    return frame / ICMPv6NDOptDstLLAddr(lladdr=lladdr) if lladdr else frame


def ns_dad(src: str, target: str) -> Packet:
    return (
        Ether(dst="33:33:ff:00:00:50", src=src)
        / IPv6(src="::", dst="ff02::1:ff00:50", hlim=255)
        / ICMPv6ND_NS(tgt=target)
    )


CASES: list[tuple[str, Packet, str | None]] = [
    ("gratuitous request from another host", arp(1, OTHER, "198.18.0.50", "198.18.0.50"), OTHER),
    ("gratuitous reply from another host", arp(2, OTHER, "198.18.0.50", "198.18.0.50"), OTHER),
    ("reply to a client from another host", arp(2, OTHER, "198.18.0.50", "198.18.0.10"), OTHER),
    (
        "another host's request sent from the held address",
        arp(1, OTHER, "198.18.0.50", "198.18.0.1"),
        OTHER,
    ),
    (
        "a request asking for the address (client, wire observer)",
        arp(1, ASKER, "198.18.0.10", "198.18.0.50"),
        None,
    ),
    ("an ARP probe (a standby, RFC 5227 2.1.1)", arp(1, OTHER, "0.0.0.0", "198.18.0.50"), None),
    ("our own announcement", arp(1, OURS, "198.18.0.50", "198.18.0.50"), None),
    (
        "our own MAC as sender, relayed by another port",
        arp(2, OURS, "198.18.0.50", "198.18.0.50", src=OTHER),
        None,
    ),
    ("another address's announcement", arp(1, OTHER, "198.18.0.51", "198.18.0.51"), None),
    ("NA for the address with another target MAC", na(OTHER, "2001:2::50", OTHER), OTHER),
    ("NA for the address without a target option", na(OTHER, "2001:2::50", None), OTHER),
    ("our own NA", na(OURS, "2001:2::50", OURS), None),
    ("NA for another address", na(OTHER, "2001:2::51", OTHER), None),
    ("NA that is not on-link (hop limit 64)", na(OTHER, "2001:2::50", OTHER, hlim=64), None),
    ("DAD solicitation (a standby's probe)", ns_dad(OTHER, "2001:2::50"), None),
]


@pytest.mark.parametrize(("frame", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_is_a_claim(frame: Packet, expected: str | None) -> None:
    heard = parse_frame(bytes(frame))
    assert (claimer(heard, HELD) if heard is not None else None) == expected


def test_na_with_a_source_option_first_still_finds_the_target_option() -> None:
    frame = (
        Ether(dst="33:33:00:00:00:01", src=OTHER)
        / IPv6(src="2001:2::50", dst="ff02::1", hlim=255)
        / ICMPv6ND_NA(tgt="2001:2::50", R=0, S=0, O=1)
        / ICMPv6NDOptSrcLLAddr(lladdr=ASKER)
        / ICMPv6NDOptDstLLAddr(lladdr=OTHER)
    )
    heard = parse_frame(bytes(frame))
    assert heard is not None and heard.lladdr == OTHER


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 13, bytes(arp(1, OTHER, "198.18.0.50", "198.18.0.50"))[:41], b"\xff" * 100],
)
def test_malformed_frames_are_nothing(data: bytes) -> None:
    assert parse_frame(data) is None


# ------------------------------------------------------------------- defend or cease

WALL = datetime(2026, 1, 1, tzinfo=UTC)


def run(events: list[tuple[float, str]], fenced: bool = False) -> list[Act]:
    state: Conflicts | None = None
    acts = []
    for at, mac in events:
        state, act = on_conflict(state, HELD4, mac, at, WALL, fenced=fenced)
        acts.append(act)
    return acts


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([(100.0, OTHER)], [Act.DEFEND]),
        # One announcement is a request and a reply: one conflict, defended once.
        ([(100.0, OTHER), (100.001, OTHER)], [Act.DEFEND, Act.NONE]),
        # Another conflict within DEFEND_INTERVAL of the previous one: cease.
        ([(100.0, OTHER), (101.0, OTHER)], [Act.DEFEND, Act.CEASE]),
        ([(100.0, OTHER), (100.0 + SAME_ROUND_S, OTHER)], [Act.DEFEND, Act.CEASE]),
        ([(100.0, OTHER), (100.0 + DEFEND_INTERVAL_S - 0.01, OTHER)], [Act.DEFEND, Act.CEASE]),
        # A quiet DEFEND_INTERVAL in between: defended again, every time.
        (
            [(100.0, OTHER), (100.0 + DEFEND_INTERVAL_S, OTHER), (120.5, OTHER)],
            [Act.DEFEND, Act.DEFEND, Act.DEFEND],
        ),
        # A second claimer at once is a second conflict, not the same announcement.
        ([(100.0, OTHER), (100.001, ASKER)], [Act.DEFEND, Act.CEASE]),
        # After a cease, the episode goes on: another claim soon is another cease.
        ([(100.0, OTHER), (101.0, OTHER), (103.0, OTHER)], [Act.DEFEND, Act.CEASE, Act.CEASE]),
    ],
)
def test_defend_once_then_cease(events: list[tuple[float, str]], expected: list[Act]) -> None:
    assert run(events) == expected


def test_a_holder_cut_off_from_the_api_ceases_at_the_first_conflict() -> None:
    assert run([(100.0, OTHER)], fenced=True) == [Act.CEASE]


def test_the_report_changes_once_per_episode_and_step() -> None:
    """What is reported (mac, address, start, defended) stays the same for a claimer that
    is defended again and again, so it costs one status write per episode."""
    first, act = on_conflict(None, HELD4, OTHER, 100.0, WALL)
    assert act is Act.DEFEND and first.defended and not first.ceased
    again, act = on_conflict(first, HELD4, OTHER, 115.0, datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
    assert act is Act.DEFEND
    assert (again.mac, again.started_wall, again.defended) == (OTHER, WALL, True)
    ceased, act = on_conflict(again, HELD4, OTHER, 116.0, WALL)
    assert act is Act.CEASE and not ceased.defended and ceased.ceased
    assert ceased.current(116.0 + FORGET_AFTER_S - 0.1)
    assert not ceased.current(116.0 + FORGET_AFTER_S)
    # Quiet for FORGET_AFTER_S: a new episode, with its own start.
    later = datetime(2026, 1, 1, 0, 5, tzinfo=UTC)
    fresh, act = on_conflict(ceased, HELD4, OTHER, 116.0 + FORGET_AFTER_S, later)
    assert act is Act.DEFEND and fresh.started_wall == later and fresh.defended


# ------------------------------------------------------------------- the kernel filter

PKTTYPE_HOST, PKTTYPE_BROADCAST, PKTTYPE_OUTGOING = 0, 1, 4


def bpf_accepts(program: list[tuple[int, int, int, int]], data: bytes, pkttype: int) -> bool:
    """A classic BPF interpreter for the few instructions ``claim_filter`` uses (written
    from linux/filter.h); an out-of-bounds load drops the frame, as the kernel does."""
    acc, pc = 0, 0
    for _ in range(10_000):
        code, jt, jf, k = program[pc]
        if code in (0x20, 0x28, 0x30):  # ld/ldh/ldb [k]
            size = {0x20: 4, 0x28: 2, 0x30: 1}[code]
            if k == 0xFFFFF004:
                acc = pkttype
            elif k + size > len(data):
                return False
            else:
                acc = int.from_bytes(data[k : k + size], "big")
            pc += 1
        elif code == 0x15:  # jeq #k
            pc += 1 + (jt if acc == k else jf)
        elif code == 0x05:  # ja
            pc += 1 + k
        elif code == 0x06:  # ret #k
            return k > 0
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")
    raise AssertionError("the program did not end")


def may_claim(data: bytes, held: list[IPAddress]) -> bool:
    heard = parse_frame(data)
    return heard is not None and heard.ip in held and not heard.ip.is_unspecified


@pytest.mark.parametrize("frame", [c[1] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize(
    "held", [[HELD4, HELD6], [HELD4], [HELD6], []], ids=["both", "v4", "v6", "none"]
)
def test_the_kernel_filter_passes_exactly_the_frames_that_may_claim(
    frame: Packet, held: list[IPAddress]
) -> None:
    data = bytes(frame)
    program = claim_filter(held)
    assert bpf_accepts(program, data, PKTTYPE_BROADCAST) == may_claim(data, held)
    assert not bpf_accepts(program, data, PKTTYPE_OUTGOING)  # our own frames never


def test_the_kernel_filter_scales_and_falls_back_to_coarse() -> None:
    many = [ipaddress.ip_address(f"198.18.{i // 250}.{i % 250 + 1}") for i in range(1000)]
    program = claim_filter(many)
    assert len(program) <= 4096
    assert all(0 <= jt <= 255 and 0 <= jf <= 255 for _, jt, jf, _ in program)
    data = bytes(arp(1, OTHER, str(many[-1]), str(many[-1])))
    assert bpf_accepts(program, data, PKTTYPE_BROADCAST)
    huge = [ipaddress.ip_address(f"2001:2::{i:x}") for i in range(1, 600)]
    coarse = claim_filter(huge)
    assert len(coarse) < 40  # every NA passes; claimer decides
    assert bpf_accepts(coarse, bytes(na(OTHER, "2001:2::ffff", OTHER)), PKTTYPE_HOST)
    assert not bpf_accepts(coarse, bytes(ns_dad(OTHER, "2001:2::1")), PKTTYPE_HOST)
    assert struct.calcsize("HBBI") == 8  # the kernel's struct sock_filter


# ------------------------------------------------------------------- back-off


def test_backoff_doubles_to_the_cap_and_resets_on_success() -> None:
    assert [delay_for(n) for n in range(0, 8)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    b: Backoff[str] = Backoff()
    assert b.pending("a", 0.0) is None
    assert b.failed("a", 10.0, "refused") == 1.0
    assert b.pending("a", 10.5) == "refused" and b.pending("a", 11.0) is None
    assert b.failed("a", 11.0, "again") == 2.0
    assert b.pending("a", 12.9) == "again" and b.pending("b", 12.9) is None
    assert b.failures("a") == 2
    b.succeeded("a")
    assert b.failures("a") == 0 and b.failed("a", 20.0, "x") == 1.0
    b.keep_only(["b"])
    assert b.failures("a") == 0


def test_backoff_jitter_is_bounded() -> None:
    b: Backoff[int] = Backoff(jitter=0.25, random=lambda: 1.0)
    waits = [b.failed("a", 0.0, 0) for _ in range(10)]
    assert waits[0] == 1.25 and max(waits) == 30.0 * 1.25
    with pytest.raises(ValueError, match="jitter"):
        Backoff(jitter=2.0)
    with pytest.raises(ValueError, match="first_s"):
        Backoff(first_s=0.0)


# ------------------------------------------------------------------- the report


def test_the_view_carries_the_claim_and_is_written_once_per_step() -> None:
    """``foreignClaim`` rides on the holder's view; the same claim again is no write, a
    cease (defended false, error, holderHeard) is one, a new episode is one."""
    body = {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": "web", "uid": "u"},
        "spec": {"addresses": ["198.18.0.50/24"], "nodes": ["node1", "node2"]},
        "status": {"activeNode": "node1", "epoch": 2},
    }
    obs = observe(body)
    claim = ForeignClaim(OTHER, "198.18.0.50", WALL, defended=True)
    holding = Outcome(holds_all=True, holds_any=True, interface="eth1")
    plain = view_for("node1", obs, holding, WALL)
    defended = view_for("node1", obs, replace(holding, foreign_claim=claim), WALL)
    assert defended is not None and defended.foreign_claim == claim
    assert needs_write(plain, defended)
    later = datetime(2026, 1, 1, 0, 0, 5, tzinfo=UTC)
    again = view_for("node1", obs, replace(holding, foreign_claim=claim), later)
    assert not needs_write(defended, again)
    ceased_claim = replace(claim, defended=False)
    ceased = view_for(
        "node1",
        obs,
        Outcome(error="AddressInUse: x", heard=True, observed_at=WALL, foreign_claim=ceased_claim),
        later,
    )
    assert ceased is not None and ceased.state is NodeState.ERROR
    assert (ceased.holder_heard, ceased.foreign_claim) == (True, ceased_claim)
    assert needs_write(defended, ceased)
    episode = replace(holding, foreign_claim=replace(claim, at=later))
    assert needs_write(defended, view_for("node1", obs, episode, later))
    # Cleared: the patch sends null for it (RFC 7386), so the old claim does not linger.
    assert needs_write(defended, plain)
    assert plain is not None
    assert patch_body("node1", plain)["status"]["nodes"]["node1"]["foreignClaim"] is None
