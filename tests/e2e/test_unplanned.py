"""Unplanned failures on the lab, injected with the ``aliasip-lab`` fault commands' own code:
a node lost, its LAN link down, its path to the API cut, the API server restarted, the
operator leader killed (alone, and together with the active node). Each asserts that the
client reaches the alias again on the right node, that status and Events tell the story,
and that the client never heard two MACs at once. Outages are printed (``pytest -s``)."""

from __future__ import annotations

import functools
import time

from tests.e2e.lab import E2ELab, eventually, outage

ADDRESS = "198.18.0.50/24"


def _active_on_node1(lab: E2ELab) -> None:
    lab.apply("web", ADDRESS)
    lab.wait_active("web", "node1")
    lab.wait_held("node1", ADDRESS)


def _heard_by_the_standbys(lab: E2ELab, node: str = "node1") -> None:
    """Until the monitoring path links ``node`` to both standbys (the peers learn its
    address from its Lease: a renewal or two after the agents start)."""

    def hears(standby: str) -> bool:
        return f"event=peer-heard node={standby} peer={node}" in lab.agent_log(standby)

    for standby in ("node2", "node3"):
        eventually(functools.partial(hears, standby), 10, f"{standby} hearing {node}")


def test_stop_node_fails_over_to_the_next_preference(lab: E2ELab) -> None:
    _active_on_node1(lab)
    _heard_by_the_standbys(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.stop_node("node1")
    got = lab.wait_active("web", "node2", above=1, timeout=10)
    lab.wait_held("node2", ADDRESS, timeout=5, gone=("node1",))
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    assert got["lastTransition"]["reason"] == "Failover", got["lastTransition"]
    assert "Failover" in lab.reasons("web")
    # Evidence per node: node2 and node3 (every other candidate) proved node1 silent, so
    # it failed over before node1's agent Lease lapsed, on that one observation.
    failover = [e for e in lab.events("web") if e["reason"] == "Failover"][-1]
    assert "node2, node3 hear neither its heartbeats nor its addresses" in failover.get(
        "message", failover.get("note", "")
    ), failover
    outage("node lost (stop-node)", report)


def test_link_down_on_the_holder_fails_over(lab: E2ELab) -> None:
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.set_link("node1", up=False)
    lab.wait_active("web", "node2", above=1, timeout=8)
    lab.wait_held("node2", ADDRESS, timeout=5)
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    outage("service link down (agent alive)", report)
    # The link comes back: node1 does not take it back (failback Manual), no second holder.
    lab.lab.set_link("node1", up=True)
    time.sleep(2.0)
    assert lab.holders(ADDRESS) == ["node2"]
    assert lab.status("web")["activeNode"] == "node2"


def test_partition_from_the_api_the_holder_keeps_serving(lab: E2ELab) -> None:
    """Cut from the API only, node1 keeps its alias (docs/design.md): its Lease lapses, the
    standbys probe the wire and still hear it, so the AliasIP is Degraded, not moved. After
    the heal it is Active again on node1, at the same epoch, and the client saw no gap."""
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.set_partition("node1", partitioned=True)
    got = lab.wait_phase("web", "Degraded", timeout=10)
    assert (got["activeNode"], got["epoch"]) == ("node1", 1), got
    assert lab.holders(ADDRESS) == ["node1"]
    lab.lab.set_partition("node1", partitioned=False)
    got = lab.wait_active("web", "node1", timeout=10)
    assert got["epoch"] == 1
    report = probe.finish()
    lab.served_by(report, "node1")
    assert [g for g in report["gaps"] if g["outage_ms"] > 100] == [], report["gaps"]


def test_isolated_holder_back_on_the_lan_first_gives_way(lab: E2ELab) -> None:
    """node1 cut from the API and the LAN: a failover to node2. Its LAN cable comes back
    while the API is still unreachable: node1 hears node2 answer for the alias on the wire
    and deletes its own copy; then it rejoins as a standby."""
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.set_partition("node1", partitioned=True)
    lab.lab.set_link("node1", up=False)
    lab.wait_active("web", "node2", above=1, timeout=12)
    lab.wait_held("node2", ADDRESS, gone=("node1",))
    lab.lab.set_link("node1", up=True)
    lab.wait_held("node2", ADDRESS, timeout=5)  # node1's copy is gone
    lab.lab.set_partition("node1", partitioned=False)
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    assert lab.holders(ADDRESS) == ["node2"]
    assert lab.status("web")["activeNode"] == "node2"
    outage("holder isolated from API and LAN", report)


def test_api_restart_moves_nothing_and_everyone_resumes(lab: E2ELab) -> None:
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.restart_api()
    time.sleep(1.5)
    lab.lab.wait_ready(timeout_s=10)  # agents renew their Leases again, an operator leads
    got = lab.wait_active("web", "node1")
    assert got["epoch"] == 1
    # The watches resumed: a switchover after the restart is served.
    lab.lab.switchover("web", "node3")
    lab.wait_active("web", "node3", above=1, timeout=8)
    lab.wait_held("node3", ADDRESS)
    report = probe.finish()
    lab.served_by(report, "node1", "node3")
    assert [g for g in report["gaps"] if g["outage_ms"] > 200] == [], report["gaps"]


def test_operator_leader_killed_the_other_leads_and_serves(lab: E2ELab) -> None:
    _active_on_node1(lab)
    first = eventually(lab.lab.leader, 10, "an operator leader")
    lab.lab.kill_operator(leader_only=True)
    eventually(lambda: (lab.lab.leader() or first) != first, 12, "the other replica leads")
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.stop_node("node1")
    lab.wait_active("web", "node2", above=1, timeout=12)
    lab.wait_held("node2", ADDRESS, timeout=5, gone=("node1",))
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    outage("node lost after the leader operator was killed", report)


def test_operator_leader_and_active_node_lost_together(lab: E2ELab) -> None:
    _active_on_node1(lab)
    first = eventually(lab.lab.leader, 10, "an operator leader")
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.kill_operator(leader_only=True)
    lab.lab.stop_node("node1")
    lab.wait_active("web", "node2", above=1, timeout=15)
    lab.wait_held("node2", ADDRESS, timeout=5, gone=("node1",))
    assert lab.lab.leader() not in (None, first)
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    outage("leader operator and active node lost together", report)
