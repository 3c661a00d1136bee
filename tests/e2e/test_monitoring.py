"""The monitoring path's faults on the lab, with the lab's own commands (the chaos run
draws the same): forged heartbeats are rejected and move nothing; a node whose heartbeats
are lost is probed, heard on the wire and keeps its alias; a key rotation during traffic
silences nobody. The wire observer judges: one MAC throughout."""

from __future__ import annotations

import time

from aliasip_lab.heartbeatfaults import block_heartbeats, rotate_keys, spoof_heartbeats
from tests.e2e.lab import E2ELab, eventually

ADDRESS = "198.18.0.50/24"


def test_forged_heartbeats_lost_heartbeats_and_a_rotation_move_nothing(lab: E2ELab) -> None:
    lab.apply("web", ADDRESS)
    before = lab.wait_active("web", "node1")
    lab.wait_held("node1", ADDRESS)
    # node1 sends to the standbys once their Leases advertise where they listen
    eventually(lambda: "peer=node1 note=" in lab.agent_log("node2"), 10, "node2 hears node1")
    probe = lab.probe(ADDRESS, 30.0, wait_on="node1")

    said = spoof_heartbeats(lab.lab)  # epoch 1,000,000 for web, in node2's name
    assert "forged heartbeats sent" in said
    eventually(lambda: "verdict=forged" in lab.agent_log("node1"), 5, "the forgery logged")
    assert "verdict=unknown-key" in lab.agent_log("node1")

    block_heartbeats(lab.lab, "node1", blocked=True)
    eventually(lambda: "event=peer-silent" in lab.agent_log("node2"), 5, "node1 missed")
    time.sleep(4.0)  # longer than the Lease and the dead-man window: node1 still answers
    block_heartbeats(lab.lab, "node1", blocked=False)
    eventually(
        lambda: lab.agent_log("node2").count("event=peer-heard") == 2, 5, "node1 heard again"
    )

    for step in (1, 2, 3):
        rotate_keys(lab.lab, step)
        time.sleep(1.6)  # every agent reloads the keys within a second
    time.sleep(1.0)
    report = probe.finish()

    status = lab.status("web")
    assert (status["activeNode"], status["epoch"]) == ("node1", before["epoch"])  # no move
    assert lab.holders(ADDRESS) == ["node1"]
    assert "event=release" not in lab.agent_log("node1")
    lab.served_by(report, "node1")  # one MAC in every observer round, the client served
    # the rotation lost no heartbeat: node2 heard node1 throughout (one silence: the block)
    assert lab.agent_log("node2").count("event=peer-silent") == 1
    assert lab.agent_log("node2").count("event=peer-heard") == 2
    rejected = [
        line
        for node in ("node1", "node2", "node3")
        for line in lab.agent_log(node).splitlines()
        if "event=heartbeat-rejected" in line
    ]
    client = str(lab.lab.lan.client.ipv4.ip)
    assert rejected and all(f"source={client}" in line for line in rejected), rejected
