"""Frames heard on the wire are parsed with every layer they need, in a fresh process.

scapy binds IPv6 to its ethertype only when its IPv6 layers are imported; the agent
imports them lazily. Session 10 found a DAD probe that parsed the holder's neighbour
advertisement before that import, saw Ether / Raw, and took an address another host held
(tests/netns/test_refusals.py caught it on a real kernel). The check runs in a fresh
interpreter: this test process has imported scapy's IPv6 layers long before.
"""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import ipaddress
from aliasip_nodeagent import announce, frames
ip = ipaddress.ip_address("2001:2::50")
frame = announce.decode(frames.unsolicited_na("02:00:00:00:09:09", ip))
print(announce.claimed(frame), announce.conflicting_mac(frame, ip, "02:00:00:00:01:01"))
"""


def test_a_neighbour_advertisement_is_recognised_before_anything_imported_ipv6() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["2001:2::50", "02:00:00:00:09:09"], done.stderr
