"""End-to-end: the real operator and the real agents together, in the lab.

Reuses both harnesses: ``tests.agent.support.cluster`` (a LAN with two node namespaces, a
client, the management network and the embedded API server in ``lan.api_ns``) and
``tests.operatorproc.support.Operator`` (``python -m aliasip_operator.main --leader-elect``
inside the API namespace). The test plays only the kubelet (Node objects, Ready=True) and
the user (kubectl); everything else is the operator's and the agents' own doing. Every wait
is bounded; every namespace and process is removed afterwards, also on failure.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aliasip_lab.lan import ip
from tests.agent.support import ALIAS, Cluster, cluster
from tests.api.support import ApiLab, eventually, node
from tests.operatorproc.support import NODES, Operator, events, operators

ADDRESS = f"{ALIAS}/24"


@dataclass
class E2E:
    cluster: Cluster
    api: ApiLab
    operator: Operator
    replicas: list[Operator] = field(default_factory=list)  # every operator process started

    # -- the user, through kubectl ---------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        return self.api.kubectl(*args, stdin=stdin).stdout

    def apply_aliasip(self, name: str, address: str = ADDRESS, **spec: Any) -> None:
        """``kubectl apply`` an AliasIP on both nodes; ``spec`` adds fields (``failback``)."""
        body = {
            "apiVersion": "aliasip.io/v1alpha1",
            "kind": "AliasIP",
            "metadata": {"name": name},
            "spec": {"addresses": [address], "nodes": list(NODES), **spec},
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(body))

    def printed(self, name: str) -> dict[str, str]:
        """``kubectl get aip NAME``: the printer columns, header → value."""
        lines = self.kubectl("get", "aip", name).splitlines()
        assert len(lines) == 2, lines
        starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
        ends = [*starts[1:], None]
        return {
            lines[0][a:b].strip(): lines[1][a:b].strip() for a, b in zip(starts, ends, strict=True)
        }

    # -- the kernel ------------------------------------------------------------------------

    def addresses(self, node_name: str) -> list[tuple[str, str]]:
        """(address/prefix, label) of every IPv4 address on the node's LAN interface."""
        host = self.cluster.lan.node(node_name)
        out = ip("-n", host.netns, "-o", "-4", "addr", "show", "dev", host.ifname).stdout
        found = []
        for line in out.splitlines():
            words = line.split()
            at = words.index("inet")
            # ``... inet 198.18.0.50/24 scope global secondary eth1:aip ...``
            label = next((w for w in words if w.startswith(f"{host.ifname}:")), "").rstrip("\\")
            found.append((words[at + 1], label))
        return found

    def events(self, name: str) -> list[dict[str, Any]]:
        return events(self.api, name)

    def logs(self) -> str:
        replicas = self.replicas or [self.operator]
        parts = [f"--- operator {op.identity} ---\n{op.output()}" for op in replicas]
        parts += [f"--- agent {n} ---\n{self.cluster.log(n)}" for n in NODES]
        return "\n".join(parts)


@contextlib.contextmanager
def e2e(*identities: str) -> Iterator[E2E]:
    """The lab with one operator replica per identity (default: one, ``op-a``)."""
    with cluster() as made:
        assert made.lan.api_ns is not None
        api = ApiLab(made.lan.api_ns, made.server, made.api, made.workdir)
        for name in NODES:  # playing the kubelet: Ready nodes with their stationary address
            body = node(name)
            host = made.lan.node(name)
            body["status"]["addresses"] = [{"type": "InternalIP", "address": str(host.ipv4.ip)}]
            reply = made.api.post("/api/v1/nodes", body)
            assert reply.status == 201, reply.body
        with operators(api, *(identities or ("op-a",))) as started:
            lab = E2E(made, api, started[0], started)
            try:
                for name in NODES:
                    made.start_agent(name)
                # As a DaemonSet's agents are before anyone creates an AliasIP: up, with their
                # Leases (a node without one is not eligible, and the first pick would differ).
                eventually(lambda: all(made.lease(n) for n in NODES), timeout=10)
                yield lab
            finally:
                print(lab.logs())  # shown by pytest only when the test failed
                for name in list(made.agents):
                    with contextlib.suppress(Exception):
                        made.stop_agent(name, signal.SIGTERM)
