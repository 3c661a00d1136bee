"""A LAN of network namespaces: a switch (bridge) namespace, node namespaces, a client.

    switch ns: br0 ── p-node1 ══ eth1 (node1 ns, 198.18.0.11/24, 2001:2::b/64)
                  ── p-node2 ══ eth1 (node2 ns, 198.18.0.12/24, 2001:2::c/64)
                  ── p-client ══ eth1 (client ns, 198.18.0.100/24, 2001:2::64/64)
                  ── p-observer ══ eth1 (observer ns, 198.18.0.101/24, 2001:2::65/64)

The observer namespace is where the wire observer (``aliasip_lab.observer``) runs: a host
of its own on the LAN, whose broadcast questions come from its own stationary address.

Host number n gets the n-th address of each subnet (so ::b is 11 in hexadecimal).

With ``management=True`` a second bridge carries the management network (the path to the
Kubernetes API, as a real cluster's node network would), apart from the LAN the aliases
live on, so a test can cut one without the other:

    switch ns: br-mgmt ── m-api ══ eth0 (api ns, 198.19.0.1/24: the embedded API server)
                       ── m-node1 ══ mgmt0 (node1 ns, 198.19.0.11/24)
                       ── m-node2 ══ mgmt0 (node2 ns, 198.19.0.12/24)

Everything is built with iproute2 (``ip``), independently of the agent's pyroute2 code,
so the tests that inspect the kernel do not share code with what they test. Namespace
names carry the creating process id: ``sweep_stale()`` removes those of dead processes,
so a crashed run never leaves namespaces behind for long.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import os
import re
import signal
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PREFIX = "aip"
SUBNET4 = ipaddress.IPv4Network("198.18.0.0/24")
SUBNET6 = ipaddress.IPv6Network("2001:2::/64")
MGMT_SUBNET = ipaddress.IPv4Network("198.19.0.0/24")
MGMT_IFNAME = "mgmt0"
API_HOST_ID = 1
CLIENT_HOST_ID = 100
OBSERVER_HOST_ID = 101
IFNAME = "eth1"
_NAME_RE = re.compile(rf"^{PREFIX}(\d+)x\d+-")
_counter = itertools.count(1)


@dataclass(frozen=True)
class Host:
    """One namespace on the LAN: a node, the client or the observer."""

    name: str
    netns: str
    host_id: int
    ifname: str = IFNAME
    subnet4: ipaddress.IPv4Network = SUBNET4  # a wider LAN: Lan.create(prefixlen=...)

    @property
    def mac(self) -> str:
        return f"02:a1:00:00:00:{self.host_id:02x}"

    @property
    def ipv4(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.subnet4[self.host_id]}/{self.subnet4.prefixlen}")

    @property
    def ipv6(self) -> ipaddress.IPv6Interface:
        return ipaddress.IPv6Interface(f"{SUBNET6[self.host_id]}/{SUBNET6.prefixlen}")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one iproute2 command; raise with its stderr on failure."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


def existing_namespaces() -> list[str]:
    return [line.split()[0] for line in ip("netns", "list").stdout.splitlines() if line.strip()]


def sweep_stale() -> list[str]:
    """Remove lab namespaces whose creating process is gone (a crashed earlier run)."""
    removed = []
    for name in existing_namespaces():
        match = _NAME_RE.match(name)
        if match and not _alive(int(match.group(1))):
            kill_processes_in(name)
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_processes_in(netns: str) -> None:
    """SIGKILL every process running in ``netns`` (before the namespace is deleted)."""
    pids = ip("netns", "pids", netns, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


@dataclass
class Lan:
    """The namespaces of one LAN; ``destroy()`` (or the context manager) removes them all."""

    tag: str
    switch_ns: str
    nodes: list[Host]
    client: Host
    observer: Host
    api_ns: str | None = None
    _processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @classmethod
    def create(
        cls, nodes: int = 2, management: bool = False, tag: str | None = None, prefixlen: int = 24
    ) -> Lan:
        """``management``: also the management network and the API's namespace (``api_ns``).

        ``prefixlen``: the service LAN is ``198.18.0.0/prefixlen`` (15 to 24; default /24),
        wider to leave room for many aliases (hosts keep their addresses, only the prefix
        of the stationary addresses changes).

        ``tag`` names the namespaces (``TAG-node1`` ...) of a LAN that outlives this process
        (``aliasip-lab up``); by default the name carries this process's id, and the LAN is
        swept once the process is gone.
        """
        sweep_stale()
        name = tag or f"{PREFIX}{os.getpid()}x{next(_counter)}"
        lan = cls.attach(name, nodes, management, prefixlen)
        try:
            lan._build()
        except BaseException:
            lan.destroy()
            raise
        return lan

    @classmethod
    def attach(cls, tag: str, nodes: int, management: bool, prefixlen: int = 24) -> Lan:
        """The description of a LAN named ``tag``, without building anything (to drive one
        that another process built)."""
        if not 1 <= nodes <= 80:
            raise ValueError("a lab LAN has 1 to 80 nodes")
        if not 15 <= prefixlen <= 24:
            raise ValueError("a lab LAN is 198.18.0.0/15 to 198.18.0.0/24")
        subnet = ipaddress.IPv4Network(f"{SUBNET4.network_address}/{prefixlen}")
        return cls(
            tag=tag,
            switch_ns=f"{tag}-sw",
            nodes=[
                Host(f"node{i}", f"{tag}-node{i}", 10 + i, subnet4=subnet)
                for i in range(1, nodes + 1)
            ],
            client=Host("client", f"{tag}-client", CLIENT_HOST_ID, subnet4=subnet),
            observer=Host("observer", f"{tag}-observer", OBSERVER_HOST_ID, subnet4=subnet),
            api_ns=f"{tag}-api" if management else None,
        )

    @property
    def hosts(self) -> list[Host]:
        return [*self.nodes, self.client, self.observer]

    def node(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def _build(self) -> None:
        ip("netns", "add", self.switch_ns)
        # A switch has no addresses of its own: no IPv6 link-local chatter (DAD, MLD).
        for key in ("all", "default"):
            self.sysctl(self.switch_ns, f"net.ipv6.conf.{key}.disable_ipv6", "1")
        ip("-n", self.switch_ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        ip("-n", self.switch_ns, "link", "set", "br0", "up")
        for host in self.hosts:
            self._add_host(host)
        if self.api_ns is not None:
            self._add_management(self.api_ns)

    @staticmethod
    def management_address(host_id: int) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{MGMT_SUBNET[host_id]}/{MGMT_SUBNET.prefixlen}")

    @property
    def api_address(self) -> str:
        """Where the API server listens (in ``api_ns``), reachable from every node."""
        return str(MGMT_SUBNET[API_HOST_ID])

    def _add_management(self, api_ns: str) -> None:
        ip("-n", self.switch_ns, "link", "add", "br-mgmt", "type", "bridge")
        ip("-n", self.switch_ns, "link", "set", "br-mgmt", "up")
        ip("netns", "add", api_ns)
        ip("-n", api_ns, "link", "set", "lo", "up")
        ends = [(api_ns, "m-api", "eth0", API_HOST_ID)]
        ends += [(h.netns, f"m-{h.name}", MGMT_IFNAME, h.host_id) for h in self.nodes]
        for netns, port, ifname, host_id in ends:
            ip(
                "-n", self.switch_ns, "link", "add", port, "type", "veth",
                "peer", "name", ifname, "netns", netns,
            )  # fmt: skip
            ip("-n", self.switch_ns, "link", "set", port, "master", "br-mgmt", "up")
            ip("-n", netns, "link", "set", ifname, "up")
            ip("-n", netns, "addr", "add", str(self.management_address(host_id)), "dev", ifname)

    def set_management_link(self, host: Host, up: bool) -> None:
        """Cut or restore ``host``'s management cable (its path to the API), not its LAN."""
        ip("-n", self.switch_ns, "link", "set", f"m-{host.name}", "up" if up else "down")

    def _add_host(self, host: Host) -> None:
        ip("netns", "add", host.netns)
        # No DAD on this LAN's stationary addresses: they are unique by construction and a
        # tentative address would not answer for a second.
        for key in ("all", "default"):
            self.sysctl(host.netns, f"net.ipv6.conf.{key}.accept_dad", "0")
            self.sysctl(host.netns, f"net.ipv6.conf.{key}.accept_ra", "0")
        port = f"p-{host.name}"
        ip(
            "-n", self.switch_ns, "link", "add", port, "type", "veth",
            "peer", "name", host.ifname, "netns", host.netns,
        )  # fmt: skip
        ip("-n", self.switch_ns, "link", "set", port, "master", "br0", "up")
        ip("-n", host.netns, "link", "set", host.ifname, "address", host.mac)
        ip("-n", host.netns, "link", "set", "lo", "up")
        ip("-n", host.netns, "link", "set", host.ifname, "up")
        ip("-n", host.netns, "addr", "add", str(host.ipv4), "dev", host.ifname)
        ip("-n", host.netns, "addr", "add", str(host.ipv6), "dev", host.ifname, "nodad")

    @staticmethod
    def sysctl(netns: str, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        ip("netns", "exec", netns, "sh", "-c", f"echo {value} > {path}")

    def run(
        self, host: Host, *argv: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside ``host``'s namespace and wait for it."""
        done = subprocess.run(
            ["ip", "netns", "exec", host.netns, *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{host.name}: {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}"
            )
        return done

    def spawn(self, host: Host, argv: Sequence[str], **kwargs: object) -> subprocess.Popen[str]:
        """Start a command inside ``host``'s namespace; it is killed by ``destroy()``."""
        proc: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
            ["ip", "netns", "exec", host.netns, *argv], text=True, **kwargs
        )
        self._processes.append(proc)
        return proc

    def set_link(self, host: Host, up: bool) -> None:
        """Cut or restore ``host``'s LAN cable (the switch side, as a pulled cable would)."""
        ip("-n", self.switch_ns, "link", "set", f"p-{host.name}", "up" if up else "down")

    def addresses(self, host: Host) -> list[str]:
        """``ip -o addr`` lines of the host's LAN interface (for before/after comparisons)."""
        out = ip("-n", host.netns, "-o", "addr", "show", "dev", host.ifname).stdout
        return sorted(_strip_lifetimes(line) for line in out.splitlines())

    def neighbour_mac(self, host: Host, address: str) -> str | None:
        out = ip("-n", host.netns, "neigh", "show", address, "dev", host.ifname).stdout
        match = re.search(r"lladdr ([0-9a-f:]{17})", out)
        return match.group(1) if match else None

    def destroy(self) -> None:
        for proc in self._processes:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        extra = [self.api_ns] if self.api_ns is not None else []
        for ns in [*(h.netns for h in self.hosts), *extra, self.switch_ns]:
            kill_processes_in(ns)
            ip("netns", "del", ns, check=False)

    def __enter__(self) -> Lan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _strip_lifetimes(line: str) -> str:
    # `ip -o addr` ends each line with "valid_lft ... preferred_lft ..."; they tick.
    return re.sub(r"\\\s+valid_lft.*$", "", line).strip()


@contextlib.contextmanager
def private_namespace(suffix: str, loopback_address: str | None = None) -> Iterator[str]:
    """One empty namespace of this process, loopback up, removed on exit (also on failure).

    For a service that needs no LAN, e.g. the embedded API server and its clients: its
    traffic never leaves the namespace. ``loopback_address`` (e.g. 198.19.0.1) is added to
    ``lo`` as a /32 (/128) so the service can listen on a benchmarking-range address.
    """
    sweep_stale()
    name = f"{PREFIX}{os.getpid()}x{next(_counter)}-{suffix}"
    ip("netns", "add", name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        if loopback_address is not None:
            address = ipaddress.ip_address(loopback_address)
            ip("-n", name, "addr", "add", f"{address}/{address.max_prefixlen}", "dev", "lo")
        yield name
    finally:
        kill_processes_in(name)
        ip("netns", "del", name, check=False)


@contextlib.contextmanager
def lan(nodes: int = 2) -> Iterator[Lan]:
    made = Lan.create(nodes)
    try:
        yield made
    finally:
        made.destroy()
