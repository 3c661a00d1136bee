"""``aliasip-agent run``: the long-running node agent, one asyncio loop.

Tasks, one concern each:

- **lease**: renews the Lease ``aliasip-agent-<node>`` every ``renew_interval_s`` (at most
  once a second: the API-write budget), ``leaseDurationSeconds`` = ``lease_duration_s``;
- **cut off**: if no renewal succeeded for ``lease_duration_s - fence_margin_s``, the agent
  is cut off from the API. It keeps what it holds (docs/design.md: "a holder cut off from the
  API but not from the LAN keeps serving"; standbys hear it, so the operator does not
  move it, and an API restart never takes the aliases down) but acts on nothing new, since
  its view of the API is stale. Every second it probes the wire for each alias it holds:
  if another host answers for one, the operator has moved it (this node was also cut off
  the LAN for a while), and it is deleted at once. When a renewal and a fresh list succeed
  again, the ordinary reconcile takes over;
- **watch** (a daemon thread: the client blocks): lists AliasIPs, then watches from the
  list's resourceVersion, resumes after a broken stream, relists after 410 Gone; every
  change wakes the reconcile task;
- **reconcile**: the only task that changes the kernel (a foreign claim's cease aside,
  ``claimwatch``). It plans with ``reconcile.plan`` (pure), applies releases then holds
  through ``dataplane``, has ``announcing`` send the remaining announcement rounds
  (``spec.announce``; only while the address is held at that epoch), and reports
  ``status.nodes.<node>`` with a merge patch of its own key only when the view changed;
- **resync**: wakes the reconcile every ``resync_interval_s`` for a full pass: re-adds a
  missing alias, re-announces held ones, and finds link loss (the data path refuses a
  link without carrier, the aliases are deleted and ``error`` is reported, so the
  operator fails over; kube-vip #682 re-added an address during carrier loss). On a
  full pass a standby also watches the holders (``watch``): one Lease read per holder,
  and only when that Lease's renewal is overdue a probe on the wire, reported as
  ``holderHeard`` once the Lease lapsed (silence: once it lasted the expiry window);

- **deadman** (``deadman.DeadMan``): renews the kernel lifetime of every held alias four
  times per lifetime, API or not; a dead or frozen agent's aliases expire (R9). A standby
  calls a lapsed holder silent only once the silence outlasted that lifetime
  (``silence``), probing from the holder's overdue renewal on.

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
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aliasip_api.lease import AGENT_LEASE_PREFIX, AgentLease, agent_lease_name, parse_lease
from aliasip_nodeagent import errors
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.carrier import CarrierWatch
from aliasip_nodeagent.claimwatch import ClaimWatch
from aliasip_nodeagent.dataplane import AgentNetlink, Announce, apply_alias
from aliasip_nodeagent.deadman import DeadMan, expiry_window_s
from aliasip_nodeagent.hoststate import HeldAlias, HostState
from aliasip_nodeagent.kube import ApiError, ApiUnavailable, KubeApi, Listing
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.placement import AliasRequest, Placement, decide_placement
from aliasip_nodeagent.reconcile import (
    Hold,
    Observed,
    matches,
    observe,
    plan,
    released_before,
    requests_for,
)
from aliasip_nodeagent.refusals import Refusals, describe, precheck
from aliasip_nodeagent.relevance import concerns, held_texts
from aliasip_nodeagent.report import Outcome, needs_write, patch_body, view_for
from aliasip_nodeagent.retries import HoldRetries
from aliasip_nodeagent.silence import PROBE_EVERY_S, Silences, watch_from
from aliasip_nodeagent.watch import lease_lapsed, report_due, watched_holder

log = logging.getLogger("aliasip.agent")
T = TypeVar("T")
EventHandler = Callable[[str | None, dict[str, Any]], None]
# A standby's pass for a holder whose Lease expires runs this long after the expiry (the
# operator counts an observation only at or after it).
EXPIRY_SLACK_S = 0.01
# While cut off from the API, the wire is probed for each held alias this often (not only
# every resync, 5 s as shipped): a LAN partition that keeps the carrier up (a dead uplink)
# is invisible to link events, and after it heals this probe is what ends two answers.
GUARD_INTERVAL_S = 1.0
# A graceful stop waits this long for the handover's Lease write, then stops without one.
HANDOVER_WRITE_TIMEOUT_S = 2.0


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

    @property
    def lease_name(self) -> str:
        return agent_lease_name(self.node)


def _newer(candidate: Mapping[str, Any], current: Mapping[str, Any] | None) -> bool:
    """Whether ``candidate`` is not older than ``current`` (resourceVersions compared as
    numbers when both are, as every known server writes them; else the later one wins)."""
    if current is None:
        return True
    new = str((candidate.get("metadata") or {}).get("resourceVersion", ""))
    old = str((current.get("metadata") or {}).get("resourceVersion", ""))
    if new.isdigit() and old.isdigit():
        return int(new) >= int(old)
    return True


class Agent:
    """The daemon's state and tasks; ``run(stop)`` returns when ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        kube: KubeApi,
        netlink: AgentNetlink,
        announcer: Announce,
        dataplane: Executor,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
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
        self._lease_objs: dict[str, dict[str, Any]] = {}
        self.leases_synced = False
        self._watched_holders: set[str] = set()
        self._kernel: HostState | None = None  # the last kernel snapshot, while still true
        self._expiry_wakes: dict[str, tuple[datetime, asyncio.TimerHandle]] = {}
        self._silence_wake: tuple[datetime, asyncio.TimerHandle] | None = None
        # The dead-man switch (this node's aliases live only while we renew them) and the
        # standby's side of it (a holder is silent only once that has lasted the window).
        self.deadman = DeadMan(
            settings.node,
            netlink,
            self._io,
            settings.address_lifetime_s,
            fewer=self._kernel_changed_full,
        )
        self.silences = Silences(expiry_window_s(settings.address_lifetime_s))
        self.synced = False
        self._watch_breaks = 0  # AliasIP watch streams broken so far (a relist follows)
        self._breaks_at_cut_off = 0
        self.newest: dict[str, int] = {}
        self.fenced = False
        self.renewed_at: float | None = None
        self.started_at = time.monotonic()
        self._wake = asyncio.Event()
        self._full_pass = True
        self._dataplane = asyncio.Lock()
        # Every announcement round, keyed by address and gated by holding (announcing);
        # refused holds back off (retries); foreign claims are heard and answered (claims).
        self.announcements = Announcements(announcer, dataplane, settings.node)
        self.retries = HoldRetries(self.wake)
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
        log.info(kv("start", node=self.settings.node, lease=self.settings.lease_name))
        for target, name in ((self._watch_thread, "watch"), (self._lease_thread, "leases")):
            threading.Thread(target=target, name=name, daemon=True).start()
        self.carrier.start()
        # Adopted aliases (a previous agent's, maybe handed over with a long lifetime) get
        # this agent's lifetime before anything else happens.
        await self.deadman.renew()
        tasks = [
            asyncio.create_task(self.deadman.run(), name="deadman"),
            asyncio.create_task(self._lease_task(), name="lease"),
            asyncio.create_task(self._fence_task(), name="fence"),
            asyncio.create_task(self._reconcile_task(), name="reconcile"),
            asyncio.create_task(self._resync_task(), name="resync"),
        ]
        try:
            await stop.wait()
        finally:
            self._stopping.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.carrier.close()
            self.claims.close()
            await self.announcements.close()
            # Deliberately no release: a stopped agent is not a failover (docs/design.md);
            # the aliases live on for the handover, announced in the Lease first (R9).
            handed = await self.deadman.hand_over(
                self.now, self.settings.handover_s, self._write_handover
            )
            note = "aliases handed over to the next agent" if handed else "aliases expire"
            log.info(kv("stop", node=self.settings.node, note=note))

    async def _write_handover(self, until: datetime) -> bool:
        """The Lease, renewed with the handover annotation; False if the API refused."""
        s = self.settings
        try:
            await asyncio.wait_for(self._renew_lease(until), timeout=HANDOVER_WRITE_TIMEOUT_S)
        except (ApiUnavailable, ApiError, TimeoutError) as exc:
            log.warning(kv("lease-renew-failed", node=s.node, error=exc or "timed out"))
            return False
        return True

    async def _io(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a data-path call on the data-path thread.

        pyroute2's synchronous API runs an event loop of its own, which cannot run inside
        ours; one dedicated thread also serialises every netlink and packet call.
        """
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def wake(self, full: bool = False) -> None:
        self._full_pass = self._full_pass or full
        self._wake.set()

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

    # ------------------------------------------------------------------ lease and fence

    async def _renew_lease(self, handover_until: datetime | None = None) -> None:
        """One renewal of this node's Lease (with the handover annotation, or without)."""
        s = self.settings
        await asyncio.to_thread(
            self.kube.renew_lease,
            s.lease_namespace,
            s.lease_name,
            s.node,
            s.lease_duration_s,
            self.now(),
            handover_until,
        )

    async def _lease_task(self) -> None:
        s = self.settings
        while True:
            started = time.monotonic()
            try:
                await self._renew_lease()
            except (ApiUnavailable, ApiError) as exc:
                log.warning(kv("lease-renew-failed", node=s.node, error=exc))
            else:
                first = self.renewed_at is None
                self.renewed_at = started
                if first:
                    log.info(kv("lease-acquired", node=s.node, lease=s.lease_name))
                    self.wake(full=True)
                if self.fenced:
                    await self._unfence()
            await asyncio.sleep(max(0.0, started + s.renew_interval_s - time.monotonic()))

    def _fence_deadline(self) -> float:
        s = self.settings
        base = self.renewed_at if self.renewed_at is not None else self.started_at
        return base + s.lease_duration_s - s.fence_margin_s

    async def _fence_task(self) -> None:
        while True:
            left = self._fence_deadline() - time.monotonic()
            if left > 0:
                await asyncio.sleep(max(left, 0.05))
                continue
            if not self.fenced:
                self._cut_off()
            await self._guard_held()
            await asyncio.sleep(min(self.settings.resync_interval_s, GUARD_INTERVAL_S))

    def _cut_off(self) -> None:
        """No renewal for too long: stop acting on a stale view; keep what is held."""
        self.fenced = True
        self._breaks_at_cut_off = self._watch_breaks
        log.warning(
            kv(
                "api-lost",
                node=self.settings.node,
                note="the Lease could not be renewed: keeping the aliases held here, acting "
                "on nothing new, probing the wire for another holder",
            )
        )

    async def _guard_held(self) -> None:
        """While cut off: delete each held alias another host answers for on the wire."""
        async with self._dataplane:
            held = (await self._io(self.netlink.snapshot)).owned()
            for h in held:
                try:
                    result = await self._io(
                        self.announcer.probe,
                        h.interface,
                        h.mac,
                        h.address.ip,
                        self.settings.probe_wait_s,
                    )
                    if not result.conflict_mac:
                        continue
                    self.announcements.revoke(h.address.ip, "another host answers for it")
                    self._kernel = None
                    await self._io(self.netlink.delete, h)
                except (errors.AliasError, OSError) as exc:
                    log.error(
                        kv("guard-failed", node=self.settings.node, address=h.address, error=exc)
                    )
                    continue
                log.warning(
                    kv(
                        "release",
                        node=self.settings.node,
                        address=h.address,
                        reason=f"{result.conflict_mac} answers for it while this node is cut "
                        "off from the API: the operator moved it",
                    )
                )

    async def _unfence(self) -> None:
        """The API answers again. If the AliasIP watch never broke meanwhile, what it
        delivered is complete (late, in order, as any watch): act on it. Otherwise read
        everything afresh first. Relisting on every unfence made a short API stall at 50
        nodes x 1,000 AliasIPs end in 50 lists of 1,000 objects at once, which stalled the
        API server again (bench/scale.py)."""
        if self.synced and self._watch_breaks == self._breaks_at_cut_off:
            # Intact, but possibly late: a stream stalled by a partition resumes at TCP's
            # next retransmission, seconds after the heal (chaos seed 3: a release asked
            # meanwhile waited 2 s and more). The AliasIPs that concern this node are read
            # afresh now, one GET each: a handful, not a relist of every object.
            if not await self._read_concerned_afresh():
                return
            self.fenced = False
            log.info(
                kv("unfenced", node=self.settings.node, note="Lease renewed, concerned re-read")
            )
            self.wake(full=True)
            return
        try:
            listing = await asyncio.to_thread(self.kube.list_aliasips)
        except (ApiUnavailable, ApiError) as exc:
            log.warning(kv("relist-failed", node=self.settings.node, error=exc))
            return
        self.fenced = False
        self._replace_all(listing.items)
        log.info(kv("unfenced", node=self.settings.node, note="Lease renewed, state re-read"))
        self.wake(full=True)

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
            elif _newer(body, self.objects.get(name)):
                self.objects[name] = body
        return True

    # ------------------------------------------------------------------ watch

    def _watch_thread(self) -> None:
        self._watch_loop(
            "aliasips",
            self.kube.list_aliasips,
            self.kube.watch_aliasips,
            self._replace_all,
            self._apply_event,
            broken=self._aliasip_watch_broken,
        )

    def _aliasip_watch_broken(self) -> None:
        self._watch_breaks += 1

    def _lease_thread(self) -> None:
        """The agents' Leases, watched: a standby learns when each holder's Lease expires
        without reading it. Session 2 read the holder's Lease on every full pass; at 50
        nodes and 1,000 AliasIPs (each node a standby of ~40 holders, a pass a second)
        that was some 2,000 GETs a second, and the API server fell behind."""
        namespace = self.settings.lease_namespace

        def watch(rv: str, timeout_s: int) -> Iterator[dict[str, Any]]:
            return self.kube.watch_leases(namespace, rv, timeout_s)

        self._watch_loop(
            "leases",
            lambda: self.kube.list_leases(namespace),
            watch,
            self._leases_listed,
            self._lease_news,
            broken=self._leases_unknown,
            first=self._lease_seen,
        )

    def _watch_loop(
        self,
        what: str,
        list_all: Callable[[], Listing],
        watch: Callable[[str, int], Iterator[dict[str, Any]]],
        on_list: Callable[[tuple[dict[str, Any], ...]], None],
        on_event: EventHandler,
        broken: Callable[[], None] | None = None,
        first: Callable[[str | None, dict[str, Any]], bool] | None = None,
    ) -> None:
        """List, then watch; resume after a break, relist after 410 Gone. Bounded waits.

        ``on_list`` and ``on_event`` run on the loop; ``first``, if given, runs here in
        the watch thread for every event and says whether the loop needs to hear of it
        (waking the loop for every other agent's Lease renewal cost more than the rest
        of an idle agent's work).
        """
        loop = self._loop
        assert loop is not None
        node = self.settings.node
        rv: str | None = None
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                if rv is None:
                    listing = list_all()
                    loop.call_soon_threadsafe(on_list, listing.items)
                    rv = listing.resource_version
                for event in watch(rv, self.settings.watch_timeout_s):
                    if self._stopping.is_set():
                        return
                    obj = event.get("object") or {}
                    rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                    kind = event.get("type")
                    if kind != "BOOKMARK" and (first is None or first(kind, obj)):
                        loop.call_soon_threadsafe(on_event, kind, obj)
                backoff = 0.2
            except ApiError as exc:
                if exc.status == 410:
                    log.info(kv("watch-expired", node=node, watch=what, note="relisting"))
                else:
                    log.warning(kv("watch-failed", node=node, watch=what, error=exc))
                rv = None
                if broken is not None:
                    loop.call_soon_threadsafe(broken)
                self._stopping.wait(backoff)
            except (ApiUnavailable, ValueError) as exc:
                log.warning(kv("watch-broken", node=node, watch=what, error=exc))
                if broken is not None:
                    loop.call_soon_threadsafe(broken)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            except RuntimeError:  # the loop is closed: the agent is stopping
                return

    def _leases_listed(self, items: tuple[dict[str, Any], ...]) -> None:
        # Events the watch thread kept since this list was read are newer: keep them.
        known = self._lease_objs
        fresh = {n: o for o in items if (n := _lease_node(o)) is not None}
        self._lease_objs = {
            n: (o if _newer(o, known.get(n)) else known[n]) for n, o in fresh.items()
        }
        self.leases_synced = True
        for holder in sorted(self._watched_holders):
            self._lease_news(None, {"metadata": {"name": agent_lease_name(holder)}})

    def _lease_seen(self, kind: str | None, obj: dict[str, Any]) -> bool:
        """In the watch thread: keep the Lease; the loop hears only of watched holders."""
        node = _lease_node(obj)
        if node is None:
            return False
        if kind == "DELETED":
            self._lease_objs.pop(node, None)
        else:
            self._lease_objs[node] = obj
        return node in self._watched_holders

    def _leases_unknown(self) -> None:
        """The Lease watch broke: read Leases directly until it is listed again."""
        self.leases_synced = False

    def _lease(self, holder: str) -> AgentLease | None:
        obj = self._lease_objs.get(holder)
        return parse_lease(obj) if obj is not None else None

    def _lease_news(self, kind: str | None, obj: dict[str, Any]) -> None:
        """A watched holder's Lease changed: pass at its new expiry, or at once if it
        vouches for nobody now (given up by a stopping agent, deleted)."""
        holder = _lease_node(obj)
        if holder is None:
            return
        lease = self._lease(holder)
        if lease_lapsed(lease, holder, self.now()):
            self.wake(full=True)
        else:
            self._wake_at_expiry(holder, lease)

    def _replace_all(self, items: tuple[dict[str, Any], ...]) -> None:
        fresh = {str(o["metadata"]["name"]): o for o in items}
        self.objects = {
            n: (o if _newer(o, self.objects.get(n)) else self.objects[n]) for n, o in fresh.items()
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
        elif _newer(obj, before):
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
            if not self.synced or self.fenced or self.renewed_at is None:
                continue  # act only on a fresh list, and only with a Lease of our own
            try:
                async with self._dataplane:
                    outcomes, observed = await self._apply(full)
                if full:
                    outcomes = await self._watch_holders(observed, outcomes)
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
        p = plan(node, observed, held_now, self.newest)
        self.announcements.follow(p)  # before any change: rounds only for what is held
        self.newest = self._fences(p.newest, full)
        for name in p.stale:
            log.info(kv("stale-ignored", node=node, aliasip=name, epoch=by_name[name].status.epoch))
        outcomes: dict[str, Outcome] = {}
        for r in p.releases:
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
            if r.aliasip is not None:
                outcomes[r.aliasip] = outcome
        unconfirmed: set[str] = set()
        for h in p.holds:
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
            confirmed = await self._confirm_fresh(h)
            if confirmed is None:
                unconfirmed.add(h.aliasip)  # nothing to report on a view proven stale
            else:
                outcomes[h.aliasip] = await self._hold(confirmed)
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
        try:
            body = await asyncio.to_thread(self.kube.get_aliasip, h.aliasip)
        except (ApiUnavailable, ApiError) as exc:
            log.warning(kv("fresh-read-failed", node=node, aliasip=h.aliasip, error=exc))
            return None
        if body is None:
            log.info(kv("hold-skipped", node=node, aliasip=h.aliasip, reason="deleted"))
            return None
        fresh = observe(body)
        if _newer(body, self.objects.get(h.aliasip)):
            self.objects[h.aliasip] = body
        same = (
            fresh.key == h.key
            and fresh.spec is not None
            and fresh.status_valid
            and fresh.status.active_node == node
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
        first_add = self._added_at.get(h.key) != h.epoch
        return replace(h, probe=not (first_add and released_before(node, fresh.status)))

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

    async def _hold(self, h: Hold) -> Outcome:
        node = self.settings.node
        if not h.probe and self.retries.must_probe(h):
            h = replace(h, probe=True)  # refused before: the wire is asked again
        announcer = self.announcements.holding(h)  # its first round is gated too
        placements: list[tuple[Placement, bool]] = []
        try:
            for request in h.requests:
                result = await self._io(
                    apply_alias,
                    request,
                    self.netlink,
                    announcer,
                    probe_wait_s=self.settings.probe_wait_s if h.probe else None,
                )
                placements.append((result.placement, result.changed))
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
                            probe=None if h.probe else "skipped: the old holder confirmed",
                        )
                    )
        except errors.AliasError as exc:
            return await self._hold_failed(h, exc)
        self.retries.held(h)
        if not h.adopt or any(changed for _, changed in placements):
            self.announcements.start(h, [p for p, _ in placements])
        elif h.adopt:
            log.debug(kv("adopt", node=node, aliasip=h.aliasip, epoch=h.epoch))
        self._added_at[h.key] = h.epoch
        self._refusals.succeeded(h.key)
        interface = placements[0][0].interface if placements else None
        return Outcome(interface=interface)

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
        self._kernel = None  # this pass adds and deletes: the next one reads the kernel
        for held in (await self._io(self.netlink.snapshot)).owned():
            if any(matches(held, r) for r in h.requests):
                try:
                    await self._io(self.netlink.delete, held)
                    log.info(
                        kv(
                            "release",
                            node=node,
                            aliasip=h.aliasip,
                            address=held.address,
                            epoch=h.epoch,
                            reason="cannot hold all addresses",
                        )
                    )
                except errors.AliasError as err:
                    message += f"; deleting {held.address} failed: {err.message}"
        return Outcome(error=message, heard=heard, observed_at=self.now() if heard else None)

    # ------------------------------------------------------------------ watch the holders

    async def _watch_holders(
        self, observed: list[Observed], outcomes: dict[str, Outcome]
    ) -> dict[str, Outcome]:
        """Probe for the AliasIPs whose holder's Lease renewal is overdue or lapsed; one
        Lease read per holder per pass.

        While the holder's renewal is on time nothing is probed and nothing new is
        reported (``view_for`` keeps the previous observation; no write). Once overdue,
        the addresses are probed every ``PROBE_EVERY_S``; after the Lease lapsed, an
        answer is reported at once, silence only once it has lasted the expiry window
        (``silence``, docs/design.md R9).
        """
        node = self.settings.node
        leases: dict[str, tuple[bool, AgentLease | None]] = {}
        watched = {(obs.name, h) for obs in observed if (h := watched_holder(node, obs))}
        self._watched_holders = {holder for _, holder in watched}
        self.silences.keep_only(watched)
        for obs in observed:
            holder = watched_holder(node, obs)
            if holder is None or obs.spec is None:
                continue
            if holder not in leases:
                leases[holder] = await self._read_lease(holder)
            known, lease = leases[holder]
            if not known:
                continue
            key = (obs.name, holder)
            lapsed = lease_lapsed(lease, holder, self.now())
            if not lapsed:
                self._wake_at_expiry(holder, lease)
                start = watch_from(lease, self.settings.renew_interval_s)
                if start is not None and self.now() < start:
                    self.silences.forget(key)
                    self._wake_at(start)
                    continue
            async with self._dataplane:
                heard = await self._io(self._probe_all, requests_for(obs.spec))
            observed_at = self.now()
            if heard is None:
                self.silences.forget(key)
                continue  # this node cannot look (its own link is down ...): say nothing
            if heard:
                self.silences.forget(key)
            elif self.silences.silent(key, observed_at) == observed_at:
                proven = self.silences.proven_at(key, lease.handover_until if lease else None)
                log.info(
                    kv(
                        "holder-silent",
                        node=node,
                        aliasip=obs.name,
                        holder=holder,
                        since=observed_at.isoformat(timespec="milliseconds"),
                        evidence_at=proven.isoformat(timespec="milliseconds") if proven else None,
                        note="silence counts once it outlasts the holder's address lifetime",
                    )
                )
            if not lapsed:
                self._wake_at(observed_at + timedelta(seconds=PROBE_EVERY_S))
                continue
            if not heard:
                proven = self.silences.proven_at(key, lease.handover_until if lease else None)
                if proven is not None and observed_at < proven:
                    self._wake_at(min(proven, observed_at + timedelta(seconds=PROBE_EVERY_S)))
                    continue
            if not report_due(obs.view_of(node), heard, lease):
                continue
            log.info(kv("holder-probed", node=node, aliasip=obs.name, holder=holder, heard=heard))
            base = outcomes.get(obs.name, Outcome())
            outcomes[obs.name] = replace(base, heard=heard, observed_at=observed_at, fresh=True)
        return outcomes

    def _wake_at(self, when: datetime) -> None:
        """A full pass at ``when`` (the silence watch's next probe); one timer, the
        earliest asked for: the pass it wakes asks again for whatever comes next."""
        if self._loop is None:
            return
        if self._silence_wake is not None:
            at, handle = self._silence_wake
            if at <= when and not handle.cancelled():
                return
            handle.cancel()
        delay = max((when - self.now()).total_seconds(), 0.0)
        handle = self._loop.call_later(delay, self._silence_woken)
        self._silence_wake = (when, handle)

    def _silence_woken(self) -> None:
        self._silence_wake = None
        self.wake(full=True)

    def _wake_at_expiry(self, holder: str, lease: AgentLease | None) -> None:
        """A full pass right when the holder's Lease expires, not up to a resync interval
        later: a lost holder is probed for, and reported, as soon as it may be."""
        expires = lease.expires_at if lease is not None else None
        if expires is None or self._loop is None:
            return
        known = self._expiry_wakes.get(holder)
        if known is not None and known[0] == expires:
            return  # already scheduled for this expiry
        if known is not None:
            known[1].cancel()  # renewed since: only the newest expiry may wake us
        delay = (expires - self.now()).total_seconds() + EXPIRY_SLACK_S
        handle = self._loop.call_later(max(delay, 0.0), self.wake, True)
        self._expiry_wakes[holder] = (expires, handle)

    async def _read_lease(self, holder: str) -> tuple[bool, AgentLease | None]:
        """(known, lease): from the Lease watch when it is listed, else read directly;
        ``known`` is False when the API did not answer (nothing is known)."""
        if self.leases_synced:
            return True, self._lease(holder)
        try:
            body = await asyncio.to_thread(
                self.kube.get_lease, self.settings.lease_namespace, agent_lease_name(holder)
            )
        except (ApiUnavailable, ApiError) as exc:
            node = self.settings.node
            log.warning(kv("holder-lease-failed", node=node, holder=holder, error=exc))
            return False, None
        return True, (parse_lease(body) if body is not None else None)

    def _probe_all(self, requests: tuple[AliasRequest, ...]) -> bool | None:
        """On the data-path thread: whether anyone answers for any of the addresses.

        None when this node cannot probe one of them (no covering interface, link down,
        held here): silence heard through a dead link is no evidence.
        """
        for request in requests:
            try:
                snapshot = self.netlink.snapshot(request.ip.version, request.interface)
                placement = decide_placement(request, snapshot)
            except errors.AliasError:
                return None
            if placement.already_held:
                return None
            result = self.announcer.probe(
                placement.interface, placement.mac, placement.address.ip, self.settings.probe_wait_s
            )
            if result.conflict_mac:
                return True
        return False

    # ------------------------------------------------------------------ report

    async def _report(self, observed: list[Observed], outcomes: Mapping[str, Outcome]) -> None:
        node = self.settings.node
        for obs in observed:
            outcome = outcomes.get(obs.name, Outcome())
            view = view_for(node, obs, outcome, self.now())
            if not (needs_write(obs.view_of(node), view) or (outcome.fresh and view is not None)):
                continue
            assert view is not None
            try:
                answer = await asyncio.to_thread(
                    self.kube.patch_aliasip_status, obs.name, patch_body(node, view)
                )
            except (ApiUnavailable, ApiError) as exc:
                log.warning(kv("report-failed", node=node, aliasip=obs.name, error=exc))
                continue
            if _newer(answer, self.objects.get(obs.name)):
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


def _lease_node(obj: Mapping[str, Any]) -> str | None:
    """The node an agent Lease is named for, or None for any other Lease."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    return name.removeprefix(AGENT_LEASE_PREFIX) if name.startswith(AGENT_LEASE_PREFIX) else None


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def run_agent(agent: Agent, stop: asyncio.Event) -> None:
    """Run until ``stop``; kept apart so tests can drive an Agent in-process."""
    with contextlib.suppress(asyncio.CancelledError):
        await agent.run(stop)
