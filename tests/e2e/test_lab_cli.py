"""``aliasip-lab`` as a user types it: each command a separate process, the lab found again
through its state directory; bad input gets one clear line and an exit code, and changes
nothing; ``down`` removes everything, also when the state file is gone (a crash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aliasip_lab.cluster import tag_for
from aliasip_lab.lan import existing_namespaces


def run(state_dir: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALIASIP_LAB_DIR": str(state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "aliasip_lab.cli", *args],
        env=env, input=stdin, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def ok(state_dir: Path, *args: str, stdin: str | None = None) -> str:
    done = run(state_dir, *args, stdin=stdin)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def status(state_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(ok(state_dir, "status", "--json"))
    return found


def namespaces(state_dir: Path) -> list[str]:
    return [n for n in existing_namespaces() if n.startswith(tag_for(state_dir) + "-")]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "lab"
    try:
        yield path
    finally:
        run(path, "down")
        assert namespaces(path) == []


def test_up_status_kubectl_faults_down(state_dir: Path) -> None:
    out = ok(state_dir, "up", "--nodes", "2")
    assert "node1" in out and "node2" in out
    assert len(namespaces(state_dir)) == 6  # switch, control plane, 2 nodes, client, observer
    report = status(state_dir)
    assert [n["name"] for n in report["nodes"]] == ["node1", "node2"]
    assert all(n["agent"]["running"] for n in report["nodes"])
    assert [op["running"] for op in report["operators"]] == [True, True]
    assert sum(op["leader"] for op in report["operators"]) == 1
    nodes = ok(state_dir, "kubectl", "get", "nodes", "-o", "name")
    assert nodes.split() == ["node/node1", "node/node2"]

    aliasip = (
        "apiVersion: aliasip.io/v1alpha1\nkind: AliasIP\nmetadata: {name: web}\n"
        "spec: {addresses: [198.18.0.50/24], nodes: [node1, node2]}\n"
    )
    ok(state_dir, "kubectl", "apply", "-f", "-", stdin=aliasip)
    ok(state_dir, "kubectl", "wait", "aip/web", "--for=jsonpath={.status.phase}=Active",
       "--timeout=15s")  # fmt: skip
    probe = json.loads(ok(state_dir, "probe", "198.18.0.50", "--duration", "0.3", "--json"))
    assert probe["client"]["answered"] > 0
    assert {s["mac"] for s in probe["client"]["segments"]} == {"02:a1:00:00:00:0b"}
    wire = probe["observer"]["aliases"]["198.18.0.50"]
    assert wire["answered"] > 0 and wire["split_brain_rounds"] == 0
    assert wire["macs"] == ["02:a1:00:00:00:0b"]
    text = ok(state_dir, "probe", "198.18.0.50", "--duration", "0.2")
    assert "client prober" in text and "wire observer" in text, text

    assert "switchover to node2 requested" in ok(state_dir, "switchover", "web", "--to", "node2")
    ok(state_dir, "kubectl", "wait", "aip/web", "--for=jsonpath={.status.activeNode}=node2",
       "--timeout=15s")  # fmt: skip

    ok(state_dir, "kill-agent", "node1")
    report = status(state_dir)
    assert [n["agent"]["running"] for n in report["nodes"]] == [False, True]
    again = run(state_dir, "kill-agent", "node1")
    assert again.returncode == 3
    assert "the agent on node1 is not running" in again.stderr
    ok(state_dir, "start-agent", "node1")

    ok(state_dir, "partition", "node1")
    ok(state_dir, "link-down", "node2")
    report = status(state_dir)
    links = [(n["lan"], n["management"]) for n in report["nodes"]]
    assert links == [("up", "down"), ("down", "up")]
    ok(state_dir, "heal", "node1")
    ok(state_dir, "link-up", "node2")
    ok(state_dir, "cordon", "node1")
    assert status(state_dir)["nodes"][0]["cordoned"] is True
    ok(state_dir, "uncordon", "node1")
    ok(state_dir, "kill-operator", "--leader")
    assert sum(op["running"] for op in status(state_dir)["operators"]) == 1
    ok(state_dir, "start-operator")
    ok(state_dir, "restart-api")
    assert status(state_dir)["apiReachable"] is True

    assert "frozen (SIGSTOP): agent node1" in ok(state_dir, "freeze", "agent", "node1")
    report = status(state_dir)
    assert [(n["agent"]["running"], n["agent"]["frozen"]) for n in report["nodes"]] == [
        (True, True), (True, False),
    ]  # fmt: skip
    again = run(state_dir, "freeze", "agent", "node1")
    assert again.returncode == 3 and "the agent on node1 is already frozen" in again.stderr
    assert "FROZEN" in ok(state_dir, "status")
    ok(state_dir, "thaw", "agent", "node1")
    assert not status(state_dir)["nodes"][0]["agent"]["frozen"]
    ok(state_dir, "freeze", "operator", "--leader")
    assert sum(op["frozen"] for op in status(state_dir)["operators"]) == 1
    ok(state_dir, "thaw", "operator")
    ok(state_dir, "freeze", "api")
    frozen = status(state_dir)
    assert frozen["api"]["frozen"] is True and frozen["apiReachable"] is False
    ok(state_dir, "thaw", "api")
    assert status(state_dir)["apiReachable"] is True

    # `down` removes frozen daemons too (SIGKILL reaches a stopped process).
    ok(state_dir, "freeze", "agent", "node2")
    ok(state_dir, "freeze", "operator")
    ok(state_dir, "freeze", "api")
    assert "removed" in ok(state_dir, "down")
    assert namespaces(state_dir) == []
    assert not state_dir.exists()
    left = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "frozen lab processes survived `down`"


BAD_INPUT = [
    (("kill-agent", "node9"), 2, "no node 'node9' in this lab (nodes: node1)"),
    (("switchover", "nothere", "--to", "node1"), 2, "no AliasIP 'nothere'"),
    (("switchover", "x", "--to", "node7"), 2, "no node 'node7'"),
    (("link-down", "client"), 2, "no node 'client'"),
    (("up",), 3, "a lab is already up in"),
    (("start-operator",), 3, "both operator replicas are already running"),
    (("start-agent", "node1"), 3, "the agent on node1 is already running"),
    (("freeze", "agent", "node9"), 2, "no node 'node9' in this lab"),
    (("freeze", "agent"), 2, "which agent? (`freeze agent NODE`)"),
    (("freeze", "kubelet"), 2, "cannot freeze 'kubelet' (targets: agent NODE, operator, api)"),
    (("freeze", "api", "node1"), 2, "api takes no NODE (got 'node1')"),
    (("thaw", "agent", "node1"), 3, "the agent on node1 is not frozen"),
    (("thaw", "operator"), 3, "the operator is not frozen"),
    (("thaw", "api"), 3, "the API server is not frozen"),
]


def test_bad_input_is_refused_and_changes_nothing(state_dir: Path) -> None:
    ok(state_dir, "up", "--nodes", "1")
    before = status(state_dir)
    for args, code, message in BAD_INPUT:
        done = run(state_dir, *args)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    after = status(state_dir)
    assert after["nodes"] == before["nodes"]
    assert [op["pid"] for op in after["operators"]] == [op["pid"] for op in before["operators"]]
    assert after["api"]["pid"] == before["api"]["pid"]


def test_without_a_lab_commands_say_so(state_dir: Path) -> None:
    done = run(state_dir, "status")
    assert done.returncode == 3
    assert f"no lab in {state_dir}" in done.stderr
    bad = run(state_dir, "up", "--nodes", "0")
    assert bad.returncode == 2 and "--nodes must be 1 to" in bad.stderr
    assert namespaces(state_dir) == []


def test_down_after_a_crash_removes_everything(state_dir: Path) -> None:
    ok(state_dir, "up", "--nodes", "1")
    (state_dir / "state.json").write_text("{")  # as if `up` died while writing it
    assert run(state_dir, "status").returncode == 3
    ok(state_dir, "down")
    assert namespaces(state_dir) == []
    left = subprocess.run(["pgrep", "-f", str(state_dir)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "lab processes survived `down`"
