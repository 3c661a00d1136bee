"""Real ``aliasip-agent run`` processes, the wire sniffed from other namespaces:

- announcements belong to holding: once the holder's kernel has lost the address (the
  AliasIP deleted mid-announcement, or deleted and re-created for another node), not one
  more announcement for it leaves the old holder;
- foreign claims (RFC 5227 2.4 (b)): one claim is logged, reported and defended with
  exactly one announcement; a host that keeps claiming makes the holder cease (its alias
  deleted, ``error`` ``AddressInUse`` with ``holderHeard``) and not take it back while the
  claimer answers; requests for the address and probes are not claims.

Frames are built with scapy here (independently of the agent's builders) and decoded
with scapy from the capture.
"""

from __future__ import annotations

import time
from typing import Any

from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Host
from aliasip_lab.nsenter import netns
from tests.agent.support import ALIAS, ALIASIPS, Cluster
from tests.api.support import eventually
from tests.netns.support import send

BCAST = "ff:ff:ff:ff:ff:ff"
STRANGER = "02:a1:00:00:00:99"  # a MAC no host of the LAN has


def create(lab: Cluster, nodes: list[str], count: int = 5, interval_ms: int = 300) -> None:
    body = {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": "web"},
        "spec": {
            "addresses": [f"{ALIAS}/24"],
            "nodes": nodes,
            "announce": {"count": count, "intervalMs": interval_ms},
        },
    }
    reply = lab.api.post(ALIASIPS, body)
    assert reply.status == 201, reply.body


def delete(lab: Cluster) -> None:
    reply = lab.api.delete(f"{ALIASIPS}/web")
    assert reply.status == 200, reply.body


def client_capture(lab: Cluster) -> Capture:
    with netns(lab.lan.client.netns):
        return Capture(lab.lan.client.ifname)


def garp(mac: str, op: int = 1, psrc: str = ALIAS, pdst: str = ALIAS) -> Packet:
    hwdst = mac if op == 2 else "00:00:00:00:00:00"
    return Ether(dst=BCAST, src=mac) / ARP(op=op, hwsrc=mac, psrc=psrc, hwdst=hwdst, pdst=pdst)


def announcements(frames: list[Frame], mac: str) -> list[Frame]:
    """Broadcast ARP frames from ``mac`` whose sender is the alias (announcements; the
    kernel's replies to a request are unicast and do not count)."""
    found = []
    for f in frames:
        if f.ethertype != 0x0806 or f.src_mac != mac:
            continue
        frame = Ether(f.data)
        if frame.dst == BCAST and frame[ARP].psrc == ALIAS:
            found.append(f)
    return found


def wait_gone(lab: Cluster, node: str) -> float:
    """Poll the node's kernel every few ms until the alias is gone; the wall time then."""
    eventually(lambda: not lab.holds(node), timeout=10, interval=0.005)
    return time.time()


# ------------------------------------------------------------------ announcements


def test_no_announcement_after_the_aliasip_is_deleted(lab: Cluster) -> None:
    """Failure 4: deleted while its 5 rounds (300 ms apart) are still being sent."""
    node1 = lab.lan.node("node1")
    create(lab, ["node1", "node2"])
    lab.set_active("node1", 1)
    lab.start_agent("node1")
    with client_capture(lab) as capture:
        lab.wait_holds("node1", True)
        delete(lab)
        gone = wait_gone(lab, "node1")
        time.sleep(2.0)  # past every round the hold had left (4 x 300 ms)
        frames = capture.frames()
    sent = announcements(frames, node1.mac)
    assert sent, "the hold's first round was never seen"
    late = [f.at - gone for f in sent if f.at > gone]
    assert late == [], f"announced {len(late)} frames after its kernel lost the alias"
    assert "event=announce-stopped" in lab.log("node1")


def test_no_announcement_after_delete_and_recreate_for_another_node(lab: Cluster) -> None:
    """Failure 4: the same name, a new object (a new uid) naming node2 only."""
    node1, node2 = lab.lan.node("node1"), lab.lan.node("node2")
    create(lab, ["node1", "node2"])
    lab.set_active("node1", 1)
    lab.start_agent("node1")
    lab.start_agent("node2")
    with client_capture(lab) as capture:
        lab.wait_holds("node1", True)
        delete(lab)
        create(lab, ["node2"])
        lab.set_active("node2", 1)
        gone = wait_gone(lab, "node1")
        lab.wait_holds("node2", True)
        time.sleep(2.0)
        frames = capture.frames()
    assert announcements(frames, node1.mac)
    late = [f.at - gone for f in announcements(frames, node1.mac) if f.at > gone]
    assert late == [], f"node1 announced {len(late)} frames after its kernel lost the alias"
    assert announcements(frames, node2.mac)  # the new holder announces
    assert lab.holds("node2") and not lab.holds("node1")


# ------------------------------------------------------------------ foreign claims


def held_quietly(lab: Cluster) -> Host:
    """node1 holds the alias; its own rounds (3 at 200 ms) are over."""
    create(lab, ["node1", "node2"], count=3, interval_ms=200)
    lab.set_active("node1", 1)
    lab.start_agent("node1")
    lab.wait_view("node1", "holding", 1)
    time.sleep(1.0)
    return lab.lan.node("node1")


def claim_view(lab: Cluster) -> dict[str, Any] | None:
    claim: dict[str, Any] | None = lab.view("node1").get("foreignClaim")
    return claim


def test_one_claim_is_reported_and_defended_with_one_announcement(lab: Cluster) -> None:
    node1 = held_quietly(lab)
    with client_capture(lab) as capture:
        claimed_at = time.time()
        send(lab.lan.client, [garp(STRANGER)])  # ONE gratuitous ARP from another MAC
        claim = eventually(lambda: claim_view(lab), timeout=5, interval=0.05)
        time.sleep(1.5)  # any further announcement would be out by now
        frames = capture.frames()
    assert claim["mac"] == STRANGER and claim["address"] == ALIAS
    assert claim["defended"] is True
    assert lab.view("node1")["state"] == "holding"
    assert lab.holds("node1")
    log = lab.log("node1")
    assert f"event=foreign-claim node=node1 address={ALIAS} mac={STRANGER}" in log
    assert "action=defend" in log and "action=cease" not in log
    defence = [Ether(f.data)[ARP] for f in announcements(frames, node1.mac) if f.at > claimed_at]
    # One announcement: a gratuitous request and a gratuitous reply (see announce.py).
    assert sorted(int(a.op) for a in defence) == [1, 2], defence
    assert all(a.hwsrc == node1.mac and a.pdst == ALIAS for a in defence)


def test_a_host_that_keeps_claiming_makes_the_holder_cease(lab: Cluster) -> None:
    """The client takes the alias itself (its kernel answers for it) and announces it
    twice, a second apart: the holder defends the first, ceases at the second, and does
    not take the address back while the claimer answers (its retries probe first)."""
    held_quietly(lab)
    client = lab.lan.client
    lab.lan.run(client, "ip", "addr", "add", f"{ALIAS}/32", "dev", client.ifname)
    send(client, [garp(client.mac), garp(client.mac, op=2)])  # one announcement
    eventually(lambda: claim_view(lab), timeout=5, interval=0.05)
    assert lab.holds("node1")
    time.sleep(1.0)
    send(client, [garp(client.mac), garp(client.mac, op=2)])  # and again, within 10 s
    lab.wait_holds("node1", False, timeout=5)

    def ceased() -> dict[str, Any] | None:
        view = lab.view("node1")
        return view if view.get("state") == "error" else None

    view = eventually(ceased, timeout=5, interval=0.05)
    assert view["message"].startswith(f"AddressInUse: {client.mac} claims {ALIAS}"), view
    assert view["holderHeard"] is True
    assert view["foreignClaim"]["mac"] == client.mac
    assert view["foreignClaim"]["defended"] is False
    time.sleep(4.0)  # retries at about 1 and 2-3 s: each probe hears the claimer
    assert not lab.holds("node1")
    log = lab.log("node1").split("action=cease")[-1]
    assert "event=hold " not in log  # never added back: no flapping
    assert "code=AddressInUse" in log  # a retry probed, and heard the claimer
    assert lab.view("node1")["state"] == "error"
    assert ALIAS in lab.lan.run(client, "ip", "-o", "addr", "show").stdout  # untouched


def test_requests_for_the_address_and_probes_are_not_claims(lab: Cluster) -> None:
    node1 = held_quietly(lab)
    client, node2 = lab.lan.client, lab.lan.node("node2")
    with client_capture(lab) as capture:
        start = time.time()
        send(client, [garp(client.mac, psrc=str(client.ipv4.ip))])  # who has the alias?
        send(node2, [garp(node2.mac, psrc="0.0.0.0")])  # a standby's probe
        time.sleep(1.5)
        frames = capture.frames()
    assert "event=foreign-claim" not in lab.log("node1")
    assert claim_view(lab) is None
    assert lab.view("node1")["state"] == "holding" and lab.holds("node1")
    assert [f for f in announcements(frames, node1.mac) if f.at > start] == []
    # The kernel answered the request (unicast), as it always does.
    replies = [
        Ether(f.data)
        for f in frames
        if f.ethertype == 0x0806 and f.src_mac == node1.mac and f.at > start
    ]
    assert any(r.dst == client.mac and r[ARP].op == 2 for r in replies)
