"""The fine dead-man switch on a real kernel: nftables sets with timeouts mute an alias
whose agent stops refreshing, and nothing revives it.

The alias is added with iproute2; the wire is asked by the lab's observer (broadcast ARP
and NDP requests from its own namespace, every answering MAC), not by a client cache."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest

from aliasip_lab.lan import Lan, ip
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.mute import TABLE, KernelMute, Refresher
from aliasip_nodeagent.nft import NftError
from tests.netns.test_observer import observe

ALIAS4 = "198.18.0.50"
ALIAS6 = "2001:2::50"
ADDRESSES = [ipaddress.ip_address(ALIAS4), ipaddress.ip_address(ALIAS6)]
WINDOW_MS = 200  # the shipped default: 100 ms heartbeats x (3 misses - 1)


def answered(report: dict[str, Any], alias: str) -> int:
    return int(report["aliases"][alias]["answered"])


def test_a_refreshed_alias_answers_and_one_left_alone_is_muted_for_good(lan: Lan) -> None:
    node1 = lan.nodes[0]
    for cidr in (f"{ALIAS4}/24", f"{ALIAS6}/64"):
        ip("-n", node1.netns, "addr", "add", cidr, "dev", node1.ifname, "nodad")
    lost: list[Any] = []
    with netns(node1.netns):
        mute = KernelMute(WINDOW_MS)
        mute.install()
        mute.install()  # idempotent: an agent restart keeps the sets' elements
        for address in ADDRESSES:
            mute.keep(address)
        refresher = Refresher("node1", mute, lost.extend)
        refresher.start()
    try:
        report = observe(lan, ALIAS4, ALIAS6, seconds=1.0)  # five windows, refreshed
        for alias in (ALIAS4, ALIAS6):
            seen = report["aliases"][alias]
            assert seen["macs"] == [node1.mac] and seen["gaps"] == [], seen
        assert refresher.refreshes >= 15  # every 50 ms
    finally:
        refresher.stop()  # the agent stops (frozen, killed): nobody refreshes
    stopped = time.monotonic()
    time.sleep(WINDOW_MS / 1000 + 0.05)
    report = observe(lan, ALIAS4, ALIAS6, seconds=0.5)
    assert answered(report, ALIAS4) == 0 and answered(report, ALIAS6) == 0, report
    assert time.monotonic() - stopped < 2.0  # the coarse switch (lifetimes) takes 2 s
    # Still in the kernel (no lifetime here), but muted: the thawed agent cannot revive it.
    with netns(node1.netns):
        assert all(mute.muted(a) for a in ADDRESSES)
        refresher = Refresher("node1", mute, lost.extend)
        refresher.start()
    try:
        deadline = time.monotonic() + 2
        while len(lost) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(map(str, lost)) == sorted([ALIAS4, ALIAS6])
        report = observe(lan, ALIAS4, ALIAS6, seconds=0.3)
        assert answered(report, ALIAS4) == 0 and answered(report, ALIAS6) == 0, report
    finally:
        refresher.stop()
    # While the stall's aliases are still held, nothing is kept, nor by a restarted
    # agent: it adopts both as muted (handed back for deletion), never revived.
    with netns(node1.netns):
        with pytest.raises(NftError):
            mute.keep(ADDRESSES[0])
        mute.close()
        restarted = KernelMute(WINDOW_MS)
        restarted.install()
        assert restarted.adopt(ADDRESSES) == ADDRESSES
        with pytest.raises(NftError):
            restarted.keep(ADDRESSES[0])
    # Deleted from the kernel and forgotten (the agent does this with what is lost): a
    # fresh decision keeps one again (after a fresh read and a probe, in the agent).
    for cidr in (f"{ALIAS4}/24", f"{ALIAS6}/64"):
        ip("-n", node1.netns, "addr", "del", cidr, "dev", node1.ifname)
    with netns(node1.netns):
        restarted.sync([])
        restarted.keep(ADDRESSES[0])
        assert not restarted.muted(ADDRESSES[0]) and not restarted.muted(ADDRESSES[1])
    ip("-n", node1.netns, "addr", "add", f"{ALIAS4}/24", "dev", node1.ifname)
    ip("-n", node1.netns, "addr", "add", f"{ALIAS6}/64", "dev", node1.ifname, "nodad")
    with netns(node1.netns):
        refresher = Refresher("node1", restarted, lost.extend)
        refresher.start()
        # Adopted by the next agent while live: kept, nothing handed back.
        again = KernelMute(WINDOW_MS)
        assert again.adopt([ADDRESSES[0]]) == [] and again.kept() == {ADDRESSES[0]}
        again.close()
    try:
        report = observe(lan, ALIAS4, ALIAS6, seconds=0.3)
        # ALIAS6 was added without being kept: not held, so never muted (see below).
        assert answered(report, ALIAS4) > 0 and answered(report, ALIAS6) > 0, report
    finally:
        refresher.stop()
        restarted.close()


def test_the_stationary_address_and_unheld_addresses_are_never_touched(lan: Lan) -> None:
    node1 = lan.nodes[0]
    ip("-n", node1.netns, "addr", "add", f"{ALIAS4}/24", "dev", node1.ifname)
    with netns(node1.netns):
        mute = KernelMute(WINDOW_MS)
        mute.install()
        mute.keep(ADDRESSES[0])
        mute.forget(ADDRESSES[0])  # released: no longer held, so never muted
        assert not mute.muted(ADDRESSES[0]) and mute.kept() == frozenset()
        mute.close()
    time.sleep(WINDOW_MS / 1000 + 0.05)
    report = observe(lan, ALIAS4, str(node1.ipv4.ip), seconds=0.3)
    assert answered(report, ALIAS4) > 0 and answered(report, str(node1.ipv4.ip)) > 0
    listed = lan.run(node1, "nft", "list", "table", "inet", TABLE).stdout
    assert "elements" not in listed, listed
