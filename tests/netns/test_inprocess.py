"""The in-process data path (what the daemon will run), on a real kernel and wire."""

from __future__ import annotations

import ipaddress
import os

from scapy.layers.l2 import ARP, Ether

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent import dataplane
from aliasip_nodeagent.announce import Announcer
from aliasip_nodeagent.netlink import NetlinkHost
from aliasip_nodeagent.placement import parse_request
from tests.netns.support import kernel_addresses


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _claims(frames: list[Frame]) -> list[Ether]:
    """ARP frames whose sender claims the alias."""
    return [
        Ether(f.data)
        for f in frames
        if f.ethertype == 0x0806 and Ether(f.data)[ARP].psrc == "198.18.0.50"
    ]


def test_announcer_reuses_one_socket_per_interface(lan: Lan) -> None:
    node = lan.nodes[1]
    with netns(node.netns):
        # Sockets belong to the namespace they are opened in: open them there, use anywhere.
        announcer = Announcer()
        announcer.socket_for("eth1", 4)
        netlink = NetlinkHost()
    with netns(lan.client.netns):
        capture = Capture("eth1")
    try:
        with capture:
            result = dataplane.apply_alias(parse_request("198.18.0.50"), netlink, announcer)
            fds_after_first = _open_fds()
            for _ in range(5):
                announcer.announce("eth1", node.mac, ipaddress.ip_address("198.18.0.50"))
            assert _open_fds() == fds_after_first
            assert announcer.socket_for("eth1", 4) is announcer.socket_for("eth1", 4)
            frames = capture.wait_until(lambda got: len(_claims(got)) >= 12, 2.0)
        assert result.changed
        assert result.probe_ms is not None
        claims = _claims(frames)
        assert len(claims) == 12  # 6 rounds of request + reply, all from node2
        assert {p.src for p in claims} == {"02:a1:00:00:00:0c"}
        assert "198.18.0.50" in {a.address for a in kernel_addresses(node)}

        released = dataplane.release_alias(ipaddress.ip_address("198.18.0.50"), netlink)
        assert [str(h.address) for h in released.released] == ["198.18.0.50/24"]
        assert "198.18.0.50" not in {a.address for a in kernel_addresses(node)}
    finally:
        announcer.close()
        netlink.close()
