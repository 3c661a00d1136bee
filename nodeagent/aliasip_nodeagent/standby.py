"""A standby's watch of the nodes it stands by for: when to probe, what to report, when.

One room of the agent (``daemon.Agent`` wires it). For each AliasIP this node is a
candidate of, the node to watch is its holder, or the node releasing it during a move
(``watch.watched_holder``). While that node is heard on the monitoring path (its
heartbeats, ``monitor``) and its Lease is valid, nothing is probed and nothing is written,
however late the API delivers its renewals. Once its heartbeats are missed (or, for a node
the monitoring path does not cover, once its Lease renewal is overdue:
``silence.watch_from``), its addresses are probed every ``PROBE_EVERY_S``; once its Lease
lapsed, an answer is
reported at once (``holderHeard: true``: the agent alone died, nothing moves) and silence
only once it has lasted the expiry window (R9: by then a dead or frozen agent's aliases
have left its kernel), as ``holderHeard: false`` with ``observedAt``: the operator's
evidence for a failover.

State, all owned here and touched only on the event loop: the silent runs
(``silence.Silences``), one timer per watched node (its overdue moment, moved by each
renewal, so a healthy holder costs no pass at all) and one timer for the probing chain.
``watched`` is read by the Lease watch thread to filter its news: it is replaced whole,
never mutated, so the thread always sees one consistent set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from aliasip_api.lease import AgentLease
from aliasip_nodeagent import errors
from aliasip_nodeagent.dataplane import BatchAnnounce, Netlink, ProbeTarget
from aliasip_nodeagent.hoststate import HostState, IPAddress
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.placement import AliasRequest, Placement, decide_placement
from aliasip_nodeagent.reconcile import Observed, requests_for
from aliasip_nodeagent.report import Outcome
from aliasip_nodeagent.silence import PROBE_EVERY_S, Silences, holder_window_s, watch_from
from aliasip_nodeagent.watch import lease_lapsed, report_due, watched_holder

log = logging.getLogger("aliasip.agent")
# A pass for a holder whose Lease expires runs this long after the expiry (the operator
# counts an observation only at or after it).
EXPIRY_SLACK_S = 0.01
ReadLease = Callable[[str], Awaitable[tuple[bool, AgentLease | None]]]
IO = Callable[..., Awaitable[Any]]


class HolderWatch:
    """The standby side of one agent: probes lost holders, proves their silence."""

    def __init__(
        self,
        node: str,
        renew_interval_s: float,
        probe_wait_s: float,
        window_s: float,
        *,
        netlink: Netlink,
        announcer: BatchAnnounce,
        io: IO,
        dataplane: asyncio.Lock,
        read_lease: ReadLease,
        wake: Callable[[], None],
        now: Callable[[], datetime],
        heartbeat: Callable[[str], bool | None] = lambda _node: None,
        proved: Callable[[], None] = lambda: None,
        quiet_s: Callable[[str], float | None] = lambda _node: None,
        heartbeat_interval_s: float = 0.1,
    ) -> None:
        """``heartbeat(node)``: whether the monitoring path heard ``node`` lately (True),
        missed it (False), or does not cover it (None). ``proved``: called when the set of
        nodes proven silent (``silent_nodes``) changed: the agent writes it to its Lease
        at once, one write per observation. ``quiet_s(node)``: seconds since its last
        heartbeat was heard (None: never)."""
        self.node = node
        self._heartbeat = heartbeat
        self.renew_interval_s = renew_interval_s
        self.probe_wait_s = probe_wait_s
        self.silences = Silences(window_s)
        self.netlink = netlink
        self.announcer = announcer
        self._io = io
        self._dataplane = dataplane
        self._read_lease = read_lease
        self._wake = wake  # a pass that runs this watch
        self.now = now
        self.watched: frozenset[str] = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._node_wakes: dict[str, tuple[datetime, asyncio.TimerHandle]] = {}
        self._chain: tuple[datetime, asyncio.TimerHandle] | None = None
        # The pass's kernel snapshot.
        self._host: HostState | None = None
        # Nodes whose heartbeats are lost while their wire answers (``_path``), and since
        # when a node's heartbeats were missed while it answered.
        self._path_broken: set[str] = set()
        self._missed_since: dict[str, datetime] = {}
        # Evidence per node (docs/design.md): each node whose heartbeats are missed and
        # whose wire stayed silent for its dead-man window, since its first silent probe.
        self.silent_nodes: dict[str, datetime] = {}
        self._proved = proved
        self._quiet_s = quiet_s
        self.heartbeat_interval_s = heartbeat_interval_s

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def watch(
        self,
        observed: list[Observed],
        outcomes: dict[str, Outcome],
        host: HostState | None = None,
    ) -> dict[str, Outcome]:
        """One full pass's watch: probe where due, return ``outcomes`` with what to report
        (one Lease read per watched node per pass). ``host``: the pass's kernel snapshot
        (None: each probe reads the kernel). Every AliasIP due is probed in one batch, one
        wait for all (``probe_many``); silence is proven per AliasIP."""
        leases: dict[str, tuple[bool, AgentLease | None]] = {}
        self._host = host
        keys = {(obs.name, h) for obs in observed if (h := watched_holder(self.node, obs))}
        self.watched = frozenset(holder for _, holder in keys)
        self.silences.keep_only(keys)
        for gone in [n for n in self.silent_nodes if n not in self.watched]:
            self._unprove(gone)
        due: list[tuple[Observed, str, AgentLease | None, bool]] = []
        for obs in observed:
            holder = watched_holder(self.node, obs)
            if holder is None or obs.spec is None:
                continue
            if holder not in leases:
                leases[holder] = await self._read_lease(holder)
            known, lease = leases[holder]
            if not known:
                continue
            lapsed = lease_lapsed(lease, holder, self.now())
            if not self._quiet(obs, holder, lease, lapsed):
                due.append((obs, holder, lease, lapsed))
        if not due:
            return outcomes
        # One wire probe for every AliasIP due, one wait: probing a lost node's 20
        # aliases one after the other (30 ms each) held up the pass that takes them over.
        asked = [(requests_for(obs.spec), holder) for obs, holder, _, _ in due if obs.spec]
        async with self._dataplane:
            heard_all = await self._io(self.probe_many, asked)
        observed_at = self.now()
        for (obs, holder, lease, lapsed), heard in zip(due, heard_all, strict=True):
            outcome = self._probed(obs, holder, lease, lapsed, heard, observed_at)
            if outcome is not None:
                base = outcomes.get(obs.name, Outcome())
                outcomes[obs.name] = replace(base, **outcome)
        return outcomes

    def _quiet(self, obs: Observed, holder: str, lease: AgentLease | None, lapsed: bool) -> bool:
        """Whether ``holder`` needs no probe for ``obs`` now: its Lease is valid and it is
        heard on the monitoring path (or, not covered by it, its renewal is not overdue)."""
        if lapsed:
            return False
        heard = self._path(holder)
        if heard is None:  # not covered by the monitoring path: the Lease tells
            start = watch_from(lease, self.renew_interval_s)
            quiet = start is not None and self.now() < start
        else:
            quiet = heard
        if quiet:
            self.silences.forget((obs.name, holder))
            self.lease_changed(holder, lease)  # wake when it is due, unless renewed
        return quiet

    def _probed(
        self,
        obs: Observed,
        holder: str,
        lease: AgentLease | None,
        lapsed: bool,
        heard: bool | None,
        observed_at: datetime,
    ) -> dict[str, Any] | None:
        """What to report for ``obs`` about ``holder`` after its probe (``heard``), or
        None (nothing new)."""
        key = (obs.name, holder)
        handover = lease.handover_until if lease is not None else None
        if heard is None:
            self.silences.forget(key)
            return None  # this node cannot look (its own link is down ...): say nothing
        if heard:
            self.silences.forget(key)
            self._unprove(holder)
            self._answered_while_missed(holder)
        elif self.silences.silent(key, observed_at) == observed_at:
            proven = self.silences.proven_at(key, handover, self._window(lease))
            self._log_silent(obs.name, holder, observed_at, proven)
        if not heard:
            self._maybe_prove(key, holder, lease, observed_at)
        next_probe = observed_at + timedelta(seconds=PROBE_EVERY_S)
        if not lapsed:
            expires = lease.expires_at if lease is not None else None
            slack = timedelta(seconds=EXPIRY_SLACK_S)
            self._wake_at(min(next_probe, expires + slack) if expires else next_probe)
            return None
        if not heard:
            proven = self.silences.proven_at(key, handover, self._window(lease))
            if proven is not None and observed_at < proven:
                self._wake_at(min(proven, next_probe))
                return None
        if not report_due(obs.view_of(self.node), heard, lease):
            return None
        log.info(kv("holder-probed", node=self.node, aliasip=obs.name, holder=holder, heard=heard))
        return {"heard": heard, "observed_at": observed_at, "fresh": True}

    def _maybe_prove(
        self, key: tuple[str, str], holder: str, lease: AgentLease | None, at: datetime
    ) -> None:
        """Evidence per node: ``holder``'s heartbeats are missed and its wire is silent (a
        run of silent probes, the one at ``at`` included) past its dead-man window counted
        from the heartbeat it would have sent after the last one heard: an agent that stopped
        then refreshed its mute last before that, so its kernel is mute by now; one that
        lives answers the probe (or sits behind a LAN partition, where R10 and the claim
        listener end it when the LAN heals). The node is silent since the first silent
        probe, told once (not once per AliasIP) through this agent's Lease."""
        if holder in self.silent_nodes or self._path(holder) is not False:
            return
        since = self.silences.first(key)
        quiet = self._quiet_s(holder)
        if since is None or quiet is None or (lease is not None and lease.handover_until):
            return  # never heard, or handed over (its kernel may keep it till then)
        window = timedelta(seconds=self._window(lease) + self.heartbeat_interval_s)
        proven = max(since, self.now() - timedelta(seconds=quiet) + window)
        if at < proven:
            self._wake_at(proven)
            return
        self.silent_nodes[holder] = since
        log.info(
            kv(
                "node-silent",
                node=self.node,
                peer=holder,
                since=since.isoformat(timespec="milliseconds"),
                note="heartbeats missed and its wire silent for its dead-man window: "
                "reported once, for every AliasIP it holds",
            )
        )
        self._proved()

    def _unprove(self, holder: str) -> None:
        """``holder`` answered, was heard, or is no longer watched: no evidence any more."""
        if self.silent_nodes.pop(holder, None) is not None:
            log.info(kv("node-claim-withdrawn", node=self.node, peer=holder))
            self._proved()

    def silent_lately(self, aliasip: str, holder: str) -> float | None:
        """Seconds since this node's last probe found ``holder`` silent for ``aliasip``, if
        that was within ``PROBE_EVERY_S`` (the cadence at which a run of silent probes
        counts as one silence); else None."""
        last = self.silences.last((aliasip, holder))
        if last is None:
            return None
        age = (self.now() - last).total_seconds()
        return age if 0 <= age <= PROBE_EVERY_S else None

    def _window(self, lease: AgentLease | None) -> float:
        return holder_window_s(lease, self.silences.window_s)

    def _log_silent(
        self, aliasip: str, holder: str, since: datetime, proven: datetime | None
    ) -> None:
        log.info(
            kv(
                "holder-silent",
                node=self.node,
                aliasip=aliasip,
                holder=holder,
                since=since.isoformat(timespec="milliseconds"),
                evidence_at=proven.isoformat(timespec="milliseconds") if proven else None,
                note="silence counts once it outlasts the holder's dead-man window",
            )
        )

    def lease_changed(self, holder: str, lease: AgentLease | None) -> None:
        """A watched node's Lease, as now known: a pass at the moment its renewal will be
        overdue (its silence watch starts; at its lapse for a node heard on the monitoring
        path), or at once if it vouches for nobody. Each renewal moves the timer, so a
        holder renewing on time wakes nothing."""
        if lease_lapsed(lease, holder, self.now()):
            self._wake()
            return
        if self._path(holder) is None:
            when = watch_from(lease, self.renew_interval_s)
        else:
            # Heard on the monitoring path: its heartbeats' silence wakes a pass
            # (``monitor``), a late renewal does not; the Lease's lapse still does.
            expires = lease.expires_at if lease is not None else None
            when = expires + timedelta(seconds=EXPIRY_SLACK_S) if expires else None
        if when is None or self._loop is None:
            return
        known = self._node_wakes.get(holder)
        if known is not None and known[0] == when:
            return  # already set for this renewal
        if known is not None:
            known[1].cancel()
        delay = max((when - self.now()).total_seconds(), 0.0)
        self._node_wakes[holder] = (when, self._loop.call_later(delay, self._wake))

    def _path(self, holder: str) -> bool | None:
        """What the monitoring path says of ``holder``: heard (True), missed (False), or
        nothing to go by (None: not covered, or its heartbeats are lost while its wire
        answers, so they are no sign of life or death: the Lease is watched instead until
        they come back)."""
        heard = self._heartbeat(holder)
        if heard is True:
            self._path_broken.discard(holder)
            self._missed_since.pop(holder, None)
            self._unprove(holder)
        if heard is False and holder in self._path_broken:
            return None
        return heard

    def _answered_while_missed(self, holder: str) -> None:
        """The holder answered on the wire while its heartbeats were missed. Within the
        dead-man window that may be a dead agent's kernel, not yet expired; after it, its
        agent renews: the path to it is broken (a firewall closed to UDP 7947, a key it
        lacks), not the node. Said once; probing it every ``PROBE_EVERY_S`` for as long
        would be a probe storm."""
        if self._heartbeat(holder) is not False or holder in self._path_broken:
            return
        now = self.now()
        since = self._missed_since.setdefault(holder, now)
        if (now - since).total_seconds() < self.silences.window_s:
            return
        self._path_broken.add(holder)
        log.warning(
            kv(
                "heartbeats-lost",
                node=self.node,
                peer=holder,
                note="its heartbeats are missed but it answers on the wire: the monitoring "
                "path to it is broken (UDP 7947 blocked? its key?); watching its Lease instead",
            )
        )

    def _wake_at(self, when: datetime) -> None:
        """The probing chain's next pass: one timer, the earliest asked for (the pass it
        wakes asks again for whatever comes next)."""
        if self._loop is None:
            return
        if self._chain is not None:
            at, handle = self._chain
            if at <= when and not handle.cancelled():
                return
            handle.cancel()
        delay = max((when - self.now()).total_seconds(), 0.0)
        self._chain = (when, self._loop.call_later(delay, self._chain_woken))

    def _chain_woken(self) -> None:
        self._chain = None
        self._wake()

    def probe_many(self, asked: list[tuple[tuple[AliasRequest, ...], str]]) -> list[bool | None]:
        """On the data-path thread: for each (addresses of one AliasIP, its holder),
        whether anyone answers for any of its addresses, all probed together in one wait
        (each AliasIP by its own addresses: with one wait for all, the old shortcut of
        taking a holder heard on a subnet as heard for its other AliasIPs saves nothing).

        None for one this node cannot probe (an address with no covering interface, a link
        down, held here): silence heard through a dead link is no evidence.
        """
        placed: list[tuple[list[Placement], bool]] = []  # placed in order; then a refusal?
        for requests, _holder in asked:
            found: list[Placement] = []
            failed = False
            for request in requests:
                try:
                    snapshot = self._host or self.netlink.snapshot(
                        request.ip.version, request.interface
                    )
                    placement = decide_placement(request, snapshot)
                except errors.AliasError:
                    failed = True
                    break
                if placement.already_held:
                    failed = True
                    break
                found.append(placement)
            placed.append((found, failed))
        targets: dict[IPAddress, ProbeTarget] = {}
        for found, _failed in placed:
            for p in found:
                targets.setdefault(p.address.ip, (p.interface, p.mac, p.address.ip))
        answered = (
            self.announcer.probe_many(list(targets.values()), self.probe_wait_s) if targets else {}
        )
        results: list[bool | None] = []
        for found, failed in placed:
            alive = any(p.address.ip in answered for p in found)
            results.append(True if alive else None if failed else False)
        return results
