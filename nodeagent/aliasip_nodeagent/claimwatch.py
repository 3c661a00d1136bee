"""Foreign claims on held addresses: listened for, defended or given up, and reported.

Rule (design.md, "Foreign claims are detected and reported while holding"): while this
agent holds an address, a frame from another MAC claiming it (``claims.claimer``) is
logged (``event=foreign-claim``), reported in this node's view as ``foreignClaim``
{mac, address, at, defended}, and answered as RFC 5227 2.4 (b) says (``claims.on_conflict``):
one defending announcement if no conflict came in the last 10 s, else this node ceases to
use the address: its rounds stop, the alias is deleted (only ours: a fresh snapshot's
marked addresses), and the hold reports ``error`` ``AddressInUse: <mac> claims <address>
...`` with ``holderHeard: true`` until a retry (``retries``, backed off, probing the wire
first) finds the address free again. A report is cleared 60 s after the last conflict.

Cheap by construction: one packet socket per interface that carries held aliases, opened
and closed as the holdings change (``update``, after every pass), with a kernel filter
that lets through only frames naming a held address (``claims.claim_filter``), read by
the event loop when readable (``loop.add_reader``: no thread, no polling).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from aliasip_api.status import ForeignClaim
from aliasip_nodeagent import errors
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.claims import (
    DEFEND_INTERVAL_S,
    FORGET_AFTER_S,
    Act,
    Conflicts,
    claimer,
    on_conflict,
    parse_frame,
)
from aliasip_nodeagent.dataplane import Netlink
from aliasip_nodeagent.hoststate import HeldAlias, IPAddress
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.reconcile import Observed
from aliasip_nodeagent.report import Outcome
from aliasip_nodeagent.retries import HoldRetries

log = logging.getLogger("aliasip.agent")


class Listener(Protocol):
    """What ``announce.ClaimSocket`` offers (a protocol, so no scapy is imported here)."""

    def fileno(self) -> int: ...
    def set_addresses(self, addresses: Sequence[IPAddress]) -> None: ...
    def read(self, limit: int = 64) -> list[bytes]: ...
    def close(self) -> None: ...


def _open_claim_socket(interface: str, addresses: Sequence[IPAddress]) -> Listener:
    from aliasip_nodeagent.announce import ClaimSocket

    return ClaimSocket(interface, addresses)


class ClaimWatch:
    """The agent's claim listener and its reactions; call only from the event loop."""

    def __init__(
        self,
        node: str,
        announcements: Announcements,
        retries: HoldRetries,
        netlink: Netlink,
        executor: Executor,
        dataplane: asyncio.Lock,
        changed: Callable[[], None],
        fenced: Callable[[], bool],
        now: Callable[[], datetime],
        open_socket: Callable[[str, Sequence[IPAddress]], Listener] = _open_claim_socket,
    ) -> None:
        self._node = node
        self._announcements = announcements
        self._retries = retries
        self._netlink = netlink
        self._executor = executor
        self._dataplane = dataplane
        self._changed = changed
        self._fenced = fenced
        self._now = now
        self._open = open_socket
        self._sockets: dict[str, Listener] = {}
        self._held: dict[IPAddress, HeldAlias] = {}
        self._episodes: dict[IPAddress, Conflicts] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._forget_wakes: dict[IPAddress, asyncio.TimerHandle] = {}

    # -- which interfaces and addresses -------------------------------------------------

    def update(self, held: Sequence[HeldAlias]) -> None:
        """Listen on exactly the interfaces that carry ``held`` (the kernel's truth after
        a pass), for exactly those addresses."""
        self._held = {h.address.ip: h for h in held}
        by_interface: dict[str, list[IPAddress]] = {}
        for h in held:
            by_interface.setdefault(h.interface, []).append(h.address.ip)
        for interface in list(self._sockets):
            if interface not in by_interface:
                self._close(interface)
        for interface, addresses in by_interface.items():
            sock = self._sockets.get(interface)
            try:
                if sock is None:
                    sock = self._open(interface, addresses)
                    self._sockets[interface] = sock
                    asyncio.get_running_loop().add_reader(sock.fileno(), self._readable, sock)
                else:
                    sock.set_addresses(addresses)
            except (errors.AliasError, OSError) as exc:
                log.warning(
                    kv("claim-listen-failed", node=self._node, interface=interface, error=exc)
                )

    def _close(self, interface: str) -> None:
        sock = self._sockets.pop(interface)
        asyncio.get_running_loop().remove_reader(sock.fileno())
        sock.close()

    def close(self) -> None:
        for interface in list(self._sockets):
            self._close(interface)
        for task in self._tasks:
            task.cancel()
        for handle in self._forget_wakes.values():
            handle.cancel()

    def listening(self) -> dict[str, list[IPAddress]]:
        """Interfaces listened on, and the addresses each listens for (for tests)."""
        found: dict[str, list[IPAddress]] = {}
        for ip, h in self._held.items():
            if h.interface in self._sockets:
                found.setdefault(h.interface, []).append(ip)
        return found

    # -- frames -------------------------------------------------------------------------

    def _readable(self, sock: Listener) -> None:
        try:
            frames = sock.read()
        except OSError as exc:  # a link that vanished: the next update closes the socket
            log.warning(kv("claim-read-failed", node=self._node, error=exc))
            return
        # Only addresses this agent holds *now* (the announcement gate is the holding
        # state: a released address is dropped from it before the kernel deletes it).
        gate = self._announcements.held()
        own = {ip: h.mac.lower() for ip, h in self._held.items() if ip in gate}
        for data in frames:
            heard = parse_frame(data)
            mac = claimer(heard, own) if heard is not None else None
            if heard is not None and mac is not None:
                self.conflict(heard.ip, mac)

    def conflict(self, address: IPAddress, mac: str) -> Act:
        """A claim on a held address was heard now: decide, log, act."""
        held = self._held.get(address)
        if held is None:
            return Act.NONE
        fenced = self._fenced()
        state, act = on_conflict(
            self._episodes.get(address), address, mac, time.monotonic(), self._now(), fenced=fenced
        )
        self._episodes[address] = state
        if act is Act.NONE:
            return act
        log.warning(
            kv(
                "foreign-claim",
                node=self._node,
                address=address,
                mac=mac,
                interface=held.interface,
                action=str(act),
                fenced=fenced or None,
            )
        )
        if act is Act.DEFEND:
            self._spawn(self._defend(held))
        else:
            self._spawn(self._cease(held, mac, fenced))
        # A pass right after the episode's end clears the report (one timer per address).
        known = self._forget_wakes.pop(address, None)
        if known is not None:
            known.cancel()
        loop = asyncio.get_running_loop()
        self._forget_wakes[address] = loop.call_later(FORGET_AFTER_S + 0.05, self._changed)
        return act

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _defend(self, held: HeldAlias) -> None:
        ip = held.address.ip
        sent = await self._announcements.defend(ip, held.interface, held.mac)
        log.info(kv("claim-defended", node=self._node, address=ip, frames=sent))
        self._changed()

    async def _cease(self, held: HeldAlias, mac: str, fenced: bool) -> None:
        """Stop using the address: rounds first, then our own alias in the kernel."""
        ip = held.address.ip
        why = (
            "while this node is cut off from the API"
            if fenced
            else (f"again within {DEFEND_INTERVAL_S:g} s of the last conflict (RFC 5227 2.4 (b))")
        )
        message = f"AddressInUse: {mac} claims {ip} on {held.interface} {why}; ceased to use it"
        self._announcements.revoke(ip, f"claimed by {mac}")
        self._retries.refused([ip], Outcome(error=message, heard=True, observed_at=self._now()))
        loop = asyncio.get_running_loop()
        async with self._dataplane:
            try:
                deleted = await loop.run_in_executor(self._executor, self._delete_own, ip)
            except (errors.AliasError, OSError) as exc:
                log.error(kv("release-failed", node=self._node, address=ip, error=exc))
                deleted = False
        log.warning(kv("release", node=self._node, address=ip, reason=message, changed=deleted))
        self._changed()

    def _delete_own(self, ip: IPAddress) -> bool:
        """On the data-path thread: delete our marked alias ``ip`` (never a foreign one)."""
        deleted = False
        for h in self._netlink.snapshot(ip.version).owned():
            if h.address.ip == ip:
                deleted = self._netlink.delete(h) or deleted
        return deleted

    # -- report -------------------------------------------------------------------------

    def annotate(self, obs: Observed, outcome: Outcome) -> Outcome:
        """``outcome`` with the current claim on one of ``obs``'s addresses, if any (the
        latest episode); episodes quiet for ``FORGET_AFTER_S`` are forgotten."""
        now = time.monotonic()
        self._episodes = {ip: e for ip, e in self._episodes.items() if e.current(now)}
        if obs.spec is None:
            return outcome
        wanted = {a.ip for a in obs.spec.addresses}
        episodes = [e for ip, e in self._episodes.items() if ip in wanted]
        if not episodes:
            return outcome
        e = max(episodes, key=lambda x: x.last_at)
        claim = ForeignClaim(
            mac=e.mac, address=str(e.address), at=e.started_wall, defended=e.defended
        )
        return replace(outcome, foreign_claim=claim)
