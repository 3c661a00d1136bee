"""The agent's side of the monitoring path: what it tells its peers, what it learns.

One room of the agent (``daemon.Agent`` wires it), around ``monitor.Monitor`` (the
sockets and the heartbeats themselves). It owns:

- ``holding`` (uid -> epoch): what this node holds now, as the reconcile's last pass saw
  the kernel; the heartbeats tell each peer its share of it;
- ``service``: this node's stationary addresses that cover its candidate aliases, which
  the Lease renewal advertises in ``aliasip.io/monitor`` (``annotation``);
- the peers (``peers.plan_peers``) and the watched nodes, handed to the monitor after
  each pass (``follow``).

It decides one thing (R10): a peer heard holding one of our aliases at a higher epoch
makes this node yield it at once (``yield_to``, the agent's: it owns the kernel and the
fencing tokens). It carries the direct handoff's datagrams (R11, ``handoff``): ``tell``
sends an old holder's ``released`` to the named successor at once; a peer's
``released`` entries go to ``handed`` (the agent's handoff room). Everything here runs
on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path

from aliasip_api.lease import AgentLease
from aliasip_nodeagent.heartbeat import Heartbeat
from aliasip_nodeagent.hoststate import HostState, IPAddress, IPInterface
from aliasip_nodeagent.keyring import KeyFiles
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.monitor import Monitor
from aliasip_nodeagent.peers import (
    format_addresses,
    parse_addresses,
    plan_peers,
    reachable,
    service_addresses,
)
from aliasip_nodeagent.reconcile import Observed
from aliasip_nodeagent.report import Outcome

log = logging.getLogger("aliasip.agent")
YieldTo = Callable[[str, str, int], Coroutine[object, object, None]]
LeaseOf = Callable[[str], AgentLease | None]
Handed = Callable[[str, tuple[tuple[str, int], ...]], None]


class MonitoringPath:
    """Heartbeats for one agent, or nothing at all without keys (``monitor`` is None)."""

    def __init__(
        self,
        node: str,
        keys: str | None,
        *,
        port: int,
        interval_s: float,
        misses: int,
        yield_to: YieldTo,
        wake: Callable[[], None],
        handed: Handed = lambda _peer, _released: None,
        readied: Handed = lambda _peer, _ready: None,
    ) -> None:
        """``yield_to(peer, uid, epoch)``: delete our copy of that AliasIP now;
        ``wake``: a full pass (a watched node went silent); ``handed(peer, released)``:
        a peer let go of these ``(uid, epoch)`` (a direct handoff); ``readied(peer,
        ready)``: a named successor is ready to take these."""
        self.node = node
        self.port = port
        self._yield_to = yield_to
        self._handed = handed
        self._readied = readied
        self.holding: dict[str, int] = {}
        self.service: tuple[IPInterface, ...] = ()
        self.monitor: Monitor | None = None
        if keys:
            self.monitor = Monitor(
                node,
                KeyFiles(Path(keys)).refresh,
                port=port,
                interval_s=interval_s,
                misses=misses,
                on_beat=self.on_beat,
                on_silent=lambda _peer: wake(),
            )

    def start(self) -> bool:
        """Bind the heartbeat port; without it the agent runs on the Lease alone (said
        once: failover is slower and a late API reads like a silent holder)."""
        if self.monitor is None:
            log.warning(
                kv(
                    "heartbeats-off",
                    node=self.node,
                    note="no --heartbeat-keys: standbys watch holders through the API only",
                )
            )
            return False
        try:
            self.monitor.open()
        except OSError as exc:
            log.error(
                kv(
                    "heartbeats-off",
                    node=self.node,
                    port=self.port,
                    error=exc.strerror,
                    note="the heartbeat port cannot be bound: standbys watch through the API",
                )
            )
            self.monitor = None
            return False
        log.info(
            kv(
                "heartbeats-on",
                node=self.node,
                port=self.port,
                interval_s=self.monitor.interval_s,
                misses=self.monitor.misses,
            )
        )
        return True

    def close(self) -> None:
        if self.monitor is not None:
            self.monitor.close()

    def heard(self, node: str) -> bool | None:
        return self.monitor.heard(node) if self.monitor is not None else None

    def quiet_s(self, node: str) -> float | None:
        return self.monitor.quiet_s(node) if self.monitor is not None else None

    def annotation(self) -> str | None:
        if self.monitor is None:
            return None
        return format_addresses(self.service) or None

    def follow(
        self,
        observed: list[Observed],
        outcomes: Mapping[str, Outcome],
        kernel: HostState | None,
        lease_of: Callable[[str], AgentLease | None],
        watched: frozenset[str],
    ) -> None:
        """After a pass: what this node holds (as the kernel says), its service
        addresses, and so its peers, what each is told, and whom to watch."""
        if self.monitor is None:
            return
        self.holding = {
            obs.key: obs.status.epoch
            for obs in observed
            if obs.status.active_node == self.node
            and obs.name in outcomes
            and outcomes[obs.name].holds_any
        }
        if kernel is not None:
            self.service = service_addresses(observed, kernel)

        def advertised(peer: str) -> tuple[IPInterface, ...]:
            lease = lease_of(peer)
            return parse_addresses(lease.monitor if lease is not None else None)

        peers = plan_peers(self.node, observed, self.holding, self.service, advertised)
        self.monitor.set_peers(peers)
        self.monitor.set_watched(watched)

    def tell(
        self,
        to_node: str,
        lease_of: LeaseOf,
        *,
        released: tuple[tuple[str, int], ...] = (),
        ready: tuple[tuple[str, int], ...] = (),
    ) -> bool:
        """Tell ``to_node`` at once that this node let go of ``released``, or is ready to
        take ``ready`` (R11): to the address the heartbeats use, or else the first one its
        Lease advertises in a subnet of ours. False when it cannot be told (no monitoring
        path): the API path follows."""
        if self.monitor is None:
            return False
        return self.monitor.tell(to_node, self._targets(to_node, lease_of), released, ready)

    def reaches(self, node: str, lease_of: LeaseOf) -> bool:
        """Whether ``node`` can be told anything now: the path is on and ``node`` has an
        address in a subnet of ours (as a peer, or as its Lease advertises)."""
        return bool(self._targets(node, lease_of)) if self.monitor is not None else False

    def _targets(self, node: str, lease_of: LeaseOf) -> tuple[IPAddress, ...]:
        assert self.monitor is not None
        peer = self.monitor.peers.get(node)
        if peer is not None and peer.targets:
            return peer.targets
        lease = lease_of(node)
        return reachable(
            parse_addresses(lease.monitor if lease is not None else None), self.service
        )

    def arm(self, on: bool) -> None:
        """Read heartbeats as they come while a handoff is awaited (``Monitor.arm``)."""
        if self.monitor is not None:
            self.monitor.arm(asyncio.get_running_loop(), on)

    def on_beat(self, beat: Heartbeat) -> None:
        """A peer's heartbeat: if it holds one of our aliases at a higher epoch, the
        operator has moved it since (epochs only grow) and our copy must go now, API or
        not (R10): the partition that hid the move has just healed."""
        if beat.released:
            self._handed(beat.node, beat.released)
        if beat.ready:
            self._readied(beat.node, beat.ready)
        for key, epoch in beat.held:
            mine = self.holding.get(key)
            if mine is not None and epoch > mine:
                self.holding.pop(key, None)
                asyncio.get_running_loop().create_task(self._yield_to(beat.node, key, epoch))
