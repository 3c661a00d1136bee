"""Liveness and fencing: the agent's Lease, the cut-off state, and the guard while cut off.

One room of the agent (``daemon.Agent`` wires it):

- **lease**: renews the Lease ``aliasip-agent-<node>`` every ``renew_interval_s`` (at most
  once a second: the API-write budget), ``leaseDurationSeconds`` = ``lease_duration_s``; a
  graceful stop renews it once more with the handover annotation (``write_handover``);
- **cut off**: if no renewal succeeded for ``lease_duration_s - fence_margin_s``, the agent
  is cut off from the API. It keeps what it holds (docs/design.md: "a holder cut off from
  the API but not from the LAN keeps serving"; standbys hear it, so the operator does not
  move it, and an API restart never takes the aliases down) but acts on nothing new, since
  its view of the API is stale. Every ``GUARD_INTERVAL_S`` it probes the wire for each
  alias it holds: if another host answers for one, the operator has moved it (this node
  was also cut off the LAN for a while), and it is deleted at once. When a renewal
  succeeds again, the agent's ``resume`` reads afresh what it must and says whether the
  cut-off is over.

State owned here, on the event loop only: ``renewed_at``, ``fenced``, and the count of
broken AliasIP watches at the cut-off (``breaks_at_cut_off``: the resume compares it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from aliasip_nodeagent import errors
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.dataplane import Announce, Netlink
from aliasip_nodeagent.kube import ApiError, ApiUnavailable, KubeApi
from aliasip_nodeagent.logfmt import kv

log = logging.getLogger("aliasip.agent")
# While cut off from the API, the wire is probed for each held alias this often (not only
# every resync, 5 s as shipped): a LAN partition that keeps the carrier up (a dead uplink)
# is invisible to link events, and after it heals this probe is what ends two answers.
GUARD_INTERVAL_S = 1.0
# A graceful stop waits this long for the handover's Lease write, then stops without one.
HANDOVER_WRITE_TIMEOUT_S = 2.0
# A renewal asked for early (``renew_soon``) comes at least this long after the last one.
SOON_GAP_S = 0.2
IO = Callable[..., Awaitable[Any]]


class LeaseSettings(Protocol):
    @property
    def node(self) -> str: ...
    @property
    def lease_namespace(self) -> str: ...
    @property
    def lease_name(self) -> str: ...
    @property
    def lease_duration_s(self) -> int: ...
    @property
    def renew_interval_s(self) -> float: ...
    @property
    def fence_margin_s(self) -> float: ...
    @property
    def resync_interval_s(self) -> float: ...
    @property
    def probe_wait_s(self) -> float: ...


class Liveness:
    """The agent's Lease and its cut-off state."""

    def __init__(
        self,
        settings: LeaseSettings,
        kube: KubeApi,
        *,
        netlink: Netlink,
        announcer: Announce,
        announcements: Announcements,
        io: IO,
        dataplane: asyncio.Lock,
        now: Callable[[], datetime],
        acquired: Callable[[], None],
        resume: Callable[[], Awaitable[bool]],
        kernel_changed: Callable[[], None],
        watch_breaks: Callable[[], int],
        annotations: Callable[[], dict[str, str]] = dict,
        reconnected: Callable[[], None] = lambda: None,
    ) -> None:
        """``annotations``: the agent's own Lease annotations, written with each renewal
        (where it hears heartbeats, its mute window). ``reconnected``: called
        when a renewal succeeds after one failed (before any ``resume``): streams that
        outlived the failure may be late (docs/design.md, R1)."""
        self.settings = settings
        self.kube = kube
        self.netlink = netlink
        self.announcer = announcer
        self.announcements = announcements
        self._io = io
        self._dataplane = dataplane
        self.now = now
        self._acquired = acquired
        self._resume = resume
        self._kernel_changed = kernel_changed
        self._watch_breaks = watch_breaks
        self._annotations = annotations
        self._reconnected = reconnected
        self._failing = False  # the last renewal failed
        self._soon = asyncio.Event()  # renew now: an annotation changed (``renew_soon``)
        self.fenced = False
        self.renewed_at: float | None = None
        self.started_at = time.monotonic()
        self.breaks_at_cut_off = 0

    async def renew(self, handover_until: datetime | None = None) -> None:
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
            self._annotations(),
        )

    async def write_handover(self, until: datetime) -> bool:
        """The Lease, renewed with the handover annotation; False if the API refused."""
        try:
            await asyncio.wait_for(self.renew(until), timeout=HANDOVER_WRITE_TIMEOUT_S)
        except (ApiUnavailable, ApiError, TimeoutError) as exc:
            log.warning(kv("lease-renew-failed", node=self.settings.node, error=exc or "timed out"))
            return False
        return True

    async def run_lease(self) -> None:
        s = self.settings
        while True:
            started = time.monotonic()
            try:
                await self.renew()
            except (ApiUnavailable, ApiError) as exc:
                log.warning(kv("lease-renew-failed", node=s.node, error=exc))
                self._failing = True
            else:
                if self._failing or self.fenced:  # fenced: this one may have waited out the cut
                    self._failing = False
                    self._reconnected()
                first = self.renewed_at is None
                self.renewed_at = started
                if first:
                    log.info(kv("lease-acquired", node=s.node, lease=s.lease_name))
                    self._acquired()
                if self.fenced and await self._resume():
                    self.fenced = False
            await self._pause(started)

    def renew_soon(self) -> None:
        """Renew now rather than at the next interval: an annotation changed that others
        act on (a node proven silent). At most one extra write per ``SOON_GAP_S``."""
        self._soon.set()

    async def _pause(self, started: float) -> None:
        """Until the next renewal: the interval, or earlier when asked (``renew_soon``)."""
        due = started + self.settings.renew_interval_s
        try:
            await asyncio.wait_for(self._soon.wait(), max(0.0, due - time.monotonic()))
        except TimeoutError:
            return
        self._soon.clear()
        await asyncio.sleep(max(0.0, started + SOON_GAP_S - time.monotonic()))

    def fence_deadline(self) -> float:
        s = self.settings
        base = self.renewed_at if self.renewed_at is not None else self.started_at
        return base + s.lease_duration_s - s.fence_margin_s

    async def run_fence(self) -> None:
        while True:
            left = self.fence_deadline() - time.monotonic()
            if left > 0:
                await asyncio.sleep(max(left, 0.05))
                continue
            if not self.fenced:
                self.cut_off()
            await self.guard_held()
            await asyncio.sleep(min(self.settings.resync_interval_s, GUARD_INTERVAL_S))

    def cut_off(self) -> None:
        """No renewal for too long: stop acting on a stale view; keep what is held."""
        self.fenced = True
        self.breaks_at_cut_off = self._watch_breaks()
        log.warning(
            kv(
                "api-lost",
                node=self.settings.node,
                note="the Lease could not be renewed: keeping the aliases held here, acting "
                "on nothing new, probing the wire for another holder",
            )
        )

    async def guard_held(self) -> None:
        """While cut off: delete each held alias another host answers for on the wire."""
        node = self.settings.node
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
                    self._kernel_changed()
                    await self._io(self.netlink.delete, h)
                except (errors.AliasError, OSError) as exc:
                    log.error(kv("guard-failed", node=node, address=h.address, error=exc))
                    continue
                log.warning(
                    kv(
                        "release",
                        node=node,
                        address=h.address,
                        reason=f"{result.conflict_mac} answers for it while this node is cut "
                        "off from the API: the operator moved it",
                    )
                )
