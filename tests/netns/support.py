"""Helpers for netns tests: run the real agent in a namespace, read the kernel independently."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPRoute
from scapy.packet import Packet

from aliasip_lab.lan import Host, Lan
from aliasip_lab.nsenter import netns


@dataclass(frozen=True)
class KernelAddress:
    """One address as the kernel reports it (read with a plain netlink dump)."""

    address: str
    prefixlen: int
    label: str | None
    proto: int | None
    flags: int


def kernel_addresses(host: Host) -> list[KernelAddress]:
    with IPRoute(netns=host.netns) as ipr:
        index = ipr.link_lookup(ifname=host.ifname)[0]
        return sorted(
            (
                KernelAddress(
                    address=m.get("IFA_LOCAL") or m.get("IFA_ADDRESS"),
                    prefixlen=m["prefixlen"],
                    label=m.get("IFA_LABEL"),
                    proto=m.get("IFA_PROTO"),
                    flags=m.get("IFA_FLAGS") or m["flags"],
                )
                for m in ipr.get_addr(index=index)
            ),
            key=lambda a: a.address,
        )


def all_addresses(lan: Lan) -> dict[str, list[str]]:
    """Every address of every namespace of the LAN, to prove that nothing changed."""
    out = {}
    for ns in [*(h.netns for h in lan.hosts), lan.switch_ns]:
        shown = subprocess.run(
            ["ip", "-n", ns, "-o", "addr", "show"], capture_output=True, text=True, check=True
        ).stdout
        out[ns] = sorted(line.split("\\")[0].strip() for line in shown.splitlines())
    return out


@dataclass
class AgentRun:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


def agent(lan: Lan, host: Host, *args: str) -> AgentRun:
    """Run the real ``aliasip-agent`` entry point inside ``host``'s namespace."""
    done = lan.run(host, sys.executable, "-m", "aliasip_nodeagent", *args, check=False)
    return AgentRun(done.returncode, done.stdout, done.stderr)


def send(host: Host, frames: list[Packet]) -> None:
    """Put ``frames`` on ``host``'s LAN interface as they are (a raw packet socket in its
    namespace): a foreign host's frames, built and decoded with scapy by the tests."""
    with netns(host.netns):
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.bind((host.ifname, 0))
        for frame in frames:
            sock.send(bytes(frame))
    finally:
        sock.close()
