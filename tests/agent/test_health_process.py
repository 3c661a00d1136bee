"""The health endpoint of a real ``aliasip-agent run`` in its node's namespace, probed the
way kubelet probes it (HTTP to 127.0.0.1 in the node's network, a new connection each
time, a timeout): ready once its Lease is renewed and the AliasIPs listed, not ready
while cut off from the API (live all along: a cut-off holder keeps serving), no answer
at all while the process is frozen (SIGSTOP), and a port that is taken refused at start.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time

import pytest

from aliasip_lab.nsenter import netns
from tests.agent.support import Cluster
from tests.api.support import eventually

PORT = 7948  # the DaemonSet's (manifests/agent.yaml): each node namespace has its own


def probe(lab: Cluster, node: str, path: str, timeout: float = 2.0) -> tuple[int, str]:
    """One probe from inside ``node``'s network namespace, as kubelet sends it there."""
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        with netns(lab.lan.node(node).netns):
            conn.connect()
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def answers(lab: Cluster, node: str, path: str, status: int) -> str | None:
    """The body if ``path`` answers ``status`` now, else None (also when refused)."""
    try:
        got, body = probe(lab, node, path)
    except (ConnectionError, TimeoutError):
        return None
    return body if got == status else None


def test_ready_once_synced_not_ready_while_cut_off_and_live_throughout(lab: Cluster) -> None:
    lab.create_aliasip()
    lab.set_active("node1", 1)
    lab.start_agent("node1", "--health-port", str(PORT))
    eventually(lambda: answers(lab, "node1", "/readyz", 200), timeout=10)
    lab.wait_holds("node1", True)
    assert probe(lab, "node1", "/livez") == (200, "ok\n")
    status, body = probe(lab, "node1", "/readyz?verbose")
    assert status == 200
    assert [line.split(" ")[0] for line in body.splitlines()[:-1]] == [
        "[+]lease",
        "[+]kernel",
        "[+]aliasips",
    ]
    assert "event=health-serving node=node1 listen=127.0.0.1:7948" in lab.log("node1")

    node1 = lab.lan.node("node1")
    lab.lan.set_management_link(node1, False)
    body = eventually(lambda: answers(lab, "node1", "/readyz", 503), timeout=8)
    assert "[-]lease failed: cut off from the API" in body
    assert "[+]kernel ok" in body and "[+]aliasips ok" in body
    # the probe judges the fence deadline itself: it may answer before the fence logs
    eventually(lambda: "event=api-lost" in lab.log("node1"), timeout=5)
    assert probe(lab, "node1", "/livez") == (200, "ok\n")  # cut off is no reason to restart
    assert lab.holds("node1")
    assert "event=readyz-failing node=node1" in lab.log("node1")

    lab.lan.set_management_link(node1, True)
    eventually(lambda: answers(lab, "node1", "/readyz", 200), timeout=10)
    assert "event=readyz-passing node=node1" in lab.log("node1")


def test_a_frozen_agent_answers_no_probe(lab: Cluster) -> None:
    """SIGSTOP freezes the loop that serves the probes: the connection is accepted by the
    kernel (the listen backlog) but nothing answers, so kubelet's probe times out, which
    counts as a failure. After SIGCONT the same agent answers again."""
    lab.create_aliasip()
    lab.set_active("node1", 1)
    frozen = lab.start_agent("node1", "--health-port", str(PORT))
    eventually(lambda: answers(lab, "node1", "/readyz", 200), timeout=10)
    frozen.send_signal(signal.SIGSTOP)
    try:
        time.sleep(0.2)
        with pytest.raises(TimeoutError):
            probe(lab, "node1", "/livez", timeout=2.0)
        with pytest.raises(TimeoutError):
            probe(lab, "node1", "/readyz", timeout=1.0)
    finally:
        frozen.send_signal(signal.SIGCONT)
    eventually(lambda: answers(lab, "node1", "/livez", 200), timeout=10)


def test_a_taken_health_port_ends_the_agent_before_it_starts(lab: Cluster) -> None:
    with netns(lab.lan.node("node1").netns):
        taken = socket.create_server(("127.0.0.1", PORT))
    with taken:
        proc = lab.start_agent("node1", "--health-port", str(PORT))
        assert proc.wait(timeout=20) == 1
    log = lab.log("node1")
    assert "cannot serve the health endpoint on 127.0.0.1:7948" in log
    assert "event=start" not in log  # nothing was adopted, nothing renewed
