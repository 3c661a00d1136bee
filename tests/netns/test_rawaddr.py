"""The agent's own adds and deletes on a real kernel (raw rtnetlink, ``netlink.addition``
and ``netlink.removal``): exclusive creation, idempotent deletion, the label as proof of
ownership, and kernel refusals as clear errors."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent import errors
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import decide_placement, parse_request
from tests.netns.support import kernel_addresses


@pytest.mark.parametrize("alias", ["198.18.0.50", "2001:2::50"], ids=["ipv4", "ipv6"])
def test_add_is_exclusive_and_delete_is_idempotent(lan: Lan, alias: str) -> None:
    node = lan.nodes[0]
    with netns(node.netns):
        netlink = NetlinkHost()
    try:
        placement = decide_placement(parse_request(alias), netlink.snapshot())
        assert netlink.add(placement) is True
        assert netlink.add(placement) is False  # EEXIST: the kernel had it
        found = [a for a in kernel_addresses(node) if a.address == alias]
        assert len(found) == 1 and found[0].proto == 0xA1
        (held,) = netlink.snapshot().owned()
        assert netlink.delete(held) is True
        assert netlink.delete(held) is False  # EADDRNOTAVAIL: already gone
        assert alias not in {a.address for a in kernel_addresses(node)}
    finally:
        netlink.close()


def test_delete_spares_an_address_whose_label_is_not_ours_any_more(lan: Lan) -> None:
    """The label is the IPv4 mark the kernel checks on delete: an address that another
    tool re-added under its own label in the meantime is not ours to delete."""
    node = lan.nodes[0]
    with netns(node.netns):
        netlink = NetlinkHost()
    try:
        placement = decide_placement(parse_request("198.18.0.50"), netlink.snapshot())
        netlink.add(placement)
        (held,) = netlink.snapshot().owned()
        lan.run(node, "ip", "addr", "del", "198.18.0.50/24", "dev", "eth1")
        lan.run(node, "ip", "addr", "add", "198.18.0.50/24", "dev", "eth1", "label", "eth1:x")
        assert netlink.delete(held) is False
        assert "198.18.0.50" in {a.address for a in kernel_addresses(node)}
    finally:
        netlink.close()


def test_a_refused_add_is_a_kernel_error_naming_the_address(lan: Lan) -> None:
    node = lan.nodes[0]
    with netns(node.netns):
        netlink = NetlinkHost()
    try:
        placement = decide_placement(parse_request("198.18.0.50"), netlink.snapshot())
        gone = replace(placement, index=2**31 - 1)  # no such link (a link deleted meanwhile)
        with pytest.raises(
            errors.KernelError, match=r"adding 198\.18\.0\.50/24 on eth1 failed: No such device"
        ):
            netlink.add(gone)
        assert "198.18.0.50" not in {a.address for a in kernel_addresses(node)}
    finally:
        netlink.close()
