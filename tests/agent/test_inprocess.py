"""The agent's reconcile pass in-process, with fakes for the kernel, the wire and the API.

These tests pin decisions of the daemon's glue that the pure ``plan`` cannot see: what it
reads before it adds, when it probes, how it backs off a refusal. The kernel and the wire
here are plain data (``FakeKernel``, ``FakeWire``): they test no networking; the real data
path is proven in tests/agent/test_process.py and tests/netns.
"""

from __future__ import annotations

import asyncio
import copy
import ipaddress
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from aliasip_nodeagent.daemon import Agent, Settings
from aliasip_nodeagent.hoststate import OWN_PROTO, HeldAlias, HostAddress, HostState, IPAddress
from aliasip_nodeagent.kube import ApiUnavailable
from aliasip_nodeagent.placement import Placement
from tests.unit.hosts import MAC_ETH1, MAC_OTHER, iface, stationary

ALIAS = "198.18.0.50"
UID = "uid-web"


def aliasip(
    active: str | None,
    epoch: int,
    rv: int,
    *,
    address: str = f"{ALIAS}/24",
    nodes: dict[str, Any] | None = None,
    transition: dict[str, Any] | None = None,
    generation: int = 1,
) -> dict[str, Any]:
    status: dict[str, Any] = {"activeNode": active, "epoch": epoch}
    if nodes:
        status["nodes"] = nodes
    if transition:
        status["lastTransition"] = transition
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {
            "name": "web",
            "uid": UID,
            "resourceVersion": str(rv),
            "generation": generation,
        },
        "spec": {"addresses": [address], "nodes": ["node1", "node2"]},
        "status": status,
    }


def moved_from_node2(epoch: int, rv: int) -> dict[str, Any]:
    """node1 named at ``epoch`` after node2 reported ``released`` at the epoch before."""
    return aliasip(
        "node1",
        epoch,
        rv,
        nodes={"node2": {"state": "released", "epoch": epoch - 1}},
        transition={"from": "node2", "to": "node1", "reason": "Switchover"},
    )


@dataclass
class FakeKernel:
    """node1's kernel as plain data: eth1 with its stationary 198.18.0.11/24."""

    owned: list[ipaddress.IPv4Interface] = field(default_factory=list)
    adds: int = 0
    lifetimes: list[int | None] = field(default_factory=list)  # each renewal's lifetime

    def snapshot(self, version: int | None = None, interface: str | None = None) -> HostState:
        addresses = [stationary("198.18.0.11/24")]
        addresses += [HostAddress(interface=a, proto=OWN_PROTO) for a in self.owned]
        return HostState(interfaces=(iface("eth1", *addresses),))

    def add(self, placement: Placement) -> bool:
        address = ipaddress.IPv4Interface(str(placement.address))
        if address in self.owned:
            return False
        self.owned.append(address)
        self.adds += 1
        return True

    def delete(self, held: HeldAlias) -> bool:
        address = ipaddress.IPv4Interface(str(held.address))
        if address not in self.owned:
            return False
        self.owned.remove(address)
        return True

    def renew_lifetimes(self, lifetime_s: int | None = None) -> int:
        self.lifetimes.append(lifetime_s)
        return len(self.owned)


@dataclass(frozen=True)
class Probed:
    conflict_mac: str | None


@dataclass
class FakeWire:
    """``answered_by`` answers every probe; ``answering`` (address -> MAC) some only."""

    answered_by: str | None = None
    answering: dict[str, str] = field(default_factory=dict)
    probes: int = 0
    batches: list[list[str]] = field(default_factory=list)  # the addresses of each batch
    announcements: int = 0
    announced: list[str] = field(default_factory=list)

    def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
        self.announcements += 1
        self.announced.append(str(ip))
        return 1

    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> Probed:
        self.probes += 1
        return Probed(self.answering.get(str(ip), self.answered_by))

    def probe_many(
        self, targets: Sequence[tuple[str, str, IPAddress]], wait_s: float
    ) -> dict[IPAddress, str]:
        self.probes += len(targets)
        self.batches.append([str(ip) for _, _, ip in targets])
        heard = {ip: self.answering.get(str(ip), self.answered_by) for _, _, ip in targets}
        return {ip: mac for ip, mac in heard.items() if mac}


@dataclass
class FakeApi:
    """What a GET of the AliasIP returns now (``current``), or ApiUnavailable."""

    current: dict[str, Any] | None
    reachable: bool = True
    gets: int = 0
    patches: list[dict[str, Any]] = field(default_factory=list)

    def get_aliasip(self, name: str) -> dict[str, Any] | None:
        self.gets += 1
        if not self.reachable:
            raise ApiUnavailable("GET aliasips/web: connection refused")
        return self.current

    def patch_aliasip_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """A merge patch of one node's key into ``current``, answered as a server does."""
        self.patches.append(body)
        assert self.current is not None
        stored = copy.deepcopy(self.current)
        status = stored.setdefault("status", {})
        for node, view in body["status"]["nodes"].items():
            kept = {k: v for k, v in view.items() if v is not None}
            status.setdefault("nodes", {})[node] = kept
        rv = int(stored["metadata"]["resourceVersion"]) + 1
        stored["metadata"]["resourceVersion"] = str(rv)
        self.current = stored
        return copy.deepcopy(stored)


@dataclass
class Rig:
    agent: Agent
    kernel: FakeKernel
    wire: FakeWire
    api: FakeApi

    def run_pass(self, watched: dict[str, Any] | None = None) -> None:
        """One full reconcile pass on the agent's watch view ``watched``."""
        if watched is not None:
            self.agent.objects["web"] = watched

        async def go() -> None:
            outcomes, observed = await self.agent._apply(full=True)
            await self.agent._report(observed, outcomes)
            self.agent.claims.close()
            await self.agent.announcements.close()

        asyncio.run(go())

    @property
    def reported(self) -> dict[str, Any]:
        node: dict[str, Any] = self.api.patches[-1]["status"]["nodes"]["node1"]
        return node


def rig(current: dict[str, Any] | None, wire: FakeWire | None = None) -> Rig:
    kernel, wire, api = FakeKernel(), wire or FakeWire(), FakeApi(current)
    agent = Agent(
        Settings(node="node1", probe_wait_s=0.0),
        api,  # type: ignore[arg-type]
        kernel,
        wire,
        ThreadPoolExecutor(max_workers=1),
    )
    agent.synced = True
    agent.claims._open = FakeListener  # no packet socket: these tests touch no network
    return Rig(agent, kernel, wire, api)


class FakeListener:
    """Stands in for the claim socket: a local socket pair that never carries a frame."""

    def __init__(self, interface: str, addresses: Sequence[IPAddress]) -> None:
        self._ends = socket.socketpair()

    def fileno(self) -> int:
        return self._ends[0].fileno()

    def set_addresses(self, addresses: Sequence[IPAddress]) -> None:
        return None

    def read(self, limit: int = 64) -> list[bytes]:
        return []

    def close(self) -> None:
        for end in self._ends:
            end.close()


def test_an_add_on_a_late_watch_view_is_refused_by_the_fresh_read() -> None:
    """Issue 10, failure 2: the watch delivers late (a healed partition) a status naming
    node1 after node2's release; node2 has taken the address at a newer epoch since. The
    GET before the add shows it: nothing is added, nothing probed, the newer object kept."""
    now = aliasip("node2", 4, rv=40, nodes={"node2": {"state": "holding", "epoch": 4}})
    r = rig(now)
    r.run_pass(moved_from_node2(3, rv=30))
    assert r.api.gets == 1
    assert r.kernel.adds == 0 and r.wire.probes == 0
    assert r.agent.objects["web"]["status"]["activeNode"] == "node2"  # the fresh one kept
    assert r.api.patches == []  # nothing reported from the stale view (no false error)
    r.run_pass()  # the next pass plans from the fresh object: a standby at epoch 4
    assert r.kernel.adds == 0
    assert r.reported["state"] == "standby" and r.reported["epoch"] == 4


def test_no_add_without_a_fresh_read() -> None:
    r = rig(moved_from_node2(3, rv=30))
    r.api.reachable = False
    r.run_pass(moved_from_node2(3, rv=30))
    assert r.kernel.adds == 0 and r.wire.probes == 0


def test_the_probe_is_skipped_only_on_the_first_add_at_an_epoch() -> None:
    """A confirmed release (read afresh) spares the probe once; an alias lost since at the
    same epoch (carrier, a delete behind our back) is probed for before it is re-added."""
    body = moved_from_node2(3, rv=30)
    r = rig(body)
    r.run_pass(body)
    assert r.kernel.adds == 1 and r.wire.probes == 0
    r.kernel.owned.clear()  # lost behind the agent's back
    r.run_pass()
    assert r.kernel.adds == 2 and r.wire.probes == 1


def test_a_stale_release_in_the_watch_view_does_not_skip_the_probe() -> None:
    """The watch view says node2 released; the fresh object says the move was a failover
    (node2 never confirmed): the add probes."""
    fresh = aliasip(
        "node1", 3, rv=31, transition={"from": "node2", "to": "node1", "reason": "Failover"}
    )
    r = rig(fresh)
    r.run_pass(moved_from_node2(3, rv=30))
    assert r.kernel.adds == 1 and r.wire.probes == 1


def test_a_refusal_backs_off_and_its_report_names_the_cause() -> None:
    """Issue 10, failure 3: a named node that cannot hold (another host answers) reports
    error with holderHeard, and does not try (probe) again on every pass."""
    body = aliasip("node1", 1, rv=10)
    r = rig(body, FakeWire(answered_by=MAC_OTHER))
    r.run_pass(body)
    assert r.kernel.adds == 0 and r.wire.probes == 1
    assert r.reported["state"] == "error"
    assert r.reported["message"].startswith("AddressInUse: ")
    assert r.reported["holderHeard"] is True
    patches = len(r.api.patches)
    for _ in range(3):
        r.run_pass()
    assert r.wire.probes == 1  # backing off (1 s first): no new try, no new probe
    assert len(r.api.patches) == patches  # nothing new to say


def test_a_standby_that_could_not_hold_says_so_before_it_is_named() -> None:
    """No stationary subnet of node1 covers 198.19.0.50: node1 reports the refusal while
    node2 is named, so the operator never hands the address to node1 in vain."""
    body = aliasip("node2", 1, rv=10, address="198.19.0.50/24")
    r = rig(body)
    r.run_pass(body)
    assert r.reported["state"] == "error"
    assert r.reported["message"].startswith("NoCoveringInterface: ")
    assert r.kernel.adds == 0


def test_the_younger_of_a_conflict_does_not_read_as_held_here() -> None:
    """Issue 10, failure 6: two AliasIPs claim one address; node1 holds it for the older
    (named here); the younger (Conflict, no active node) must not report ``holding``."""
    older = aliasip("node1", 1, rv=10)
    r = rig(older)
    r.run_pass(older)
    assert r.kernel.adds == 1
    younger = replace_meta(aliasip(None, 1, rv=11), name="web2", uid="uid-web2")
    r.agent.objects["web2"] = younger
    r.api.patches.clear()

    async def go() -> dict[str, Any]:
        outcomes, observed = await r.agent._apply(full=True)
        return {o.name: outcomes[o.name] for o in observed}

    outcomes = asyncio.run(go())
    assert outcomes["web"].holds_all is True
    assert outcomes["web2"].holds_any is False


def replace_meta(body: dict[str, Any], **meta: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], **meta}}


def test_the_fake_kernel_marks_what_it_adds() -> None:
    """The fakes above keep the data path's own contract: an added alias reads as owned."""
    kernel = FakeKernel()
    placement = Placement(
        address=ipaddress.ip_interface(f"{ALIAS}/24"),
        interface="eth1",
        index=2,
        mac=MAC_ETH1,
        already_held=False,
    )
    assert kernel.add(placement) and not kernel.add(placement)
    assert [str(h.address) for h in kernel.snapshot().owned()] == [f"{ALIAS}/24"]
    assert replace(placement, interface="eth1") == placement


def release_step(to: str = "node1", epoch: int = 2, rv: int = 20) -> dict[str, Any]:
    """The release step of a planned move from node2, naming ``to`` successor (R11)."""
    body = aliasip(
        None,
        epoch,
        rv,
        nodes={"node2": {"state": "holding", "epoch": epoch - 1}},
        transition={
            "from": "node2",
            "to": to,
            "reason": "Switchover",
            "startedAt": "2026-12-07T00:00:00.000000Z",
        },
    )
    body["status"]["phase"] = "Switching"
    return body


def handoff_run(r: Rig, view: dict[str, Any], then: dict[str, Any] | None = None) -> None:
    """A pass on ``view`` (node1 sees itself named: it reads ahead), the watch delivering
    ``then`` if given, and node2's signed ``released`` at epoch 2 arriving: every task
    it starts is awaited."""
    r.agent.objects["web"] = view

    async def go() -> None:
        outcomes, observed = await r.agent._apply(full=True)
        await r.agent._report(observed, outcomes)
        await asyncio.gather(*r.agent._reading.values())
        if then is not None:
            r.agent.objects["web"] = then
        r.agent._handed("node2", ((UID, 2),))
        current = asyncio.current_task()
        await asyncio.gather(*(t for t in asyncio.all_tasks() if t is not current))
        r.agent.claims.close()
        await r.agent.announcements.close()

    asyncio.run(go())


def test_a_direct_handoff_adds_at_once_on_the_read_made_ahead_without_a_probe() -> None:
    """R11: node1, named successor at epoch 2, reads the AliasIP as soon as it sees its
    name (one GET), and adds on node2's word without another read or a wire probe; it
    reports nothing at epoch 2 before that (a standby there would read as let go)."""
    r = rig(release_step())
    handoff_run(r, release_step())
    assert r.api.gets == 1
    assert r.kernel.adds == 1 and r.wire.probes == 0 and r.wire.announcements >= 1
    assert r.api.patches == []  # awaiting: nothing said at epoch 2 yet
    r.run_pass()
    assert (r.reported["state"], r.reported["epoch"]) == ("holding", 2)


def test_a_handoff_is_not_taken_on_a_view_that_moved_on() -> None:
    """The watch delivered a second release step (from node1 to node3) after the pass:
    node2's word no longer makes node1 a holder."""
    r = rig(release_step())
    handoff_run(r, release_step(), then=release_step(to="node3", rv=21))
    assert r.kernel.adds == 0


def test_no_handoff_is_taken_without_a_read_that_confirms_the_name() -> None:
    """The read ahead shows another release step: nothing is taken on node2's word, and
    the pass that follows (on the fresh object) holds nothing either."""
    r = rig(release_step(to="node3", rv=21))
    handoff_run(r, release_step())
    assert r.kernel.adds == 0
    r.run_pass()
    assert r.kernel.adds == 0


@dataclass
class ManyApi:
    """The API for several AliasIPs: what a GET of each returns now, and how often each
    was read; status patches are recorded by name."""

    current: dict[str, dict[str, Any]]
    gets: list[str] = field(default_factory=list)
    patches: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def get_aliasip(self, name: str) -> dict[str, Any] | None:
        self.gets.append(name)
        return copy.deepcopy(self.current.get(name))

    def patch_aliasip_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.setdefault(name, []).append(body["status"]["nodes"]["node1"])
        stored = copy.deepcopy(self.current[name])
        stored["metadata"]["resourceVersion"] = str(int(stored["metadata"]["resourceVersion"]) + 1)
        self.current[name] = stored
        return copy.deepcopy(stored)


def named(name: str, address: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` as AliasIP ``name`` (its own uid) for ``address``."""
    found = replace_meta(body, name=name, uid=f"uid-{name}")
    return {**found, "spec": {**found["spec"], "addresses": [f"{address}/24"]}}


def failed_over_to_node1(epoch: int, rv: int) -> dict[str, Any]:
    """node1 named at ``epoch`` after node2 was lost (no release: the add probes)."""
    return aliasip(
        "node1", epoch, rv, transition={"from": "node2", "to": "node1", "reason": "Failover"}
    )


def test_a_pass_of_many_holds_reads_each_afresh_and_probes_them_as_one_batch() -> None:
    """A node taking over several AliasIPs at once (its peer was lost): each is read
    afresh before its add (R1), one that the fresh read shows moved on is neither probed
    nor added, the others' probes go out as one batch (the one whose old holder released
    at the epoch before skips it), and the address another host answers for is refused
    exactly as one probe refuses it (AddressInUse, holderHeard, backing off) while the
    rest are added and announced."""
    watched = {
        "a": named("a", "198.18.0.50", failed_over_to_node1(2, rv=20)),
        "b": named("b", "198.18.0.51", failed_over_to_node1(2, rv=21)),
        "c": named("c", "198.18.0.52", failed_over_to_node1(2, rv=22)),
        "d": named("d", "198.18.0.53", failed_over_to_node1(2, rv=23)),
        "e": named("e", "198.18.0.54", moved_from_node2(2, rv=24)),
    }
    now = {**watched, "d": named("d", "198.18.0.53", aliasip("node3", 3, rv=33))}
    api = ManyApi(copy.deepcopy(now))
    kernel, wire = FakeKernel(), FakeWire(answering={"198.18.0.51": MAC_OTHER})
    agent = Agent(
        Settings(node="node1", probe_wait_s=0.0),
        api,  # type: ignore[arg-type]
        kernel,
        wire,
        ThreadPoolExecutor(max_workers=1),
    )
    agent.synced = True
    agent.claims._open = FakeListener
    agent.objects = copy.deepcopy(watched)

    async def one_pass() -> None:
        outcomes, observed = await agent._apply(full=True)
        await agent._report(observed, outcomes)

    async def go() -> None:
        await one_pass()
        assert sorted(api.gets) == ["a", "b", "c", "d", "e"]  # each read afresh, once
        assert wire.batches == [["198.18.0.50", "198.18.0.51", "198.18.0.52"]]
        assert sorted(str(a.ip) for a in kernel.owned) == [
            "198.18.0.50",
            "198.18.0.52",
            "198.18.0.54",
        ]
        assert "198.18.0.51" not in wire.announced and "198.18.0.53" not in wire.announced
        refused = api.patches["b"][-1]
        assert refused["state"] == "error" and refused["holderHeard"] is True
        assert refused["message"].startswith("AddressInUse: 198.18.0.51 is answered")
        assert {n: p[-1]["state"] for n, p in api.patches.items() if n != "b"} == {
            "a": "holding",
            "c": "holding",
            "e": "holding",
        }
        assert agent.objects["d"]["status"]["activeNode"] == "node3"  # the fresh one kept
        await one_pass()  # b backs off: no new probe; a, c, e are held: nothing to add
        assert len(wire.batches) == 1 and kernel.adds == 3
        agent.claims.close()
        await agent.announcements.close()

    asyncio.run(go())


@dataclass
class OverlapApi(ManyApi):
    """Status writes that wait (bounded) until another one is in flight: one after the
    other, each would wait out its bound; side by side they overlap at once."""

    in_flight: int = 0
    most: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    both: threading.Event = field(default_factory=threading.Event)

    def patch_aliasip_status(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            if self.in_flight >= 2:
                self.both.set()
        self.both.wait(5.0)
        try:
            return super().patch_aliasip_status(name, body)
        finally:
            with self.lock:
                self.in_flight -= 1


def test_a_pass_writes_its_reports_side_by_side() -> None:
    """A node that took over several AliasIPs reports each (holding), a few writes at
    once: written one after the other, they held its next pass (the next adds) back."""
    watched = {
        n: named(n, f"198.18.0.{50 + i}", failed_over_to_node1(2, rv=20 + i))
        for i, n in enumerate(["a", "b", "c"])
    }
    api = OverlapApi(copy.deepcopy(watched))
    agent = Agent(
        Settings(node="node1", probe_wait_s=0.0),
        api,  # type: ignore[arg-type]
        FakeKernel(),
        FakeWire(),
        ThreadPoolExecutor(max_workers=1),
    )
    agent.synced = True
    agent.claims._open = FakeListener
    agent.objects = copy.deepcopy(watched)

    async def go() -> None:
        outcomes, observed = await agent._apply(full=True)
        await agent._report(observed, outcomes)
        agent.claims.close()
        await agent.announcements.close()

    asyncio.run(go())
    assert {n: p[-1]["state"] for n, p in api.patches.items()} == {
        "a": "holding",
        "b": "holding",
        "c": "holding",
    }
    assert api.most >= 2
