"""``aliasip-agent run``: the long-running node agent, one asyncio loop, in rooms.

``Agent`` wires the rooms and owns the AliasIP view and the reconcile pass. Each room owns
its state, is touched on the event loop only (the watch threads hand over with
``call_soon_threadsafe``) and is testable in-process with fakes:

- **liveness** (``liveness.Liveness``): the agent's Lease, the cut-off state (acts on
  nothing new while cut off, keeps what it holds, probes the wire every second for
  another holder) and the handover write of a graceful stop;
- **leases** (``leasestore.LeaseStore``): the agents' Leases, watched;
- **holders** (``standby.HolderWatch``): the standby's side: probes a watched node whose
  renewal is overdue, reports an answer once its Lease lapsed and silence once it outlasted
  the expiry window (``silence``);
- **deadman** (``deadman.DeadMan``): renews the kernel lifetime of every held alias four
  times per lifetime, API or not; a dead or frozen agent's aliases expire (R9);
- **carrier** (``carrier.CarrierWatch``): carrier loss deletes held aliases at once (R2);
- **claims** (``claimwatch.ClaimWatch``): foreign claims heard, reported, defended (R6);
- **announcements** (``announcing.Announcements``): every frame gated by holding (R5);
- **retries** (``retries.HoldRetries``) with ``refusals``: refused holds back off (R4);
- **monitoring** (``monitoring.MonitoringPath`` around ``monitor.Monitor``, with
  ``peers``): heartbeats to and from the nodes that share AliasIPs, over the service LAN:
  missed heartbeats start the standby's probe (not a late Lease renewal), and a peer heard
  holding one of our aliases at a higher epoch makes this node yield it at once (R10,
  ``_yield_to``). Off without ``heartbeat_keys``.

The agent itself:

- **watch** (a daemon thread: the client blocks): lists AliasIPs, then watches from the
  list's resourceVersion, resumes after a broken stream, relists after 410 Gone; every
  change that concerns this node wakes the reconcile task;
- **reconcile**: the only task that changes the kernel (carrier loss, a foreign claim's
  cease and the cut-off guard aside). It plans with ``reconcile.plan`` (pure), reads each
  AliasIP afresh before it adds (R1; a few reads at once), applies releases, then the holds
  as one batch through ``dataplane.apply_batch`` (one wire probe for all, one wait),
  has ``announcing`` send the remaining announcement rounds, and reports
  ``status.nodes.<node>`` with a merge patch of its own key only when the view changed;
- **resync**: a full pass every ``resync_interval_s``: re-adds a missing alias, re-checks
  the links and the standby's holders.

SIGTERM/SIGINT stop the loop *without* releasing anything: a restarted agent (DaemonSet
roll-out) is not a failover. The Lease announces a handover first, then the aliases get
its length as their lifetime; the next agent adopts its marked addresses without a blip.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from aliasip_api.lease import (
    MONITOR_ANNOTATION,
    MUTE_ANNOTATION,
    SILENT_ANNOTATION,
    agent_lease_name,
    format_silent,
)
from aliasip_api.status import NodeView
from aliasip_api.succession import Succession, succession
from aliasip_nodeagent import errors
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.carrier import CarrierWatch
from aliasip_nodeagent.claimwatch import ClaimWatch
from aliasip_nodeagent.dataplane import (
    AgentNetlink,
    ApplyResult,
    BatchAnnounce,
    BatchItem,
    apply_batch,
)
from aliasip_nodeagent.deadman import DeadMan, expiry_window_s
from aliasip_nodeagent.handoff import Handoffs
from aliasip_nodeagent.heartbeat import DEFAULT_INTERVAL_S, DEFAULT_MISSES, DEFAULT_PORT
from aliasip_nodeagent.hoststate import HeldAlias, HostState
from aliasip_nodeagent.informer import watch_loop
from aliasip_nodeagent.kube import ApiError, ApiUnavailable, KubeApi, StreamRestart, newer
from aliasip_nodeagent.leasestore import LeaseStore
from aliasip_nodeagent.liveness import Liveness
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.monitoring import MonitoringPath
from aliasip_nodeagent.mute import MIN_WINDOW_MS, KernelMute
from aliasip_nodeagent.placement import AliasRequest, decide_placement
from aliasip_nodeagent.reconcile import (
    Hold,
    Observed,
    matches,
    moved_from,
    observe,
    plan,
    released_before,
    requests_for,
)
from aliasip_nodeagent.refusals import Refusals, describe, precheck
from aliasip_nodeagent.relevance import concerns, held_texts
from aliasip_nodeagent.report import Outcome, needs_write, patch_body, view_for
from aliasip_nodeagent.retries import HoldRetries
from aliasip_nodeagent.standby import HolderWatch

log = logging.getLogger("aliasip.agent")
T = TypeVar("T")
FRESH_READS = 4  # fresh reads (R1) of one pass in flight at once
REPORTS = 4  # status reports of one pass in flight at once


@dataclass(frozen=True)
class Settings:
    node: str
    lease_namespace: str = "aliasip-system"
    lease_duration_s: int = 3
    renew_interval_s: float = 1.0
    fence_margin_s: float = 0.5
    resync_interval_s: float = 5.0
    probe_wait_s: float = 0.03
    watch_timeout_s: int = 60
    announce_refresh_s: float = 30.0
    # The dead-man switch (docs/design.md R9): the kernel lifetime of every alias added,
    # renewed four times per lifetime; and how long a graceful stop lets them live on.
    address_lifetime_s: int = 1
    handover_s: int = 15
    # The fine dead-man switch (``mute``): how long a dead or frozen agent's aliases keep
    # answering. None: heartbeat interval x (misses - 1), at least 50 ms (200 ms as
    # shipped); 0: off (the lifetime alone).
    mute_window_ms: int | None = None
    # The monitoring path (docs/design.md): the key directory (a mounted Secret; None:
    # off), the UDP port, how often a heartbeat goes to each peer, how many may be missed.
    heartbeat_keys: str | None = None
    heartbeat_port: int = DEFAULT_PORT
    heartbeat_interval_s: float = DEFAULT_INTERVAL_S
    heartbeat_misses: int = DEFAULT_MISSES

    def __post_init__(self) -> None:
        if self.renew_interval_s < 1.0:
            raise ValueError("the Lease is renewed at most once a second (API-write budget)")
        if self.lease_duration_s - self.fence_margin_s <= self.renew_interval_s:
            raise ValueError("the Lease must outlast a renewal interval plus the fence margin")
        if self.announce_refresh_s < 1.0:
            raise ValueError("held aliases are re-announced at most once a second")
        if self.address_lifetime_s < 1:
            raise ValueError("the address lifetime is a whole number of seconds, at least 1")
        if self.handover_s < 0:
            raise ValueError("the handover is a number of seconds, 0 (none) or more")
        if not 1 <= self.heartbeat_port <= 65535:
            raise ValueError("the heartbeat port is a UDP port, 1-65535")
        if not 0.01 <= self.heartbeat_interval_s <= 10:
            raise ValueError("the heartbeat interval is between 0.01 and 10 seconds")
        if self.heartbeat_misses < 1:
            raise ValueError("at least one heartbeat must be missed before a node is silent")
        if self.mute_window_ms is not None and 0 < self.mute_window_ms < MIN_WINDOW_MS:
            raise ValueError(f"the mute window is 0 (off) or at least {MIN_WINDOW_MS} ms")

    @property
    def mute_ms(self) -> int:
        """The mute window in force (0: off)."""
        if self.mute_window_ms is not None:
            return self.mute_window_ms
        derived = round(self.heartbeat_interval_s * (self.heartbeat_misses - 1) * 1000)
        return max(MIN_WINDOW_MS, derived)

    @property
    def lease_name(self) -> str:
        return agent_lease_name(self.node)


class Agent:
    """The daemon's state and tasks; ``run(stop)`` returns when ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        netlink: AgentNetlink,
        announcer: BatchAnnounce,
        dataplane: Executor,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        mute: KernelMute | None = None,
    ) -> None:
        """``mute``: the fine dead-man switch (the same one ``netlink`` tells of every add
        and delete), or None where nftables is not available: the lifetime alone."""
        self.settings = settings
        self.mute = mute
        self.kube = kube
        self.netlink = netlink
        self.announcer = announcer
        self.now = now
        self._executor = dataplane
        self.objects: dict[str, dict[str, Any]] = {}
        self._observed: dict[str, Observed] = {}
        self._held: frozenset[str] = frozenset()  # held addresses, as text (relevance)
        # The agents' Leases by node as the watch delivers them (written by its thread,
        # parsed only when read: most belong to holders this node does not watch).
        self._kernel: HostState | None = None  # the last kernel snapshot, while still true
        # The dead-man switch (this node's aliases live only while we renew them) and the
        # standby's side of it (a holder is silent only once that has lasted the window).
        self._dataplane = asyncio.Lock()
        self.deadman = DeadMan(
            settings.node,
            netlink,
            self._io,
            settings.address_lifetime_s,
            fewer=self._kernel_changed_full,
            mute=mute,
            dataplane=self._dataplane,
        )
        self.synced = False
        self._watch_breaks = 0  # AliasIP watch streams broken so far (a relist follows)
        # The open AliasIP and Lease watch streams, ended on unfence to be reopened fresh.
        self._streams = {"aliasips": StreamRestart(), "leases": StreamRestart()}
        self.newest: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._full_pass = True
        self._watch_pass = False
        self.leases = LeaseStore(
            settings.node,
            settings.lease_namespace,
            kube,
            watched=lambda: self.holders.watched,
            changed=lambda holder, lease: self.holders.lease_changed(holder, lease),
        )
        self.holders = HolderWatch(
            settings.node,
            settings.renew_interval_s,
            settings.probe_wait_s,
            expiry_window_s(settings.address_lifetime_s),
            netlink=netlink,
            announcer=announcer,
            io=self._io,
            dataplane=self._dataplane,
            read_lease=lambda holder: self.leases.read(holder),
            wake=lambda: self.wake(watch=True),
            now=now,
            heartbeat=lambda node: self.monitoring.heard(node),
            proved=lambda: self.liveness.renew_soon(),
            quiet_s=lambda node: self.monitoring.quiet_s(node),
            heartbeat_interval_s=settings.heartbeat_interval_s,
        )
        # The monitoring path: heartbeats to and from the peers (off without keys).
        self.monitoring = MonitoringPath(
            settings.node,
            settings.heartbeat_keys,
            port=settings.heartbeat_port,
            interval_s=settings.heartbeat_interval_s,
            misses=settings.heartbeat_misses,
            yield_to=self._yield_to,
            wake=lambda: self.wake(watch=True),
            handed=self._handed,
            readied=self._readied,
        )
        # The direct handoff of planned moves, both ends (R11).
        self.handoffs = Handoffs(settings.node)
        # Every announcement round, keyed by address and gated by holding (announcing);
        # refused holds back off (retries); foreign claims are heard and answered (claims).
        self.announcements = Announcements(
            announcer, dataplane, settings.node, **({"vouched": mute.vouched} if mute else {})
        )
        self.retries = HoldRetries(self.wake)
        self.liveness = Liveness(
            settings,
            kube,
            netlink=netlink,
            announcer=announcer,
            announcements=self.announcements,
            io=self._io,
            dataplane=self._dataplane,
            now=now,
            acquired=lambda: self.wake(full=True),
            resume=self._resume,
            kernel_changed=self._forget_kernel,
            watch_breaks=lambda: self._watch_breaks,
            annotations=self._lease_annotations,
            reconnected=self._restart_watches,
        )
        self.claims = ClaimWatch(
            settings.node,
            self.announcements,
            self.retries,
            netlink,
            dataplane,
            self._dataplane,
            changed=self._kernel_changed,
            fenced=lambda: self.fenced,
            now=now,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = threading.Event()
        # The epoch at which this agent last added each AliasIP's addresses (by uid): an
        # add at an epoch it already held (and lost since: carrier, a delete behind its
        # back) always probes the wire first, whatever the status says about a release.
        self._added_at: dict[str, int] = {}
        # The release steps naming this node successor that a read has confirmed, by uid:
        # (epoch, generation) (R1 for a direct handoff, done ahead: ``_read_ahead_...``).
        self._read_ahead: dict[str, tuple[int, int | None]] = {}
        self._reading: dict[str, asyncio.Task[None]] = {}
        # AliasIPs whose release this pass left for a moment (their successor not ready).
        self._deferred: set[str] = set()
        self._refusals = Refusals()
        self.carrier = CarrierWatch(
            settings.node,
            netlink,
            self._io,
            self._dataplane,
            self.announcements,
            changed=self._kernel_changed_full,
            on_back=self._link_back,
            fenced=lambda: self.fenced,
        )

    # ------------------------------------------------------------------ run

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self.holders.start(self._loop)
        log.info(kv("start", node=self.settings.node, lease=self.settings.lease_name))
        for target, name in ((self._watch_thread, "watch"), (self._lease_thread, "leases")):
            threading.Thread(target=target, name=name, daemon=True).start()
        self.carrier.start()
        monitoring = self.monitoring.start()
        # Adopted aliases (a previous agent's, maybe handed over with a long lifetime) get
        # this agent's lifetime and mute window before anything else happens; one the
        # previous agent let go mute is deleted, never revived.
        await self.deadman.adopt()
        await self.deadman.renew()
        self.deadman.start_muting(self._loop)
        tasks = [
            asyncio.create_task(self.deadman.run(), name="deadman"),
            asyncio.create_task(self.liveness.run_lease(), name="lease"),
            asyncio.create_task(self.liveness.run_fence(), name="fence"),
            asyncio.create_task(self._reconcile_task(), name="reconcile"),
            asyncio.create_task(self._resync_task(), name="resync"),
        ]
        if monitoring and self.monitoring.monitor is not None:
            tasks.append(asyncio.create_task(self.monitoring.monitor.run(), name="monitor"))
        try:
            await stop.wait()
        finally:
            self._stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.carrier.close()
            self.monitoring.close()
            self.claims.close()
            await self.announcements.close()
            # Deliberately no release: a stopped agent is not a failover (docs/design.md);
            # the aliases live on for the handover, announced in the Lease first (R9).
            handed = await self.deadman.hand_over(
                self.now, self.settings.handover_s, self.liveness.write_handover
            )
            self.deadman.stop_muting()  # not handed over: they mute within the window
            note = "aliases handed over to the next agent" if handed else "aliases expire"
            log.info(kv("stop", node=self.settings.node, note=note))

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a data-path call on the data-path thread.

        pyroute2's synchronous API runs an event loop of its own, which cannot run inside
        ours; one dedicated thread also serialises every netlink and packet call.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def wake(self, full: bool = False, watch: bool = False) -> None:
        """A pass: ``full`` reads the kernel again and re-checks everything (resync, link
        and kernel changes); ``watch`` runs the standby's watch of its holders on the last
        snapshot (its timers, a holder's silence): a full pass four times a second per
        silent holder was most of a starved agent's CPU at 50 nodes."""
        self._full_pass = self._full_pass or full
        self._watch_pass = self._watch_pass or watch
        self._wake.set()

    @property
    def fenced(self) -> bool:
        """Cut off from the API (``liveness``): act on nothing new."""
        return self.liveness.fenced

    def _lease_annotations(self) -> dict[str, str]:
        """Written with every renewal: where this agent hears heartbeats, how long its
        aliases may answer after it stops (standbys wait that long: R9), and the nodes it
        proved silent (evidence per node: the operator moves all their AliasIPs)."""
        found = {}
        monitor = self.monitoring.annotation()
        if monitor:
            found[MONITOR_ANNOTATION] = monitor
        if self.mute is not None:
            found[MUTE_ANNOTATION] = str(self.mute.window_ms)
        if self.holders.silent_nodes:
            found[SILENT_ANNOTATION] = format_silent(self.holders.silent_nodes)
        return found

    def _forget_kernel(self) -> None:
        """The kernel changed behind the reconcile's back: the next pass reads it."""
        self._kernel = None

    def _kernel_changed(self) -> None:
        """Changed behind the reconcile's back (a claim ceased): read the kernel, pass."""
        self._kernel = None
        self.wake()

    def _kernel_changed_full(self) -> None:
        """Aliases deleted with their carrier: read the kernel, a full pass reports it."""
        self._kernel = None
        self.wake(full=True)

    def _link_back(self) -> None:
        """A link serves again: every refusal is tried again now, not in up to 30 s."""
        self._refusals.forget()
        self.wake(full=True)

    # ------------------------------------------------------------------ resume after a cut-off

    async def _resume(self) -> bool:
        """The API answers again after a cut-off (``liveness``): True once this agent's
        view may be acted on. If the AliasIP watch never broke meanwhile, what it delivered
        is complete (late, in order, as any watch): act on it, after reading afresh the
        AliasIPs that concern this node. Otherwise relist first. Relisting on every unfence
        made a short API stall at 50 nodes x 1,000 AliasIPs end in 50 lists of 1,000
        objects at once, which stalled the API server again (bench/scale.py).

        Either way both watch streams were reopened just before (``_restart_watches``):
        one that outlived the cut is late by TCP's retransmission back-off, and would
        deliver a change made after this re-read seconds late too (chaos seed 2 of
        session 6: a release 2.02 s late).
        """
        if self.synced and self._watch_breaks == self.liveness.breaks_at_cut_off:
            # Intact, but possibly late: a stream stalled by a partition resumes at TCP's
            # next retransmission, seconds after the heal (chaos seed 3: a release asked
            # meanwhile waited 2 s and more). The AliasIPs that concern this node are read
            # afresh now, one GET each: a handful, not a relist of every object.
            if not await self._read_concerned_afresh():
                return False
            log.info(
                kv("unfenced", node=self.settings.node, note="Lease renewed, concerned re-read")
            )
            self.wake(full=True)
            return True
        try:
            listing = await asyncio.to_thread(self.kube.list_aliasips)
        except (ApiUnavailable, ApiError) as exc:
            log.warning(kv("relist-failed", node=self.settings.node, error=exc))
            return False
        self._replace_all(listing.items)
        log.info(kv("unfenced", node=self.settings.node, note="Lease renewed, state re-read"))
        self.wake(full=True)
        return True

    def _restart_watches(self) -> None:
        """The API answers again after a failed renewal (``liveness``), cut off or not:
        end the open watch streams; their threads reopen them from the last
        resourceVersion on new connections (``kube.StreamRestart``). A stream that
        outlived a cut is late by up to about as long as the cut lasted."""
        ended = [what for what, stream in self._streams.items() if stream.ask()]
        if ended:
            log.info(kv("watch-restarted", node=self.settings.node, watches=",".join(ended)))

    async def _read_concerned_afresh(self) -> bool:
        """GET every AliasIP that concerned this node at its last pass; keep each answer
        that is newer than the watch's copy, and forget one that no longer exists (its
        addresses are then released as wanted by nobody). False if the API failed."""
        for name in sorted(self._observed):
            try:
                body = await asyncio.to_thread(self.kube.get_aliasip, name)
            except (ApiUnavailable, ApiError) as exc:
                log.warning(kv("reread-failed", node=self.settings.node, aliasip=name, error=exc))
                return False
            if body is None:
                self.objects.pop(name, None)
            elif newer(body, self.objects.get(name)):
                self.objects[name] = body
        return True

    # ------------------------------------------------------------------ watch

    def _watch_thread(self) -> None:
        watch_loop(
            self.settings.node,
            self._loop,
            self._stopping,
            self.settings.watch_timeout_s,
            "aliasips",
            self.kube.list_aliasips,
            lambda rv, timeout_s: self.kube.watch_aliasips(
                rv, timeout_s, self._streams["aliasips"]
            ),
            self._replace_all,
            self._apply_event,
            broken=self._aliasip_watch_broken,
        )

    def _aliasip_watch_broken(self) -> None:
        self._watch_breaks += 1

    def _lease_thread(self) -> None:
        """The agents' Leases, watched into ``self.leases`` (``leasestore``)."""
        namespace = self.settings.lease_namespace

        def watch(rv: str, timeout_s: int) -> Iterator[dict[str, Any]]:
            return self.kube.watch_leases(namespace, rv, timeout_s, self._streams["leases"])

        watch_loop(
            self.settings.node,
            self._loop,
            self._stopping,
            self.settings.watch_timeout_s,
            "leases",
            lambda: self.kube.list_leases(namespace),
            watch,
            self.leases.listed,
            self.leases.news,
            broken=self.leases.broken,
            first=self.leases.seen,
        )

    def _replace_all(self, items: tuple[dict[str, Any], ...]) -> None:
        fresh = {str(o["metadata"]["name"]): o for o in items}
        self.objects = {
            n: (o if newer(o, self.objects.get(n)) else self.objects[n]) for n, o in fresh.items()
        }
        if not self.synced:
            log.info(kv("synced", node=self.settings.node, aliasips=len(self.objects)))
        self.synced = True
        self.wake(full=True)

    def _apply_event(self, kind: str | None, obj: dict[str, Any]) -> None:
        """Keep the newest version; wake the reconcile only for an AliasIP that concerns
        this node, before or after the change (``relevance``): at 1,000 AliasIPs the other
        nodes' events are almost all of them."""
        name = str((obj.get("metadata") or {}).get("name", ""))
        self.announcements.on_event(self.settings.node, kind, obj)  # stops rounds at once
        before = self.objects.get(name)
        if kind == "DELETED":
            self.objects.pop(name, None)
        elif newer(obj, before):
            self.objects[name] = obj
        else:
            return
        if self._concerns(before) or self._concerns(obj):
            self.wake()

    def _concerns(self, obj: Mapping[str, Any] | None) -> bool:
        return concerns(self.settings.node, obj, self._held)

    # ------------------------------------------------------------------ reconcile

    async def _resync_task(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval_s)
            self.wake(full=True)

    async def _reconcile_task(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            full, self._full_pass = self._full_pass, False
            watch, self._watch_pass = self._watch_pass or full, False
            if not self.synced or self.fenced or self.liveness.renewed_at is None:
                continue  # act only on a fresh list, and only with a Lease of our own
            try:
                async with self._dataplane:
                    outcomes, observed = await self._apply(full)
                if watch:
                    outcomes = await self.holders.watch(observed, outcomes, self._kernel)
                advertised = self.monitoring.annotation()
                self.monitoring.follow(
                    observed, outcomes, self._kernel, self.leases.lease, self.holders.watched
                )
                if self.monitoring.annotation() != advertised:
                    # Where peers reach this node changed (an AliasIP newly concerns it):
                    # told now, not at the next renewal, so a switchover to this node
                    # right after can be handed off directly (R11 asks the old holder to
                    # reach it); one extra Lease write per change.
                    self.liveness.renew_soon()
                await self._report(observed, outcomes)
            except Exception as exc:  # one bad pass must not end the agent
                log.exception(kv("reconcile-failed", node=self.settings.node, error=exc))

    def _observe_concerned(self) -> list[Observed]:
        """The AliasIPs that concern this node (``relevance``), each parsed once per
        resourceVersion, not once per pass: parsing validates against the CRD's schema
        (about 1-2 ms an object), and at 1,000 AliasIPs parsing them all on every watch
        event and resync took the agent's whole core."""
        fresh: dict[str, Observed] = {}
        for name, obj in self.objects.items():
            if not self._concerns(obj):
                continue
            metadata = obj.get("metadata") or {}
            rv, uid = metadata.get("resourceVersion"), metadata.get("uid")
            known = self._observed.get(name)
            same = (
                known is not None
                and rv is not None
                and known.resource_version == str(rv)
                and known.key == str(uid or name)
            )
            fresh[name] = known if same and known is not None else observe(obj)
        self._observed = fresh
        return list(fresh.values())

    async def _snapshot(self, fresh: bool) -> HostState:
        """The kernel's addresses and links. A pass woken by a watch event reuses the last
        snapshot while this agent has changed nothing since: a dump through pyroute2 costs
        milliseconds, and at 1,000 AliasIPs every agent wakes for dozens of events in a
        failover. Full passes (every resync) always read the kernel again, which is what
        notices changes made behind the agent's back (a deleted alias, a lost carrier)."""
        if fresh or self._kernel is None:
            self._kernel = await self._io(self.netlink.snapshot)
        return self._kernel

    async def _apply(self, full: bool) -> tuple[dict[str, Outcome], list[Observed]]:
        node = self.settings.node
        snapshot = await self._snapshot(fresh=full)
        held_now = snapshot.owned()
        self._held = held_texts([h.address.ip for h in held_now])
        observed = self._observe_concerned()
        by_name = {o.name: o for o in observed}
        handed = self.handoffs.follow(observed, time.monotonic())
        self.monitoring.arm(bool(self.handoffs.awaiting))  # a handoff is read as it comes
        if self.handoffs.awaiting or self._read_ahead:
            self._read_ahead_successions(observed)
        p = plan(node, observed, held_now, self.newest, handed)
        self.announcements.follow(p)  # before any change: rounds only for what is held
        self.newest = self._fences(p.newest, full)
        for name in p.stale:
            log.info(kv("stale-ignored", node=node, aliasip=name, epoch=by_name[name].status.epoch))
        outcomes: dict[str, Outcome] = {}
        gone: list[HeldAlias] = []
        self._deferred = set()
        for r in p.releases:
            wait = self._defer_release(by_name.get(r.aliasip or ""))
            if wait is not None:  # the named successor is not ready yet (R11)
                self._deferred.add(r.aliasip or "")
                continue
            outcome = outcomes.get(r.aliasip or "", Outcome())
            try:
                deleted = await self._io(self.netlink.delete, r.held)
            except errors.AliasError as exc:
                log.error(
                    kv(
                        "release-failed",
                        node=node,
                        aliasip=r.aliasip,
                        address=r.held.address,
                        epoch=r.epoch,
                        error=exc.message,
                    )
                )
                outcome = replace(outcome, error=f"deleting {r.held.address} failed: {exc}")
            else:
                log.info(
                    kv(
                        "release",
                        node=node,
                        aliasip=r.aliasip,
                        address=r.held.address,
                        interface=r.held.interface,
                        epoch=r.epoch,
                        reason=r.reason,
                        changed=deleted,
                    )
                )
                outcome = replace(outcome, released=outcome.released or deleted)
                gone.append(r.held)
            if r.aliasip is not None:
                outcomes[r.aliasip] = outcome
        # Let go: tell each named successor now (R11), before anything else in this pass.
        self._tell_handoffs(observed, [h for h in held_now if h not in gone])
        adds: list[Hold] = []
        for h in p.holds:
            if h.adopt and self._added_at.get(h.key) == h.epoch - 1:
                # Added on a handoff at the release step, assigned now: the new token
                # revoked that hold's rounds after its first; the rest go out under this one.
                self._added_at[h.key] = h.epoch
                self._announce_again(h, snapshot)
            if h.adopt:
                if full:
                    outcomes[h.aliasip] = await self._keep(h, snapshot)
                continue  # nothing to change between full passes
            standing = self._refusals.standing(h.key, h.epoch, h.generation, time.monotonic())
            if standing is not None:  # backing off: repeat the refusal, try again later
                outcomes[h.aliasip] = Outcome(error=standing.message, heard=standing.heard)
                continue
            ceased = self.retries.waiting(h)
            if ceased is not None:  # given up to a foreign claimer lately: later, not now
                outcomes[h.aliasip] = ceased
                continue
            adds.append(h)
        # Each add reads its AliasIP afresh (R1), a few reads at once; then the confirmed
        # ones are probed on the wire together and added (``_hold_all``).
        confirmed = await self._confirm_all(adds)
        unconfirmed = {h.aliasip for h, c in zip(adds, confirmed, strict=True) if c is None}
        outcomes.update(await self._hold_all([c for c in confirmed if c is not None]))
        self._refusals.keep_only({h.key for h in p.holds})
        for obs in observed:
            if obs.name not in outcomes and obs.spec is not None and obs.status_valid:
                refusal = self._precheck(obs, snapshot)
                if refusal is not None:
                    outcomes[obs.name] = Outcome(error=refusal)
        # Report from the kernel's truth, not from what the actions meant to do: read it
        # again when this pass changed it (or tried to), else the pass's snapshot is it.
        touched = bool(p.releases) or any(not h.adopt for h in p.holds)
        if touched or any(o.error for o in outcomes.values()):
            held = (await self._snapshot(fresh=True)).owned()
            self._held = held_texts([h.address.ip for h in held])
        else:
            held = held_now
        self.claims.update(held)  # listen for claims on exactly what is held now
        serving = {r.ip: h.aliasip for h in p.holds for r in h.requests}
        observed = [o for o in observed if o.name not in unconfirmed]
        for obs in observed:
            base = _with_holdings(outcomes.get(obs.name, Outcome()), obs, held, serving)
            outcomes[obs.name] = self.claims.annotate(obs, base)
        return outcomes, observed

    def _precheck(self, obs: Observed, snapshot: HostState) -> str | None:
        """A standby's refusal, found before it is named (``refusals``): only for an
        AliasIP this node is a candidate of, that names another node or none."""
        node = self.settings.node
        assert obs.spec is not None
        if obs.status.active_node == node:
            return None
        if node not in obs.spec.nodes and obs.view_of(node) is None:
            return None
        refusal = precheck(requests_for(obs.spec), snapshot)
        return describe(refusal) if refusal is not None else None

    async def _confirm_all(self, holds: list[Hold]) -> list[Hold | None]:
        """``_confirm_fresh`` for each of ``holds``, at most ``FRESH_READS`` GETs at once
        (in order: one result per hold). A node taking over 100 aliases read them one after
        the other, a round trip each; a few in flight keep one agent from flooding the
        API server while 50 others do the same."""
        if len(holds) <= 1:
            return [await self._confirm_fresh(h) for h in holds]
        room = asyncio.Semaphore(FRESH_READS)

        async def one(h: Hold) -> Hold | None:
            async with room:
                return await self._confirm_fresh(h)

        return list(await asyncio.gather(*(one(h) for h in holds)))

    async def _confirm_fresh(self, h: Hold) -> Hold | None:
        """Read the AliasIP now before adding its addresses (docs/design.md, "Act only on a
        view you can prove fresh"): the watch may deliver late (a healed partition, a slow
        stream), and an add on a stale view is how two nodes come to answer. The hold goes
        on only if the object read now still names this node at the planned epoch; the
        wire probe is skipped only on that fresh word (the old holder's ``released`` at the
        epoch before) and only for the first add at this epoch (an alias lost since, e.g.
        with the carrier, is probed for again). Otherwise the newer object is kept and
        another pass plans from it."""
        node = self.settings.node
        if h.handed and self._read_ahead.get(h.key) == (h.epoch, h.generation):
            # Read already, after this node saw itself named successor (``_read_ahead``).
            return replace(h, probe=self._added_at.get(h.key, -1) >= h.epoch)
        try:
            body = await asyncio.to_thread(self.kube.get_aliasip, h.aliasip)
        except (ApiUnavailable, ApiError) as exc:
            log.warning(kv("fresh-read-failed", node=node, aliasip=h.aliasip, error=exc))
            return None
        if body is None:
            log.info(kv("hold-skipped", node=node, aliasip=h.aliasip, reason="deleted"))
            return None
        fresh = observe(body)
        if newer(body, self.objects.get(h.aliasip)):
            self.objects[h.aliasip] = body
        named = succession(fresh.status)
        same = (
            fresh.key == h.key
            and fresh.spec is not None
            and fresh.status_valid
            and (
                fresh.status.active_node == node
                or (h.handed and named is not None and named.to_node == node)
            )
            and fresh.status.epoch == h.epoch
            and fresh.generation == h.generation
        )
        if not same:
            log.info(
                kv(
                    "hold-skipped",
                    node=node,
                    aliasip=h.aliasip,
                    epoch=h.epoch,
                    reason=f"read now: names {fresh.status.active_node or 'no node'} "
                    f"at epoch {fresh.status.epoch}",
                )
            )
            self.wake()
            return None
        # The release that lets the probe go must come after this node's last add: the
        # release step is this epoch for a handoff, the one before for an assignment.
        added = self._added_at.get(h.key, -1)
        if h.handed:
            confirmed = added < h.epoch
        else:
            confirmed = added < h.epoch - 1 and released_before(node, fresh.status)
        if not confirmed and added < h.epoch and self._proved_silent_lately(fresh):
            return replace(h, probe=False, unprobed="this node heard the old holder silent")
        return replace(h, probe=not confirmed)

    def _proved_silent_lately(self, fresh: Observed) -> bool:
        """A failover to this node from a holder whose silence this node's own probe
        heard moments ago (within the probe cadence of a silence run): that probe is the
        one R1 asks for, taken a moment earlier, so the add does not wait 30 ms for
        another (the fast profile's node loss spent them on every failover). Only the old
        holder could answer there (the epoch fences everyone else), and it was silent
        past its dead-man window; a foreign device appearing since is heard by the claim
        listener, as after any add."""
        node = self.settings.node
        old = moved_from(node, fresh.status)
        age = self.holders.silent_lately(fresh.name, old) if old is not None else None
        if age is None:
            return False
        log.info(
            kv(
                "probe-skipped",
                node=node,
                aliasip=fresh.name,
                holder=old,
                silent_ms=round(age * 1000, 1),
                note="this node's own probe heard the old holder silent just now",
            )
        )
        return True

    def _read_ahead_successions(self, observed: list[Observed]) -> None:
        """R1 for a direct handoff, done ahead: read each AliasIP this node is newly named
        successor of (``handoff.Handoffs.awaiting``) while the old holder is still letting
        go, so that the add on its word waits for no API round trip (``_take_handoff``
        waits for the read if it is still on its way). The read must show the same
        release step and generation as the view. Why that is fresh enough: from that step
        on the operator counts this node as a possible holder and names nobody else
        before it let go (R11). One task per AliasIP, outside the data-path lock."""
        by_key = {o.key: o for o in observed}
        keep = set(self.handoffs.awaiting) | set(self.handoffs.taken)
        self._read_ahead = {k: v for k, v in self._read_ahead.items() if k in keep}
        self._reading = {k: t for k, t in self._reading.items() if k in keep}
        for key, named in self.handoffs.awaiting.items():
            obs = by_key.get(key)
            if obs is None or self._read_ahead.get(key) == (named.epoch, obs.generation):
                continue
            reading = self._reading.get(key)
            if reading is not None and not reading.done():
                continue
            self._reading[key] = asyncio.get_running_loop().create_task(
                self._read_ahead_one(obs, named)
            )

    async def _read_ahead_one(self, obs: Observed, named: Succession) -> None:
        try:
            body = await asyncio.to_thread(self.kube.get_aliasip, obs.name)
        except (ApiUnavailable, ApiError) as exc:
            log.warning(
                kv("fresh-read-failed", node=self.settings.node, aliasip=obs.name, error=exc)
            )
            return
        if body is None:
            return
        if newer(body, self.objects.get(obs.name)):
            self.objects[obs.name] = body
        fresh = observe(body)
        if (
            fresh.key == obs.key
            and fresh.spec is not None
            and succession(fresh.status) == named
            and fresh.generation == obs.generation
        ):
            self._read_ahead[obs.key] = (named.epoch, obs.generation)
            # Ready: the old holder may let go now (it waits a moment for this word).
            self._tell("ready", named.from_node, obs.name, obs.key, named.epoch)

    def _fences(self, planned: Mapping[str, int], full: bool) -> dict[str, int]:
        """The fencing tokens after a pass: the plan's, plus the ones kept for AliasIPs
        that no longer concern this node (one may concern it again, and a late event of it
        must still read as stale); tokens of deleted objects are dropped on full passes
        (finding them reads every object)."""
        if not full:
            return {**self.newest, **planned}
        alive = {
            str((o.get("metadata") or {}).get("uid") or name) for name, o in self.objects.items()
        }
        kept = {key: epoch for key, epoch in self.newest.items() if key in alive}
        return {**kept, **planned}

    async def _keep(self, h: Hold, snapshot: HostState) -> Outcome:
        """An alias already held exactly as wanted, on a full pass: check its link in the
        pass's one kernel snapshot (a link without carrier fails the hold, so the operator
        fails over: kube-vip #682 kept an address through carrier loss), and announce it
        again every ``announce_refresh_s`` (keepalived's ``vrrp_garp_master_refresh``),
        not on every pass: at 100 aliases a node a pass a second, one kernel dump and one
        frame per alias per pass cost the agent most of a core.
        """
        try:
            placements = [decide_placement(r, snapshot) for r in h.requests]
        except errors.AliasError as exc:
            return await self._hold_failed(h, exc)
        await self.announcements.refresh(h, placements, self.settings.announce_refresh_s)
        return Outcome(interface=placements[0].interface if placements else None)

    def _announce_again(self, h: Hold, snapshot: HostState) -> None:
        """The remaining announcement rounds of ``h``'s addresses, under its token."""
        try:
            placements = [decide_placement(r, snapshot) for r in h.requests]
        except errors.AliasError:
            return  # the full pass that follows finds and reports the cause
        self.announcements.start(h, placements)

    async def _hold_all(
        self, holds: list[Hold], known: HostState | None = None
    ) -> dict[str, Outcome]:
        """Add the confirmed ``holds`` as one step on the data-path thread
        (``dataplane.apply_batch``): the wire probes of every hold that probes leave
        together and are waited for once, and a hold whose address another host answered
        is refused exactly as one probe refuses it (``_hold_failed``: back-off, report).
        Each outcome by AliasIP name. ``known``: a kernel snapshot still true, to place
        them without a dump (a direct handoff's add)."""
        if not holds:
            return {}
        holds = [
            replace(h, probe=True) if not h.probe and self.retries.must_probe(h) else h
            for h in holds  # refused before: the wire is asked again
        ]
        items = [
            BatchItem(h.requests, h.probe, self.announcements.holding(h))  # first round gated
            for h in holds
        ]
        results = await self._io(
            apply_batch, items, self.netlink, self.announcer, self.settings.probe_wait_s, known
        )
        outcomes: dict[str, Outcome] = {}
        for h, result in zip(holds, results, strict=True):
            if isinstance(result, errors.AliasError):
                outcomes[h.aliasip] = await self._hold_failed(h, result)
            else:
                outcomes[h.aliasip] = self._held_now(h, result, batch=len(holds))
        return outcomes

    def _held_now(self, h: Hold, results: list[ApplyResult], batch: int) -> Outcome:
        """A hold's addresses are in the kernel: log the adds, start its announcement
        rounds, remember the epoch of this add (R1: the next add at it probes)."""
        node = self.settings.node
        for result in results:
            if result.changed:
                log.info(
                    kv(
                        "hold",
                        node=node,
                        aliasip=h.aliasip,
                        address=result.placement.address,
                        interface=result.placement.interface,
                        epoch=h.epoch,
                        probe_ms=_ms(result.probe_ms),
                        probe=None if h.probe else f"skipped: {h.unprobed}",
                        batch=batch if batch > 1 else None,
                    )
                )
        self.retries.held(h)
        if not h.adopt or any(r.changed for r in results):
            self.announcements.start(h, [r.placement for r in results])
        elif h.adopt:
            log.debug(kv("adopt", node=node, aliasip=h.aliasip, epoch=h.epoch))
        self._added_at[h.key] = h.epoch
        self._refusals.succeeded(h.key)
        return Outcome(interface=results[0].placement.interface if results else None)

    async def _hold_failed(self, h: Hold, exc: errors.AliasError) -> Outcome:
        """The node cannot hold: take back what this hold has (error means holds none).
        The refusal is remembered and retried with back-off (``refusals``); its cause is
        logged when it starts or changes."""
        node = self.settings.node
        message = describe(exc)
        heard = True if isinstance(exc, errors.AddressInUse) else None
        new, wait = self._refusals.failed(
            h.key, h.epoch, h.generation, message, heard, time.monotonic()
        )
        if self._loop is not None:
            self._loop.call_later(wait, self.wake)  # the retry, once the back-off is over
        log.log(
            logging.WARNING if new else logging.DEBUG,
            kv(
                "hold-failed",
                node=node,
                aliasip=h.aliasip,
                epoch=h.epoch,
                code=exc.code,
                error=exc.message,
                note="retrying with back-off",
            ),
        )
        self.announcements.revoke_key(h.key, "the hold failed")
        failed = await self._delete_matching(
            h.requests, h.aliasip, h.epoch, "cannot hold all addresses"
        )
        message = "; ".join([message, *failed])
        return Outcome(error=message, heard=heard, observed_at=self.now() if heard else None)

    # ------------------------------------------------------------------ the monitoring path

    def _defer_release(self, obs: Observed | None) -> float | None:
        """Seconds this pass leaves ``obs``'s addresses in place for its named successor
        to say it is ready (``handoff.Handoffs.defer``), with a pass booked for then."""
        if obs is None or self._loop is None:
            return None
        wait = self.handoffs.defer(
            obs, time.monotonic(), lambda peer: self.monitoring.reaches(peer, self.leases.lease)
        )
        if wait is not None:
            self._loop.call_later(wait, self.wake)
        return wait

    def _readied(self, peer: str, ready: tuple[tuple[str, int], ...]) -> None:
        """A named successor has read the AliasIP and waits for our word: let go now."""
        self.handoffs.readied(peer, ready)
        self.wake()

    def _handed(self, peer: str, released: tuple[tuple[str, int], ...]) -> None:
        """``peer`` let go of these AliasIPs (uid, epoch): the handoffs this node awaits
        from it are taken at once (``_take_handoff``), not at the next pass."""
        for key in self.handoffs.heard(peer, released, time.monotonic()):
            asyncio.get_running_loop().create_task(self._take_handoff(key))

    async def _take_handoff(self, key: str) -> None:
        """R11, the successor's add: on the newest view of the AliasIP, if it still names
        this node successor at the epoch the old holder released and a read confirmed it
        (``_read_ahead_successions``), hold it now, without a probe on the first add at
        that epoch; the pass that follows reports it. Anything else is left to a pass
        (which reads afresh). Not while cut off, nor for a hold backing off."""
        node = self.settings.node
        reading = self._reading.get(key)
        if reading is not None and not reading.done():
            await asyncio.shield(reading)  # the read ahead is on its way: it is the add's
        async with self._dataplane:
            known_obs = next((o for o in self._observed.values() if o.key == key), None)
            body = self.objects.get(known_obs.name) if known_obs is not None else None
            if self.fenced or known_obs is None or body is None:
                self.wake()
                return
            rv = str((body.get("metadata") or {}).get("resourceVersion"))
            # The newest view, parsed once (the pass's parse when nothing came since).
            obs = known_obs if known_obs.resource_version == rv else observe(body)
            named = succession(obs.status)
            confirmed = named is not None and self._read_ahead.get(key) == (
                named.epoch,
                obs.generation,
            )
            if obs.spec is None or obs.key != key or named is None or not confirmed:
                self.wake()
                return
            hold = Hold(
                aliasip=obs.name,
                key=key,
                epoch=named.epoch,
                requests=requests_for(obs.spec),
                announce_count=obs.spec.announce.count,
                announce_interval_s=obs.spec.announce.interval_s,
                adopt=False,
                probe=self._added_at.get(key, -1) >= named.epoch,
                generation=obs.generation,
                handed=True,
            )
            standing = self._refusals.standing(key, hold.epoch, hold.generation, time.monotonic())
            if standing is not None or self.retries.waiting(hold) is not None:
                self.wake()
                return
            if self.handoffs.awaiting.get(key) != named or not self.handoffs.take(key, obs.name):
                self.wake()  # the view moved on since the last pass: a pass decides
                return
            known, self._kernel = self._kernel, None  # the next pass reads the kernel
            await self._hold_all([hold], known)
        log.debug(kv("handoff-held", node=node, aliasip=obs.name, epoch=named.epoch))
        self.wake()

    def _tell_handoffs(self, observed: list[Observed], held: list[HeldAlias]) -> None:
        """After this pass's deletes: tell each named successor at once (R11)."""
        for tell in self.handoffs.to_tell(observed, held):
            self._tell("released", tell.to_node, tell.aliasip, tell.key, tell.epoch)

    def _tell(self, what: str, peer: str, aliasip: str, key: str, epoch: int) -> None:
        """One handoff word to ``peer`` on the monitoring path (``released`` by the old
        holder, ``ready`` by the successor), logged: ``handoff-told`` / ``handoff-ready``,
        or ``handoff-not-told`` when it has no way there (the API path follows)."""
        entry = ((key, epoch),)
        if what == "ready":
            sent = self.monitoring.tell(peer, self.leases.lease, ready=entry)
        else:
            sent = self.monitoring.tell(peer, self.leases.lease, released=entry)
        event = ("handoff-ready" if what == "ready" else "handoff-told") if sent else None
        log.info(
            kv(
                event or "handoff-not-told",
                node=self.settings.node,
                aliasip=aliasip,
                epoch=epoch,
                peer=peer,
                what=None if sent else what,
                note=None if sent else "no monitoring path to it: the API path follows",
            )
        )

    async def _yield_to(self, peer: str, key: str, epoch: int) -> None:
        """R10: ``peer`` holds AliasIP ``key`` at ``epoch``, newer than ours: delete our
        copy now. The fencing token first: a view naming this node at an older epoch is
        stale from now on, so no pass adds it back before the API says so anew."""
        self.newest[key] = max(self.newest.get(key, epoch), epoch)
        obs = next((o for o in self._observed.values() if o.key == key), None)
        if obs is None or obs.spec is None:
            return
        self.announcements.revoke_key(key, f"{peer} holds it at epoch {epoch}")
        reason = f"{peer} holds it at epoch {epoch} (heard on the monitoring path)"
        async with self._dataplane:
            failed = await self._delete_matching(
                requests_for(obs.spec), obs.name, obs.status.epoch, reason
            )
        for problem in failed:
            log.error(
                kv("release-failed", node=self.settings.node, aliasip=obs.name, error=problem)
            )
        self.wake(full=True)

    async def _delete_matching(
        self, requests: tuple[AliasRequest, ...], aliasip: str, epoch: int | None, reason: str
    ) -> list[str]:
        """Delete every held address that one of ``requests`` wants (the caller holds the
        data-path lock); each deletion logged with ``reason``; what failed, as text."""
        self._kernel = None  # changed behind the pass: the next one reads the kernel
        failed: list[str] = []
        for held in (await self._io(self.netlink.snapshot)).owned():
            if not any(matches(held, r) for r in requests):
                continue
            try:
                await self._io(self.netlink.delete, held)
            except errors.AliasError as err:
                failed.append(f"deleting {held.address} failed: {err.message}")
                continue
            log.info(
                kv(
                    "release",
                    node=self.settings.node,
                    aliasip=aliasip,
                    address=held.address,
                    epoch=epoch,
                    reason=reason,
                )
            )
        return failed

    # ------------------------------------------------------------------ watch the holders

    # ------------------------------------------------------------------ report

    async def _report(self, observed: list[Observed], outcomes: Mapping[str, Outcome]) -> None:
        """Write this node's view of each AliasIP whose view changed, ``REPORTS`` writes in
        flight at once: a node that took over 20 of a lost peer's AliasIPs also reports a
        new epoch for the 20 more it stands by for, and one write after the other (30-50
        ms each on a busy API server) held its next pass, with the next adds, for 2 s."""
        node = self.settings.node
        due = []
        for obs in observed:
            outcome = outcomes.get(obs.name, Outcome())
            view = view_for(
                node,
                obs,
                outcome,
                self.now(),
                in_progress=obs.name in self._deferred,
                handed=self.handoffs.holds(obs),
                awaiting=obs.key in self.handoffs.awaiting,
            )
            if needs_write(obs.view_of(node), view) or (outcome.fresh and view is not None):
                assert view is not None
                due.append((obs, view))
        room = asyncio.Semaphore(REPORTS)

        async def write(obs: Observed, view: NodeView) -> None:
            async with room:
                try:
                    answer = await asyncio.to_thread(
                        self.kube.patch_aliasip_status, obs.name, patch_body(node, view)
                    )
                except (ApiUnavailable, ApiError) as exc:
                    log.warning(kv("report-failed", node=node, aliasip=obs.name, error=exc))
                    return
            if newer(answer, self.objects.get(obs.name)):
                self.objects[obs.name] = answer
            log.info(
                kv(
                    "report",
                    node=node,
                    aliasip=obs.name,
                    state=view.state,
                    epoch=view.epoch,
                    message=view.message,
                    holderHeard=view.holder_heard,
                )
            )

        await asyncio.gather(*(write(obs, view) for obs, view in due))


def _with_holdings(
    outcome: Outcome, obs: Observed, held: list[HeldAlias], serving: Mapping[Any, str]
) -> Outcome:
    """``outcome`` with what the kernel holds now for ``obs``'s addresses. An address held
    for another AliasIP named here (``serving``: address -> the AliasIP it is held for; the
    older of two conflicting objects) is that one's, not ``obs``'s: the younger object of a
    conflict must not read as held on this node."""
    if obs.spec is None:
        return outcome
    wanted = [a.ip for a in obs.spec.addresses]
    mine = [
        h
        for h in held
        if h.address.ip in wanted and serving.get(h.address.ip, obs.name) == obs.name
    ]
    interface = outcome.interface or (mine[0].interface if mine else None)
    return replace(
        outcome,
        holds_all=len({h.address.ip for h in mine}) == len(set(wanted)),
        holds_any=bool(mine),
        interface=interface,
    )


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def run_agent(agent: Agent, stop: asyncio.Event) -> None:
    """Run until ``stop``; kept apart so tests can drive an Agent in-process."""
    with contextlib.suppress(asyncio.CancelledError):
        await agent.run(stop)
