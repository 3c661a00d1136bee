"""The peer tools' drivers (``bench.peers``) on a real LAN: one trial each of the floor,
Pacemaker's IPaddr2 and a graceful keepalived failover (advert_int 0.1 s).

Each trial must end with the client answered by the new node's MAC, never by two MACs for
one probe, and leave no process behind in the nodes' namespaces.
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


def _assert_moved(report: dict[str, object], dst: Host, at_most_ms: float) -> None:
    segments = report["segments"]
    assert isinstance(segments, list) and segments
    assert segments[-1]["mac"] == dst.mac
    assert report["split_brain_samples"] == []
    outage = report["outage_ms"]
    assert isinstance(outage, float | int) and outage < at_most_ms


def _no_processes_in_nodes(lan: Lan) -> None:
    for node in lan.nodes:
        assert ip("netns", "pids", node.netns).stdout.split() == [], node.name


def test_floor_moves_the_alias(lan: Lan) -> None:
    node1, node2 = lan.nodes
    _assert_moved(floor_move(lan, ALIAS, node1, node2), node2, at_most_ms=1000)
    _no_processes_in_nodes(lan)


def test_ipaddr2_moves_the_alias(lan: Lan) -> None:
    node1, node2 = lan.nodes
    report = ipaddr2_move(lan, ALIAS, node1, node2)
    _assert_moved(report, node2, at_most_ms=1000)
    assert set(report["steps_ms"]) == {"ipaddr2_stop", "ipaddr2_start"}
    _no_processes_in_nodes(lan)


def test_keepalived_graceful_stop_hands_over(lan: Lan) -> None:
    node1, node2 = lan.nodes
    report = keepalived_failover(lan, ALIAS, node1, node2, advert_int=0.1, fault="graceful")
    _assert_moved(report, node2, at_most_ms=1000)
    _no_processes_in_nodes(lan)
    assert f"inet {ALIAS} " not in ip("-n", node2.netns, "-o", "addr").stdout
