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
    assert "client: gratuitous ARP request from node1" in out
    assert re.search(r"answered by \(replies\)\s+node1 \(\d+\) then node2 \(\d+\) then node1", out)
    by_cli = re.search(r"1: node1 -> node2 .* ([\d.]+) ms\s+(\d+)\n", out)
    in_process = re.search(r"2: node2 -> node1 .* ([\d.]+) ms\s+(\d+)\n", out)
    assert by_cli and in_process
    assert 0 < float(by_cli.group(1)) < 5000
    assert float(in_process.group(1)) < 5000
    assert re.search(r"split-brain samples\s+0\n", out)
    assert "client neighbour entry  02:a1:00:00:00:0b (node1)" in out
    assert "LAN removed" in out
