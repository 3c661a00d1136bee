"""The README's first command must keep working: run ``aliasip-lab demo`` as a user would.

A real process: it builds the 3-node lab, moves the alias twice while the client probes
it, prints its timelines and summary, and removes the lab. What a user relies on is
checked from the outside: the exit code, the summary, and that no namespace and no state
directory is left behind, also when the demo is interrupted.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from aliasip_lab import demo
from aliasip_lab.cluster import tag_for
from aliasip_lab.lan import existing_namespaces

DEMO_BUDGET_S = 60.0  # "well under a minute", with margin for a busy CI machine


def demo_argv(state_dir: Path) -> list[str]:
    return [sys.executable, "-m", "aliasip_lab.cli", "demo", "--state-dir", str(state_dir)]


def leftovers(state_dir: Path) -> list[str]:
    tag = tag_for(state_dir)
    return [ns for ns in existing_namespaces() if ns.startswith(f"{tag}-")]


def test_demo_moves_the_alias_twice_without_split_brain_and_cleans_up(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    started = time.monotonic()
    done = subprocess.run(
        demo_argv(state_dir), capture_output=True, text=True, timeout=DEMO_BUDGET_S * 2
    )
    took = time.monotonic() - started
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # The summary names both moves, each with zero split-brain samples.
    switchover = re.search(
        r"^  1 switchover\s+node1 -> node2\s+([\d.]+) ms\s+(\d+)\s+0\s+planned: node1 released",
        out,
        re.M,
    )
    failover = re.search(
        r"^  2 node lost\s+node2 -> node([13])\s+([\d.]+) ms\s+(\d+)\s+0\s+peers' evidence: "
        r"node1, node3 hear neither its heartbeats nor its addresses",
        out,
        re.M,
    )
    assert switchover, out
    assert failover, out
    assert failover.group(1) == "1", "node preference: node1 comes before node3"
    # Losing a node costs its missed heartbeats and its dead-man window (0.3 + 0.25 s as
    # shipped) and the API round trips, not its Lease; a planned switchover far less.
    assert float(switchover.group(1)) < 2000
    assert 300 < float(failover.group(2)) < 6000
    # Each timeline shows the wire and the client's first reply from the new node.
    assert "first gratuitous ARP (request) for 198.18.0.50 from node2" in out
    assert "first gratuitous ARP (request) for 198.18.0.50 from node1" in out
    assert "first reply from node2 (02:a1:00:00:00:0c)" in out
    assert "first reply from node1 (02:a1:00:00:00:0b)" in out
    assert "node2's Lease expired" in out  # after the failover: it was not waited for
    assert re.search(r"Failover: node2 is silent: node1, node3 hear neither", out)
    flat = " ".join(out.split())  # the timeline wraps its lines
    assert "node2 is silent: heartbeats missed and its wire silent past its dead-man" in flat
    assert "OK: both moves done, 0 split-brain samples" in out
    # kubectl's own views, then the lab is gone.
    assert re.search(r"demo\s+\[\"198.18.0.50/24\"\]\s+node1\s+Active\s+4", out)
    assert "lab removed:" in out
    assert leftovers(state_dir) == []
    assert not state_dir.exists()
    assert took < DEMO_BUDGET_S, f"the demo took {took:.1f} s"


def test_an_interrupted_demo_still_takes_the_lab_down(tmp_path: Path) -> None:
    state_dir = tmp_path / "lab"
    proc = subprocess.Popen(
        demo_argv(state_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        seen.append(line)
        if "client: probing" in line or time.monotonic() > deadline:
            break
    assert leftovers(state_dir), "the lab should be up at this point:\n" + "".join(seen)
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + rest
    assert "interrupted" in rest
    assert "lab removed:" in rest
    assert leftovers(state_dir) == []
    assert not state_dir.exists()


def test_a_move_that_does_not_happen_fails_clearly_and_still_takes_the_lab_down(
    tmp_path: Path,
) -> None:
    state_dir = tmp_path / "lab"
    # No failover can finish within 0.1 s: the lost node's heartbeats are missed only
    # after 0.3 s.
    script = (
        "import sys; from aliasip_lab import demo; demo.FAILOVER_TIMEOUT_S = 0.1; "
        f"sys.exit(demo.main(['--state-dir', {str(state_dir)!r}]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=DEMO_BUDGET_S * 2
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert re.search(r"FAILED: demo was not Active on node1 or node3 within 0.1 s", out), out
    assert "last lines of agent-node1:" in out  # the evidence, before the logs go
    assert "OK:" not in out
    assert "lab removed:" in out
    assert leftovers(state_dir) == []
    assert not state_dir.exists()


def test_a_state_dir_holding_a_lab_is_refused_and_left_alone(tmp_path: Path) -> None:
    state_dir = tmp_path / "busy"
    state_dir.mkdir()
    (state_dir / "state.json").write_text("{}")
    assert demo.main(["--state-dir", str(state_dir)]) == 3
    assert (state_dir / "state.json").read_text() == "{}"
