"""A small cluster for the agent's process tests: a LAN with a management network, the
embedded API server in its own namespace, and real ``aliasip-agent run`` processes.

The test plays the operator: it writes ``status.activeNode``/``status.epoch`` with its own
plain HTTP client (tests/api/support.Client, independent of the agent's code) and reads
the kernel with iproute2 and the wire from the client namespace. Every wait is bounded
(``eventually``); every namespace and process is removed afterwards, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aliasip_lab.apiserver import ServerThread
from aliasip_lab.apiserver.runner import write_kubeconfig
from aliasip_lab.capture import Capture, Frame
from aliasip_lab.cluster import write_heartbeat_keys
from aliasip_lab.lan import Host, Lan, existing_namespaces, ip
from aliasip_lab.nsenter import netns
from tests.api.support import ALIASIP_CRD, Client, eventually, load_yaml

ALIAS = "198.18.0.50"
ALIASIPS = "/apis/aliasip.io/v1alpha1/aliasips"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/aliasip-system/leases"


@dataclass
class Cluster:
    lan: Lan
    server: ServerThread
    api: Client
    workdir: Path
    agents: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    # -- agents ------------------------------------------------------------------------

    def start_agent(self, node: str, *extra: str) -> subprocess.Popen[str]:
        """``aliasip-agent run`` inside the node's namespace, as the DaemonSet runs it
        (with the monitoring path's keys, as the shipped DaemonSet mounts them)."""
        log = (self.workdir / f"{node}.log").open("a")
        keys = self.workdir / "heartbeat-keys"
        write_heartbeat_keys(keys)
        argv = [
            sys.executable, "-m", "aliasip_nodeagent", "run", "--node", node,
            "--kubeconfig", str(self.kubeconfig), "--resync-interval", "1",
            "--heartbeat-keys", str(keys), *extra,
        ]  # fmt: skip
        proc = self.lan.spawn(self.lan.node(node), argv, stdout=log, stderr=subprocess.STDOUT)
        self.agents[node] = proc
        return proc

    def stop_agent(self, node: str, sig: signal.Signals) -> int:
        """Signal the agent (through ``ip netns exec``, which execs it) and reap it."""
        proc = self.agents.pop(node)
        proc.send_signal(sig)
        return proc.wait(timeout=10)

    def log(self, node: str) -> str:
        path = self.workdir / f"{node}.log"
        return path.read_text() if path.exists() else ""

    # -- API, playing the operator ------------------------------------------------------

    def create_aliasip(self, name: str = "web", address: str = f"{ALIAS}/24") -> None:
        body = {
            "apiVersion": "aliasip.io/v1alpha1",
            "kind": "AliasIP",
            "metadata": {"name": name},
            "spec": {
                "addresses": [address],
                "nodes": ["node1", "node2"],
                "announce": {"count": 3, "intervalMs": 200},
            },
        }
        reply = self.api.post(ALIASIPS, body)
        assert reply.status == 201, reply.body

    def set_active(self, active: str | None, epoch: int, name: str = "web") -> None:
        reply = self.api.patch(
            f"{ALIASIPS}/{name}/status", {"status": {"activeNode": active, "epoch": epoch}}
        )
        assert reply.status == 200, reply.body

    def set_release_step(self, source: str, to: str, epoch: int, name: str = "web") -> None:
        """A planned move's release step, as the operator writes it: no node allowed to
        hold, ``to`` named the successor at ``epoch`` (R11)."""
        moving = {
            "from": source,
            "to": to,
            "reason": "Switchover",
            "startedAt": "2026-12-07T00:00:00.000000Z",
        }
        status = {"activeNode": None, "epoch": epoch, "phase": "Switching"}
        reply = self.api.patch(
            f"{ALIASIPS}/{name}/status", {"status": {**status, "lastTransition": moving}}
        )
        assert reply.status == 200, reply.body

    def get(self, name: str = "web") -> dict[str, Any]:
        reply = self.api.get(f"{ALIASIPS}/{name}")
        assert reply.status == 200, reply.body
        obj: dict[str, Any] = reply.json
        return obj

    def view(self, node: str, name: str = "web") -> dict[str, Any]:
        nodes = (self.get(name).get("status") or {}).get("nodes") or {}
        found: dict[str, Any] = nodes.get(node) or {}
        return found

    def wait_view(self, node: str, state: str, epoch: int, timeout: float = 10.0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            view = self.view(node)
            return view if (view.get("state"), view.get("epoch")) == (state, epoch) else None

        found: dict[str, Any] = eventually(check, timeout, 0.05)
        return found

    def lease(self, node: str) -> dict[str, Any] | None:
        reply = self.api.get(f"{LEASES}/aliasip-agent-{node}")
        return reply.json if reply.status == 200 else None

    # -- kernel and wire ------------------------------------------------------------------

    def holds(self, node: str, address: str = ALIAS) -> bool:
        host = self.lan.node(node)
        out = ip("-n", host.netns, "-o", "addr", "show", "dev", host.ifname).stdout
        return any(line.split()[3].split("/")[0] == address for line in out.splitlines())

    def wait_holds(self, node: str, want: bool, timeout: float = 10.0) -> None:
        eventually(lambda: self.holds(node) == want, timeout, 0.02)

    def start_prober(self, duration_s: float, address: str = ALIAS) -> subprocess.Popen[str]:
        """The 10 ms client prober, as a process in the client namespace (JSON on stdout)."""
        argv = [
            sys.executable, "-m", "aliasip_lab.prober", address, "--interface", "eth1",
            "--interval-ms", "10", "--duration", str(duration_s), "--json",
        ]  # fmt: skip
        return self.lan.spawn(self.lan.client, argv, stdout=subprocess.PIPE)

    def wait_probing(self, node: str, timeout: float = 10.0) -> None:
        """Return once the prober's echo requests reach ``node`` (the prober is a process:
        its start-up takes a while, and a switch before it probes would go unseen)."""
        with netns(self.lan.node(node).netns):
            capture = Capture(self.lan.node(node).ifname)
        with capture:
            frames = capture.wait_for(is_echo_request, timeout)
        assert any(is_echo_request(f) for f in frames), "the prober never reached the holder"

    @staticmethod
    def prober_report(proc: subprocess.Popen[str], timeout: float = 30) -> dict[str, Any]:
        out, _ = proc.communicate(timeout=timeout)
        report: dict[str, Any] = json.loads(out)
        return report


def is_echo_request(frame: Frame) -> bool:
    data = frame.data
    return len(data) > 34 and frame.ethertype == 0x0800 and data[23] == 1 and data[34] == 8


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """Two nodes, a client, the management network and the API server; all removed after."""
    workdir = Path(tempfile.mkdtemp(prefix="aip-agent-"))
    lan = Lan.create(nodes=2, management=True)
    try:
        assert lan.api_ns is not None
        server = ServerThread(lan.api_address, 0, netns=lan.api_ns)
        running = server.start()
        try:
            write_kubeconfig(workdir / "kubeconfig", server.url)
            api = Client(lan.api_address, running.port, lan.api_ns)
            crd = api.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                           load_yaml(ALIASIP_CRD))  # fmt: skip
            assert crd.status == 201, crd.body
            namespace = {"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": "aliasip-system"}}  # fmt: skip
            assert api.post("/api/v1/namespaces", namespace).status == 201
            yield Cluster(lan, server, api, workdir)
        finally:
            server.stop()
    finally:
        lan.destroy()
        leftover = [ns for ns in existing_namespaces() if ns.startswith(lan.tag + "-")]
        shutil.rmtree(workdir, ignore_errors=True)
        assert not leftover, f"namespaces left behind: {leftover}"


def node_host(c: Cluster, name: str) -> Host:
    return c.lan.node(name)
