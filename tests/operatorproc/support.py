"""Playing the cluster around real operator processes: Nodes, agents' Leases and reports.

The test writes what kubelet and the agents would (Node objects, ``aliasip-agent-<node>``
Leases renewed by a thread, ``status.nodes.<node>`` reports) through the embedded API, and
runs the operator exactly as the Deployment does (``python -m aliasip_operator.main``
with ``--leader-elect``), inside the lab's private network namespace.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aliasip_api import kubetime
from aliasip_operator.kube import EVENTS_NAMESPACE
from tests.api.support import ALIASIP_CRD, ApiLab, eventually, install_crd, load_yaml, node

NS = "aliasip-system"
ALIASIPS = "/apis/aliasip.io/v1alpha1/aliasips"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
# The operator's Events about (cluster-scoped) AliasIPs: in default, not in NS.
EVENTS = f"/api/v1/namespaces/{EVENTS_NAMESPACE}/events"
AGENT_LEASE_S = 2
NODES = ("node1", "node2")


def prepare(lab: ApiLab) -> None:
    """The namespace, the CRD and two Ready nodes with stationary addresses."""
    assert lab.client.post("/api/v1/namespaces", {"metadata": {"name": NS}}).status == 201
    install_crd(lab, load_yaml(ALIASIP_CRD))
    for index, name in enumerate(NODES, start=1):
        body = node(name)
        body["status"]["addresses"] = [{"type": "InternalIP", "address": f"198.18.0.{index}"}]
        assert lab.client.post("/api/v1/nodes", body).status == 201, name


def aliasip_body(name: str, address: str = "198.18.0.50/24") -> dict[str, Any]:
    return {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": name},
        "spec": {"addresses": [address], "nodes": list(NODES)},
    }


def create(lab: ApiLab, name: str, address: str = "198.18.0.50/24") -> None:
    reply = lab.client.post(ALIASIPS, aliasip_body(name, address))
    assert reply.status == 201, reply.body


def status(lab: ApiLab, name: str) -> dict[str, Any]:
    reply = lab.client.get(f"{ALIASIPS}/{name}")
    assert reply.status == 200, reply.body
    found: dict[str, Any] = reply.json.get("status") or {}
    return found


def obj(lab: ApiLab, name: str) -> dict[str, Any]:
    found: dict[str, Any] = lab.client.get(f"{ALIASIPS}/{name}").json
    return found


def wait_status(lab: ApiLab, name: str, timeout: float = 10, **expected: Any) -> dict[str, Any]:
    """Poll until every ``expected`` key of the status has that value."""

    def check() -> dict[str, Any] | None:
        got = status(lab, name)
        return got if all(got.get(k) == v for k, v in expected.items()) else None

    result: dict[str, Any] = eventually(check, timeout=timeout, interval=0.05)
    return result


def report(lab: ApiLab, name: str, node_name: str, state: str, epoch: int) -> None:
    """What the agent on ``node_name`` writes: its own key only, by merge patch."""
    view = {"state": state, "epoch": epoch, "updatedAt": kubetime.format_micro_time(now())}
    reply = lab.client.patch(f"{ALIASIPS}/{name}/status", {"status": {"nodes": {node_name: view}}})
    assert reply.status == 200, reply.body


def events(lab: ApiLab, name: str) -> list[dict[str, Any]]:
    """The operator's Events about AliasIP ``name`` (in ``EVENTS_NAMESPACE``)."""
    items = lab.client.get(EVENTS).json.get("items") or []
    return [e for e in items if e["involvedObject"].get("name") == name]


def set_ready(lab: ApiLab, node_name: str, ready: bool) -> None:
    body = lab.client.get(f"/api/v1/nodes/{node_name}").json
    for condition in body["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition["status"] = "True" if ready else "False"
    assert lab.client.put(f"/api/v1/nodes/{node_name}/status", body).status == 200


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Agents:
    """The agents' Lease renewals (every 0.3 s, 2 s Leases) for the nodes in ``alive``."""

    lab: ApiLab
    alive: set[str] = field(default_factory=lambda: set(NODES))
    stop: threading.Event = field(default_factory=threading.Event)

    def renew(self, node_name: str) -> None:
        path = f"{LEASES}/aliasip-agent-{node_name}"
        spec = {
            "holderIdentity": node_name,
            "leaseDurationSeconds": AGENT_LEASE_S,
            "renewTime": kubetime.format_micro_time(now()),
        }
        current = self.lab.client.get(path)
        if current.status == 404:
            body = {"metadata": {"name": f"aliasip-agent-{node_name}"}, "spec": spec}
            self.lab.client.post(LEASES, body)
        else:
            body = current.json
            body["spec"].update(spec)
            self.lab.client.put(path, body)

    def run(self) -> None:
        while not self.stop.wait(0.3):
            for name in sorted(self.alive):
                self.renew(name)

    @contextlib.contextmanager
    def running(self) -> Iterator[Agents]:
        for name in sorted(self.alive):
            self.renew(name)
        thread = threading.Thread(target=self.run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            thread.join(5)


@dataclass
class Operator:
    """One real operator process (``python -m aliasip_operator.main``) in the lab."""

    lab: ApiLab
    identity: str
    proc: subprocess.Popen[bytes] = field(init=False)
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.lab.workdir / f"{self.identity}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.lab.namespace, sys.executable, "-m",
                 "aliasip_operator.main", "--kubeconfig", str(self.lab.kubeconfig),
                 "--leader-elect", f"--leader-election-namespace={NS}",
                 "--leader-election-lease=aliasip-operator", f"--identity={self.identity}",
                 f"--agent-lease-namespace={NS}", "--health-port=0"],
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        # ``ip netns exec`` execs the interpreter: the pid is the operator's own.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode


@contextlib.contextmanager
def operators(lab: ApiLab, *identities: str) -> Iterator[list[Operator]]:
    started: list[Operator] = []
    try:
        for identity in identities:
            started.append(Operator(lab, identity))
        yield started
    finally:
        for op in started:
            op.terminate()


def leader(lab: ApiLab) -> str | None:
    reply = lab.client.get(f"{LEASES}/aliasip-operator")
    if reply.status != 200:
        return None
    holder: str | None = reply.json["spec"].get("holderIdentity")
    return holder
