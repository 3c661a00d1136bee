"""The dead-man switch: a node's kernel keeps an alias only while its agent lives.

docs/design.md, R9. Every alias is added with a kernel lifetime (``valid_lft`` and
``preferred_lft``) of ``lifetime_s`` seconds (1 as shipped), and this room renews the
lifetime of every alias the kernel carries with our mark ``RENEWALS_PER_LIFETIME`` times
per lifetime from the event loop (the renewals run on the loop, the mute's refresher in
a thread of its own: a loop stalled for 0.75 s while the refresher runs keeps its
aliases), whether or not the API answers (an API outage must never take an alias down).
If the agent dies or cannot run (SIGKILL, SIGSTOP, a hung loop), nobody renews and the
kernel deletes the aliases itself within ``expiry_window_s``: the lifetime plus the
kernel's own expiry check (measured on Linux 6.18: at most 0.05 s late for IPv4, 0.65 s
for IPv6). So a node whose agent cannot act stops answering on its own, and a standby
that has heard it silent for that long knows its cable returning cannot make it answer
again (``silence``). The price: an agent that is down for longer than its lifetime takes
its aliases with it (a failover follows if it stays down), exactly as a Pacemaker node
whose cluster stack dies is fenced.

A graceful stop (SIGTERM: a DaemonSet roll-out) *hands over*: the Lease is written with
the annotation ``aliasip.io/handover-until`` first, and only once that write succeeded
is every alias given a lifetime reaching that moment. The next agent adopts them without
a blip (its first renewal shortens them again), and standbys do not call the node silent
before the handover ends. If the write fails, no lifetime is extended: the aliases
expire as after a crash (safe, a blip at most).

One owner: only this room extends lifetimes; the netlink call reads and renews in one
step on the data-path thread, so an alias deleted by another room is never revived.

The fine switch (``mute``, nftables, 200 ms as shipped) is run from here too: its refresher
thread is started once the adopted aliases are sorted out (``adopt``: one a previous
agent let expire is deleted, never revived), stopped before a handover (which extends
it with the lifetimes), and an alias it reports expired after a stall is deleted here
(``forget_muted``) so that a pass adds it again only after a fresh read and a probe.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aliasip_nodeagent import errors
from aliasip_nodeagent.dataplane import AgentNetlink
from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.mute import IPAddress, KernelMute, Refresher
from aliasip_nodeagent.nft import NftError

log = logging.getLogger("aliasip.agent.deadman")
IO = Callable[..., Awaitable[Any]]
RENEWALS_PER_LIFETIME = 4
# How late the kernel may delete an expired address after its lifetime (its periodic
# address check: measured at most 0.65 s for IPv6, 0.05 s for IPv4), with room to spare.
EXPIRY_MARGIN_S = 1.0


def expiry_window_s(lifetime_s: int) -> float:
    """How long after its last renewal a dead agent's alias may still answer."""
    return lifetime_s + EXPIRY_MARGIN_S


class DeadMan:
    """Renews the kernel lifetime of the aliases this node holds while the agent runs."""

    def __init__(
        self,
        node: str,
        netlink: AgentNetlink,
        io: IO,
        lifetime_s: int,
        fewer: Callable[[], None] | None = None,
        mute: KernelMute | None = None,
        dataplane: asyncio.Lock | None = None,
    ) -> None:
        """``fewer`` is called when a renewal finds fewer aliases than the one before: one
        went behind the reconcile's back (expired after a stall, deleted by hand), and a
        pass should look now, not at the next resync. ``mute``: the fine switch, or None;
        ``dataplane``: the agent's data-path lock, held while muted aliases are deleted."""
        if lifetime_s < 1:
            raise ValueError("the address lifetime is a whole number of seconds, at least 1")
        self.node = node
        self.netlink = netlink
        self._io = io
        self.lifetime_s = lifetime_s
        self._fewer = fewer
        self._failing = False
        self._last_count = 0
        # When a renewal last succeeded (monotonic): the kernel answers (health's /readyz).
        self.renewed_at: float | None = None
        self.mute = mute
        self._dataplane = dataplane if dataplane is not None else asyncio.Lock()
        self._refresher: Refresher | None = None
        self._tasks: set[asyncio.Task[int]] = set()

    @property
    def interval_s(self) -> float:
        return self.lifetime_s / RENEWALS_PER_LIFETIME

    async def renew(self, lifetime_s: int | None = None) -> int | None:
        """One renewal of every marked alias; how many, or None when the kernel refused
        (logged when it starts failing and when it recovers, not every time)."""
        try:
            count: int = await self._io(self.netlink.renew_lifetimes, lifetime_s)
        except (errors.AliasError, OSError) as exc:
            if not self._failing:
                log.error(kv("lifetime-renew-failed", node=self.node, error=exc))
            self._failing = True
            return None
        if self._failing:
            log.info(kv("lifetime-renewed", node=self.node, aliases=count))
        self._failing = False
        self.renewed_at = time.monotonic()
        if count < self._last_count and self._fewer is not None:
            self._fewer()
        self._last_count = count
        return count

    async def run(self) -> None:
        """Renew until cancelled; each renewal is timed from the start of the last, so a
        slow kernel call does not stretch the gap beyond one interval."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.renew()
            await asyncio.sleep(max(0.0, started + self.interval_s - loop.time()))

    async def adopt(self) -> int:
        """At start, before any renewal: keep (in the fine switch) what the kernel carries
        with our mark, and delete what a previous agent let expire there; how many were
        deleted."""
        if self.mute is None:
            return 0
        mute = self.mute

        def adopt() -> list[HeldAlias]:
            held = self.netlink.snapshot().owned()
            muted = set(mute.adopt(h.address.ip for h in held))
            return [h for h in held if h.address.ip in muted]

        async with self._dataplane:
            try:
                muted = await self._io(adopt)
            except NftError as exc:
                log.error(kv("mute-adopt-failed", node=self.node, error=exc))
                return 0
            return await self._delete(muted, "muted before this agent started (not adopted)")

    def start_muting(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the fine switch's refresher thread (after ``adopt``)."""
        if self.mute is None or self._refresher is not None:
            return

        def lost(ips: list[IPAddress]) -> None:
            loop.call_soon_threadsafe(self._schedule_forget, ips)

        self._refresher = Refresher(self.node, self.mute, lost)
        self._refresher.start()

    def stop_muting(self) -> None:
        if self._refresher is not None:
            self._refresher.stop()
            self._refresher = None

    def _schedule_forget(self, ips: list[IPAddress]) -> None:
        task = asyncio.get_running_loop().create_task(self.forget_muted(ips))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def forget_muted(self, ips: list[IPAddress]) -> int:
        """Delete the aliases the fine switch muted after a stall: this agent can no
        longer vouch for them (a standby may hold them by now)."""
        wanted = set(ips)
        async with self._dataplane:
            held = (await self._io(self.netlink.snapshot)).owned()
            return await self._delete(
                [h for h in held if h.address.ip in wanted],
                "muted: not refreshed within the dead-man window (this agent stalled)",
            )

    async def _delete(self, held: list[HeldAlias], reason: str) -> int:
        """Delete ``held`` (the caller holds the data-path lock); how many went."""
        gone = 0
        for alias in held:
            try:
                await self._io(self.netlink.delete, alias)
            except errors.AliasError as exc:
                log.error(kv("release-failed", node=self.node, address=alias.address, error=exc))
                continue
            gone += 1
            log.info(kv("release", node=self.node, address=alias.address, reason=reason))
        if held and self._fewer is not None:
            self._fewer()
        return gone

    async def hand_over(
        self,
        now: Callable[[], datetime],
        handover_s: int,
        write_lease: Callable[[datetime], Awaitable[bool]],
    ) -> bool:
        """A graceful stop: announce the handover in the Lease, then let the aliases live
        until it ends. True if handed over; False leaves the lifetimes as they are.

        The kernel's lifetime is counted after the write returned, in whole seconds that
        end no later than the moment the Lease announced.
        """
        if handover_s <= 0:
            return False
        until = now() + timedelta(seconds=handover_s)
        if not await write_lease(until):
            log.warning(
                kv(
                    "handover-failed",
                    node=self.node,
                    note="the Lease could not be written: the aliases expire as after a crash",
                )
            )
            return False
        left = math.floor((until - now()).total_seconds())
        if left < 1:
            return False  # the write took the whole handover: nothing left to extend
        if self.mute is not None:
            self.stop_muting()
            try:
                await self._io(self.mute.extend, left)
            except NftError as exc:
                log.warning(kv("handover-mute-failed", node=self.node, error=exc))
        renewed = await self.renew(left)
        log.info(kv("handover", node=self.node, until=until.isoformat(), aliases=renewed))
        return renewed is not None
