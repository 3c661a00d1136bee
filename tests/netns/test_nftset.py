"""Set-element transactions over raw netlink on a real kernel: what ``nft`` lists after
them, and all-or-nothing when one op fails (the dead-man refresh relies on it)."""

from __future__ import annotations

import ipaddress

import pytest

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.mute import TABLE, ruleset
from aliasip_nodeagent.nft import Nft, NftError
from aliasip_nodeagent.nftset import ElementOp, ElementSocket

A = ipaddress.ip_address("198.18.0.61")
B = ipaddress.ip_address("198.18.0.62")
C = ipaddress.ip_address("2001:2::63")


def test_adds_and_deletes_are_what_nft_lists(lan: Lan) -> None:
    node = lan.nodes[0]
    with netns(node.netns):
        nft, sock = Nft(), ElementSocket()
        try:
            nft.run(ruleset())
            sock.run(
                [
                    ElementOp("add", "inet", TABLE, "held4", (A, B)),
                    ElementOp("add", "inet", TABLE, "held6", (C,)),
                    ElementOp("add", "inet", TABLE, "alive", (2, 10), 60_000),
                    ElementOp("add", "arp", TABLE, "alive", (4,), 60_000),
                ]
            )
            sock.run([ElementOp("delete", "inet", TABLE, "held4", (B,))])
            listed = nft.run(f"list table inet {TABLE}") + nft.run(f"list table arp {TABLE}")
        finally:
            nft.close()
            sock.close()
    assert str(A) in listed and str(B) not in listed and str(C) in listed, listed
    assert "ipv4 timeout 1m" in listed and "ipv6 timeout 1m" in listed, listed
    assert "elements = { 4 timeout 1m" in listed, listed


def test_a_failing_op_changes_nothing_and_says_which(lan: Lan) -> None:
    node = lan.nodes[0]
    with netns(node.netns):
        nft, sock = Nft(), ElementSocket()
        try:
            nft.run(ruleset())
            sock.run([ElementOp("add", "inet", TABLE, "held4", (A,))])
            with pytest.raises(NftError, match=rf"delete element inet {TABLE} held4 {{ {B} }}"):
                sock.run(
                    [
                        ElementOp("add", "inet", TABLE, "held6", (C,)),
                        ElementOp("delete", "inet", TABLE, "held4", (A,)),
                        ElementOp("delete", "inet", TABLE, "held4", (B,)),  # never there
                        ElementOp("add", "arp", TABLE, "held4", (B,)),
                    ]
                )
            # The socket goes on: the next batch's answers are its own.
            sock.run([ElementOp("add", "arp", TABLE, "held4", (A,))])
            listed = nft.run(f"list table inet {TABLE}") + nft.run(f"list table arp {TABLE}")
        finally:
            nft.close()
            sock.close()
    assert str(C) not in listed and str(B) not in listed, listed
    assert listed.count(str(A)) == 2, listed  # inet's was not deleted; arp's added after


def test_ops_say_what_they_are() -> None:
    assert (
        ElementOp("add", "arp", TABLE, "alive", (4,), 200).describe()
        == f"add element arp {TABLE} alive {{ 4 timeout 200ms }}"
    )
    with pytest.raises(ValueError, match="only an add"):
        ElementOp("delete", "inet", TABLE, "alive", (2,), 200)
    with pytest.raises(ValueError, match="at least one"):
        ElementOp("add", "inet", TABLE, "held4", ())
    with pytest.raises(ValueError, match="one byte"):
        ElementOp("add", "inet", TABLE, "alive", (300,))
