"""The wire observer and kernel truth on a real LAN of namespaces.

The observer (its own namespace on the LAN) hears every kernel that holds an address:
one MAC for one holder, two MACs in one round when two kernels hold it -- which the
client's prober, following its neighbour cache, cannot see. It records a gratuitous ARP
sent by another tool (arping), and kernel truth records an ``ip addr add/del`` with the
right node and times. Addresses are added with iproute2 here, not by aliasip."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aliasip_lab.capture import Capture
from aliasip_lab.kerneltruth import KernelTruth
from aliasip_lab.lan import Host, Lan, ip
from aliasip_lab.nsenter import netns
from aliasip_lab.observer import Running

ALIAS4 = "198.18.0.50"
ALIAS6 = "2001:2::50"


def observe(lan: Lan, *aliases: str, seconds: float = 0.5) -> dict[str, Any]:
    done = lan.run(
        lan.observer, sys.executable, "-m", "aliasip_lab.observer", *aliases,
        "--duration", str(seconds), "--json",
    )  # fmt: skip
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def add(host: Host, address: str) -> None:
    ip("-n", host.netns, "addr", "add", address, "dev", host.ifname, "nodad")


def test_one_holder_one_mac_for_ipv4_and_ipv6(lan: Lan) -> None:
    node1 = lan.nodes[0]
    add(node1, f"{ALIAS4}/24")
    add(node1, f"{ALIAS6}/64")
    report = observe(lan, ALIAS4, ALIAS6)
    assert report["source"] == ["198.18.0.101", "2001:2::65"]
    assert report["split_brain_rounds"] == 0
    for alias in (ALIAS4, ALIAS6):
        seen = report["aliases"][alias]
        assert seen["answered"] > 0, seen
        assert seen["macs"] == [node1.mac], seen
        assert seen["split_brain"] == [] and seen["announcements"] == []


def test_nobody_holds_it_every_round_is_a_gap(lan: Lan) -> None:
    seen = observe(lan, ALIAS4, seconds=0.2)["aliases"][ALIAS4]
    assert seen["answered"] == 0 and seen["rounds"] > 0
    assert [(g["leading"], g["open"]) for g in seen["gaps"]] == [(True, True)]


def test_two_kernels_holding_it_are_two_macs_in_one_round_the_client_sees_one(
    lan: Lan, tmp_path: Path
) -> None:
    node1, node2 = lan.nodes
    add(node1, f"{ALIAS4}/24")
    add(node2, f"{ALIAS4}/24")  # arp_ignore 0 (the default): both kernels answer ARP
    observer = Running(lan.observer.netns, [ALIAS4], 30.0, tmp_path / "events.jsonl")
    try:
        observer.wait_started()
        client = lan.run(
            lan.client, sys.executable, "-m", "aliasip_lab.prober", ALIAS4,
            "--duration", "0.5", "--json",
        )  # fmt: skip
        report = observer.finish()
    finally:
        observer.kill()
    probe = json.loads(client.stdout)
    # The client follows its neighbour cache: one MAC, never two for one echo request.
    assert probe["answered"] > 0 and probe["split_brain_samples"] == []
    assert len({s["mac"] for s in probe["segments"]}) == 1
    # The observer asks everyone: both kernels answer its broadcast questions.
    seen = report["aliases"][ALIAS4]
    assert seen["split_brain_rounds"] > 0, seen
    assert seen["split_brain"][0]["macs"] == sorted([node1.mac, node2.mac])
    assert any(e["event"] == "split-brain" for e in observer.events())


def test_a_gratuitous_arp_from_arping_is_recorded_as_an_announcement(
    lan: Lan, tmp_path: Path
) -> None:
    node2 = lan.nodes[1]
    observer = Running(lan.observer.netns, [ALIAS4], 30.0, tmp_path / "events.jsonl")
    try:
        observer.wait_started()
        before = time.time()
        lan.run(
            node2, "arping", "-q", "-U", "-c", "1", "-i", "eth1", "-S", ALIAS4, ALIAS4, check=False
        )  # fmt: skip  (no reply is expected to a gratuitous ARP)
        report = observer.finish(settle_s=0.2)
    finally:
        observer.kill()
    announcements = report["aliases"][ALIAS4]["announcements"]
    assert [(a["mac"], a["kind"]) for a in announcements] == [(node2.mac, "garp-request")]
    assert before <= announcements[0]["at"] <= time.time()


def test_the_observers_questions_are_not_claims(lan: Lan) -> None:
    """Seen from a node: ARP requests with the observer's own address and MAC as sender."""
    node1 = lan.nodes[0]
    with netns(node1.netns):
        capture = Capture(node1.ifname)
    with capture:
        observe(lan, ALIAS4, seconds=0.1)
        frames = capture.wait_for(lambda f: f.ethertype == 0x0806, 5)
    arps = [f.data for f in frames if f.ethertype == 0x0806]
    assert arps
    for data in arps:
        assert data[28:32] == bytes([198, 18, 0, 101]), data.hex()
        assert data[22:28].hex(":") == lan.observer.mac


def test_kernel_truth_records_add_and_delete_with_node_and_times(lan: Lan) -> None:
    node1, node2 = lan.nodes
    add(node1, "198.18.0.60/24")  # present before: recorded from the start
    truth = KernelTruth({h.name: h.netns for h in lan.nodes}).start()
    try:
        t0 = time.time()
        add(node2, f"{ALIAS4}/24")
        added = _until(lambda: truth.holders(ALIAS4) == ["node2"])
        t1 = time.time()
        ip("-n", node2.netns, "addr", "del", f"{ALIAS4}/24", "dev", node2.ifname)
        deleted = _until(lambda: truth.holders(ALIAS4) == [])
    finally:
        presences = truth.stop()
    assert added and deleted
    alias = [p for p in presences if p.address == ALIAS4]
    assert [p.node for p in alias] == ["node2"]
    assert t0 <= alias[0].since <= t1
    assert alias[0].until is not None and t1 <= alias[0].until <= time.time()
    before = [p for p in presences if p.address == "198.18.0.60"]
    assert [(p.node, p.since, p.until) for p in before] == [("node1", truth.started_at, None)]


def _until(check: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False
