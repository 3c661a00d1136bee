"""The fine dead-man switch on a real kernel: nftables sets with timeouts mute an alias
whose agent stops refreshing, and nothing revives it.

The alias is added with iproute2; the wire is asked by the lab's observer (broadcast ARP
and NDP requests from its own namespace, every answering MAC), not by a client cache."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from aliasip_lab.lan import Lan, ip
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.mute import TABLE, KernelMute, Refresher
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
    # A fresh decision keeps it again (after a fresh read and a probe, in the agent).
    # Adopted at start: a live one is kept, a muted one handed back for deletion.
    with netns(node1.netns):
        mute.keep(ADDRESSES[0])
        assert not mute.muted(ADDRESSES[0])
        assert mute.adopt(ADDRESSES) == [ADDRESSES[1]]
        refresher = Refresher("node1", mute, lost.extend)
        refresher.start()
    try:
        report = observe(lan, ALIAS4, ALIAS6, seconds=0.3)
        assert answered(report, ALIAS4) > 0 and answered(report, ALIAS6) == 0, report
    finally:
        refresher.stop()
        mute.close()


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
