"""Announcements belong to holding: the one owner of every round the agent sends.

Rule (design.md, "Announcements belong to holding"): an announcement round for an address
is sent only while this agent holds that address for that AliasIP at that epoch; a
release, a delete of the AliasIP, or a newer epoch stops its rounds at once. (A hold on
a direct handoff, R11, is held at the release step's epoch, which names no node but this
one as successor.)

How it is kept:

- ``Gate`` is the agent's holding state for announcements: address → ``Token`` (the
  AliasIP's uid and the epoch it is held at). It is checked on the data-path thread under
  its lock *immediately before each frame is sent* (``Gate.send_if``), and changed on the
  event loop under the same lock, so once ``revoke`` returns no frame for that address can
  leave any more, whatever round was already queued on the data-path thread;
- ``Announcements`` schedules the rounds, keyed by *address* (not by AliasIP: the release
  of an address whose AliasIP was deleted has no AliasIP, and its rounds must stop too).
  The daemon tells it what the plan holds (``follow``: every address not held at the
  planned token is revoked), what a hold is adding (``holding``: the token, and a gated
  announcer for the first round), and what each watch event makes stale (``on_event``: a
  deleted AliasIP, another node named, a newer epoch), before any kernel change;
- the first round of a hold is sent by ``dataplane.apply_alias`` through the gated
  announcer; the remaining ``spec.announce`` rounds (``start``), the periodic refresh
  (``refresh``) and a claim's defence (``defend``) go through the gate as well.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from aliasip_api.succession import succession_of
from aliasip_nodeagent import errors
from aliasip_nodeagent.dataplane import Announce, ProbeOutcome
from aliasip_nodeagent.hoststate import IPAddress
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.placement import Placement
from aliasip_nodeagent.reconcile import Hold, Plan

log = logging.getLogger("aliasip.agent")


@dataclass(frozen=True)
class Token:
    """Who an address is held for: the AliasIP's uid (its life) and the epoch."""

    key: str
    epoch: int

    @classmethod
    def of(cls, h: Hold) -> Token:
        return cls(h.key, h.epoch)


class Gate:
    """address → Token, shared by the event loop (writes) and the data-path thread (reads
    right before sending). Invariant: ``send_if`` sends only while the address maps to the
    caller's token, and no ``send_if`` is in flight once ``drop`` has returned."""

    def __init__(self, vouched: Callable[[IPAddress], bool] = lambda _ip: True) -> None:
        """``vouched``: whether the dead-man switch still lets this node speak for an
        address (``mute.KernelMute.vouched``); asked right before each frame too."""
        self._lock = threading.Lock()
        self._tokens: dict[IPAddress, Token] = {}
        self._vouched = vouched

    def set(self, address: IPAddress, token: Token) -> None:
        with self._lock:
            self._tokens[address] = token

    def drop(self, address: IPAddress) -> Token | None:
        with self._lock:
            return self._tokens.pop(address, None)

    def token(self, address: IPAddress) -> Token | None:
        with self._lock:
            return self._tokens.get(address)

    def may_send(self, address: IPAddress, token: Token) -> bool:
        with self._lock:
            return self._tokens.get(address) == token

    def send_if(self, address: IPAddress, token: Token, send: Callable[[], int]) -> int:
        """``send()`` if ``address`` is held at ``token`` now (the lock is held while it
        runs: a frame takes microseconds); 0 frames otherwise."""
        with self._lock:
            if self._tokens.get(address) != token or not self._vouched(address):
                return 0
            return send()

    def addresses(self) -> dict[IPAddress, Token]:
        with self._lock:
            return dict(self._tokens)


class GatedAnnouncer:
    """An ``Announce`` whose ``announce`` sends only while the gate holds the address at
    ``token`` (``dataplane.apply_alias``'s first round); ``probe`` is passed through."""

    def __init__(self, inner: Announce, gate: Gate, token: Token) -> None:
        self._inner = inner
        self._gate = gate
        self._token = token

    def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
        return self._gate.send_if(ip, self._token, lambda: self._inner.announce(interface, mac, ip))

    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> ProbeOutcome:
        return self._inner.probe(interface, mac, ip, wait_s)


def _successor(node: str, status: Mapping[str, Any]) -> bool:
    """Whether ``status`` names ``node`` the successor of its release step: it may hold
    on a direct handoff at that epoch (R11), and announce what it holds."""
    named = succession_of(status)
    return named is not None and named.to_node == node


class Announcements:
    """Schedules and sends every announcement round of the agent (see the module doc).

    Call only from the event loop; frames are sent on ``executor`` (the data-path thread).
    """

    def __init__(
        self,
        announcer: Announce,
        executor: Executor,
        node: str,
        vouched: Callable[[IPAddress], bool] = lambda _ip: True,
    ) -> None:
        self.announcer = announcer
        self.gate = Gate(vouched)
        self._executor = executor
        self._node = node
        self._tasks: dict[IPAddress, asyncio.Task[None]] = {}
        self._refreshed: dict[IPAddress, float] = {}

    # -- holding state ------------------------------------------------------------------

    def follow(self, p: Plan) -> None:
        """A new plan: revoke every address it does not hold at the same token (and every
        address it releases, also one re-held with another prefix), then record the
        adopted holds (already in the kernel exactly as wanted)."""
        planned = {r.ip: Token.of(h) for h in p.holds for r in h.requests}
        released = {r.held.address.ip for r in p.releases}
        for address, token in self.gate.addresses().items():
            if address in released or planned.get(address) != token:
                self.revoke(address, "no longer held at this epoch")
        for h in p.holds:
            if h.adopt:
                for r in h.requests:
                    if r.ip not in released:
                        self.gate.set(r.ip, Token.of(h))

    def holding(self, h: Hold) -> GatedAnnouncer:
        """``h`` is being held now: record its token; the announcer for its first round."""
        token = Token.of(h)
        for r in h.requests:
            if self.gate.token(r.ip) != token:
                self.revoke(r.ip, "held again at another epoch")
            self.gate.set(r.ip, token)
        return GatedAnnouncer(self.announcer, self.gate, token)

    def revoke(self, address: IPAddress, reason: str) -> None:
        """Stop every round for ``address`` now (before the kernel deletes it)."""
        token = self.gate.drop(address)
        task = self._tasks.pop(address, None)
        self._refreshed.pop(address, None)
        if task is not None and not task.done():
            task.cancel()
            log.info(
                kv(
                    "announce-stopped",
                    node=self._node,
                    address=address,
                    epoch=token.epoch if token else None,
                    reason=reason,
                )
            )

    def revoke_key(self, key: str, reason: str) -> None:
        """Stop the rounds of every address held for the AliasIP with uid ``key``."""
        for address, token in self.gate.addresses().items():
            if token.key == key:
                self.revoke(address, reason)

    def on_event(self, node: str, kind: str | None, obj: Mapping[str, Any]) -> None:
        """A watch event, on arrival (before any pass): a deleted AliasIP, one that names
        another node at our epoch or later, or one at a newer epoch stops the rounds of
        what this node holds for it at once. Older epochs are stale events: ignored."""
        metadata = obj.get("metadata") or {}
        key = str(metadata.get("uid") or metadata.get("name") or "")
        held = [t for t in self.gate.addresses().values() if t.key == key]
        if not held:
            return
        if kind == "DELETED":
            self.revoke_key(key, "the AliasIP was deleted")
            return
        status = obj.get("status") or {}
        epoch, active = status.get("epoch"), status.get("activeNode")
        if not isinstance(epoch, int):
            return
        ours = max(t.epoch for t in held)
        if epoch > ours:
            self.revoke_key(key, f"epoch {epoch} is newer")
        elif epoch == ours and active != node and not _successor(node, status):
            self.revoke_key(key, f"status names {active or 'no node'}")

    def held(self) -> dict[IPAddress, Token]:
        return self.gate.addresses()

    # -- rounds -------------------------------------------------------------------------

    def start(self, h: Hold, placements: Sequence[Placement]) -> None:
        """The remaining ``spec.announce`` rounds of a hold whose first round was sent."""
        token = Token.of(h)
        now = time.monotonic()
        for p in placements:
            ip = p.address.ip
            old = self._tasks.pop(ip, None)
            if old is not None:
                old.cancel()
            self._refreshed[ip] = now
            if h.announce_count > 1:
                self._tasks[ip] = asyncio.create_task(
                    self._repeat(token, p, h.announce_count - 1, h.announce_interval_s),
                    name=f"announce-{ip}",
                )

    async def refresh(self, h: Hold, placements: Sequence[Placement], every_s: float) -> None:
        """One round for each address not announced in the last ``every_s`` (a held alias
        is re-announced now and then, keepalived's ``vrrp_garp_master_refresh``)."""
        token = Token.of(h)
        now = time.monotonic()
        due = [p for p in placements if now - self._refreshed.get(p.address.ip, -1e18) >= every_s]
        for p in due:
            self._refreshed[p.address.ip] = now
            await self._round(token, p)

    async def defend(self, address: IPAddress, interface: str, mac: str) -> int:
        """One announcement of a held address (RFC 5227 2.4 (b)); 0 frames if not held."""
        token = self.gate.token(address)
        if token is None:
            return 0
        return await self._send(token, address, interface, mac)

    async def _repeat(self, token: Token, p: Placement, rounds: int, interval_s: float) -> None:
        for _ in range(rounds):
            await asyncio.sleep(interval_s)
            if not self.gate.may_send(p.address.ip, token):
                return
            await self._round(token, p)

    async def _round(self, token: Token, p: Placement) -> None:
        await self._send(token, p.address.ip, p.interface, p.mac)

    async def _send(self, token: Token, address: IPAddress, interface: str, mac: str) -> int:
        """One round on the data-path thread, checked against the gate right before it."""

        def send() -> int:
            return self.gate.send_if(
                address, token, lambda: self.announcer.announce(interface, mac, address)
            )

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, send)
        except (errors.AliasError, OSError) as exc:
            # The address stays: an announcement is a courtesy to the neighbours' caches.
            log.warning(kv("announce-failed", node=self._node, address=address, error=exc))
            return 0

    async def close(self) -> None:
        """Cancel every round (the agent stops; what it holds stays, see ``daemon``)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
