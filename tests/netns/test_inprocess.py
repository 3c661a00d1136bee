"""The in-process data path (what the daemon will run), on a real kernel and wire."""

from __future__ import annotations

import ipaddress
import os

from scapy.layers.l2 import ARP, Ether

from aliasip_lab.capture import Capture, Frame
from aliasip_lab.lan import Lan
from aliasip_lab.nsenter import netns
from aliasip_nodeagent import dataplane, errors
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


def test_a_batch_of_probes_refuses_exactly_what_another_host_answers_for(lan: Lan) -> None:
    """The daemon's batch (``dataplane.apply_batch``): node2 takes six addresses in one
    step, IPv4 and IPv6; node1's kernel (not aliasip) holds two of them. The probes leave
    together: exactly those two holds are refused with the single probe's AddressInUse
    naming node1's MAC, nothing of them is added, the other four are added and announced."""
    holder, taker = lan.nodes
    answered = ["198.18.0.51", "2001:2::51"]
    for address in answered:
        v6 = ":" in address
        lan.run(
            holder,
            *("ip", "addr", "add", f"{address}/{64 if v6 else 24}", "dev", "eth1"),
            "nodad" if v6 else "noprefixroute",
        )
    wanted = ["198.18.0.50", "198.18.0.51", "198.18.0.52", "2001:2::50", "2001:2::51"]
    with netns(taker.netns):
        announcer = Announcer()
        for version in (4, 6):  # opened in node2's namespace, used from here
            announcer.socket_for("eth1", version)
        netlink = NetlinkHost()
    with netns(lan.client.netns):
        capture = Capture("eth1")
    try:
        items = [
            dataplane.BatchItem((parse_request(a),), probe=True, announcer=announcer)
            for a in wanted
        ]
        # one hold of two addresses, one of them answered: the whole hold is refused
        items.append(
            dataplane.BatchItem(
                (parse_request("198.18.0.53"), parse_request("198.18.0.51")),
                probe=True,
                announcer=announcer,
            )
        )
        with capture:
            results = dataplane.apply_batch(items, netlink, announcer, probe_wait_s=0.05)
            frames = capture.wait_until(lambda got: len(got) >= 1, 1.0)
        outcome = {
            a: r.message if isinstance(r, errors.AliasError) else "added"
            for a, r in zip([*wanted, "198.18.0.53+51"], results, strict=True)
        }
        assert outcome == {
            "198.18.0.50": "added",
            "198.18.0.51": f"198.18.0.51 is answered on the wire by {holder.mac}; not taking it",
            "198.18.0.52": "added",
            "2001:2::50": "added",
            "2001:2::51": f"2001:2::51 is answered on the wire by {holder.mac}; not taking it",
            "198.18.0.53+51": f"198.18.0.51 is answered on the wire by {holder.mac}; not taking it",
        }
        assert all(isinstance(r, errors.AddressInUse) for r in results if isinstance(r, Exception))
        held = {a.address for a in kernel_addresses(taker) if a.proto == 0xA1}  # aliasip's mark
        assert held == {"198.18.0.50", "198.18.0.52", "2001:2::50"}
        probed = [r[0].probe_ms for r in results if isinstance(r, list)]
        assert all(ms is not None for ms in probed)
        assert frames  # the client saw the batch's frames (probes, announcements)
    finally:
        announcer.close()
        netlink.close()
