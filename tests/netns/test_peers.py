"""The peer tools' drivers (``bench.peers``) on a real LAN: one trial each of the floor,
Pacemaker's IPaddr2 and a graceful keepalived failover (advert_int 0.1 s).

Each trial must end with the client answered by the new node's MAC, never by two MACs for
one probe, and leave no process behind in the nodes' namespaces. The wire observer ran over
the same window: it heard the old node answer, then the new one, and its split-brain figure
is in the report. The floor and IPaddr2 delete the alias on the old node before the new one
adds it (one command after the other), so on the wire no round can be answered by both.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bench.peers import ALIAS, floor_move, ipaddr2_move, keepalived_failover

from aliasip_lab.lan import Host, Lan, ip


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    """One LAN for the three trials (each driver sets up its own starting state)."""
    with Lan.create(nodes=2) as made:
        yield made


def _assert_moved(report: dict[str, object], src: Host, dst: Host, at_most_ms: float) -> None:
    segments = report["segments"]
    assert isinstance(segments, list) and segments
    assert segments[-1]["mac"] == dst.mac
    assert report["split_brain_samples"] == []
    outage = report["outage_ms"]
    assert isinstance(outage, float | int) and outage < at_most_ms
    # The wire observer's view of the same window: src answered, then dst (and only dst).
    wire = report["wire"]
    assert isinstance(wire, dict)
    assert wire["rounds"] > 0 and wire["answered"] > 0
    assert wire["changes"][0]["macs"] == [src.mac], wire["changes"]
    assert wire["last_macs"] == [dst.mac], wire["changes"]
    rounds = report["split_brain_rounds"]
    assert isinstance(rounds, int) and rounds >= 0
    assert (rounds == 0) == (report["longest_split_brain_ms"] == 0.0)
    assert rounds == sum(run["rounds"] for run in wire["split_brain"])
    holderless = report["holderless_ms"]
    assert isinstance(holderless, float) and holderless >= 0


def _one_holder_at_a_time(report: dict[str, object]) -> None:
    """A delete-then-add move: no observer round was answered by both nodes."""
    wire = report["wire"]
    assert report["split_brain_rounds"] == 0, wire["split_brain"]  # type: ignore[index]


def _no_processes_in_nodes(lan: Lan) -> None:
    for node in lan.nodes:
        assert ip("netns", "pids", node.netns).stdout.split() == [], node.name


def test_floor_moves_the_alias(lan: Lan) -> None:
    node1, node2 = lan.nodes
    report = floor_move(lan, ALIAS, node1, node2)
    _assert_moved(report, node1, node2, at_most_ms=1000)
    _one_holder_at_a_time(report)
    _no_processes_in_nodes(lan)


def test_ipaddr2_moves_the_alias(lan: Lan) -> None:
    node1, node2 = lan.nodes
    report = ipaddr2_move(lan, ALIAS, node1, node2)
    _assert_moved(report, node1, node2, at_most_ms=1000)
    _one_holder_at_a_time(report)
    assert set(report["steps_ms"]) == {"ipaddr2_stop", "ipaddr2_start"}
    _no_processes_in_nodes(lan)


def test_keepalived_graceful_stop_hands_over(lan: Lan) -> None:
    node1, node2 = lan.nodes
    report = keepalived_failover(lan, ALIAS, node1, node2, advert_int=0.1, fault="graceful")
    _assert_moved(report, node1, node2, at_most_ms=1000)
    _no_processes_in_nodes(lan)
    assert f"inet {ALIAS} " not in ip("-n", node2.netns, "-o", "addr").stdout
