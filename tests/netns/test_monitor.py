"""The monitoring path on a real kernel: two agents' heartbeat rooms in two node
namespaces on the lab LAN, exchanging signed UDP heartbeats; a host on the same LAN sends
forged, replayed, stale and malformed ones; a key rotation runs during the traffic; a
silent peer is told once, and heard again once."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.heartbeat import Heartbeat, KeyRing, encode
from aliasip_nodeagent.monitor import HELD_EVERY_S, Monitor
from aliasip_nodeagent.peers import Peer

PORT = 7947
K1, K2 = b"1" * 32, b"2" * 32


class Rings:
    """A ring a test swaps during the run (what the key directory's reload does)."""

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def __call__(self) -> KeyRing:
        return self.ring


def monitor(lan: Lan, index: int, rings: Rings, events: list[tuple[str, str]]) -> Monitor:
    host = lan.nodes[index]
    m = Monitor(
        host.name,
        rings,
        port=PORT,
        on_silent=lambda node: events.append(("silent", node)),
        on_heard=lambda node: events.append(("heard", node)),
    )
    with netns(host.netns):
        m.open()
    return m


def run_for(seconds: float, *monitors: Monitor, then: Callable[[], None] | None = None) -> None:
    async def go() -> None:
        for m in monitors:
            m._keys_read_at = None  # the rings are read on the first tick
        tasks = [asyncio.create_task(m.run()) for m in monitors]
        await asyncio.sleep(seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(go())
    if then is not None:
        then()


def pair(lan: Lan) -> tuple[Monitor, Monitor, Rings, Rings, list[tuple[str, str]]]:
    events: list[tuple[str, str]] = []
    r1, r2 = Rings(KeyRing({"k1": K1}, "k1")), Rings(KeyRing({"k1": K1}, "k1"))
    m1, m2 = monitor(lan, 0, r1, []), monitor(lan, 1, r2, events)
    n1, n2 = lan.nodes
    m1.set_peers({n2.name: Peer(n2.name, (n2.ipv4.ip,), held=(("uid-web", 4),))})
    m2.set_peers({n1.name: Peer(n1.name, (n1.ipv4.ip,))})
    m2.set_watched(frozenset({n1.name}))
    return m1, m2, r1, r2, events


def test_heartbeats_flow_and_a_rotation_during_traffic_loses_none(lan: Lan) -> None:
    m1, m2, r1, r2, events = pair(lan)
    beats: list[Heartbeat] = []
    m2._on_beat = beats.append
    try:
        run_for(0.5, m1, m2)
        assert m2.heard("node1") is True and m1.heard("node2") is True
        assert beats and all(b.node == "node1" for b in beats)
        # node2 is told what node1 holds at the start (and again when node1 first hears
        # node2), then, unchanged within a second, bare heartbeats: R10 acts on entries,
        # so a bare one claims nothing
        told = [b for b in beats if b.held]
        assert told[0] is beats[0] and told[0].held == (("uid-web", 4),)
        assert len(told) <= 2 and len(beats) - len(told) >= 2
        # The rotation: both accept k2, then node1 signs with it, then k1 is dropped.
        r2.ring = KeyRing({"k1": K1, "k2": K2}, "k1")
        run_for(0.3, m1, m2)
        r1.ring = KeyRing({"k1": K1, "k2": K2}, "k2")
        run_for(0.3, m1, m2)
        r2.ring = r1.ring = KeyRing({"k2": K2}, "k2")
        run_for(0.3, m1, m2)
        assert m2.heard("node1") is True
        assert events == []  # never silent
        assert set(m2.traffic.verdicts) == {"accepted"}
        assert m1.traffic.sent >= 10 and m1.traffic.send_errors == 0
    finally:
        m1.close()
        m2.close()


def test_forged_replayed_stale_and_malformed_heartbeats_are_rejected_and_counted(
    lan: Lan,
) -> None:
    m1, m2, _r1, _r2, events = pair(lan)
    client = lan.client
    target = (str(lan.nodes[1].ipv4.ip), PORT)
    try:
        run_for(0.4, m1, m2)
        heard = m2.traffic.verdicts["accepted"]
        spoof = KeyRing({"k1": b"x" * 32}, "k1")  # the right id, the wrong key
        now = time.time()
        datagrams = [
            encode(Heartbeat("node1", 1, 10**9, now, held=(("uid-web", 99),)), spoof),
            encode(Heartbeat("node1", m1.boot, 1, now), KeyRing({"k1": K1}, "k1")),  # replay
            encode(Heartbeat("node1", m1.boot, 10**9, now - 60), KeyRing({"k1": K1}, "k1")),
            encode(Heartbeat("node1", 1, 1, now), KeyRing({"k9": K1}, "k9")),
            b"AIPH1\x05garbage",
        ]
        with netns(client.netns):
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        beats: list[Heartbeat] = []
        m2._on_beat = beats.append

        def send() -> None:
            for data in datagrams:
                sender.sendto(data, target)

        send()
        run_for(0.3, m1, m2)
        sender.close()
        got = m2.traffic.verdicts
        assert got["forged"] == 1 and got["replayed"] == 1 and got["stale"] == 1
        assert got["unknown-key"] == 1 and got["malformed"] == 1
        assert all(b.node == "node1" and b.boot == m1.boot for b in beats)  # only the real ones
        assert all(b.held in ((), (("uid-web", 4),)) for b in beats)  # never the forged 99
        assert got["accepted"] > heard and events == []
    finally:
        m1.close()
        m2.close()


def test_a_silent_peer_is_told_once_and_heard_again_once(lan: Lan) -> None:
    m1, m2, *_rest, events = pair(lan)
    try:
        run_for(0.4, m1, m2)
        assert m2.heard("node1") is True
        run_for(0.6, m2)  # node1's agent sends nothing for 0.6 s (3 x 0.1 s missed)
        assert m2.heard("node1") is False
        assert events == [("silent", "node1")]
        run_for(0.3, m1, m2)
        assert m2.heard("node1") is True
        assert events == [("silent", "node1"), ("heard", "node1")]
        assert m2.heard("node3") is None  # never heard: not covered by the path
    finally:
        m1.close()
        m2.close()


def test_what_a_peer_is_told_is_repeated_now_and_then_and_at_once_when_it_changes(
    lan: Lan,
) -> None:
    m1, m2, *_rest = pair(lan)
    beats: list[Heartbeat] = []
    m2._on_beat = beats.append
    n1, n2 = lan.nodes
    m2.set_peers({})  # node2 sends nothing: node1 hears nobody
    try:
        run_for(HELD_EVERY_S + 0.35, m1, m2)  # told at the start and again HELD_EVERY_S later
        assert [b.held for b in beats if b.held] == [(("uid-web", 4),)] * 2
        m1.set_peers({n2.name: Peer(n2.name, (n2.ipv4.ip,), held=(("uid-web", 5),))})
        run_for(0.25, m1, m2)  # changed: told in the next interval
        assert [b.held for b in beats if b.held][-1] == (("uid-web", 5),)
        told = len([b for b in beats if b.held])
        m2.set_peers({n1.name: Peer(n1.name, (n1.ipv4.ip,))})  # node2 sends to node1
        run_for(0.25, m1, m2)  # node1 hears node2 for the first time: tells it at once
        assert len([b for b in beats if b.held]) == told + 1
        run_for(0.6, m2)  # node1's agent stalls; node2's heartbeats wait in its socket
        run_for(0.25, m1, m2)  # node1 hears node2 after a gap (a healed partition) ...
        assert len([b for b in beats if b.held]) == told + 2  # ... and tells it at once
    finally:
        m1.close()
        m2.close()
