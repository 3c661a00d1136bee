"""What the client sees on the wire when an alias moves between nodes.

Frames are captured in the client namespace and decoded with scapy here, independently
of the agent's frame builders; expected values are written out literally.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import pytest
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, IPv6
from scapy.layers.l2 import ARP, Ether

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from tests.netns.support import agent


def _held_by_node1_and_known_to_client(lan: Lan, alias: str) -> Capture:
    """node1 holds the alias, the client has resolved it; a capture on the client, unstarted."""
    assert agent(lan, lan.nodes[0], "apply", alias, "--announce-count", "1").code == 0
    lan.run(lan.client, "ping", "-c", "1", "-W", "2", alias)
    assert lan.neighbour_mac(lan.client, alias) == "02:a1:00:00:00:0b"
    with netns(lan.client.netns):
        return Capture("eth1")


def _client_resolutions(frames: list[Frame], alias: str) -> list[Ether]:
    """ARP requests or neighbour solicitations the client itself sent for the alias."""
    found = []
    for frame in frames:
        if not frame.outgoing:
            continue
        packet = Ether(frame.data)
        if packet.haslayer(ARP) and packet[ARP].op == 1 and packet[ARP].pdst == alias:
            found.append(packet)
        if packet.haslayer(ICMPv6ND_NS) and packet[ICMPv6ND_NS].tgt == alias:
            found.append(packet)
    return found


def _is_arp_reply_for(frame: Frame, alias: str) -> bool:
    """The last frame of an IPv4 announcement round: the gratuitous reply."""
    if frame.outgoing or frame.ethertype != 0x0806:
        return False
    arp = Ether(frame.data)[ARP]
    return bool(arp.op == 2 and arp.psrc == alias)


def test_ipv4_move_updates_client_neighbour_by_gratuitous_arp(lan: Lan) -> None:
    node1, node2 = lan.nodes
    alias = "198.18.0.50"
    capture = _held_by_node1_and_known_to_client(lan, alias)
    with capture:
        assert agent(lan, node1, "release", alias).code == 0
        assert agent(lan, node2, "apply", alias, "--announce-count", "1").code == 0
        frames = capture.wait_for(lambda f: _is_arp_reply_for(f, alias), 2.0)

    # The client learnt node2's MAC without asking: only the gratuitous ARP told it.
    assert lan.neighbour_mac(lan.client, alias) == "02:a1:00:00:00:0c"
    assert _client_resolutions(frames, alias) == []

    arps = [Ether(f.data) for f in frames if not f.outgoing and f.ethertype == 0x0806]
    announcements = [p for p in arps if p[ARP].psrc == alias]
    assert len(announcements) == 2
    request, reply = announcements
    assert request.dst == "ff:ff:ff:ff:ff:ff"
    assert request.src == "02:a1:00:00:00:0c"
    assert request[ARP].op == 1
    assert request[ARP].hwsrc == "02:a1:00:00:00:0c"
    assert request[ARP].pdst == "198.18.0.50"
    assert request[ARP].hwdst == "00:00:00:00:00:00"
    assert reply.dst == "ff:ff:ff:ff:ff:ff"
    assert reply[ARP].op == 2
    assert reply[ARP].hwsrc == "02:a1:00:00:00:0c"
    assert reply[ARP].hwdst == "02:a1:00:00:00:0c"
    assert reply[ARP].pdst == "198.18.0.50"
    # The duplicate-address probe went out before the announcement and claimed nothing.
    timed = [(f.at, Ether(f.data)) for f in frames if not f.outgoing and f.ethertype == 0x0806]
    probe_times = [at for at, p in timed if p[ARP].psrc == "0.0.0.0" and p[ARP].pdst == alias]
    claim_times = [at for at, p in timed if p[ARP].psrc == alias]
    assert probe_times, "the duplicate-address probe should be visible on the wire"
    assert max(probe_times) < min(claim_times)


def test_ipv6_move_updates_client_neighbour_by_unsolicited_na(lan: Lan) -> None:
    node1, node2 = lan.nodes
    alias = "2001:2::50"
    capture = _held_by_node1_and_known_to_client(lan, alias)

    def is_na(frame: Frame) -> bool:
        return not frame.outgoing and bool(Ether(frame.data).haslayer(ICMPv6ND_NA))

    with capture:
        assert agent(lan, node1, "release", alias).code == 0
        assert agent(lan, node2, "apply", alias, "--announce-count", "1").code == 0
        frames = capture.wait_for(is_na, 2.0)

    assert lan.neighbour_mac(lan.client, alias) == "02:a1:00:00:00:0c"
    assert _client_resolutions(frames, alias) == []
    nas = [Ether(f.data) for f in frames if is_na(f)]
    assert len(nas) == 1
    na = nas[0]
    assert na.dst == "33:33:00:00:00:01"
    assert na.src == "02:a1:00:00:00:0c"
    assert na[IPv6].dst == "ff02::1"
    assert na[IPv6].src == "2001:2::50"
    assert na[IPv6].hlim == 255
    assert na[ICMPv6ND_NA].tgt == "2001:2::50"
    assert (na[ICMPv6ND_NA].R, na[ICMPv6ND_NA].S, na[ICMPv6ND_NA].O) == (0, 0, 1)
    assert na[ICMPv6NDOptDstLLAddr].type == 2
    assert na[ICMPv6NDOptDstLLAddr].lladdr == "02:a1:00:00:00:0c"
    # A DAD solicitation from node2 preceded the advertisement.
    dad = [
        Ether(f.data)
        for f in frames
        if not f.outgoing and Ether(f.data).haslayer(ICMPv6ND_NS)
        and Ether(f.data)[IPv6].src == "::"
    ]  # fmt: skip
    assert dad
    assert dad[0][IPv6].dst == "ff02::1:ff00:50"
    assert dad[0].dst == "33:33:ff:00:00:50"


SERVER = """
import socket, sys, time
tag, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in address else socket.AF_INET
srv = socket.socket(family, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind before the alias arrives
srv.bind((address, port))
srv.listen()
srv.settimeout(1.0)
print("listening", flush=True)
deadline = time.monotonic() + 60
conns = []
while time.monotonic() < deadline:
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        continue
    conn.sendall(tag.encode())
    conns.append(conn)
"""


def _start_server(lan: Lan, node_index: int, alias: str, port: int) -> None:
    node = lan.nodes[node_index]
    proc = lan.spawn(
        node, [sys.executable, "-c", SERVER, node.name, alias, str(port)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "listening"


@pytest.mark.parametrize("alias", ["198.18.0.50", "2001:2::50"], ids=["ipv4", "ipv6"])
def test_tcp_connection_is_reset_after_move_and_reconnect_reaches_new_node(
    lan: Lan, alias: str
) -> None:
    node1, node2 = lan.nodes
    port = 7000
    _start_server(lan, 0, alias, port)
    _start_server(lan, 1, alias, port)
    assert agent(lan, node1, "apply", alias, "--announce-count", "1").code == 0
    family = socket.AF_INET6 if ":" in alias else socket.AF_INET

    with netns(lan.client.netns):
        first = socket.socket(family, socket.SOCK_STREAM)
    first.settimeout(5)
    first.connect((alias, port))
    assert first.recv(16) == b"node1"

    assert agent(lan, node1, "release", alias).code == 0
    assert agent(lan, node2, "apply", alias, "--announce-count", "1").code == 0

    # The old connection now reaches node2, which knows nothing of it and resets it.
    with pytest.raises(ConnectionResetError):
        for _ in range(20):
            first.send(b"hello")
            if first.recv(16) == b"":
                break
            time.sleep(0.05)
    first.close()

    with netns(lan.client.netns):
        second = socket.socket(family, socket.SOCK_STREAM)
    second.settimeout(5)
    second.connect((alias, port))
    assert second.recv(16) == b"node2"
    second.close()


def test_prober_stopped_by_sigterm_still_reports_what_it_saw(lan: Lan) -> None:
    """``aliasip-lab probe`` ends early on SIGTERM (or Ctrl-C) with its JSON report."""
    node1 = lan.nodes[0]
    argv = [
        sys.executable, "-m", "aliasip_lab.prober", str(node1.ipv4.ip), "--interface", "eth1",
        "--interval-ms", "10", "--duration", "30", "--json",
    ]  # fmt: skip
    proc = lan.spawn(lan.client, argv, stdout=subprocess.PIPE)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    report = json.loads(out)
    assert 10 <= report["sent"] < 300, report["sent"]  # far fewer than 30 s worth
    assert report["answered"] >= report["sent"] - 2
    assert {s["mac"] for s in report["segments"]} == {node1.mac}
