"""The monitoring path's decisions, in-process: who a node's peers are and what each is
told (``peers``, pure), and what the agent does with a peer's heartbeat (R10: a peer
holding one of our aliases at a higher epoch makes us release it at once, and no pass
adds it back on the older view). The sockets are tested in tests/netns/test_monitor.py,
the processes in tests/agent/test_process.py."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

from aliasip_nodeagent.daemon import Agent, Settings
from aliasip_nodeagent.heartbeat import Heartbeat, KeyRing, Receiver, Verdict, decode
from aliasip_nodeagent.hoststate import HostState
from aliasip_nodeagent.monitor import Monitor
from aliasip_nodeagent.peers import (
    Peer,
    candidates,
    format_addresses,
    parse_addresses,
    plan_peers,
    service_addresses,
)
from aliasip_nodeagent.reconcile import observe
from tests.agent.test_inprocess import UID, FakeApi, FakeKernel, FakeWire, Rig, aliasip, rig
from tests.unit.hosts import iface, stationary

PORT = 7947


def obj(name: str, uid: str, nodes: list[str], active: str | None, address: str) -> dict[str, Any]:
    body = aliasip(active, 3, 10, address=address)
    body["metadata"].update(name=name, uid=uid)
    body["spec"]["nodes"] = nodes
    return body


HOST = HostState(
    interfaces=(
        iface("eth1", stationary("198.18.0.11/24"), stationary("2001:2::b/64")),
        iface("mgmt0", stationary("198.19.0.11/24")),
    )
)


def test_peers_are_the_nodes_sharing_an_aliasip_told_only_what_they_share() -> None:
    web = observe(obj("web", "u-web", ["node1", "node2"], "node1", "198.18.0.50/24"))
    db = observe(obj("db", "u-db", ["node3", "node1"], "node1", "2001:2::50/64"))
    other = observe(obj("other", "u-o", ["node4", "node5"], "node4", "198.18.0.60/24"))
    watched = observe(obj("watched", "u-w", ["node6", "node1"], "node6", "198.18.0.61/24"))
    mine = service_addresses([web, db], HOST)
    assert format_addresses(mine) == "198.18.0.11/24,2001:2::b/64"  # not the management one
    advertised = {
        "node2": parse_addresses("198.18.0.12/24,198.19.0.12/24"),
        "node3": parse_addresses("2001:2::d/64, junk"),
    }
    peers = plan_peers(
        "node1",
        [web, db, other, watched],
        {"u-web": 3, "u-db": 3},
        mine,
        lambda node: advertised.get(node, ()),
    )
    # node4 and node5 share nothing with node1; node6 holds what node1 stands by: node6
    # sends to node1, not the other way round
    assert set(peers) == {"node2", "node3"}
    assert peers["node2"].targets == (ipaddress.ip_address("198.18.0.12"),)  # service LAN only
    assert peers["node2"].held == (("u-web", 3),)  # not db: node2 is no candidate of it
    assert peers["node3"].targets == (ipaddress.ip_address("2001:2::d"),)
    assert peers["node3"].held == (("u-db", 3),)
    assert candidates(other) == {"node4", "node5"}


def test_a_peer_without_an_address_on_a_shared_subnet_gets_nothing_sent() -> None:
    web = observe(obj("web", "u-web", ["node1", "node2"], "node1", "198.18.0.50/24"))
    peers = plan_peers(
        "node1",
        [web],
        {},
        service_addresses([web], HOST),
        lambda node: parse_addresses("198.19.0.12/24"),
    )
    assert peers["node2"].targets == () and peers["node2"].held == ()


def monitored_rig(tmp_path: Path) -> Rig:
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "k1").write_bytes(b"k" * 32)
    kernel, wire = FakeKernel(), FakeWire()
    body = aliasip("node1", 1, 10)
    agent = Agent(
        Settings(node="node1", probe_wait_s=0.0, heartbeat_keys=str(keys)),
        FakeApi(body),  # type: ignore[arg-type]
        kernel,
        wire,
        rig(None).agent._executor,
    )
    assert agent.monitoring.monitor is not None  # configured; no socket is opened in these tests
    agent.synced = True
    r = Rig(agent, kernel, wire, agent.kube)  # type: ignore[arg-type]
    agent.claims._open = rig(None).agent.claims._open
    return r


def run_with_beats(r: Rig, *beats: Heartbeat) -> None:
    """One full pass (node1 holds web at epoch 1), then the beats, as the loop runs them."""

    async def go() -> None:
        outcomes, observed = await r.agent._apply(full=True)
        r.agent.monitoring.follow(
            observed, outcomes, r.agent._kernel, r.agent.leases.lease, frozenset()
        )
        for beat in beats:
            r.agent.monitoring.on_beat(beat)
        for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
            await task
        r.agent.claims.close()
        await r.agent.announcements.close()

    asyncio.run(go())


def test_a_peer_holding_our_alias_at_a_higher_epoch_makes_us_release_it_at_once(
    tmp_path: Path,
) -> None:
    r = monitored_rig(tmp_path)
    r.agent.objects["web"] = r.api.current = aliasip("node1", 1, 10)
    run_with_beats(r)
    assert len(r.kernel.owned) == 1 and r.agent.monitoring.holding == {UID: 1}
    run_with_beats(r, Heartbeat("node2", 7, 1, 0.0, held=((UID, 2),)))
    assert r.kernel.owned == []
    assert r.agent.newest[UID] == 2  # fenced: the view naming node1 at epoch 1 is stale now
    run_with_beats(r)  # the watch has not delivered epoch 2 yet: nothing is added back
    assert r.kernel.owned == [] and r.kernel.adds == 1


def test_a_peer_at_our_epoch_or_an_older_one_changes_nothing(tmp_path: Path) -> None:
    r = monitored_rig(tmp_path)
    r.agent.objects["web"] = r.api.current = aliasip("node1", 3, 10)
    run_with_beats(
        r,
        Heartbeat("node2", 7, 1, 0.0, held=((UID, 3),)),
        Heartbeat("node3", 8, 1, 0.0, held=((UID, 2),)),
        Heartbeat("node2", 7, 2, 0.0, held=(("another-uid", 9),)),
    )
    assert len(r.kernel.owned) == 1 and r.agent.newest[UID] == 3


def test_a_silence_is_noticed_when_it_falls_due_not_at_the_next_tick() -> None:
    """The last miss falls between two ticks: a timer checks at that moment (half an
    interval sooner on average, on every node-lost failover)."""
    events: list[str] = []
    m = Monitor("node1", lambda: None, port=0, on_silent=events.append)
    m.set_watched(frozenset({"node2"}))

    async def go() -> None:
        now = time.monotonic()
        m._last_heard["node2"] = now - 0.27  # 3 x 100 ms missed 30 ms from now
        m.tick()
        assert events == []
        await asyncio.sleep(0.06)  # well before the next tick (100 ms)

    asyncio.run(go())
    assert events == ["node2"]


def test_a_new_service_address_is_told_in_the_lease_at_once(tmp_path: Path) -> None:
    """An AliasIP newly concerns this node: where peers reach it goes into its Lease now
    (a renewal asked early), not up to a second later; a switchover to it right after
    needs the old holder to reach it for the direct handoff (R11)."""
    r = monitored_rig(tmp_path)
    r.agent.objects["web"] = r.api.current = aliasip("node1", 1, 10)
    r.agent.liveness.renewed_at = time.monotonic()
    assert r.agent.monitoring.annotation() is None

    async def one_pass() -> None:
        task = asyncio.create_task(r.agent._reconcile_task())
        r.agent.wake(full=True)
        for _ in range(200):  # bounded: a pass takes milliseconds here
            if r.agent.monitoring.annotation() is not None:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        r.agent.claims.close()
        await r.agent.announcements.close()

    asyncio.run(one_pass())
    assert r.agent.monitoring.annotation() == "198.18.0.11/24"
    assert r.agent.liveness._soon.is_set()


class SentTo:
    """A datagram socket that keeps what is sent (an in-process stand-in for UDP)."""

    family = socket.AF_INET

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, str]] = []

    def sendto(self, data: bytes, address: tuple[str, int]) -> int:
        self.sent.append((data, address[0]))
        return len(data)


def test_the_bare_heartbeat_is_signed_once_per_interval_and_numbers_rise_per_receiver() -> None:
    """One bare datagram for every peer that is told nothing new (one HMAC an interval,
    not one per peer); a peer told what we hold gets its own from the same number; each
    receiver accepts every interval's datagrams (its sender's numbers rise)."""
    ring = KeyRing({"k1": b"k" * 32}, "k1")
    m = Monitor("node1", lambda: ring, port=PORT, clock=lambda: 100.0, wall=time.time)
    fake = SentTo()
    m._sockets = [fake]  # type: ignore[list-item]
    m.ring = ring
    addresses = {f"node{i}": ipaddress.ip_address(f"198.18.0.{10 + i}") for i in (2, 3, 4)}
    held = {"node3": ((UID, 5),)}
    m.set_peers({n: Peer(n, (a,), held=held.get(n, ())) for n, a in addresses.items()})
    receivers = {n: Receiver(ring) for n in addresses}
    by_target = {str(a): n for n, a in addresses.items()}
    for interval in range(3):
        fake.sent.clear()
        m.send_all()
        got = {by_target[t]: decode(d, ring)[1] for d, t in fake.sent}
        assert sorted(got) == ["node2", "node3", "node4"]
        bare = {d for d, t in fake.sent if by_target[t] != "node3"}
        assert len(bare) == 1  # node2 and node4 got the very same datagram
        beats = [b for b in got.values() if b is not None]
        assert len({b.seq for b in beats}) == 1
        assert got["node3"] is not None
        assert got["node3"].held == (((UID, 5),) if interval == 0 else ())
        for data, target in fake.sent:
            verdict, _ = receivers[by_target[target]].receive(data, time.time())
            assert verdict is Verdict.ACCEPTED, (interval, target, verdict)
