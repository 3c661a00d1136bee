"""The end-to-end harness: the lab of ``aliasip-lab up`` (``aliasip_lab.cluster.Lab``), and
what a user and an on-call person would look at: kubectl, the kernel, the client's wire.

Each test gets its own lab (own state directory, own namespaces) built by ``Lab.up`` exactly
as the command builds it: the embedded API server and two operator replicas in the control
plane namespace, one real ``aliasip-agent run`` per node, Ready Nodes. Faults are injected
with the same ``Lab`` methods the ``aliasip-lab`` fault commands call. The test reads:

- the API through kubectl (the real client: apply from YAML, printer columns, annotate)
  and a plain client for status and Events;
- each node's kernel through iproute2 (not the agent's pyroute2 code);
- the wire through two witnesses started together by ``probe()``: the 10 ms client
  prober in the client namespace (ICMP through the client's neighbour cache: the outage
  a client lives through, which MAC served it) and the wire observer in its own namespace
  (a broadcast ARP/NS every 10 ms: every MAC that answers, so *split-brain rounds* --
  two kernels answering at once, which the client cannot see -- are counted there).

Every wait is bounded; ``Lab.down`` runs afterwards, also on failure, and the test checks
that no namespace of its lab is left.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from aliasip_api.rest import ApiError, ApiUnavailable
from aliasip_lab.capture import Capture
from aliasip_lab.cluster import Lab, tag_for
from aliasip_lab.lan import existing_namespaces, ip
from aliasip_lab.nsenter import netns
from aliasip_lab.observation import split_brain_rounds
from aliasip_lab.observer import Running
from tests.agent.support import is_echo_request

T = TypeVar("T")
ALIASIPS = "/apis/aliasip.io/v1alpha1/aliasips"


def eventually(
    check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05
) -> T:
    """Poll until ``check`` returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            found = check()
        except (ApiError, ApiUnavailable) as exc:
            found, last = None, exc
        if found:
            return found
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {what} (last error: {last})")


@dataclass
class Probe:
    """A running client prober and wire observer; ``report()`` waits for their end: the
    prober's JSON, with the observer's report under ``"wire"``."""

    proc: subprocess.Popen[str]
    observer: Running

    def report(self, timeout: float = 60) -> dict[str, Any]:
        out, _ = self.proc.communicate(timeout=timeout)
        found: dict[str, Any] = json.loads(out)
        found["wire"] = self.observer.finish()
        return found

    def finish(self, settle_s: float = 0.3) -> dict[str, Any]:
        """End the probing now (SIGTERM: it still reports), after ``settle_s`` more of it:
        for a test whose duration depends on the machine's load."""
        time.sleep(settle_s)
        self.proc.send_signal(signal.SIGTERM)
        return self.report()


@dataclass
class E2ELab:
    lab: Lab
    workdir: Path
    _observers: int = 0
    _running: list[Running] = field(default_factory=list)

    # -- the user, through kubectl ---------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            self.lab.kubectl_argv(*args), input=stdin, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def apply(
        self, name: str, *addresses: str, nodes: list[str] | None = None, **spec: Any
    ) -> None:
        """``kubectl apply -f -`` of an AliasIP written as YAML, as a user would."""
        body = {
            "apiVersion": "aliasip.io/v1alpha1",
            "kind": "AliasIP",
            "metadata": {"name": name},
            "spec": {
                "addresses": list(addresses),
                "nodes": nodes if nodes is not None else self.lab.node_names,
                **spec,
            },
        }
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))

    def printed(self, name: str) -> dict[str, str]:
        """``kubectl get aip NAME``: the printer columns, header → value."""
        lines = self.kubectl("get", "aip", name).splitlines()
        assert len(lines) == 2, lines
        starts = [m.start() for m in re.finditer(r"\S+", lines[0])]
        ends = [*starts[1:], None]
        return {
            lines[0][a:b].strip(): lines[1][a:b].strip() for a, b in zip(starts, ends, strict=True)
        }

    # -- the API ---------------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.lab.aliasip(name).get("status") or {}
        return found

    def wait_active(
        self, name: str, node: str, above: int = 0, timeout: float = 15
    ) -> dict[str, Any]:
        """Until ``node`` is the Active holder at an epoch above ``above``."""

        def check() -> dict[str, Any] | None:
            got = self.status(name)
            here = (got.get("activeNode"), got.get("phase")) == (node, "Active")
            return got if here and int(got.get("epoch") or 0) > above else None

        return eventually(check, timeout, f"{name} Active on {node} above epoch {above}")

    def wait_phase(self, name: str, phase: str, timeout: float = 15) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            got = self.status(name)
            return got if got.get("phase") == phase else None

        return eventually(check, timeout, f"{name} in phase {phase}")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The Events about AliasIP ``name``, in any namespace, oldest first."""
        items = (
            self.lab.api.call(
                "GET", "/api/v1/events", params={"fieldSelector": f"involvedObject.name={name}"}
            ).get("items")
            or []
        )
        return sorted(items, key=lambda e: e.get("eventTime") or e.get("lastTimestamp") or "")

    def reasons(self, name: str) -> list[str]:
        return [e["reason"] for e in self.events(name)]

    # -- the kernel ------------------------------------------------------------------------

    def held(self, node: str) -> list[str]:
        """Addresses aliasip added on ``node`` (label eth1:aip), read with iproute2."""
        host = self.lab.node(node)
        out = ip("-n", host.netns, "-o", "-4", "addr", "show", "dev", host.ifname).stdout
        return [line.split()[3] for line in out.splitlines() if f"{host.ifname}:aip" in line]

    def holders(self, address: str, gone: tuple[str, ...] = ()) -> list[str]:
        """The nodes whose kernel holds ``address``; ``gone``: nodes to leave out (a lost
        node's kernel keeps what it had; nobody can reach it)."""
        return [n for n in self.lab.node_names if n not in gone and address in self.held(n)]

    def wait_held(
        self, node: str, address: str, timeout: float = 10, gone: tuple[str, ...] = ()
    ) -> None:
        eventually(
            lambda: self.holders(address, gone) == [node], timeout, f"{address} only on {node}"
        )

    # -- the wire --------------------------------------------------------------------------

    def probe(self, address: str, seconds: float, wait_on: str | None = None) -> Probe:
        """The 10 ms client prober and the wire observer for ``seconds``; with
        ``wait_on``, return once the echo requests reach that node and the observer sent
        its first round (a fault injected earlier would go unseen)."""
        argv = [
            "ip", "netns", "exec", self.lab.lan.client.netns, sys.executable, "-m",
            "aliasip_lab.prober", address.split("/")[0], "--interface", "eth1",
            "--interval-ms", "10", "--duration", str(seconds), "--json",
        ]  # fmt: skip
        observer = self.observe(address, seconds=seconds + 0.2)
        probe = Probe(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True), observer)
        if wait_on is not None:
            self.wait_probing(wait_on)
            observer.wait_started()
        return probe

    def observe(self, *addresses: str, seconds: float = 60.0) -> Running:
        """The wire observer on ``addresses`` for at most ``seconds``: ``finish()`` returns
        its report; ``split_brain_rounds(report)`` counts two MACs answering one round."""
        self._observers += 1
        events = self.workdir / f"observer-{self._observers}.jsonl"
        running = Running(self.lab.lan.observer.netns, list(addresses), seconds, events)
        self._running.append(running)
        return running

    def wait_probing(self, node: str, timeout: float = 10.0) -> None:
        host = self.lab.node(node)
        with netns(host.netns):
            capture = Capture(host.ifname)
        with capture:
            frames = capture.wait_for(is_echo_request, timeout)
        assert any(is_echo_request(f) for f in frames), f"the prober never reached {node}"

    def mac(self, node: str) -> str:
        return self.lab.node(node).mac

    def served_by(self, report: dict[str, Any], *nodes: str) -> None:
        """The client heard exactly these nodes in this order, and on the wire no round
        was ever answered by two MACs (the observer's split-brain rounds)."""
        wire = report["wire"]
        assert split_brain_rounds(wire) == 0, [a["split_brain"] for a in wire["aliases"].values()]
        macs = [s["mac"] for s in report["segments"]]
        assert macs == [self.mac(n) for n in nodes], report["segments"]

    def agent_log(self, node: str) -> str:
        daemon = self.lab.daemon(f"agent {node}")
        path = Path(daemon.log) if daemon is not None else None
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    # -- diagnostics -----------------------------------------------------------------------

    def logs(self) -> str:
        parts = [f"--- {d.role} ---\n{d.tail(60)}" for d in self.lab.state.daemons.values()]
        return "\n".join(parts)


def outage(title: str, report: dict[str, Any]) -> None:
    """Print the client-seen outage (``pytest -s``): figures, not asserts."""
    gaps = [g["outage_ms"] for g in report["gaps"]]
    print(f"\n{title}: client-seen outage {report['outage_ms']} ms (gaps {gaps})")


@contextlib.contextmanager
def e2e_lab(nodes: int = 3) -> Iterator[E2ELab]:
    """A lab of ``nodes`` nodes for one test; removed afterwards, also on failure."""
    workdir = Path(tempfile.mkdtemp(prefix="aip-e2e-"))
    state_dir = workdir / "lab"
    made: E2ELab | None = None
    try:
        made = E2ELab(Lab.up(state_dir, nodes), workdir)
        yield made
    finally:
        if made is not None:
            for running in made._running:
                running.kill()
            print(made.logs())  # shown by pytest only when the test failed
        Lab.down(state_dir)
        shutil.rmtree(workdir, ignore_errors=True)
        leftover = [n for n in existing_namespaces() if n.startswith(tag_for(state_dir) + "-")]
        assert not leftover, f"namespaces left behind: {leftover}"
