"""Planned moves and the holder's own agent going away, on the lab: each judged through
kubectl and the API (status, Events), the kernel (iproute2) and the wire (the prober)."""

from __future__ import annotations

import signal
import time

from aliasip_operator.observations import SWITCHOVER_ANNOTATION as SWITCHOVER
from tests.e2e.lab import E2ELab, eventually, outage

ADDRESS = "198.18.0.50/24"


def _active_on_node1(
    lab: E2ELab, name: str = "web", address: str = ADDRESS, failback: str = "Manual"
) -> None:
    lab.apply(name, address, failback=failback)
    lab.wait_active(name, "node1")
    lab.wait_held("node1", address)


def test_create_kubectl_kernel_and_wire_agree(lab: E2ELab) -> None:
    _active_on_node1(lab)
    columns = lab.printed("web")
    assert (columns["ACTIVE"], columns["PHASE"], columns["EPOCH"]) == ("node1", "Active", "1")
    assert columns["ADDRESSES"] == f'["{ADDRESS}"]', columns
    report = lab.probe(ADDRESS, 0.5).report()
    assert report["answered"] > 0, report
    lab.served_by(report, "node1")
    # Events are posted right after the status they describe: wait for them.
    eventually(lambda: {"Placement", "Held"} <= set(lab.reasons("web")), 5, "Placement, Held")
    described = lab.kubectl("describe", "aip", "web")
    assert "node1 takes the addresses at epoch 1" in described, described


def test_switchover_by_kubectl_annotate_releases_before_it_adds(lab: E2ELab) -> None:
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.kubectl("annotate", "aip", "web", f"{SWITCHOVER}=node2")
    lab.wait_active("web", "node2", above=1, timeout=5)
    lab.wait_held("node2", ADDRESS)
    eventually(
        lambda: SWITCHOVER not in (lab.lab.aliasip("web")["metadata"].get("annotations") or {}),
        5,
        "the switchover annotation consumed",
    )
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    first, second = report["segments"]
    assert first["last_ms"] < second["first_ms"]  # node1 stopped answering before node2 began
    transition = lab.status("web")["lastTransition"]
    assert (transition["reason"], transition["from"], transition["to"]) == (
        "Switchover",
        "node1",
        "node2",
    )
    eventually(lambda: "SwitchoverComplete" in lab.reasons("web"), 5, "SwitchoverComplete")
    assert lab.printed("web")["ACTIVE"] == "node2"
    outage("planned switchover (kubectl annotate)", report)


def test_cordon_moves_it_and_failback_auto_returns_manual_stays(lab: E2ELab) -> None:
    other = "198.18.0.51/24"
    _active_on_node1(lab, "auto", failback="Auto")
    _active_on_node1(lab, "manual", other)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.kubectl("cordon", "node1")
    auto = lab.wait_active("auto", "node2", above=1)
    manual = lab.wait_active("manual", "node2", above=1)
    lab.wait_held("node2", ADDRESS)
    lab.wait_held("node2", other)
    report = probe.finish()
    lab.served_by(report, "node1", "node2")
    outage("cordon (planned move)", report)
    lab.kubectl("uncordon", "node1")
    lab.wait_active("auto", "node1", above=auto["epoch"])
    lab.wait_held("node1", ADDRESS)
    time.sleep(1.0)  # the Auto one came back: the operator saw the uncordon; Manual stays
    got = lab.status("manual")
    assert (got["activeNode"], got["epoch"]) == ("node2", manual["epoch"]), got
    assert lab.holders(other) == ["node2"]


def test_a_killed_agents_alias_expires_and_fails_over_the_node_comes_back_a_standby(
    lab: E2ELab,
) -> None:
    """The dead-man switch (docs/design.md R9): nobody renews a SIGKILLed agent's alias, so
    node1's kernel drops it within 2 s; its silence, once it outlasted that window, is
    the evidence for a failover to node2. The restarted agent adds nothing."""
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    lab.lab.kill_agent("node1")
    eventually(lambda: lab.holders(ADDRESS) != ["node1"], 5, "node1's alias expired")
    got = lab.wait_active("web", "node2", above=1, timeout=15)
    assert got["lastTransition"]["from"] == "node1", got["lastTransition"]
    assert got["lastTransition"]["reason"] == "Failover", got["lastTransition"]
    lab.wait_held("node2", ADDRESS)
    lab.lab.start_agent("node1")
    eventually(
        lambda: (
            (lab.status("web")["nodes"].get("node1") or {}).get("epoch") == got["epoch"]
            and lab.status("web")["nodes"]["node1"]["state"] in ("released", "standby")
        ),
        15,
        "node1's new agent reports that it holds nothing at the new epoch",
    )
    report = probe.finish()
    lab.served_by(report, "node1", "node2")  # and never two MACs in one observer round
    assert lab.holders(ADDRESS) == ["node2"]
    outage("agent killed (dead-man expiry, then failover)", report)


def test_agent_restart_adopts_without_a_blip(lab: E2ELab) -> None:
    _active_on_node1(lab)
    probe = lab.probe(ADDRESS, 60.0, wait_on="node1")
    daemon = lab.lab.daemon("agent node1")
    assert daemon is not None
    daemon.signal(signal.SIGTERM)  # as a DaemonSet rollout stops it: the alias stays
    assert lab.holders(ADDRESS) == ["node1"]
    synced = lab.agent_log("node1").count("event=synced")
    lab.lab.start_agent("node1")
    eventually(
        lambda: lab.agent_log("node1").count("event=synced") > synced, 15, "the new agent synced"
    )
    time.sleep(1.5)  # a resync pass or more of the new agent, under the prober
    report = probe.finish()
    lab.served_by(report, "node1")
    assert [g for g in report["gaps"] if g["outage_ms"] > 100] == [], report["gaps"]
    got = lab.wait_active("web", "node1")
    assert got["epoch"] == 1
    assert lab.holders(ADDRESS) == ["node1"]


def test_invalid_spec_is_reported_and_touches_nothing(lab: E2ELab) -> None:
    _active_on_node1(lab)
    before = lab.status("web")
    kernel = {n: lab.held(n) for n in lab.lab.node_names}
    lab.apply("bad", "198.18.0.0/24")  # schema-valid, but the network address
    got = lab.wait_phase("bad", "Invalid")
    assert got.get("activeNode") is None
    message = got["conditions"][0]["message"]
    assert "198.18.0.0" in message, message
    warnings = eventually(
        lambda: [e for e in lab.events("bad") if e["type"] == "Warning"], 5, "a Warning Event"
    )
    assert warnings[0]["message"] == message
    assert lab.printed("bad")["PHASE"] == "Invalid"
    after = lab.status("web")
    assert (after["activeNode"], after["epoch"], after["phase"]) == (
        before["activeNode"],
        before["epoch"],
        before["phase"],
    )
    assert {n: lab.held(n) for n in lab.lab.node_names} == kernel
