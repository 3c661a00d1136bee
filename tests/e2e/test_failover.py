"""Failover, cordon and failback with the real operator and the real agents: every move is
judged through the API (status), the kernel (iproute2) and the wire (the client's prober).
The client-seen outage of each unplanned failover is printed (``pytest -s``), not asserted."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent.support import ALIAS
from tests.api.support import eventually
from tests.e2e.support import ADDRESS, E2E, e2e
from tests.operatorproc.support import leader, status, wait_status

MARKED = (ADDRESS, "eth1:aip")


@pytest.fixture
def lab2() -> Iterator[E2E]:
    """The lab with two operator replicas (``op-a``, ``op-b``) electing a leader."""
    if os.geteuid() != 0:
        pytest.fail("the end-to-end tests need root (network namespaces, raw sockets)")
    with e2e("op-a", "op-b") as made:
        yield made


def _active_on_node1(lab: E2E, name: str = "web", **spec: Any) -> None:
    lab.apply_aliasip(name, **spec)
    wait_status(lab.api, name, timeout=15, activeNode="node1", epoch=1, phase="Active")


def _wait_active(lab: E2E, name: str, node: str, above: int, timeout: float) -> dict[str, Any]:
    """Poll until ``node`` is the Active holder at an epoch above ``above``."""

    def check() -> dict[str, Any] | None:
        got = status(lab.api, name)
        on = (got.get("activeNode"), got.get("phase")) == (node, "Active")
        return got if on and int(got.get("epoch") or 0) > above else None

    found: dict[str, Any] = eventually(check, timeout=timeout, interval=0.05)
    return found


def _outage(title: str, report: dict[str, Any]) -> None:
    gaps = [g["outage_ms"] for g in report["gaps"]]
    print(
        f"\n{title}: client-seen outage {report['outage_ms']} ms (gaps {gaps}); "
        f"{report['answered']}/{report['sent']} answered"
    )


def _failed_over(lab: E2E, report: dict[str, Any], title: str) -> None:
    """node2 serves: its kernel holds the alias, the client hears only node2 at the end."""
    node1, node2 = lab.cluster.lan.node("node1"), lab.cluster.lan.node("node2")
    assert MARKED in lab.addresses("node2")
    assert report["split_brain_samples"] == [], report["split_brain_samples"]
    macs = [s["mac"] for s in report["segments"]]
    assert macs == [node1.mac, node2.mac], report["segments"]
    _outage(title, report)


def test_node_gone_fails_over_to_node2(lab: E2E) -> None:
    _active_on_node1(lab)
    prober = lab.cluster.start_prober(9.0)
    lab.cluster.wait_probing("node1")
    lab.cluster.stop_agent("node1", signal.SIGKILL)
    lab.cluster.lan.set_link(lab.cluster.lan.node("node1"), up=False)
    # After node1's Lease expired the standby probes the wire and hears nobody.
    eventually(lambda: lab.cluster.view("node2").get("holderHeard") is False, timeout=10)
    _wait_active(lab, "web", "node2", above=1, timeout=10)
    lab.cluster.wait_holds("node2", True, timeout=5)
    report = lab.cluster.prober_report(prober)
    _failed_over(lab, report, "node gone (agent SIGKILL + cable cut)")


def test_link_down_on_the_holder_fails_over_to_node2(lab: E2E) -> None:
    _active_on_node1(lab)
    prober = lab.cluster.start_prober(6.0)
    lab.cluster.wait_probing("node1")
    lab.cluster.lan.set_link(lab.cluster.lan.node("node1"), up=False)
    eventually(lambda: lab.cluster.view("node1").get("state") == "error", timeout=8)
    _wait_active(lab, "web", "node2", above=1, timeout=8)
    lab.cluster.wait_holds("node2", True, timeout=5)
    report = lab.cluster.prober_report(prober)
    _failed_over(lab, report, "link down on the holder (agent alive)")


def test_cordon_moves_release_before_add(lab: E2E) -> None:
    node1, node2 = lab.cluster.lan.node("node1"), lab.cluster.lan.node("node2")
    _active_on_node1(lab)
    prober = lab.cluster.start_prober(5.0)
    lab.cluster.wait_probing("node1")
    lab.kubectl("cordon", "node1")
    _wait_active(lab, "web", "node2", above=1, timeout=8)
    lab.cluster.wait_holds("node2", True, timeout=5)
    assert all(a != ADDRESS for a, _ in lab.addresses("node1"))
    report = lab.cluster.prober_report(prober)
    assert report["split_brain_samples"] == []
    segments = report["segments"]
    assert [s["mac"] for s in segments] == [node1.mac, node2.mac], segments
    assert segments[0]["last_ms"] < segments[1]["first_ms"]  # node1 stopped before node2
    _outage("cordon (planned move)", report)


def test_failback_auto_returns_manual_stays(lab: E2E) -> None:
    other = "198.18.0.51"
    _active_on_node1(lab, "auto", failback="Auto")
    _active_on_node1(lab, "manual", address=f"{other}/24")
    lab.kubectl("cordon", "node1")
    auto = _wait_active(lab, "auto", "node2", above=1, timeout=8)
    manual = _wait_active(lab, "manual", "node2", above=1, timeout=8)
    lab.cluster.wait_holds("node2", True, timeout=5)
    eventually(lambda: lab.cluster.holds("node2", other), timeout=5)
    lab.kubectl("uncordon", "node1")
    # The Auto one coming back shows the operator saw the uncordon; the Manual one stays.
    _wait_active(lab, "auto", "node1", above=auto["epoch"], timeout=8)
    lab.cluster.wait_holds("node1", True, timeout=5)
    assert not lab.cluster.holds("node2", ALIAS)
    got = status(lab.api, "manual")
    assert (got["activeNode"], got["epoch"]) == ("node2", manual["epoch"]), got
    assert lab.cluster.holds("node2", other) and not lab.cluster.holds("node1", other)


def test_leader_killed_the_other_replica_takes_over_and_fails_over(lab2: E2E) -> None:
    lab = lab2
    first = eventually(lambda: leader(lab.api), timeout=10)
    _active_on_node1(lab)
    (killed,) = [op for op in lab.replicas if op.identity == first]
    (other,) = [op for op in lab.replicas if op.identity != first]
    killed.kill()
    eventually(lambda: leader(lab.api) == other.identity, timeout=20)
    prober = lab.cluster.start_prober(9.0)
    lab.cluster.wait_probing("node1")
    lab.cluster.stop_agent("node1", signal.SIGKILL)
    lab.cluster.lan.set_link(lab.cluster.lan.node("node1"), up=False)
    _wait_active(lab, "web", "node2", above=1, timeout=10)
    lab.cluster.wait_holds("node2", True, timeout=5)
    report = lab.cluster.prober_report(prober)
    _failed_over(lab, report, f"node gone after leader {first} was killed ({other.identity} leads)")
