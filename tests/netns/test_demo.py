"""The README's first command must keep working: run the demo as a user would."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_moves_the_alias_and_reports_what_the_client_saw() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "aliasip_lab.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "client: gratuitous ARP request from node2" in out
    assert re.search(r"answered by\s+node1 \(02:a1:00:00:00:0b, \d+ replies\) then node2", out)
    outage = re.search(r"client-seen outage\s+([\d.]+) ms", out)
    assert outage and 0 < float(outage.group(1)) < 5000
    assert re.search(r"split-brain samples\s+0\n", out)
    assert "client neighbour entry  02:a1:00:00:00:0c (node2)" in out
    assert "LAN removed" in out
