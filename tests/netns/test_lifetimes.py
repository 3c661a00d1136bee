"""The dead-man switch on a real kernel: an alias added with a lifetime lives only while
it is renewed (docs/design.md R9); renewing never brings back a deleted alias and never
touches an address aliasip did not add."""

from __future__ import annotations

import time

import pytest

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import decide_placement, parse_request
from tests.netns.support import kernel_addresses

WINDOW_S = 2.0  # deadman.expiry_window_s(1): the lifetime plus the kernel's own check


def _present(lan: Lan, address: str) -> bool:
    return address in {a.address for a in kernel_addresses(lan.nodes[0])}


def _gone_within(lan: Lan, address: str, limit_s: float) -> float:
    """Seconds until ``address`` left the kernel, polled every 10 ms up to ``limit_s``."""
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        if not _present(lan, address):
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"{address} still there after {limit_s} s")


@pytest.mark.parametrize("alias", ["198.18.0.50", "2001:2::50"], ids=["ipv4", "ipv6"])
def test_an_alias_nobody_renews_expires_within_the_window(lan: Lan, alias: str) -> None:
    with netns(lan.nodes[0].netns):
        netlink = NetlinkHost(lifetime_s=1)
    try:
        placement = decide_placement(parse_request(alias), netlink.snapshot())
        assert netlink.add(placement)
        assert _present(lan, alias)
        assert _gone_within(lan, alias, WINDOW_S + 0.5) <= WINDOW_S
    finally:
        netlink.close()


@pytest.mark.parametrize("alias", ["198.18.0.50", "2001:2::50"], ids=["ipv4", "ipv6"])
def test_renewed_it_stays_with_its_mark_and_unrenewed_it_goes(lan: Lan, alias: str) -> None:
    before = [a for a in kernel_addresses(lan.nodes[0])]
    with netns(lan.nodes[0].netns):
        netlink = NetlinkHost(lifetime_s=1)
    try:
        placement = decide_placement(parse_request(alias), netlink.snapshot())
        netlink.add(placement)
        for _ in range(12):  # three lifetimes, renewed four times each
            time.sleep(0.25)
            assert netlink.renew_lifetimes() == 1
        kept = [a for a in kernel_addresses(lan.nodes[0]) if a.address == alias]
        assert len(kept) == 1 and kept[0].proto == 0xA1
        assert netlink.snapshot().owned()[0].address == placement.address
        _gone_within(lan, alias, WINDOW_S + 0.5)
        assert kernel_addresses(lan.nodes[0]) == before  # the stationary ones untouched
    finally:
        netlink.close()


def test_renewing_never_brings_back_a_deleted_alias(lan: Lan) -> None:
    with netns(lan.nodes[0].netns):
        netlink = NetlinkHost(lifetime_s=1)
    try:
        placement = decide_placement(parse_request("198.18.0.50"), netlink.snapshot())
        netlink.add(placement)
        (held,) = netlink.snapshot().owned()
        assert netlink.delete(held)
        assert netlink.renew_lifetimes() == 0
        assert not _present(lan, "198.18.0.50")
    finally:
        netlink.close()


def test_a_longer_renewal_outlives_the_shipped_lifetime_and_none_is_permanent(lan: Lan) -> None:
    with netns(lan.nodes[0].netns):
        netlink, permanent = NetlinkHost(lifetime_s=1), NetlinkHost()
    try:
        netlink.add(decide_placement(parse_request("198.18.0.50"), netlink.snapshot()))
        permanent.add(decide_placement(parse_request("198.18.0.51"), permanent.snapshot()))
        assert permanent.renew_lifetimes() == 0  # no lifetime of its own: nothing to renew
        assert netlink.renew_lifetimes(4) == 2  # a handover: every marked alias
        time.sleep(WINDOW_S + 0.2)
        assert _present(lan, "198.18.0.50") and _present(lan, "198.18.0.51")
        assert netlink.renew_lifetimes(1) == 2
        _gone_within(lan, "198.18.0.50", WINDOW_S + 0.5)
    finally:
        netlink.close()
        permanent.close()
