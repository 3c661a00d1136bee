"""Kernel truth: which node's kernel had which address when, from the kernels themselves.

One ``ip -n NS -o -ts monitor address`` per node namespace (iproute2, not the agent's
pyroute2 code: the witness shares nothing with what it watches) streams every address
added or deleted there; a dump taken right after the monitors start gives what was
already present. From these, per address, the intervals during which each node's
kernel had it. With the AliasIPs' ``status.activeNode`` over time that answers "was an
alias present in the kernel of a node that was not its holder, and for how long?".

Timestamps are those ``ip monitor`` prints when it reads the event (local wall clock,
microseconds): the kernel's change happened at most that much earlier, and every lab
witness shares the host's one clock.

Parsing and interval building are pure (``parse_monitor_line``, ``intervals``);
``KernelTruth`` runs the monitors.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

_LINE = re.compile(
    r"^\[(?P<ts>[0-9T:.-]+)\]\s+(?P<deleted>Deleted\s+)?\d+:\s+(?P<ifname>\S+)\s+"
    r"(?P<family>inet6?)\s+(?P<address>[0-9a-fA-F.:]+)/(?P<prefixlen>\d+)"
)
MAX_EVENTS = 200_000


@dataclass(frozen=True)
class AddressEvent:
    """An address appeared (``present``) or disappeared on a node's interface at ``at``."""

    at: float  # epoch seconds
    node: str
    ifname: str
    address: str  # without the prefix length
    present: bool


def parse_monitor_line(node: str, line: str) -> AddressEvent | None:
    """One line of ``ip -o -ts monitor address``; None for anything else."""
    match = _LINE.match(line.strip())
    if match is None:
        return None
    at = datetime.fromisoformat(match["ts"]).timestamp()  # local time, as ip prints it
    return AddressEvent(at, node, match["ifname"], match["address"], not match["deleted"])


@dataclass(frozen=True)
class Presence:
    """``node``'s kernel had ``address`` from ``since`` until ``until`` (None: still)."""

    node: str
    address: str
    since: float
    until: float | None

    def overlaps(self, start: float, end: float) -> bool:
        return self.since < end and (self.until is None or self.until > start)

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "address": self.address,
                "since": self.since, "until": self.until}  # fmt: skip


def intervals(
    initial: Mapping[str, Iterable[str]], started_at: float, events: Iterable[AddressEvent]
) -> list[Presence]:
    """Presence intervals from what each node had at ``started_at`` and the events since,
    in time order. An event that repeats the known state (the dump and the monitor can
    both report one change) changes nothing."""
    open_: dict[tuple[str, str], float] = {}
    for node, addresses in initial.items():
        for address in addresses:
            open_[(node, address)] = started_at
    closed: list[Presence] = []
    for event in sorted(events, key=lambda e: e.at):
        key = (event.node, event.address)
        if event.present and key not in open_:
            open_[key] = event.at
        elif not event.present and key in open_:
            closed.append(Presence(event.node, event.address, open_.pop(key), event.at))
    still = [Presence(node, address, since, None) for (node, address), since in open_.items()]
    return sorted([*closed, *still], key=lambda p: (p.since, p.node, p.address))


def bare(address: str) -> str:
    """``198.18.0.50/24`` -> ``198.18.0.50``; IPv6 compressed, as iproute2 prints it."""
    return ipaddress.ip_interface(address).ip.compressed


def dump(netns: str, ifname: str) -> list[str]:
    """The addresses on ``ifname`` in ``netns`` now (iproute2)."""
    out = subprocess.run(
        ["ip", "-n", netns, "-o", "addr", "show", "dev", ifname],
        capture_output=True, text=True, timeout=10,
    ).stdout  # fmt: skip
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


class KernelTruth:
    """Follows address events on ``ifname`` in every node namespace (``node -> netns``)
    from ``start()`` to ``stop()``; ``presences()`` at any time."""

    def __init__(self, nodes: Mapping[str, str], ifname: str = "eth1") -> None:
        self.nodes = dict(nodes)
        self.ifname = ifname
        self.started_at = 0.0
        self.initial: dict[str, list[str]] = {}
        self._events: list[AddressEvent] = []
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[str]] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> KernelTruth:
        for node, netns in self.nodes.items():
            argv = ["ip", "-n", netns, "-o", "-ts", "monitor", "address"]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, bufsize=1)
            self._procs.append(proc)
            thread = threading.Thread(target=self._follow, args=(node, proc), daemon=True)
            thread.start()
            self._threads.append(thread)
        time.sleep(0.1)  # let the monitors subscribe before the dump: no change falls between
        self.started_at = time.time()
        self.initial = {node: dump(netns, self.ifname) for node, netns in self.nodes.items()}
        return self

    def _follow(self, node: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            event = parse_monitor_line(node, line)
            if event is None or event.ifname.split(":")[0] != self.ifname:
                continue
            with self._lock:
                if len(self._events) < MAX_EVENTS:
                    self._events.append(event)

    def events(self) -> list[AddressEvent]:
        with self._lock:
            return list(self._events)

    def presences(self, addresses: Iterable[str] | None = None) -> list[Presence]:
        """Intervals so far; only those of ``addresses`` (without prefix) if given."""
        found = intervals(self.initial, self.started_at, self.events())
        if addresses is None:
            return found
        wanted = {bare(a) for a in addresses}
        return [p for p in found if p.address in wanted]

    def holders(self, address: str) -> list[str]:
        """The nodes whose kernel has ``address`` now, by the events seen so far."""
        return sorted(p.node for p in self.presences([address]) if p.until is None)

    def stop(self) -> list[Presence]:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
        for thread in self._threads:
            thread.join(timeout=2)
        return self.presences()

    def __enter__(self) -> KernelTruth:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
