"""The real operator and the real agents together: every assertion is made through the API
(status, Events, kubectl) and on the kernel or the wire (iproute2, the client's prober)."""

from __future__ import annotations

import signal
import time
from typing import Any

from aliasip_api import kubetime
from aliasip_operator.observations import SWITCHOVER_ANNOTATION as SWITCHOVER
from tests.api.support import eventually
from tests.e2e.support import ADDRESS, E2E
from tests.operatorproc.support import obj, status, wait_status

MARKED = (ADDRESS, "eth1:aip")


def _active_on_node1(lab: E2E) -> None:
    lab.apply_aliasip("web")
    wait_status(lab.api, "web", timeout=15, activeNode="node1", epoch=1, phase="Active")
    assert MARKED in lab.addresses("node1")
    assert all(a != ADDRESS for a, _ in lab.addresses("node2"))


def _probe(lab: E2E, seconds: float) -> dict[str, Any]:
    report = lab.cluster.prober_report(lab.cluster.start_prober(seconds))
    return report


def test_create_places_on_node1_kernel_wire_and_kubectl_agree(lab: E2E) -> None:
    node1 = lab.cluster.lan.node("node1")
    _active_on_node1(lab)
    assert ADDRESS in [a for a, _ in lab.addresses("node1")]
    report = _probe(lab, 0.5)
    assert report["answered"] > 0, report
    assert {r[3] for r in report["replies"]} == {node1.mac}
    columns = lab.printed("web")
    assert (columns["ACTIVE"], columns["PHASE"], columns["EPOCH"]) == ("node1", "Active", "1")


def test_planned_switchover_by_annotation_releases_before_it_adds(lab: E2E) -> None:
    node1, node2 = lab.cluster.lan.node("node1"), lab.cluster.lan.node("node2")
    _active_on_node1(lab)
    prober = lab.cluster.start_prober(6.0)
    lab.cluster.wait_probing("node1")
    lab.kubectl("annotate", "aip", "web", f"{SWITCHOVER}=node2")
    wait_status(lab.api, "web", timeout=4, activeNode="node2", epoch=3, phase="Active")
    eventually(lambda: SWITCHOVER not in (obj(lab.api, "web")["metadata"].get("annotations") or {}))
    assert MARKED in lab.addresses("node2")
    assert all(a != ADDRESS for a, _ in lab.addresses("node1"))
    report = lab.cluster.prober_report(prober)
    assert report["split_brain_samples"] == []
    segments = report["segments"]
    assert [s["mac"] for s in segments] == [node1.mac, node2.mac], segments
    assert segments[0]["last_ms"] < segments[1]["first_ms"]  # node1 stopped before node2
    assert any(e["reason"] == "Switchover" for e in lab.events("web")), lab.events("web")


def test_agent_killed_on_the_holder_is_degraded_not_a_failover(lab: E2E) -> None:
    node1 = lab.cluster.lan.node("node1")
    _active_on_node1(lab)
    seconds = 14.0
    prober = lab.cluster.start_prober(seconds)
    lab.cluster.wait_probing("node1")
    lab.cluster.stop_agent("node1", signal.SIGKILL)
    wait_status(lab.api, "web", timeout=10, activeNode="node1", epoch=1, phase="Degraded")
    degraded_at = time.time()
    lease = lab.cluster.lease("node1")
    assert lease is not None
    assert lease["spec"]["leaseDurationSeconds"] == 3
    expires = kubetime.parse_time(lease["spec"]["renewTime"]).timestamp() + 3
    assert degraded_at >= expires, "Degraded before node1's Lease expired"
    assert MARKED in lab.addresses("node1")
    assert all(a != ADDRESS for a, _ in lab.addresses("node2"))
    lab.cluster.start_agent("node1")
    wait_status(lab.api, "web", timeout=8, activeNode="node1", epoch=1, phase="Active")
    active_again = time.time()
    report = lab.cluster.prober_report(prober)
    assert active_again - report["started_at"] < seconds - 0.5, "the prober ended too early"
    assert report["split_brain_samples"] == []
    assert {s["mac"] for s in report["segments"]} == {node1.mac}
    assert [g for g in report["gaps"] if g["outage_ms"] > 100] == []
    assert report["answered"] >= 0.95 * report["sent"], (report["answered"], report["sent"])
    assert MARKED in lab.addresses("node1")


def test_invalid_spec_is_reported_and_touches_nothing(lab: E2E) -> None:
    _active_on_node1(lab)

    def settled() -> dict[str, Any]:
        got = status(lab.api, "web")
        views = got.get("nodes") or {}
        return {
            "operator": {k: v for k, v in got.items() if k != "nodes"},
            "nodes": {n: (v.get("state"), v.get("epoch")) for n, v in views.items()},
        }

    before = settled()
    kernel = {n: lab.addresses(n) for n in ("node1", "node2")}
    lab.apply_aliasip("bad", "198.18.0.0/24")  # schema-valid, but the network address
    got = wait_status(lab.api, "bad", phase="Invalid", activeNode=None)
    message = got["conditions"][0]["message"]
    assert "198.18.0.0" in message
    warnings = eventually(lambda: [e for e in lab.events("bad") if e["type"] == "Warning"])
    assert warnings[0]["message"] == message
    assert settled() == before
    assert {n: lab.addresses(n) for n in ("node1", "node2")} == kernel
    printed = lab.printed("bad")
    assert printed["PHASE"] == "Invalid" and printed["ACTIVE"] in ("", "<none>"), printed
    assert "Traceback" not in lab.operator.output()
    assert MARKED in kernel["node1"]
    assert all(not a.startswith("198.18.0.0/") for n in kernel for a, _ in lab.addresses(n))
