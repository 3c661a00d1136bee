"""A whole cluster on one host that outlives the command which built it.

``aliasip-lab up --nodes N`` builds, with :class:`~aliasip_lab.lan.Lan`:

    switch ns: br0 (service LAN 198.18.0.0/24) ── node1..nodeN, client
               br-mgmt (management 198.19.0.0/24) ── node1..nodeN, control plane
    control-plane ns (198.19.0.1): the embedded API server (objects kept in a state file,
               so ``restart-api`` is a restart, not a wipe) and two operator replicas
               electing a leader, exactly as the Deployment runs them
    node ns:   an ``aliasip-agent run`` process per node, as the DaemonSet runs it,
               reaching the API over the management network

and a kubeconfig. Everything it started is written to ``STATE_DIR/state.json`` (daemons
by pid and start time, namespaces by tag), so any later command, another process, can
inject faults, report status, or tear it all down; ``down`` works from the tag alone when
the state file is missing or half-written (a crash during ``up``). Namespace names derive
from the state directory, so two labs with two state directories never meet.

The lab plays the kubelet only once: at ``up`` it registers each node as a Ready Node
with its stationary address (no node heartbeats; node loss is detected from the agents'
Leases and the standbys' wire probes, as the operator does it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from aliasip_api import kubetime
from aliasip_api.crd import packaged_crd
from aliasip_api.rest import (
    ALIASIPS,
    ApiError,
    ApiUnavailable,
    RestClient,
    leases_path,
    load_configuration,
)
from aliasip_lab.apiserver.runner import write_kubeconfig
from aliasip_lab.daemons import Daemon
from aliasip_lab.kubectl import find_kubectl
from aliasip_lab.lan import Host, Lan, existing_namespaces, ip, kill_processes_in
from aliasip_lab.nsenter import netns
from aliasip_operator.observations import SWITCHOVER_ANNOTATION

T = TypeVar("T")
STATE_DIR_ENV = "ALIASIP_LAB_DIR"
DEFAULT_STATE_DIR = Path("/run/aliasip-lab")
SYSTEM_NAMESPACE = "aliasip-system"
OPERATOR_LEASE = "aliasip-operator"
AGENT_RESYNC_S = 1.0
"""The lab agents' full pass every second (the agent's default is 5 s): a lost carrier is
found within a second, which the link-down tests and benchmark rely on. Each pass reads
every AliasIP, so at 1,000 of them bench.scale runs the agent's default instead."""
# The monitoring path's keys, as the Secret aliasip-heartbeat mounted (state directory).
HEARTBEAT_KEYS_DIR = "heartbeat-keys"
CONTROL_PLANE_NICE = -10
"""CPU priority of the API server and the operators. In a cluster the control plane has
machines of its own; here it shares the host's cores with every node agent, and with 50
nodes on 2 cores fair scheduling left the operator a fiftieth of them: its view of the
agents' Leases fell 50 s behind and it reported live nodes as lost (bench/scale.py)."""
OPERATORS = ("op-a", "op-b")
API_PORT = 6443
MAX_NODES = 60
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


class LabError(Exception):
    """A lab command that cannot be done; the message says why and what to do instead.

    ``code``: 2 for bad input (unknown node, unknown AliasIP), 3 when the lab is not in a
    state that allows it (no lab, already up, agent already stopped), 1 when something
    failed underneath (a process did not come up)."""

    def __init__(self, message: str, code: int = 3) -> None:
        super().__init__(message)
        self.code = code


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def tag_for(state_dir: Path) -> str:
    """The namespace prefix of the lab kept in ``state_dir``: stable, short, unique to it."""
    digest = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:6]
    return f"aipl{digest}"


def now_micro() -> str:
    return kubetime.format_micro_time(datetime.now(UTC))


def write_heartbeat_keys(directory: Path) -> None:
    """The lab's monitoring-path keys, laid out as kubelet mounts the Secret
    ``aliasip-heartbeat`` (manifests/): one file per key id and ``signing``. Readable by
    root only."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (directory / "k1").exists():
        write_heartbeat_key(directory / "k1")
    (directory / "signing").write_text("k1")


def write_heartbeat_key(path: Path) -> None:
    """One new random key (32 bytes), readable by root only."""
    path.write_bytes(secrets.token_bytes(32))
    path.chmod(0o600)


@dataclass
class LabState:
    """What ``state.json`` keeps: enough for another process to drive or remove the lab."""

    tag: str
    nodes: int
    api_port: int
    created: str
    daemons: dict[str, Daemon] = field(default_factory=dict)
    lan_prefixlen: int = 24  # the service LAN 198.18.0.0/lan_prefixlen
    resync_s: float = AGENT_RESYNC_S  # the agents' --resync-interval
    heartbeat_ms: float | None = None  # the agents' --heartbeat-interval-ms (None: theirs)

    def to_json(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "nodes": self.nodes,
            "api_port": self.api_port,
            "created": self.created,
            "daemons": {k: d.to_json() for k, d in self.daemons.items()},
            "lanPrefixlen": self.lan_prefixlen,
            "resyncSeconds": self.resync_s,
            "heartbeatMs": self.heartbeat_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LabState:
        daemons = {k: Daemon.from_json(v) for k, v in (data.get("daemons") or {}).items()}
        prefixlen = int(data.get("lanPrefixlen", 24))
        nodes, port = int(data["nodes"]), int(data["api_port"])
        resync = float(data.get("resyncSeconds", AGENT_RESYNC_S))
        heartbeat = data.get("heartbeatMs")
        return cls(
            data["tag"],
            nodes,
            port,
            data["created"],
            daemons,
            prefixlen,
            resync,
            None if heartbeat is None else float(heartbeat),
        )


class LabApi:
    """JSON calls to the lab's API server from this (host-namespace) process: every
    connection is opened inside the control-plane namespace."""

    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.rest = RestClient(load_configuration(str(kubeconfig)), "aliasip-lab", timeout_s=3.0)
        self.namespace = namespace

    def call(self, method: str, path: str, body: Any = None, **options: Any) -> dict[str, Any]:
        with netns(self.namespace):
            return self.rest.request(method, path, body, **options)

    def get(self, path: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def merge_patch(self, path: str, body: Any) -> dict[str, Any]:
        return self.call("PATCH", path, body, content_type="application/merge-patch+json")


@dataclass
class Lab:
    """A lab described by its state directory; every method is one lab command."""

    state_dir: Path
    state: LabState

    # -- where things are ------------------------------------------------------------------

    @property
    def lan(self) -> Lan:
        return Lan.attach(self.state.tag, self.state.nodes, True, self.state.lan_prefixlen)

    @property
    def control_plane(self) -> str:
        namespace = self.lan.api_ns
        assert namespace is not None
        return namespace

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def api_url(self) -> str:
        return f"http://{self.lan.api_address}:{self.state.api_port}"

    @property
    def api(self) -> LabApi:
        return LabApi(self.kubeconfig, self.control_plane)

    def node(self, name: str) -> Host:
        names = [h.name for h in self.lan.nodes]
        if name not in names:
            raise LabError(f"no node {name!r} in this lab (nodes: {', '.join(names)})", code=2)
        return self.lan.node(name)

    def log_path(self, role: str) -> str:
        return str(self.state_dir / "logs" / f"{role.replace(' ', '-')}.log")

    def save(self) -> None:
        tmp = self.state_dir / ".state.json.tmp"
        tmp.write_text(json.dumps(self.state.to_json(), indent=2) + "\n")
        os.replace(tmp, self.state_dir / "state.json")

    # -- up / attach / down ----------------------------------------------------------------

    @classmethod
    def up(
        cls,
        state_dir: Path,
        nodes: int = 3,
        api_port: int = API_PORT,
        progress: Callable[[str], None] = lambda _: None,
        lan_prefixlen: int = 24,
        resync_s: float = AGENT_RESYNC_S,
        heartbeat_ms: float | None = None,
    ) -> Lab:
        """Build the lab and wait until every agent holds its Lease and an operator leads.

        ``lan_prefixlen``: the service LAN is 198.18.0.0/lan_prefixlen (15 to 24), wider
        than the default /24 to leave room for many aliases. ``resync_s``: the agents'
        full-pass interval (``AGENT_RESYNC_S``). ``heartbeat_ms``: the agents' heartbeat
        interval (a lab-only profile; None: the agent's default, as shipped)."""
        if not 1 <= nodes <= MAX_NODES:
            raise LabError(f"--nodes must be 1 to {MAX_NODES}, got {nodes}", code=2)
        state_dir = state_dir.resolve()
        if (state_dir / "state.json").exists():
            raise LabError(
                f"a lab is already up in {state_dir} (`aliasip-lab down` removes it first)"
            )
        tag = tag_for(state_dir)
        leftover = [n for n in existing_namespaces() if n.startswith(f"{tag}-")]
        if leftover:
            raise LabError(
                f"namespaces of an earlier lab remain ({', '.join(leftover)}); "
                "`aliasip-lab down` removes them"
            )
        (state_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_heartbeat_keys(state_dir / HEARTBEAT_KEYS_DIR)
        if not 15 <= lan_prefixlen <= 24:
            raise LabError(f"the LAN prefix must be 15 to 24, got {lan_prefixlen}", code=2)
        state = LabState(
            tag, nodes, api_port, now_micro(), {}, lan_prefixlen, resync_s, heartbeat_ms
        )
        lab = cls(state_dir, state)
        lab.save()  # first: a crash from here on is cleaned up by `down`
        try:
            progress(f"network: switch, {nodes} nodes, client, control plane (namespaces {tag}-*)")
            Lan.create(nodes, management=True, tag=tag, prefixlen=lan_prefixlen)
            progress(f"API server on {lab.api_url}")
            lab._start_api()
            lab._bootstrap()
            progress(f"operators {', '.join(OPERATORS)} (leader election)")
            for identity in OPERATORS:
                lab._start(lab._operator_daemon(identity))
            progress(f"agents on {', '.join(h.name for h in lab.lan.nodes)}")
            for host in lab.lan.nodes:
                lab._start(lab._agent_daemon(host.name))
            lab.save()
            lab.wait_ready(timeout_s=30.0)
        except BaseException:
            with contextlib.suppress(Exception):
                lab.save()
            raise
        return lab

    @classmethod
    def attach(cls, state_dir: Path) -> Lab:
        """The lab kept in ``state_dir``, or :class:`LabError` if there is none."""
        path = state_dir.resolve() / "state.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab in {state_dir} (`aliasip-lab up` builds one)") from None
        except (json.JSONDecodeError, KeyError) as exc:
            raise LabError(f"{path} is unreadable ({exc}); `aliasip-lab down` removes it") from exc
        return cls(state_dir.resolve(), LabState.from_json(data))

    @staticmethod
    def down(state_dir: Path) -> list[str]:
        """Stop every process and remove every namespace of the lab; then the state
        directory. Works from the tag alone when the state file is missing or broken.
        Returns what was removed."""
        state_dir = state_dir.resolve()
        removed: list[str] = []
        with contextlib.suppress(LabError, KeyError, TypeError, ValueError):
            lab = Lab.attach(state_dir)
            for daemon in lab.state.daemons.values():
                if daemon.signal(signal.SIGKILL):
                    removed.append(f"process {daemon.role} (pid {daemon.pid})")
        tag = tag_for(state_dir)
        for name in existing_namespaces():
            if name.startswith(f"{tag}-"):
                kill_processes_in(name)
                ip("netns", "del", name, check=False)
                removed.append(f"namespace {name}")
        if state_dir.exists():
            shutil.rmtree(state_dir, ignore_errors=True)
            removed.append(f"state {state_dir}")
        return removed

    # -- processes -------------------------------------------------------------------------

    def _start(self, daemon: Daemon) -> Daemon:
        daemon.start()
        self.state.daemons[daemon.role] = daemon
        self.save()
        return daemon

    def _api_daemon(self) -> Daemon:
        argv = [
            sys.executable, "-m", "aliasip_lab.cli", "apiserver",
            "--listen", f"{self.lan.api_address}:{self.state.api_port}",
            "--kubeconfig", str(self.kubeconfig), "--state", str(self.state_dir / "etcd.json"),
        ]  # fmt: skip
        log = self.log_path("api")
        return Daemon("api", self.control_plane, argv, log, nice=CONTROL_PLANE_NICE)

    def _operator_daemon(self, identity: str) -> Daemon:
        # Restarted when it exits, as a Deployment's kubelet would (lab.supervise).
        argv = [
            sys.executable, "-m", "aliasip_lab.supervise", "--",
            sys.executable, "-m", "aliasip_operator.main", "--kubeconfig", str(self.kubeconfig),
            "--leader-elect", f"--leader-election-namespace={SYSTEM_NAMESPACE}",
            f"--leader-election-lease={OPERATOR_LEASE}", f"--identity={identity}",
            f"--agent-lease-namespace={SYSTEM_NAMESPACE}", "--health-port=0",
        ]  # fmt: skip
        role = f"operator {identity}"
        return Daemon(role, self.control_plane, argv, self.log_path(role), nice=CONTROL_PLANE_NICE)

    def _agent_daemon(self, node: str) -> Daemon:
        argv = [
            sys.executable, "-m", "aliasip_nodeagent", "run", "--node", node,
            "--kubeconfig", str(self.kubeconfig), "--resync-interval", str(self.state.resync_s),
            "--heartbeat-keys", str(self.state_dir / HEARTBEAT_KEYS_DIR),
        ]  # fmt: skip
        if self.state.heartbeat_ms is not None:
            argv += ["--heartbeat-interval-ms", str(self.state.heartbeat_ms)]
        role = f"agent {node}"
        return Daemon(role, self.node(node).netns, argv, self.log_path(role))

    def daemon(self, role: str) -> Daemon | None:
        return self.state.daemons.get(role)

    def _start_api(self) -> None:
        # The server writes the kubeconfig itself once it listens; ours names the fixed URL.
        write_kubeconfig(self.kubeconfig, self.api_url)
        daemon = self._start(self._api_daemon())
        deadline = time.monotonic() + 15.0
        while time.monotonic() < deadline:
            if not daemon.running:
                raise LabError(f"the API server exited:\n{daemon.tail()}", code=1)
            with contextlib.suppress(ApiUnavailable):
                self.api.call("GET", "/version", timeout_s=0.5)
                return
            time.sleep(0.05)
        raise LabError(f"the API server did not answer within 15 s:\n{daemon.tail()}", code=1)

    def _bootstrap(self) -> None:
        """What a cluster has before aliasip is installed, plus aliasip's CRD: the system
        namespace, Ready Nodes with their stationary addresses."""
        api = self.api
        api.call("POST", "/api/v1/namespaces", {"metadata": {"name": SYSTEM_NAMESPACE}})
        api.call("POST", CRD_PATH, packaged_crd().document)
        for host in self.lan.nodes:
            api.call("POST", "/api/v1/nodes", node_object(host))

    def wait_ready(self, timeout_s: float) -> None:
        """Every running agent holds its Lease and one operator holds the leader Lease."""
        agents = [n for n in self.node_names if self._agent_running(n)]

        def ready() -> bool:
            leases = {n: self.api.get(f"{leases_path(SYSTEM_NAMESPACE)}/aliasip-agent-{n}")
                      for n in agents}  # fmt: skip
            return all(leases.values()) and self.leader() is not None

        self.wait(ready, timeout_s, "agents' Leases and an operator leader")

    def wait(self, check: Callable[[], T | None], timeout_s: float, what: str) -> T:
        """Poll ``check`` until it returns something true; bounded; names what failed."""
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                found = check()
                if found:
                    return found
            except (ApiError, ApiUnavailable) as exc:
                last = exc
            time.sleep(0.05)
        detail = f" (last error: {last})" if last else ""
        raise LabError(f"timed out after {timeout_s:g} s waiting for {what}{detail}", code=1)

    @property
    def node_names(self) -> list[str]:
        return [h.name for h in self.lan.nodes]

    def _agent_running(self, node: str) -> bool:
        daemon = self.daemon(f"agent {node}")
        return daemon is not None and daemon.running

    # -- reading the cluster ---------------------------------------------------------------

    def leader(self) -> str | None:
        lease = self.api.get(f"{leases_path(SYSTEM_NAMESPACE)}/{OPERATOR_LEASE}")
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        return str(holder) if holder else None

    def aliasip(self, name: str) -> dict[str, Any]:
        found = self.api.get(f"{ALIASIPS}/{name}")
        if found is None:
            raise LabError(f"no AliasIP {name!r} (`aliasip-lab kubectl get aip` lists them)", 2)
        return found

    def aliasips(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.api.call("GET", ALIASIPS).get("items") or []
        return items

    def port_up(self, port: str) -> bool:
        """Whether the switch port is administratively up and not DOWN."""
        out = ip("-n", self.lan.switch_ns, "-o", "link", "show", port, check=False).stdout
        flags = out.partition("<")[2].partition(">")[0].split(",")
        return "UP" in flags and "state DOWN" not in out

    def held(self, host: Host) -> list[str]:
        """The aliases aliasip added on the node, IPv4 and IPv6: the addresses carrying
        aliasip's mark (``IFA_PROTO``, which iproute2 6.1 does not show; read with the
        agent's own netlink reader, opened inside the node's namespace). The IPv4 label
        ``IFNAME:aip`` alone missed every IPv6 alias, so a rebooted node kept them."""
        from aliasip_nodeagent.netlink import NetlinkHost

        with netns(host.netns):
            reader = NetlinkHost()
        with reader:
            owned = reader.snapshot(interface=host.ifname).owned()
        return [str(a.address) for a in owned if a.interface == host.ifname]

    # -- faults and admin actions ----------------------------------------------------------

    def kill_agent(self, node: str) -> str:
        self.node(node)
        daemon = self.daemon(f"agent {node}")
        if daemon is None or not daemon.signal(signal.SIGKILL):
            raise LabError(f"the agent on {node} is not running (`aliasip-lab start-agent {node}`)")
        self.save()
        return (
            f"agent on {node} killed (SIGKILL, pid {daemon.pid}); its aliases expire from the "
            "kernel within 2 s (nobody renews their lifetime: the dead-man switch)"
        )

    def start_agent(self, node: str) -> str:
        self.node(node)
        if self._agent_running(node):
            raise LabError(f"the agent on {node} is already running")
        daemon = self._start(self._agent_daemon(node))
        return f"agent on {node} started (pid {daemon.pid})"

    def stop_node(self, node: str) -> str:
        host = self.node(node)
        daemon = self.daemon(f"agent {node}")
        if daemon is not None:
            daemon.signal(signal.SIGKILL)
        self.lan.set_link(host, up=False)
        self.lan.set_management_link(host, up=False)
        self.save()
        return f"{node} stopped: agent killed, LAN and management cables cut"

    def start_node(self, node: str) -> str:
        """The node boots again. A node that was stopped (its agent is not running) comes
        back as after a reboot: the addresses aliasip had added are gone before its cables
        are connected, then its agent starts and reports."""
        host = self.node(node)
        booted = not self._agent_running(node)
        flushed = self.held(host) if booted else []
        for address in flushed:
            ip("-n", host.netns, "addr", "del", address, "dev", host.ifname, check=False)
        self.lan.set_link(host, up=True)
        self.lan.set_management_link(host, up=True)
        started = self.start_agent(node) if booted else "agent already running"
        gone = f"; rebooted without {', '.join(flushed)}" if flushed else ""
        return f"{node} started: cables connected{gone}; {started}"

    def set_link(self, node: str, up: bool) -> str:
        self.lan.set_link(self.node(node), up=up)
        return f"{node}: service LAN cable {'connected' if up else 'cut'}"

    def set_partition(self, node: str, partitioned: bool) -> str:
        self.lan.set_management_link(self.node(node), up=not partitioned)
        state = "cut from the API (management cable)" if partitioned else "reconnected to the API"
        return f"{node}: {state}"

    def kill_operator(self, leader_only: bool) -> str:
        operators = {i: self.daemon(f"operator {i}") for i in OPERATORS}
        if leader_only:
            leader = self.leader()
            target = operators.get(leader or "")
            if target is None or not target.running:
                raise LabError(f"no running operator leads (leader Lease holder: {leader})")
            target.signal(signal.SIGKILL)
            self.save()
            return f"operator leader {leader} killed (SIGKILL, pid {target.pid})"
        killed = [i for i, d in operators.items() if d is not None and d.signal(signal.SIGKILL)]
        if not killed:
            raise LabError("no operator is running (`aliasip-lab start-operator`)")
        self.save()
        return f"operators killed: {', '.join(killed)}"

    def start_operator(self) -> str:
        started = []
        for identity in OPERATORS:
            daemon = self.daemon(f"operator {identity}")
            if daemon is None or not daemon.running:
                self._start(self._operator_daemon(identity))
                started.append(identity)
        if not started:
            raise LabError("both operator replicas are already running")
        return f"operators started: {', '.join(started)}"

    def restart_api(self) -> str:
        """Stop the API server (SIGTERM) and start it again on the same address; its
        objects persist in the state file, watches are cut and must resume."""
        daemon = self.daemon("api")
        if daemon is not None:
            daemon.signal(signal.SIGTERM)
        self._start_api()
        return f"API server restarted (pid {self.state.daemons['api'].pid})"

    def cordon(self, node: str, cordoned: bool) -> str:
        self.node(node)
        self.api.merge_patch(f"/api/v1/nodes/{node}", {"spec": {"unschedulable": cordoned or None}})
        return f"{node} {'cordoned' if cordoned else 'uncordoned'}"

    def switchover(self, name: str, to: str) -> str:
        self.node(to)
        current = self.aliasip(name)
        active = (current.get("status") or {}).get("activeNode")
        if active == to:
            raise LabError(f"{name} is already active on {to}")
        self.api.merge_patch(
            f"{ALIASIPS}/{name}", {"metadata": {"annotations": {SWITCHOVER_ANNOTATION: to}}}
        )
        return f"{name}: switchover to {to} requested (annotation {SWITCHOVER_ANNOTATION})"

    def _freeze_targets(self, target: str, node: str | None, leader_only: bool) -> list[Daemon]:
        """The daemons ``freeze``/``thaw`` TARGET [NODE] names, or LabError (code 2) for a
        target that does not exist."""
        if target == "agent":
            if node is None:
                raise LabError("which agent? (`freeze agent NODE`)", code=2)
            self.node(node)
            daemon = self.daemon(f"agent {node}")
            return [daemon] if daemon is not None else []
        if node is not None:
            raise LabError(f"{target} takes no NODE (got {node!r})", code=2)
        if target == "api":
            daemon = self.daemon("api")
            return [daemon] if daemon is not None else []
        if target == "operator":
            operators = [self.daemon(f"operator {i}") for i in OPERATORS]
            if leader_only:
                leader = self.leader()
                operators = [self.daemon(f"operator {leader}")] if leader else []
            return [d for d in operators if d is not None]
        raise LabError(f"cannot freeze {target!r} (targets: agent NODE, operator, api)", code=2)

    def freeze(self, target: str, node: str | None = None, leader_only: bool = False) -> str:
        """SIGSTOP a lab daemon: ``agent NODE``, ``operator`` (both replicas, or only the
        leader with ``leader_only``), ``api``. It keeps its sockets and its view of the
        world, and acts on that stale view when thawed."""
        daemons = self._freeze_targets(target, node, leader_only)
        if leader_only and target == "operator" and not daemons:
            raise LabError("no operator leads (leader Lease held by nobody)")
        running = [d for d in daemons if d.running]
        if not running:
            raise LabError(f"{_what(target, node)} is not running")
        todo = [d for d in running if not d.frozen]
        if not todo:
            again = f"aliasip-lab thaw {target}{' ' + node if node else ''}"
            raise LabError(f"{_what(target, node)} is already frozen (`{again}`)")
        for daemon in todo:
            daemon.freeze()
        pids = ", ".join(f"{d.role} pid {d.workload_pid}" for d in todo)
        return f"frozen (SIGSTOP): {pids}"

    def thaw(self, target: str, node: str | None = None) -> str:
        """SIGCONT what ``freeze`` stopped (every frozen operator replica for ``operator``)."""
        frozen = [d for d in self._freeze_targets(target, node, False) if d.frozen]
        if not frozen:
            raise LabError(f"{_what(target, node)} is not frozen")
        for daemon in frozen:
            daemon.thaw()
        return f"thawed (SIGCONT): {', '.join(d.role for d in frozen)}"

    def frozen(self) -> list[str]:
        """The roles of the frozen daemons."""
        return [role for role, d in self.state.daemons.items() if d.frozen]

    # -- kubectl ---------------------------------------------------------------------------

    def kubectl_argv(self, *args: str) -> list[str]:
        """kubectl against the lab: run inside the control-plane namespace (the API listens
        only there and on the management network, never in the host namespace)."""
        return [
            "ip", "netns", "exec", self.control_plane,
            find_kubectl(), "--kubeconfig", str(self.kubeconfig), *args,
        ]  # fmt: skip

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Everything an on-call person would look at first, as plain data."""
        lan = self.lan
        report: dict[str, Any] = {
            "stateDir": str(self.state_dir),
            "created": self.state.created,
            "kubeconfig": str(self.kubeconfig),
            "kubectl": " ".join(self.kubectl_argv()[:6]),
            "api": self._daemon_status("api") | {"url": self.api_url},
            "client": {"netns": lan.client.netns, "address": str(lan.client.ipv4)},
        }
        try:
            leader: str | None = self.leader()
            listed = self.api.call("GET", "/api/v1/nodes")["items"]
            nodes = {n["metadata"]["name"]: n for n in listed}
            aliasips: list[dict[str, Any]] | None = [_aliasip_row(o) for o in self.aliasips()]
            report["apiReachable"] = True
        except (ApiError, ApiUnavailable) as exc:
            leader, nodes, aliasips = None, {}, None
            report["apiReachable"] = False
            report["apiError"] = str(exc)
        report["operators"] = [
            self._daemon_status(f"operator {i}") | {"identity": i, "leader": i == leader}
            for i in OPERATORS
        ]
        report["nodes"] = [
            {
                "name": host.name,
                "netns": host.netns,
                "address": str(host.ipv4),
                "mac": host.mac,
                "agent": self._daemon_status(f"agent {host.name}"),
                "lan": "up" if self.port_up(f"p-{host.name}") else "down",
                "management": "up" if self.port_up(f"m-{host.name}") else "down",
                "cordoned": bool((nodes.get(host.name) or {}).get("spec", {}).get("unschedulable")),
                "aliases": self.held(host),
            }
            for host in lan.nodes
        ]
        report["aliasips"] = aliasips
        return report

    def _daemon_status(self, role: str) -> dict[str, Any]:
        daemon = self.daemon(role)
        running = daemon is not None and daemon.running
        return {
            "running": running,
            "frozen": daemon is not None and daemon.frozen,
            "pid": daemon.pid if daemon is not None and running else None,
            "log": daemon.log if daemon is not None else None,
        }


def _what(target: str, node: str | None) -> str:
    return {"agent": f"the agent on {node}", "api": "the API server"}.get(target, "the operator")


def _aliasip_row(obj: Mapping[str, Any]) -> dict[str, Any]:
    status = obj.get("status") or {}
    return {
        "name": obj["metadata"]["name"],
        "addresses": list((obj.get("spec") or {}).get("addresses") or []),
        "active": status.get("activeNode"),
        "phase": status.get("phase"),
        "epoch": status.get("epoch"),
    }


def node_object(host: Host) -> dict[str, Any]:
    """The Node a kubelet would register: Ready, with the stationary address."""
    stamp = now_micro().split(".")[0] + "Z"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": host.name, "labels": {"kubernetes.io/hostname": host.name}},
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "lab node (registered by aliasip-lab up)",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "addresses": [
                {"type": "InternalIP", "address": str(host.ipv4.ip)},
                {"type": "Hostname", "address": host.name},
            ],
            "nodeInfo": {"kubeletVersion": "v1.32.0-aliasip-lab"},
        },
    }


@contextlib.contextmanager
def running_lab(state_dir: Path, nodes: int = 3, **options: Any) -> Iterator[Lab]:
    """``up`` for the body of a ``with``; ``down`` afterwards, also on failure."""
    try:
        yield Lab.up(state_dir, nodes, **options)
    finally:
        Lab.down(state_dir)
