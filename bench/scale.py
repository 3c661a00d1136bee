"""Scale benchmark: a whole lab cluster with many nodes and many AliasIPs.

    .venv/bin/python -m bench.scale --nodes 50 --aliasips 1000     # as root

Builds a lab (``aliasip_lab.cluster.Lab``: embedded API server, two operator replicas, one
``aliasip-agent run`` per node, all as real processes in network namespaces) with a wider
service LAN (198.18.0.0/20 by default, so that a thousand aliases fit next to the nodes'
stationary addresses), and measures, in order:

1. **idle** (0 AliasIPs), ``--steady-seconds``: API requests by verb and by client (each
   agent, the leader operator, the standby operator), writes per second from the growth of
   the store's global resourceVersion (every stored write bumps it, no-op writes do not),
   CPU of every process (utime+stime over the window, % of one core) and RSS;
2. **creation**: ``--aliasips`` AliasIPs are created (addresses 198.18.2.1 upwards, with
   the LAN's prefix); node1 comes first in the preference list of ``--hot`` of them, the
   others are spread round-robin over the other nodes; the rest of each list is a rotation
   of the node list (``--list-length`` nodes in all). Timed until every one is ``Active``
   on its first node *and* its address is in that node's kernel;
3. **steady** (the AliasIPs in place), ``--steady-seconds``: as in 1;
4. **placement before the loss**: the ``--hot`` AliasIPs are put on node1, and the one
   "single" AliasIP on the last node (first in its list and in no other), with the
   ``aliasip.io/switchover-to`` annotation where they landed elsewhere (a slow creation
   leaves them there: failback is Manual); timed until each is Active there and in that
   node's kernel, and how many each node holds is reported;
5. **one lost** (the baseline): ``Lab.stop_node`` of the last node, which holds the single
   AliasIP; timed until it is ``Active`` elsewhere (status) and its address answers ARP from
   the new holder's MAC, asked from the client namespace;
6. **100 lost**: ``Lab.stop_node("node1")`` (agent killed, both cables cut), timed the same
   way per AliasIP; reported: first, median and last (all), and the last over the one.

Requests are counted by a passive packet capture in the control-plane namespace (an
``AF_PACKET`` socket with a BPF filter for TCP segments *to* the API port that carry
data): the request line of every HTTP request, attributed by source address (a node's
management address: its agent) or, on the control-plane namespace's loopback, by the
owner of the source port (operator op-a, op-b, this benchmark). The embedded API server
has no metrics endpoint or access log.

Also records what the agent's imports cost in RSS (``kubernetes.client``, ``pyroute2``,
``scapy.all``, ``scapy.layers.l2``), each in a fresh interpreter.

The lab is always removed at the end (also on failure and Ctrl-C). Results overwrite
``bench/results/scale.{json,md}`` (``--out-dir``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import platform
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from aliasip_api.rest import ALIASIPS, ApiError, ApiUnavailable, leases_path
from aliasip_lab.capture import Capture, Frame
from aliasip_lab.cluster import SYSTEM_NAMESPACE, Lab, LabApi
from aliasip_lab.interrupt import sigterm_as_interrupt
from aliasip_lab.lan import Host
from aliasip_lab.nsenter import netns
from aliasip_nodeagent.heartbeat import DEFAULT_PORT as HEARTBEAT_PORT
from aliasip_operator.observations import SWITCHOVER_ANNOTATION

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SETTLE_S = 5.0  # after a placement or a loss, before the next loss: announcements end
COMMAND = ".venv/bin/python -m bench.scale"
API_PORT = 6443
HOT_LABEL = "bench.aliasip.io/hot"
SINGLE_LABEL = "bench.aliasip.io/single"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024

Json = dict[str, Any]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------------- processes


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of the whole process (every thread), in clock ticks."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def system_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


class Sampler:
    """Every ``interval_s``: the RSS of every lab process; the maximum per role is kept per
    phase and over the whole run (the phase is set by the benchmark as it goes)."""

    def __init__(self, lab: Lab, interval_s: float = 1.0) -> None:
        self.lab = lab
        self.interval_s = interval_s
        self.phase = "start"
        self.max_rss: dict[str, dict[str, int]] = {}  # phase -> role -> KiB
        self.load: dict[str, float] = {}  # phase -> max 1-min load average
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def pids(self) -> dict[str, int]:
        return {r: d.workload_pid for r, d in self.lab.state.daemons.items() if d.running}

    def sample(self) -> None:
        per_phase = self.max_rss.setdefault(self.phase, {})
        for role, pid in self.pids().items():
            kib = rss_kib(pid)
            if kib is not None:
                per_phase[role] = max(per_phase.get(role, 0), kib)
        self.load[self.phase] = max(self.load.get(self.phase, 0.0), loadavg())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):
                self.sample()

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def overall(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for per_phase in self.max_rss.values():
            for role, kib in per_phase.items():
                found[role] = max(found.get(role, 0), kib)
        return found


# --------------------------------------------------------------------------- requests

# BPF on an AF_PACKET SOCK_DGRAM socket (data starts at the IP header): IPv4, TCP, not a
# fragment, destination port API_PORT, and a non-empty TCP payload; keep 1 KiB of it.
_BPF = [
    (0x30, 0, 0, 9),  # ldb [9]                  protocol
    (0x15, 0, 14, 6),  # jeq #6 (TCP)             else drop
    (0x28, 0, 0, 6),  # ldh [6]                  flags + fragment offset
    (0x45, 12, 0, 0x1FFF),  # jset #0x1fff            fragment: drop
    (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)          X = IP header length
    (0x48, 0, 0, 2),  # ldh [x+2]                destination port
    (0x15, 0, 9, API_PORT),  # jeq #6443       else drop
    (0x50, 0, 0, 12),  # ldb [x+12]              TCP data offset byte
    (0x74, 0, 0, 2),  # rsh #2
    (0x54, 0, 0, 0x3C),  # and #0x3c              A = TCP header length
    (0x0C, 0, 0, 0),  # add x                    A = IP + TCP header lengths
    (0x02, 0, 0, 0),  # st M[0]
    (0x28, 0, 0, 2),  # ldh [2]                  IP total length
    (0x61, 0, 0, 0),  # ldx M[0]
    (0x3D, 0, 1, 0),  # jgt x                    payload > 0: accept
    (0x06, 0, 0, 1024),  # ret #1024
    (0x06, 0, 0, 0),  # ret #0
]
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ")
WRITE_VERBS = {"create", "update", "patch", "delete"}


def classify(method: str, target: str) -> tuple[str, str]:
    """(verb, resource) as kube-apiserver's metrics name them: ``get``/``list``/``watch``/
    ``create``/``update``/``patch``/``delete``, and e.g. ``leases``, ``aliasips/status``."""
    path, _, query = target.partition("?")
    segs = [s for s in path.split("/") if s]
    if not segs or segs[0] not in ("api", "apis"):
        return method.lower(), "/" + "/".join(segs[:1])
    start = 2 if segs[0] == "api" else 3
    rest = segs[start:]
    if len(rest) > 2 and rest[0] == "namespaces":
        rest = rest[2:]
    resource = rest[0] if rest else "(discovery)"
    item = len(rest) >= 2
    if len(rest) >= 3:
        resource = f"{resource}/{rest[2]}"
    if method == "GET":
        watch = re.search(r"(^|&)watch=(1|true)", query) is not None
        verb = "watch" if watch else ("get" if item else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            method, method.lower()
        )
    return verb, resource


class RequestCounter:
    """Counts the HTTP requests reaching the API server, by (client, verb, resource)."""

    def __init__(self, lab: Lab, bench_pid: int) -> None:
        self.lab = lab
        self.bench_pid = bench_pid
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.lock = threading.Lock()
        self.by_address = {str(lab.lan.management_address(h.host_id).ip): h.name
                           for h in lab.lan.nodes}  # fmt: skip
        self.api_address = lab.lan.api_address
        self.port_owner: dict[int, str] = {}
        self._mapped_at = 0.0
        self._stop = threading.Event()
        with netns(lab.control_plane):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        program = b"".join(struct.pack("HBBI", *insn) for insn in _BPF)
        self._filter = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(_BPF), ctypes.addressof(self._filter))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, name="requests", daemon=True)

    def start(self) -> None:
        self._map_ports()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def snapshot(self) -> Counter[tuple[str, str, str]]:
        with self.lock:
            return Counter(self.counts)

    def _owners(self) -> dict[str, int]:
        owners = {"bench": self.bench_pid}
        for identity in ("op-a", "op-b"):
            daemon = self.lab.state.daemons.get(f"operator {identity}")
            if daemon is not None and daemon.running:
                owners[f"operator {identity}"] = daemon.workload_pid
        return owners

    def _map_ports(self) -> None:
        """Local TCP ports of the control-plane namespace's clients, by owner process."""
        self._mapped_at = time.monotonic()
        api = self.lab.state.daemons.get("api")
        if api is None or not api.running:
            return
        inode_port: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{api.pid}/net/tcp").read_text().splitlines()[1:]:
                cols = line.split()
                inode_port[cols[9]] = int(cols[1].split(":")[1], 16)
        for owner, pid in self._owners().items():
            with contextlib.suppress(OSError):
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(OSError):
                        link = os.readlink(f"/proc/{pid}/fd/{fd}")
                        if link.startswith("socket:["):
                            port = inode_port.get(link[8:-1])
                            if port is not None:
                                self.port_owner[port] = owner

    def _client(self, src: str, sport: int) -> str:
        node = self.by_address.get(src)
        if node is not None:
            return f"agent {node}"
        if src in (self.api_address, "127.0.0.1"):
            owner = self.port_owner.get(sport)
            if owner is None and time.monotonic() - self._mapped_at > 0.5:
                self._map_ports()
                owner = self.port_owner.get(sport)
            return owner or "control-plane (unknown)"
        return f"other {src}"

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            if addr[2] == PACKET_OUTGOING:
                continue  # loopback: each segment is seen leaving and arriving
            ihl = (data[0] & 0x0F) * 4
            doff = (data[ihl + 12] >> 4) * 4
            payload = data[ihl + doff :]
            if not payload.startswith(METHODS):
                continue  # a request body's continuation
            line = payload.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
            if len(line) < 2:
                continue
            src = socket.inet_ntoa(data[12:16])
            sport = struct.unpack("!H", data[ihl : ihl + 2])[0]
            verb, resource = classify(line[0], line[1])
            client = self._client(src, sport)
            with self.lock:
                self.counts[(client, verb, resource)] += 1


# --------------------------------------------------------------------------- windows


def current_rv(api: LabApi) -> int:
    """The store's global revision: every stored write bumps it (no-op writes do not)."""
    return int(api.call("GET", "/api/v1/namespaces")["metadata"]["resourceVersion"])


def call_retrying(fn: Callable[[], Any], attempts: int = 5) -> Any:
    for attempt in range(attempts):
        try:
            return fn()
        except (ApiUnavailable, ApiError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


# Whose service link the heartbeat traffic is sampled on (not node1, the hot node).
HEARTBEAT_SAMPLE_NODE = "node2"


def measure_window(lab: Lab, api: LabApi, sampler: Sampler, seconds: float) -> Json:
    """Requests, writes, CPU and RSS of every process over ``seconds`` of doing nothing."""
    pids = sampler.pids() | {"bench (this process)": os.getpid()}
    leader = lab.leader()
    requests = RequestCounter(lab, os.getpid())
    requests.start()
    sample = lab.node(HEARTBEAT_SAMPLE_NODE)
    with netns(sample.netns):
        heartbeats = Capture(sample.ifname).start()
    rv0 = call_retrying(lambda: current_rv(api))
    counts0 = requests.snapshot()
    cpu0 = {role: cpu_ticks(pid) for role, pid in pids.items()}
    busy0 = system_busy()
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu1 = {role: cpu_ticks(pid) for role, pid in pids.items()}
    busy1 = system_busy()
    counts1 = requests.snapshot()
    rv1 = call_retrying(lambda: current_rv(api))
    requests.stop()
    heard = heartbeat_traffic(heartbeats.stop(), elapsed)
    counts = counts1 - counts0
    bench_writes = sum(n for (c, v, _), n in counts.items() if c == "bench" and v in WRITE_VERBS)
    cpu = {}
    for role, before in cpu0.items():
        after = cpu1.get(role)
        if before is not None and after is not None:
            cpu[role] = round(100.0 * (after - before) / CLK_TCK / elapsed, 2)
    rss = {role: rss_kib(pid) for role, pid in pids.items()}
    return summarise_window(
        seconds=elapsed,
        leader=leader,
        nodes=lab.node_names,
        counts=counts,
        stored_writes=rv1 - rv0 - bench_writes,
        cpu=cpu,
        rss={k: v for k, v in rss.items() if v is not None},
        machine_busy=round(100.0 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]), 1),
        load=loadavg(),
    ) | {"heartbeats": heard}


def heartbeat_traffic(frames: Sequence[Frame], seconds: float) -> Json:
    """The monitoring path's traffic on one node's service link (``HEARTBEAT_SAMPLE_NODE``,
    a node that is not the hot one): UDP datagrams to or from the heartbeat port, both
    ways, as frames on the wire (Ethernet, IP and UDP headers included)."""
    sent = received = sent_bytes = received_bytes = 0
    for f in frames:
        d = f.data
        if f.ethertype != 0x0800 or len(d) < 38 or d[23] != 17:
            continue
        ihl = (d[14] & 0x0F) * 4
        sport = int.from_bytes(d[14 + ihl : 16 + ihl], "big")
        dport = int.from_bytes(d[16 + ihl : 18 + ihl], "big")
        if HEARTBEAT_PORT not in (sport, dport):
            continue
        if f.outgoing:
            sent, sent_bytes = sent + 1, sent_bytes + len(d)
        else:
            received, received_bytes = received + 1, received_bytes + len(d)
    return {
        "node": HEARTBEAT_SAMPLE_NODE,
        "sent_per_s": round(sent / seconds, 1),
        "received_per_s": round(received / seconds, 1),
        "kbit_per_s": round((sent_bytes + received_bytes) * 8 / 1000 / seconds, 1),
        "sent_kbit_per_s": round(sent_bytes * 8 / 1000 / seconds, 1),
    }


def summarise_window(
    *,
    seconds: float,
    leader: str | None,
    nodes: Sequence[str],
    counts: Counter[tuple[str, str, str]],
    stored_writes: int,
    cpu: Mapping[str, float],
    rss: Mapping[str, int],
    machine_busy: float,
    load: float,
) -> Json:
    def rate(n: float) -> float:
        return round(n / seconds, 3)

    def per_client(client: str) -> Json:
        mine = {(v, r): n for (c, v, r), n in counts.items() if c == client}
        writes = sum(n for (v, _), n in mine.items() if v in WRITE_VERBS)
        lease_writes = sum(n for (v, r), n in mine.items() if v in WRITE_VERBS and r == "leases")
        return {
            "requests_per_s": rate(sum(mine.values())),
            "writes_per_s": rate(writes),
            "lease_writes_per_s": rate(lease_writes),
            "other_writes_per_s": rate(writes - lease_writes),
            "reads_per_s": rate(sum(mine.values()) - writes),
            "by_verb_resource_per_s": {
                f"{v} {r}": rate(n) for (v, r), n in sorted(mine.items(), key=lambda x: -x[1])
            },
        }

    clients = sorted({c for c, _, _ in counts})
    agents = {n: per_client(f"agent {n}") for n in nodes}
    leader_role = f"operator {leader}" if leader else None
    standby_roles = [r for r in ("operator op-a", "operator op-b") if r != leader_role]

    def spread(values: Sequence[float]) -> Json:
        if not values:
            return {"median": None, "max": None, "mean": None}
        return {
            "median": round(statistics.median(values), 3),
            "max": round(max(values), 3),
            "mean": round(statistics.fmean(values), 3),
        }

    all_writes = sum(n for (c, v, _), n in counts.items() if v in WRITE_VERBS and c != "bench")
    lease_writes = sum(
        n for (c, v, r), n in counts.items() if v in WRITE_VERBS and r == "leases" and c != "bench"
    )
    agent_cpu = [cpu[f"agent {n}"] for n in nodes if f"agent {n}" in cpu]
    agent_rss = [rss[f"agent {n}"] for n in nodes if f"agent {n}" in rss]
    return {
        "seconds": round(seconds, 2),
        "leader": leader,
        "stored_writes_per_s": rate(stored_writes),
        "write_requests_per_s": rate(all_writes),
        "lease_write_requests_per_s": rate(lease_writes),
        "aliasip_write_requests_per_s": rate(
            sum(
                n
                for (c, v, r), n in counts.items()
                if v in WRITE_VERBS and r.startswith("aliasips") and c != "bench"
            )
        ),
        "requests_per_s": rate(sum(n for (c, _, _), n in counts.items() if c != "bench")),
        "agents": {
            "writes_per_s_per_node": spread([a["writes_per_s"] for a in agents.values()]),
            "lease_writes_per_s_per_node": spread(
                [a["lease_writes_per_s"] for a in agents.values()]
            ),
            "other_writes_per_s_per_node": spread(
                [a["other_writes_per_s"] for a in agents.values()]
            ),
            "reads_per_s_per_node": spread([a["reads_per_s"] for a in agents.values()]),
            "cpu_percent": spread(agent_cpu),
            "rss_kib": spread([float(x) for x in agent_rss]),
        },
        "operator_leader": per_client(leader_role) if leader_role else None,
        "operator_standby": [per_client(r) for r in standby_roles],
        "clients": {c: per_client(c) for c in clients},
        "cpu_percent": dict(cpu),
        "rss_kib": dict(rss),
        "machine_busy_percent": machine_busy,
        "load1": load,
    }


# --------------------------------------------------------------------------- AliasIPs


def lan_addresses(lab: Lab, count: int) -> list[ipaddress.IPv4Interface]:
    """``count`` alias addresses in the LAN, from 198.18.2.1 upwards, skipping the nodes'
    and client's addresses and every x.y.z.0 / x.y.z.255 (harmless in a /20, but clearer)."""
    subnet = lab.lan.client.ipv4.network
    taken = {h.ipv4.ip for h in lab.lan.hosts}
    found = []
    for address in subnet.hosts():
        if int(address) < int(subnet.network_address) + 512 or address in taken:
            continue
        if address.packed[3] in (0, 255):
            continue
        found.append(ipaddress.IPv4Interface(f"{address}/{subnet.prefixlen}"))
        if len(found) == count:
            return found
    raise SystemExit(
        f"the LAN {subnet} has room for {len(found)} aliases, not {count}: widen --lan-prefixlen"
    )


@dataclass
class Planned:
    name: str
    address: ipaddress.IPv4Interface
    nodes: list[str]
    hot: bool
    single: bool = False

    def body(self) -> Json:
        labels = {HOT_LABEL: "true"} if self.hot else {}
        if self.single:
            labels = {SINGLE_LABEL: "true"}
        return {
            "apiVersion": "aliasip.io/v1alpha1",
            "kind": "AliasIP",
            "metadata": {"name": self.name, "labels": labels},
            "spec": {"addresses": [str(self.address)], "nodes": self.nodes},
        }


def plan_aliasips(
    nodes: Sequence[str],
    addresses: Sequence[ipaddress.IPv4Interface],
    hot: int,
    length: int,
    single: bool = False,
) -> list[Planned]:
    """node1 first for ``hot`` AliasIPs, the others round-robin over the other nodes; the
    rest of each list is the node list rotated from its first node (node1's standbys are
    spread: its k-th AliasIP has the k-th other node second).

    ``single``: the last AliasIP has the last node first and that node is in no other
    list: losing it is the loss of a node holding exactly one alias (the baseline the loss
    of node1's ``hot`` is compared with), and its loss takes no candidate from any other
    AliasIP (evidence per node needs two live standbys)."""
    alone = nodes[-1] if single and len(nodes) >= 4 else None
    pool = [n for n in nodes if n != alone]
    others = list(pool[1:]) or list(pool)
    planned = []
    for i, address in enumerate(addresses):
        if alone is not None and i == len(addresses) - 1:
            order = [alone, *others]
            planned.append(Planned(f"scale-{i:04d}", address, order[:length], False, True))
            continue
        if i < hot:
            second = others[i % len(others)]
            start = pool.index(second)
            rest = [n for n in [*pool[start:], *pool[:start]] if n != pool[0]]
            order = [pool[0], *rest]
        else:
            first = others[(i - hot) % len(others)]
            start = pool.index(first)
            order = list(pool[start:]) + list(pool[:start])
        planned.append(Planned(f"scale-{i:04d}", address, order[:length], i < hot))
    return planned


def held_by_node(lab: Lab) -> dict[str, set[str]]:
    """The aliases (address without prefix) in each node's kernel, added by aliasip."""
    found = {}
    for host in lab.lan.nodes:
        found[host.name] = {a.split("/")[0] for a in lab.held(host)}
    return found


def expired_agent_leases(api: LabApi) -> list[str]:
    """Agent Leases whose renewTime + duration is in the past (the agent is late)."""
    now = time.time()
    items = api.call("GET", leases_path(SYSTEM_NAMESPACE), timeout_s=10.0).get("items") or []
    late = []
    for lease in items:
        name = str(lease["metadata"]["name"])
        expiry = lease_expiry_of(lease)
        if name.startswith("aliasip-agent-") and expiry is not None and expiry < now:
            late.append(name.removeprefix("aliasip-agent-"))
    return late


def list_aliasips(api: LabApi, selector: str | None = None) -> list[Json]:
    params = {"labelSelector": selector} if selector else None
    items: list[Json] = api.call("GET", ALIASIPS, params=params, timeout_s=30.0).get("items") or []
    return items


def create(api: LabApi, body: Json) -> None:
    """POST; an AlreadyExists after a retry (the first attempt timed out) is success."""
    try:
        api.call("POST", ALIASIPS, body, timeout_s=30.0)
    except ApiError as exc:
        if exc.status != 409:
            raise


def create_and_converge(
    lab: Lab, api: LabApi, planned: list[Planned], timeout_s: float, poll_s: float
) -> Json:
    """POST every AliasIP, then poll until each is Active on its first node and in that
    node's kernel. Times are seconds from the first POST."""
    t0 = time.monotonic()
    deadline = t0 + timeout_s
    created: list[Planned] = []
    for p in planned:
        if time.monotonic() > deadline:
            break  # bounded: the POSTs themselves may crawl when the cluster is overloaded
        call_retrying(lambda p=p: create(api, p.body()))  # type: ignore[misc]
        created.append(p)
    posted = time.monotonic() - t0
    log(f"created {len(created)} AliasIPs in {posted:.1f} s; waiting for Active + kernel")
    want = {p.name: p for p in created}
    active_at: dict[str, float] = {}
    held_at: dict[str, float] = {}
    elsewhere: dict[str, str] = {}
    last_log = 0.0
    worst_expired = polls_with_expired = polls = expired_now = 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            items = list_aliasips(api)
        except (ApiUnavailable, ApiError) as exc:
            log(f"  list failed ({exc}); retrying")
            time.sleep(poll_s)
            continue
        now = time.monotonic() - t0
        for obj in items:
            name = obj["metadata"]["name"]
            status = obj.get("status") or {}
            if name in want and name not in active_at and status.get("phase") == "Active":
                active_at[name] = now
                if status.get("activeNode") != want[name].nodes[0]:
                    elsewhere[name] = str(status.get("activeNode"))
        with contextlib.suppress(ApiUnavailable, ApiError):
            expired_now = len(expired_agent_leases(api))
            worst_expired = max(worst_expired, expired_now)
            polls_with_expired += bool(expired_now)
        polls += 1
        pending = [n for n in want if n not in held_at]
        if pending:
            kernels = held_by_node(lab)
            now = time.monotonic() - t0
            for name in pending:
                p = want[name]
                holder = elsewhere.get(name, p.nodes[0])
                if str(p.address.ip) in kernels.get(holder, set()):
                    held_at[name] = now
        if time.monotonic() - last_log > 10:
            last_log = time.monotonic()
            log(
                f"  t={now:6.1f} s  Active {len(active_at)}/{len(want)}  "
                f"in kernel {len(held_at)}/{len(want)}  agent Leases expired now "
                f"{expired_now}  load {loadavg():.1f}"
            )
        if len(active_at) == len(want) and len(held_at) == len(want):
            break
        time.sleep(max(0.0, poll_s - (time.monotonic() - started)))
    done = len(want) == len(planned) and len(active_at) == len(held_at) == len(want)
    both = [max(active_at[n], held_at[n]) for n in want if n in active_at and n in held_at]
    return {
        "aliasips": len(planned),
        "posted_s": round(posted, 2),
        "created": len(created),
        "converged": done,
        "timeout_s": timeout_s,
        "poll_s": poll_s,
        "all_active_s": round(max(active_at.values()), 2) if done else None,
        "all_held_s": round(max(held_at.values()), 2) if done else None,
        "all_active_and_held_s": round(max(both), 2) if done else None,
        "median_active_and_held_s": round(statistics.median(both), 2) if both else None,
        "active": len(active_at),
        "held": len(held_at),
        "not_on_first_node": elsewhere,
        "polls": polls,
        "polls_with_an_expired_agent_lease": polls_with_expired,
        "most_agent_leases_expired_at_once": worst_expired,
    }


def place_on(lab: Lab, api: LabApi, selector: str, node: str, timeout_s: float) -> Json:
    """Make ``node`` hold every AliasIP matching ``selector`` before its loss is measured:
    those Active elsewhere get the ``aliasip.io/switchover-to`` annotation (a planned move:
    release, then add); then wait until each is Active on ``node`` and its address is in
    ``node``'s kernel. A loss of a node that holds nothing measures nothing (the last
    50 x 1,000 run: the hot AliasIPs had landed on their standbys during the creation)."""
    t0 = time.monotonic()
    items = list_aliasips(api, selector)
    addresses = {
        obj["metadata"]["name"]: str(obj["spec"]["addresses"][0]).split("/")[0] for obj in items
    }
    already = sorted(
        obj["metadata"]["name"]
        for obj in items
        if (obj.get("status") or {}).get("activeNode") == node
        and (obj.get("status") or {}).get("phase") == "Active"
    )
    asked = sorted(set(addresses) - set(already))
    for name in asked:
        call_retrying(
            lambda name=name: lab.api.merge_patch(  # type: ignore[misc]
                f"{ALIASIPS}/{name}",
                {"metadata": {"annotations": {SWITCHOVER_ANNOTATION: node}}},
            )
        )
    log(f"placing {len(addresses)} AliasIPs on {node}: {len(already)} there, {len(asked)} asked")
    deadline = t0 + timeout_s
    placed: set[str] = set()
    while time.monotonic() < deadline:
        with contextlib.suppress(ApiUnavailable, ApiError):
            active = {
                obj["metadata"]["name"]
                for obj in list_aliasips(api, selector)
                if (obj.get("status") or {}).get("activeNode") == node
                and (obj.get("status") or {}).get("phase") == "Active"
            }
            kernel = {a.split("/")[0] for a in lab.held(lab.node(node))}
            placed = {n for n in active if addresses[n] in kernel}
        if len(placed) == len(addresses):
            break
        time.sleep(1.0)
    return {
        "node": node,
        "aliasips": len(addresses),
        "already_there": len(already),
        "switched_over": len(asked),
        "held": len(placed),
        "seconds": round(time.monotonic() - t0, 2),
        "complete": len(placed) == len(addresses),
    }


# --------------------------------------------------------------------------- failover


def arp_request(src_mac: str, src_ip: str, target: str) -> bytes:
    mac = bytes.fromhex(src_mac.replace(":", ""))
    ether = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, 1) + mac + socket.inet_aton(src_ip)
    return ether + arp + b"\x00" * 6 + socket.inet_aton(target)


@dataclass
class ArpWatch:
    """ARP seen and asked from the client namespace, for a set of target addresses.

    ``announced[ip]``: first ARP frame from a MAC other than ``old_mac`` whose sender is
    ``ip`` (a gratuitous ARP of the new holder, or an answer); ``answered[ip]``: first ARP
    reply to one of our own requests from a MAC other than ``old_mac``. Times: monotonic."""

    client: Host
    targets: set[str]
    old_mac: str
    announced: dict[str, tuple[float, str]] = field(default_factory=dict)
    answered: dict[str, tuple[float, str]] = field(default_factory=dict)
    asked: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        with netns(self.client.netns):
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
            self.sock.bind((self.client.ifname, ETH_P_ARP))
        self.sock.settimeout(0.02)
        self._stop = threading.Event()
        self._nudge = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="arp", daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        client_ip = str(self.client.ipv4.ip)
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(128)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            if len(frame) < 42:
                continue
            op = struct.unpack("!H", frame[20:22])[0]
            sha = ":".join(f"{b:02x}" for b in frame[22:28])
            spa = socket.inet_ntoa(frame[28:32])
            tpa = socket.inet_ntoa(frame[38:42])
            if spa not in self.targets or sha == self.old_mac:
                continue
            if spa not in self.announced:
                self.announced[spa] = (now, sha)
                self._nudge.set()
            if op == 2 and tpa == client_ip and spa not in self.answered:
                self.answered[spa] = (now, sha)

    def ask(self, target: str) -> None:
        self.asked[target] += 1
        self.sock.send(arp_request(self.client.mac, str(self.client.ipv4.ip), target))

    def run(self, deadline: float, every_s: float = 0.25) -> None:
        """Ask each target not answered yet every ``every_s``, and at once after its new
        holder announced it; until all answered or ``deadline``."""
        last: dict[str, float] = {}
        while time.monotonic() < deadline and len(self.answered) < len(self.targets):
            now = time.monotonic()
            for target in sorted(self.targets - self.answered.keys()):
                fresh = target in self.announced and last.get(target, 0) < self.announced[target][0]
                if fresh or now - last.get(target, 0.0) >= every_s:
                    last[target] = time.monotonic()
                    self.ask(target)
            self._nudge.wait(0.02)
            self._nudge.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def lease_expiry(api: LabApi, node: str) -> float | None:
    """The wall-clock time at which ``node``'s agent Lease expires (renewTime + duration)."""
    return lease_expiry_of(api.get(f"{leases_path(SYSTEM_NAMESPACE)}/aliasip-agent-{node}"))


def lease_expiry_of(lease: Json | None) -> float | None:
    spec = (lease or {}).get("spec") or {}
    renew = spec.get("renewTime")
    if not renew:
        return None
    stamp = datetime.datetime.strptime(renew.rstrip("Z")[:26], "%Y-%m-%dT%H:%M:%S.%f")
    stamp = stamp.replace(tzinfo=datetime.UTC)
    return stamp.timestamp() + float(spec.get("leaseDurationSeconds") or 0)


class StatusWatch:
    """The status of the AliasIPs matching a label selector, kept current by one watch
    (list, then watch from its resourceVersion) in a thread: what the failover phase
    reads instead of listing them ten times a second, which at 1,000 AliasIPs was a
    large part of the embedded API server's work exactly when the failover needed it."""

    def __init__(self, api: LabApi, selector: str) -> None:
        self.api = api
        self.selector = selector
        self.status: dict[str, Json] = {}
        self.seen_at: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> StatusWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listing = self.api.call(
                        "GET", ALIASIPS, params={"labelSelector": self.selector}, timeout_s=30.0
                    )
                    for obj in listing.get("items") or []:
                        self._keep(obj)
                    rv = str(listing["metadata"]["resourceVersion"])
                rv = self._watch(rv)
            except (ApiUnavailable, ApiError, OSError, ValueError):
                rv = None
                self._stop.wait(0.2)

    def _watch(self, rv: str) -> str:
        rest = self.api.rest
        params = {"watch": "1", "resourceVersion": rv, "labelSelector": self.selector,
                  "allowWatchBookmarks": "true", "timeoutSeconds": "30"}  # fmt: skip
        with netns(self.api.namespace):
            response = rest.transport().request(
                "GET", rest.url(ALIASIPS, params), headers=rest.headers(),
                preload_content=False, timeout=urllib3.Timeout(connect=3.0, read=40.0),
            )  # fmt: skip
        try:
            if response.status != 200:
                raise ApiError(response.status, str(response.reason))
            buffer = b""
            for chunk in response.stream(amt=None, decode_content=False):
                buffer += chunk
                while b"\n" in buffer and not self._stop.is_set():
                    line, buffer = buffer.split(b"\n", 1)
                    event = json.loads(line)
                    obj = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        raise ApiError(int(obj.get("code") or 500), str(obj.get("reason")))
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self._keep(obj)
                if self._stop.is_set():
                    break
        finally:
            response.release_conn()
        return rv

    def _keep(self, obj: Json) -> None:
        name = str(obj["metadata"]["name"])
        self.status[name] = obj.get("status") or {}
        self.seen_at[name] = time.monotonic()


def failover(
    lab: Lab, api: LabApi, node: str, timeout_s: float, poll_s: float, selector: str
) -> Json:
    """Stop ``node``; time until every AliasIP matching ``selector`` that it held is
    Active elsewhere and answers."""
    items = list_aliasips(api, selector)
    held = {
        obj["metadata"]["name"]: str(obj["spec"]["addresses"][0]).split("/")[0]
        for obj in items
        if (obj.get("status") or {}).get("activeNode") == node
    }
    if not held:
        return {"error": f"{node} holds none of the AliasIPs {selector}"}
    macs = {h.name: h.mac for h in lab.lan.nodes}
    watch = ArpWatch(lab.lan.client, set(held.values()), macs[node])
    statuses = StatusWatch(api, selector).start()
    try:
        wall0, t0 = time.time(), time.monotonic()
        lab.stop_node(node)
        stopped = time.monotonic() - t0
        log(f"{node} stopped ({stopped:.2f} s); watching {len(held)} AliasIPs")
        moved_at: dict[str, tuple[float, str]] = {}
        deadline = t0 + timeout_s
        asker = threading.Thread(target=watch.run, args=(deadline,), daemon=True)
        asker.start()
        expiry = None
        while time.monotonic() < deadline and len(moved_at) < len(held):
            if expiry is None:
                with contextlib.suppress(ApiUnavailable, ApiError):
                    expiry = lease_expiry(api, node)
            for name, status in list(statuses.status.items()):
                active = status.get("activeNode")
                if (
                    name in held
                    and name not in moved_at
                    and active not in (None, node)
                    and status.get("phase") == "Active"
                ):
                    moved_at[name] = (statuses.seen_at[name] - t0, str(active))
            time.sleep(poll_s)
        asker.join(timeout=max(0.0, deadline - time.monotonic()) + 1)
    finally:
        watch.close()
        statuses.stop()
    answered = {ip_: (t - t0, mac) for ip_, (t, mac) in watch.answered.items()}
    announced = {ip_: (t - t0, mac) for ip_, (t, mac) in watch.announced.items()}
    wrong_mac = sorted(
        ip_
        for name, ip_ in held.items()
        if name in moved_at and ip_ in answered and answered[ip_][1] != macs[moved_at[name][1]]
    )
    complete = len(moved_at) == len(held) and len(answered) == len(held)
    status_times = [t for t, _ in moved_at.values()]
    answer_times = [t for t, _ in answered.values()]
    new_holders = Counter(n for _, n in moved_at.values())
    return {
        "node": node,
        "aliasips": len(held),
        "complete": complete,
        "timeout_s": timeout_s,
        "status": "watched (label selector), times of event arrival",
        "stop_node_call_s": round(stopped, 3),
        "lease_expiry_after_stop_s": round(expiry - wall0, 3) if expiry else None,
        "all_moved_status_s": round(max(status_times), 3) if len(moved_at) == len(held) else None,
        "first_moved_status_s": round(min(status_times), 3) if status_times else None,
        "median_moved_status_s": round(statistics.median(status_times), 3)
        if status_times
        else None,
        "all_answered_s": round(max(answer_times), 3) if len(answered) == len(held) else None,
        "first_answered_s": round(min(answer_times), 3) if answer_times else None,
        "median_answered_s": round(statistics.median(answer_times), 3) if answer_times else None,
        "first_announced_s": round(min(t for t, _ in announced.values()), 3) if announced else None,
        "all_moved_and_answered_s": round(max(max(status_times), max(answer_times)), 3)
        if complete
        else None,
        "moved": len(moved_at),
        "answered": len(answered),
        "answered_by_wrong_mac": wrong_mac,
        "new_holders": dict(sorted(new_holders.items(), key=lambda kv: -kv[1])),
        "arp_requests_sent": sum(watch.asked.values()),
    }


# --------------------------------------------------------------------------- logs

AGENT_EVENT = re.compile(r"event=([\w-]+)")
OPERATOR_MSG = re.compile(r'"msg": "([^"]+)"')


def summarise_logs(logs: Path) -> Json:
    """How often each agent event / operator message occurs in the kept logs (agents
    summed over nodes, plus the most any one agent logged)."""
    agents: Counter[str] = Counter()
    agent_max: Counter[str] = Counter()
    operators: dict[str, Counter[str]] = {}
    for path in sorted(logs.glob("*.log")) if logs.exists() else []:
        text = path.read_text(errors="replace")
        if path.name.startswith("agent-"):
            mine = Counter(AGENT_EVENT.findall(text))
            agents.update(mine)
            for key, n in mine.items():
                agent_max[key] = max(agent_max[key], n)
        elif path.name.startswith("operator-"):
            operators[path.stem] = Counter(OPERATOR_MSG.findall(text))
    return {
        "agents_total": dict(agents.most_common()),
        "agents_max_one_node": dict(agent_max.most_common()),
        "operators": {k: dict(v.most_common(12)) for k, v in operators.items()},
    }


# --------------------------------------------------------------------------- imports


AGENT_RUN = (
    "import aliasip_nodeagent.service, aliasip_nodeagent.daemon, aliasip_nodeagent.kube, "
    "aliasip_nodeagent.netlink, aliasip_nodeagent.announce"
)
IMPORTS = {
    "python (nothing imported)": "pass",
    "kubernetes.client": "import kubernetes.client",
    "urllib3": "import urllib3",
    "pyroute2": "import pyroute2",
    "scapy.all": "import scapy.all",
    "scapy.layers.l2": "import scapy.layers.l2",
    "scapy.layers.l2 + inet6": "import scapy.layers.l2, scapy.layers.inet6",
    "aliasip_api (model: jsonschema, yaml)": "import aliasip_api.spec, aliasip_api.status",
    "everything the agent's `run` imports": AGENT_RUN,
}
# The agent's imports one after the other in one interpreter: what each adds on top of the
# ones before it (shared dependencies counted once, where they first come in).
IMPORT_CHAIN = [
    ("python", "pass"),
    ("aliasip_api model (jsonschema, yaml)", "import aliasip_api.spec, aliasip_api.status"),
    ("urllib3 (aliasip_api.rest's transport)", "import urllib3"),
    ("pyroute2", "import pyroute2"),
    ("scapy.layers.l2", "import scapy.layers.l2"),
    ("scapy.layers.inet6", "import scapy.layers.inet6"),
    ("the agent's own modules", AGENT_RUN),
]


def import_chain() -> list[Json]:
    """RSS after each step of ``IMPORT_CHAIN`` in one fresh interpreter."""
    lines = ["import re", "def rss():", "    text = open('/proc/self/status').read()",
             "    return int(re.search(r'VmRSS:\\s+(\\d+)', text)[1])"]  # fmt: skip
    for label, stmt in IMPORT_CHAIN:
        lines += [stmt, f"print({label!r}, rss(), sep='\\t')"]
    done = subprocess.run(
        [sys.executable, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=60
    )
    steps, before = [], None
    for row in done.stdout.splitlines():
        label, kib = row.rsplit("\t", 1)
        steps.append(
            {"step": label, "rss_kib": int(kib), "adds_kib": int(kib) - (before or int(kib))}
        )
        before = int(kib)
    return steps


def import_costs() -> Json:
    """VmRSS of a fresh interpreter after each import (median of 3), and the difference to
    a bare interpreter."""
    probe = (
        "{stmt}\nimport re\n"
        "print(re.search(r'VmRSS:\\s+(\\d+)', open('/proc/self/status').read())[1])"
    )
    found: dict[str, int] = {}
    for label, stmt in IMPORTS.items():
        values = []
        for _ in range(3):
            done = subprocess.run(
                [sys.executable, "-c", probe.format(stmt=stmt)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if done.returncode == 0:
                values.append(int(done.stdout.strip()))
        if values:
            found[label] = int(statistics.median(values))
    base = found.get("python (nothing imported)", 0)
    return {k: {"rss_kib": v, "over_bare_kib": v - base} for k, v in found.items()}


def agent_modules() -> list[str]:
    """Which heavy top-level packages the agent's `run` path has loaded."""
    stmt = (
        f"import sys\n{AGENT_RUN}\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run([sys.executable, "-c", stmt], capture_output=True, text=True, timeout=60)
    heavy = {"kubernetes", "pyroute2", "scapy", "urllib3", "yaml", "jsonschema", "aiohttp", "kopf"}
    return sorted(heavy & set(done.stdout.split()))


# --------------------------------------------------------------------------- report


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}{unit}"
    return f"{value}{unit}"


def mib(kib: float | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.1f} MiB"


def window_rows(name: str, w: Json) -> list[str]:
    a = w["agents"]
    lead = w["operator_leader"] or {}
    stand = w["operator_standby"][0] if w["operator_standby"] else {}
    cpu = w["cpu_percent"]
    leader_role = f"operator {w['leader']}"
    return [
        f"| {name} | {w['seconds']} | {w['stored_writes_per_s']} | {w['write_requests_per_s']} "
        f"| {w['lease_write_requests_per_s']} | {w['aliasip_write_requests_per_s']} "
        f"| {a['writes_per_s_per_node']['mean']} / {a['writes_per_s_per_node']['max']} "
        f"| {a['reads_per_s_per_node']['mean']} | {lead.get('writes_per_s')} "
        f"| {lead.get('reads_per_s')} | {stand.get('requests_per_s')} | {w['requests_per_s']} "
        f"| {fmt(cpu.get(leader_role))} | {a['cpu_percent']['median']} / {a['cpu_percent']['max']} "
        f"| {fmt(cpu.get('api'))} | {fmt(cpu.get('bench (this process)'))} "
        f"| {w['machine_busy_percent']} | {w['load1']} "
        f"| {heartbeat_cell(w.get('heartbeats'))} |"
    ]


def heartbeat_cell(h: Json | None) -> str:
    if not h:
        return "-"
    return f"{h['kbit_per_s']} kbit/s ({h['sent_per_s']} out, {h['received_per_s']} in /s)"


def failover_rows(f: Json, title: str) -> list[str]:
    """One loss's section: per AliasIP, when its status and its address moved."""
    if "error" in f:
        return [f"## {title}", "", f"not measured: {f['error']}", ""]
    most = max(f["new_holders"].values()) if f["new_holders"] else 0
    return [
        f"## {title} (agent killed, LAN and management cables cut)",
        "",
        f"{f['aliasips']} AliasIPs held by {f['node']}; seconds from `stop_node` "
        f"(the call itself {f['stop_node_call_s']} s). {f['node']}'s agent Lease expired "
        f"{fmt(f['lease_expiry_after_stop_s'], ' s')} after the stop.",
        "",
        "| | first | median | last (all) |",
        "|---|---|---|---|",
        f"| status: Active on another node | {fmt(f['first_moved_status_s'])} "
        f"| {fmt(f['median_moved_status_s'])} | {fmt(f['all_moved_status_s'])} |",
        f"| client: ARP answer from the new holder | {fmt(f['first_answered_s'])} "
        f"| {fmt(f['median_answered_s'])} | {fmt(f['all_answered_s'])} |",
        "",
        f"All answering elsewhere: **{fmt(f['all_answered_s'], ' s')}**; all moved and "
        f"answering: {fmt(f['all_moved_and_answered_s'], ' s')} (target ≤ 1 s). New "
        f"holders: {len(f['new_holders'])} nodes (most: {most}); answers from an unexpected "
        f"MAC: {len(f['answered_by_wrong_mac'])}. Status times: when a watch on the watched "
        "AliasIPs delivered the change; the client asks ARP every 0.25 s per address and at "
        "once after a gratuitous ARP from a new MAC.",
        "",
    ]


def render(result: Json) -> str:
    cfg = result["config"]
    lines = [
        "# Scale benchmark: many nodes, many AliasIPs",
        "",
        f"{result['date']} · kernel {result['kernel']} · Python {result['python']} · "
        f"{result['cpus']} CPUs · `{result['command']}`",
        "",
        f"{cfg['nodes']} nodes (one `aliasip-agent run` process each), 2 operator replicas, the "
        f"embedded API server, all on this one machine; {cfg['aliasips']} AliasIPs with "
        f"{cfg['list_length']}-node preference lists, node1 first for {cfg['hot']}; service "
        f"LAN {cfg['lan']}; the agents' full pass every {cfg.get('agent_resync_s', 1.0)} s. "
        f"Lab up in {result.get('lab_up_s')} s.",
        "",
    ]
    if cfg.get("env"):
        lines += [
            f"**Experiment**: daemons run with {cfg['env']} (not the project's code as is).",
            "",
        ]
    if result.get("not_running_before_failover"):
        lines += [
            "Processes that had exited on their own before the failover step: "
            + ", ".join(result["not_running_before_failover"]),
            "",
        ]
    c = result.get("creation")
    if c:
        converged = (
            "yes"
            if c["converged"]
            else f"no: {c['active']} Active, {c['held']} held after {c['timeout_s']} s"
        )
        lines += [
            "## Creation",
            "",
            f"{c['created']} of {c['aliasips']} AliasIPs POSTed in {c['posted_s']} s (one after "
            "the other, from this process); from the first POST:",
            "",
            "| all Active | all in the right kernel | both (last one) | median | converged |",
            "|---|---|---|---|---|",
            f"| {fmt(c['all_active_s'], ' s')} | {fmt(c['all_held_s'], ' s')} "
            f"| {fmt(c['all_active_and_held_s'], ' s')} "
            f"| {fmt(c['median_active_and_held_s'], ' s')} "
            f"| {converged} |",
            "",
            f"(status polled every {c['poll_s']} s: that is the resolution; "
            f"{len(c['not_on_first_node'])} AliasIPs landed on another node than their first.)",
            "",
        ]
    windows = result.get("windows") or {}
    if windows:
        lines += [
            "## Steady state: API requests, CPU",
            "",
            "Per second over the window. *stored writes*: growth of the store's resourceVersion"
            " (what reaches etcd; no-op writes excluded); *write requests*: create/update/patch/"
            "delete requests seen at the API server (captured on the wire), split into Lease "
            "renewals and AliasIP writes; per node: that node's agent (mean / max over nodes). "
            "CPU in % of one core (utime+stime over the window). *heartbeats*: the monitoring "
            f"path's UDP traffic on {HEARTBEAT_SAMPLE_NODE}'s service link, both ways, frames "
            "with all headers (captured in its namespace).",
            "",
            "| window | s | stored writes | write req | Lease writes | AliasIP writes "
            "| agent writes/node mean / max | agent reads/node | leader op writes "
            "| leader op reads | standby op req | all req | leader op CPU % "
            "| agent CPU % median / max | API CPU % | bench CPU % | machine busy % | load "
            "| heartbeats |",
            "|---|" + "---|" * 18,
        ]
        for name, w in windows.items():
            lines += window_rows(name, w)
        lines += [""]
        for name, w in windows.items():
            lead = w["operator_leader"] or {}
            agent1 = w["clients"].get("agent node2") or {}
            lines += [
                f"{name}: leader operator by verb/resource (per s): "
                + (
                    ", ".join(f"{k} {v}" for k, v in lead.get("by_verb_resource_per_s", {}).items())
                    or "nothing"
                ),
                "",
                f"{name}: agent node2 by verb/resource (per s): "
                + (
                    ", ".join(
                        f"{k} {v}" for k, v in agent1.get("by_verb_resource_per_s", {}).items()
                    )
                    or "nothing"
                ),
                "",
            ]
    rss = result.get("rss_max_kib") or {}
    leader_role = f"operator {result.get('leader')}"
    if rss:
        agents = [v for k, v in rss.items() if k.startswith("agent ")]
        lines += [
            "## Memory (VmRSS, maximum over the run)",
            "",
            "| process | max RSS | target |",
            "|---|---|---|",
            f"| leader operator ({result.get('leader')}) | {mib(rss.get(leader_role))} "
            "| ≤ 150 MB |",
            f"| agents, median | {mib(statistics.median(agents) if agents else None)} | ≤ 80 MB |",
            f"| agents, max | {mib(max(agents) if agents else None)} | ≤ 80 MB |",
            f"| API server | {mib(rss.get('api'))} | |",
            "",
        ]
        per_phase = result.get("rss_max_kib_by_phase") or {}
        if per_phase:
            lines += [
                "| phase | leader operator | agents median | agents max | API |",
                "|---|---|---|---|---|",
            ]
            for phase, roles in per_phase.items():
                ag = [v for k, v in roles.items() if k.startswith("agent ")]
                lines.append(
                    f"| {phase} | {mib(roles.get(leader_role))} "
                    f"| {mib(statistics.median(ag) if ag else None)} "
                    f"| {mib(max(ag) if ag else None)} "
                    f"| {mib(roles.get('api'))} |"
                )
            lines.append("")
    placed = result.get("placement") or {}
    if placed:
        lines += [
            "## Placement before the loss",
            "",
            "What each lost node held when it was stopped: AliasIPs Active elsewhere were "
            "switched over to it (`aliasip.io/switchover-to`), then the benchmark waited "
            "until each was Active there and in its kernel.",
            "",
            "| node | AliasIPs | already there | switched over | held | seconds |",
            "|---|---|---|---|---|---|",
        ]
        for node, pl in placed.items():
            lines.append(
                f"| {node} | {pl['aliasips']} | {pl['already_there']} | {pl['switched_over']} "
                f"| {pl['held']} | {pl['seconds']} |"
            )
        lines.append("")
    one = result.get("failover_single")
    if one:
        lines += failover_rows(one, "One lost (the baseline): a node holding one alias")
    f = result.get("failover")
    if f:
        lines += failover_rows(f, f"{f.get('aliasips', 'All')} lost: node1 stopped")
    if f and one and f.get("all_answered_s") and one.get("all_answered_s"):
        ratio = f["all_answered_s"] / one["all_answered_s"]
        lines += [
            f"**{f['aliasips']} lost vs one lost** (answering elsewhere, last address): "
            f"{f['all_answered_s']} s vs {one['all_answered_s']} s: {ratio:.2f}x "
            "(target: within 2x, and ≤ 1 s).",
            "",
        ]
    imports = result.get("imports") or {}
    if imports:
        lines += [
            "## What the agent's imports cost (fresh interpreter, VmRSS after the import)",
            "",
            "| import | RSS | over a bare interpreter |",
            "|---|---|---|",
        ]
        for label, v in imports.items():
            lines.append(f"| `{label}` | {mib(v['rss_kib'])} | {mib(v['over_bare_kib'])} |")
        chain = result.get("import_chain") or []
        if chain:
            lines += [
                "",
                "The same imports one after the other, in one interpreter (what each adds on "
                "top of the ones before it):",
                "",
                "| step | RSS after | adds |",
                "|---|---|---|",
            ]
            lines += [
                f"| {c['step']} | {mib(c['rss_kib'])} | {mib(c['adds_kib'])} |" for c in chain
            ]
        lines += [
            "",
            "Heavy packages loaded by the agent's `run` path: "
            + ", ".join(result.get("agent_modules") or [])
            + ".",
            "",
        ]
    logs = result.get("logs") or {}
    if logs.get("agents_total") or logs.get("operators"):
        lines += [
            "## What the daemons logged (whole run)",
            "",
            "Agents, summed over nodes (most on one node): "
            + ", ".join(
                f"{k} {v} ({logs['agents_max_one_node'].get(k)})"
                for k, v in logs["agents_total"].items()
            ),
            "",
        ]
        for name, msgs in logs.get("operators", {}).items():
            lines += [f"{name}: " + ", ".join(f"{k} {v}" for k, v in msgs.items()), ""]
    if result.get("error"):
        lines += ["## Error", "", f"```\n{result['error']}\n```", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--aliasips", type=int, default=1000)
    parser.add_argument(
        "--hot", type=int, default=None, help="AliasIPs with node1 first (default: a tenth)"
    )
    parser.add_argument(
        "--list-length",
        type=int,
        default=3,
        help="nodes in each preference list (default 3: a primary and two standbys; 0: all)",
    )
    parser.add_argument("--steady-seconds", type=float, default=30.0)
    parser.add_argument(
        "--resync",
        type=float,
        default=5.0,
        help="the agents' --resync-interval (default 5 s, the agent's own default; the "
        "lab's 1 s finds a lost carrier sooner but reads every AliasIP each second)",
    )
    parser.add_argument("--create-timeout", type=float, default=600.0)
    parser.add_argument("--failover-timeout", type=float, default=60.0)
    parser.add_argument(
        "--placement-timeout",
        type=float,
        default=300.0,
        help="how long the switchovers that put the hot AliasIPs on node1 may take",
    )
    parser.add_argument(
        "--no-single",
        dest="single",
        action="store_false",
        help="no single AliasIP on the last node (no one-alias baseline for the loss)",
    )
    parser.add_argument("--lan-prefixlen", type=int, default=20)
    parser.add_argument("--skip-idle", action="store_true", help="no 0-AliasIP window")
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--name", default="scale", help="result file stem (default scale)")
    parser.add_argument(
        "--poll", type=float, default=None, help="status poll during creation (1 s; 2 s > 200)"
    )
    parser.add_argument(
        "--keep-logs",
        type=Path,
        default=Path("/tmp/aliasip-bench-scale-logs"),
        help="where the daemons' logs are copied before the lab is removed",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.nodes <= 60:
        parser.error("--nodes must be 1 to 60")
    if args.aliasips < 0:
        parser.error("--aliasips must be >= 0")
    if args.hot is None:
        args.hot = max(args.aliasips // 10, args.aliasips // args.nodes)
    args.hot = min(args.hot, args.aliasips)
    if args.poll is None:
        args.poll = 1.0 if args.aliasips <= 200 else 2.0
    if args.list_length <= 0 or args.list_length > args.nodes:
        args.list_length = args.nodes
    return args


@contextlib.contextmanager
def lab_for(
    state_dir: Path, nodes: int, prefixlen: int, keep_logs: Path, resync_s: float
) -> Iterator[tuple[Lab, float]]:
    """The lab, and how long ``up`` took; always ``down`` afterwards (also on Ctrl-C), after
    copying the daemons' logs to ``keep_logs``."""
    t0 = time.monotonic()
    try:
        lab = Lab.up(state_dir, nodes, progress=log, lan_prefixlen=prefixlen, resync_s=resync_s)
        yield lab, time.monotonic() - t0
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(keep_logs, ignore_errors=True)
            shutil.copytree(state_dir / "logs", keep_logs)
            log(f"daemon logs kept in {keep_logs}")
        log("lab down")
        Lab.down(state_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """SIGTERM ends a run like Ctrl-C: the lab is taken down (a plain SIGTERM left 50 node
    namespaces and their agents behind)."""
    with sigterm_as_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.scale: run as root (network namespaces)", file=sys.stderr)
        return 1
    state_dir = args.state_dir or Path(f"/tmp/aliasip-bench-scale-{os.getpid()}")
    result: Json = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "command": " ".join([COMMAND, *(argv if argv is not None else sys.argv[1:])]),
        "config": {
            "nodes": args.nodes,
            "aliasips": args.aliasips,
            "hot": args.hot,
            "single": args.single,
            "list_length": args.list_length,
            "steady_seconds": args.steady_seconds,
            "lan": f"198.18.0.0/{args.lan_prefixlen}",
            "agent_resync_s": args.resync,
            # Set only for experiments that alter the daemons (e.g. a sitecustomize).
            "env": {k: os.environ[k] for k in ("PYTHONPATH", "ALIASIP_WHATIF") if k in os.environ},
        },
        "windows": {},
    }
    log("agent import costs (fresh interpreters)")
    result["imports"] = import_costs()
    result["agent_modules"] = agent_modules()
    result["import_chain"] = import_chain()
    for label, v in result["imports"].items():
        log(f"  {label:50} {mib(v['rss_kib']):>10}  (+{mib(v['over_bare_kib'])})")
    sampler: Sampler | None = None
    try:
        made = lab_for(state_dir, args.nodes, args.lan_prefixlen, args.keep_logs, args.resync)
        with made as (lab, up_s):
            result["lab_up_s"] = round(up_s, 1)
            log(f"lab up in {up_s:.1f} s (load {loadavg():.1f})")
            api = lab.api
            sampler = Sampler(lab)
            sampler.start()
            result["leader"] = lab.leader()
            if not args.skip_idle:
                sampler.phase = "idle"
                time.sleep(min(5.0, args.steady_seconds))  # start-up writes settle
                log(f"idle window: {args.steady_seconds:g} s with 0 AliasIPs")
                result["windows"]["idle (0 AliasIPs)"] = w = measure_window(
                    lab, api, sampler, args.steady_seconds
                )
                log_window(w)
            if args.aliasips:
                sampler.phase = "creation"
                addresses = lan_addresses(lab, args.aliasips)
                planned = plan_aliasips(
                    lab.node_names, addresses, args.hot, args.list_length, single=args.single
                )
                result["creation"] = c = create_and_converge(
                    lab, api, planned, args.create_timeout, poll_s=args.poll
                )
                log(
                    f"creation: all Active {fmt(c['all_active_s'], ' s')}, all held "
                    f"{fmt(c['all_held_s'], ' s')} (converged: {c['converged']})"
                )
                sampler.phase = "steady"
                time.sleep(min(5.0, args.steady_seconds))
                log(f"steady window: {args.steady_seconds:g} s with {args.aliasips} AliasIPs")
                name = f"steady ({args.aliasips} AliasIPs)"
                if not c["converged"]:
                    name = f"after creation ({args.aliasips} AliasIPs, not converged)"
                result["windows"][name] = w = measure_window(lab, api, sampler, args.steady_seconds)
                log_window(w)
                result["leader"] = lab.leader()
                result["not_running_before_failover"] = sorted(
                    r for r, d in lab.state.daemons.items() if not d.running
                )
                sampler.phase = "failover"
                lone = next((p.nodes[0] for p in planned if p.single), None)
                result["placement"] = placed = {
                    "node1": place_on(
                        lab, api, f"{HOT_LABEL}=true", "node1", args.placement_timeout
                    )
                }
                if lone is not None:
                    placed[lone] = place_on(
                        lab, api, f"{SINGLE_LABEL}=true", lone, args.placement_timeout
                    )
                log(f"placement before the loss: {json.dumps(placed)}")
                time.sleep(SETTLE_S)  # the moves' announcements and reports are over
                if lone is not None:
                    result["failover_single"] = f1 = failover(
                        lab, api, lone, args.failover_timeout, 0.1, f"{SINGLE_LABEL}=true"
                    )
                    log(f"one lost: {json.dumps(f1)}")
                    time.sleep(SETTLE_S)
                result["failover"] = f = failover(
                    lab, api, "node1", args.failover_timeout, 0.1, f"{HOT_LABEL}=true"
                )
                log(f"failover: {json.dumps(f)}")
            sampler.sample()
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        log(f"failed: {result['error']}")
        if not isinstance(exc, Exception):
            raise
    finally:
        result["logs"] = summarise_logs(args.keep_logs)
        if sampler is not None:
            sampler.stop()
            result["rss_max_kib"] = sampler.overall()
            result["rss_max_kib_by_phase"] = sampler.max_rss
            result["load_max_by_phase"] = sampler.load
        args.out_dir.mkdir(parents=True, exist_ok=True)
        (args.out_dir / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
        text = render(result)
        (args.out_dir / f"{args.name}.md").write_text(text)
        print(text)
    return 1 if result.get("error") else 0


def log_window(w: Json) -> None:
    a = w["agents"]
    lead = w["operator_leader"] or {}
    log(
        f"  stored writes {w['stored_writes_per_s']}/s; "
        f"write requests {w['write_requests_per_s']}/s (Leases {w['lease_write_requests_per_s']}, "
        f"AliasIPs {w['aliasip_write_requests_per_s']}); "
        f"per agent {a['writes_per_s_per_node']['mean']} (max {a['writes_per_s_per_node']['max']}) "
        f"writes/s, {a['reads_per_s_per_node']['mean']} reads/s; leader operator "
        f"{lead.get('writes_per_s')} writes/s {lead.get('reads_per_s')} reads/s; all requests "
        f"{w['requests_per_s']}/s"
    )
    leader_cpu = w["cpu_percent"].get(f"operator {w['leader']}")
    log(
        f"  CPU %: leader operator {leader_cpu}, agents median "
        f"{a['cpu_percent']['median']} max {a['cpu_percent']['max']}, "
        f"API {w['cpu_percent'].get('api')}, this benchmark "
        f"{w['cpu_percent'].get('bench (this process)')}; "
        f"machine busy {w['machine_busy_percent']} %, load {w['load1']}"
    )


if __name__ == "__main__":
    sys.exit(main())
