"""The fine dead-man switch: nftables mutes a node's held aliases the moment its agent
stops vouching.

docs/design.md, R9. The coarse switch (``deadman``) gives every alias a kernel lifetime of
whole seconds, expired by the kernel's periodic check: a dead or frozen agent's alias may
answer for up to 2 s. This one answers in a fraction of that. Each alias this node holds
is an element of the nftables set ``held4``/``held6``; the node's agent keeps one
element of the set ``alive`` (one per table) with a timeout of ``window_ms`` (200 ms as
shipped: heartbeat interval x (misses - 1)), refreshed ``REFRESHES_PER_WINDOW`` times per
window from a thread of its own. The rules drop, for an address held while ``alive`` is
empty: ARP sent with it as sender (replies, announcements), IPv4/IPv6 sent from it (a
neighbour advertisement carries the target as its source) and traffic addressed to it.
So a node whose agent cannot run stops answering for its aliases within the window; the
addresses themselves leave with their lifetime, later.

**One element for the node, not one per alias.** All of a node's aliases were refreshed
in one transaction anyway, so they always muted together; an element per alias only made
each refresh cost more with every alias held (the kernel's transaction work grows with
the elements changed: 0.46 ms for 11 aliases and 0.78 ms for 50, against 0.33 ms for the
node's one, spaced 50 ms apart as the refresher spaces them).

**Nothing muted comes back on its own.** A refresh deletes the ``alive`` element and adds
it again in one transaction; deleting an element that expired fails, and the whole
transaction with it: a thawed agent cannot revive an alias a standby may have taken over
meanwhile. Every kept alias is then reported ``lost`` and deleted; a reconcile pass adds
one again only after a fresh read and a probe (R1), as after any loss. ``keep`` of a new
alias refreshes ``alive`` in the same transaction, so it fails too while a stall's aliases
are still held; ``alive`` is created afresh only while nothing is held here at all
(``_kept`` and ``_muted`` empty: the muted ones deleted from the kernel and forgotten).

**Nor does the agent speak for a muted alias.** Gratuitous ARPs and neighbour
advertisements leave through packet sockets, which nftables never sees; the announcement
gate therefore asks ``vouched`` before each frame: kept, and refreshed within the window
(less a margin) by this agent's own clock, so a frame queued before a freeze is not sent
after the thaw, before the refresher has noticed the expiry.

The set elements change over raw netlink (``nftset``: a refresh costs a fraction of
libnftables's); the ruleset and the reads at start go through libnftables (``nft``).

One owner: ``KernelMute`` holds the kept addresses, the muted ones not yet forgotten and
the start of the last good refresh (under a lock: the data-path thread keeps and forgets,
the refresher thread refreshes, the announcement gate reads); each thread has its own
netlink socket and libnftables context.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Iterable

from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.nft import Nft, NftError
from aliasip_nodeagent.nftset import ElementOp, ElementSocket

log = logging.getLogger("aliasip.agent.mute")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TABLE = "aliasip_deadman"
ALIVE = "alive"
# Four refreshes per window: a refresh may come three quarters of a window late (150 ms
# as shipped) before the node mutes. Session 10 tried half-window refreshes (100 ms of
# slack, half the thread's 0.67 % of a core at 10 x 200): the scale lab's creation, on a
# loaded host, muted three nodes' aliases instead of one. An agent that loses its aliases
# to its own stall is a false failover; a third of a percent of a core is not worth it.
REFRESHES_PER_WINDOW = 4
# A window shorter than this leaves too little room for a refresh (a fraction of a ms
# each, but a thread can be late by tens of ms on a loaded node) before the alias mutes.
MIN_WINDOW_MS = 50
# A frame is announced only this long before the window of its last refresh runs out.
VOUCH_MARGIN_S = 0.02
# The ``alive`` elements' keys: a value every packet the rules look at carries, so the
# lookup asks only whether the element is there. ARP: the protocol address length of
# IPv4 over Ethernet (``arp plen``, 4); inet: the packet's family (``meta nfproto``).
ARP_PLEN_IPV4 = 4
NFPROTO_IPV4 = 2
NFPROTO_IPV6 = 10
ALIVE_KEYS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("arp", (ARP_PLEN_IPV4,)),
    ("inet", (NFPROTO_IPV4, NFPROTO_IPV6)),
)


HOOK = "type filter hook {} priority {}; policy accept;"


def ruleset() -> str:
    """The tables, sets and rules, as one idempotent transaction: tables, sets and chains
    are added if missing (their elements kept: an agent that restarts adopts what the last
    one kept live), the chains' rules replaced."""
    return "\n".join(
        [
            f"add table arp {TABLE}",
            f"add set arp {TABLE} held4 {{ type ipv4_addr; }}",
            f"add set arp {TABLE} {ALIVE} {{ typeof arp plen; flags timeout; }}",
            f"add chain arp {TABLE} out {{ {HOOK.format('output', 0)} }}",
            f"flush chain arp {TABLE} out",
            f"add rule arp {TABLE} out arp saddr ip @held4 arp plen != @{ALIVE} drop",
            f"add table inet {TABLE}",
            f"add set inet {TABLE} held4 {{ type ipv4_addr; }}",
            f"add set inet {TABLE} held6 {{ type ipv6_addr; }}",
            f"add set inet {TABLE} {ALIVE} {{ typeof meta nfproto; flags timeout; }}",
            f"add chain inet {TABLE} in {{ {HOOK.format('input', -150)} }}",
            f"add chain inet {TABLE} out {{ {HOOK.format('output', -150)} }}",
            f"flush chain inet {TABLE} in",
            f"flush chain inet {TABLE} out",
            f"add rule inet {TABLE} in ip daddr @held4 meta nfproto != @{ALIVE} drop",
            f"add rule inet {TABLE} in ip6 daddr @held6 meta nfproto != @{ALIVE} drop",
            f"add rule inet {TABLE} out ip saddr @held4 meta nfproto != @{ALIVE} drop",
            f"add rule inet {TABLE} out ip6 saddr @held6 meta nfproto != @{ALIVE} drop",
        ]
    )


def refresh_interval_s(window_ms: int) -> float:
    """Seconds between refreshes of a ``window_ms`` window."""
    return window_ms / 1000 / REFRESHES_PER_WINDOW


def _held_sets(ip: IPAddress) -> list[tuple[str, str]]:
    """(family, held set) of every table an address of this version is in."""
    if ip.version == 4:
        return [("arp", "held4"), ("inet", "held4")]
    return [("inet", "held6")]


def refresh_ops(timeout_ms: int) -> list[ElementOp]:
    """Delete the ``alive`` elements and add them again with a new timeout: one
    transaction, which fails as a whole if one expired (or was never there)."""
    ops = []
    for family, keys in ALIVE_KEYS:
        ops.append(ElementOp("delete", family, TABLE, ALIVE, keys))
        ops.append(ElementOp("add", family, TABLE, ALIVE, keys, timeout_ms))
    return ops


def revive_ops(timeout_ms: int) -> list[ElementOp]:
    """The ``alive`` elements live for ``timeout_ms`` from now, whether or not they were
    there (an ``add`` of an element already there changes nothing, so it is added,
    deleted and added again with the new timeout): only while nothing is held."""
    ops = []
    for family, keys in ALIVE_KEYS:
        ops.append(ElementOp("add", family, TABLE, ALIVE, keys, timeout_ms))
        ops.append(ElementOp("delete", family, TABLE, ALIVE, keys))
        ops.append(ElementOp("add", family, TABLE, ALIVE, keys, timeout_ms))
    return ops


def hold_ops(ip: IPAddress) -> list[ElementOp]:
    return [ElementOp("add", family, TABLE, held, (ip,)) for family, held in _held_sets(ip)]


class KernelMute:
    """The kept addresses and the kernel's sets that mute them when not refreshed."""

    def __init__(
        self, window_ms: int, nft: Nft | None = None, elements: ElementSocket | None = None
    ) -> None:
        """``nft`` and ``elements``: the data-path thread's (made here if not given)."""
        if window_ms < MIN_WINDOW_MS:
            raise ValueError(f"the mute window is at least {MIN_WINDOW_MS} ms")
        self.window_ms = window_ms
        self._nft = nft if nft is not None else Nft()
        self._elements = elements if elements is not None else ElementSocket()
        self._lock = threading.Lock()
        self._kept: set[IPAddress] = set()
        # Reported lost by a failed refresh, still held in the kernel until forgotten:
        # while any is, ``alive`` is never created afresh.
        self._muted: set[IPAddress] = set()
        self._since: float | None = None  # monotonic start of the last good refresh

    @property
    def interval_s(self) -> float:
        return refresh_interval_s(self.window_ms)

    def install(self) -> None:
        self._nft.run(ruleset())

    def kept(self) -> frozenset[IPAddress]:
        with self._lock:
            return frozenset(self._kept)

    def vouched(self, ip: IPAddress) -> bool:
        """Whether this agent may speak for ``ip`` now: kept, and live for a while yet."""
        with self._lock:
            since = self._since if ip in self._kept else None
        until = None if since is None else since + self.window_ms / 1000 - VOUCH_MARGIN_S
        return until is not None and time.monotonic() < until

    def keep(self, ip: IPAddress) -> None:
        """Before ``ip`` is added: held, and the node live for a whole window from now.
        NftError while a stall's muted aliases are still held here."""
        with self._lock:
            started = time.monotonic()
            fresh = not self._kept and not self._muted
            ops = hold_ops(ip) + (revive_ops if fresh else refresh_ops)(self.window_ms)
            self._elements.run(ops)
            self._kept.add(ip)
            self._since = started

    def forget(self, ip: IPAddress) -> None:
        """After ``ip`` left the kernel: no longer held (nothing to mute or refresh)."""
        with self._lock:
            self._kept.discard(ip)
            self._muted.discard(ip)
        deletes = [
            ElementOp("delete", family, TABLE, held, (ip,)) for family, held in _held_sets(ip)
        ]
        try:  # one transaction: the common case (every element there) on a move's path
            self._elements.run(deletes)
        except NftError:  # one was not there: each on its own
            for op in deletes:
                with contextlib.suppress(NftError):  # not there: nothing to forget
                    self._elements.run([op])

    def sync(self, present: Iterable[IPAddress]) -> None:
        """Forget every kept or muted address the kernel no longer carries (deleted by any
        room, expired): ``present`` is what the lifetime renewal just read."""
        here = set(present)
        with self._lock:
            gone = (self._kept | self._muted) - here
        for ip in gone:
            self.forget(ip)

    def muted(self, ip: IPAddress) -> bool:
        """Held here while the node is not live: muted, by an expiry (a previous agent's)."""
        return self._held(ip) and not self._alive()

    def _held(self, ip: IPAddress) -> bool:
        for family, held in _held_sets(ip):
            try:
                self._nft.run(f"get element {family} {TABLE} {held} {{ {ip} }}")
            except NftError:
                return False
        return True

    def _alive(self) -> bool:
        try:
            for family, keys in ALIVE_KEYS:
                self._nft.run(f"get element {family} {TABLE} {ALIVE} {{ {keys[0]} }}")
        except NftError:
            return False
        return True

    def adopt(self, present: Iterable[IPAddress]) -> list[IPAddress]:
        """At start: keep what the kernel carries with our mark, unless a previous agent
        let the node's ``alive`` expire while holding it: then what it held is muted, and
        all of it is returned (for the caller to delete, never revived; held as muted
        until forgotten). An address with our mark that was never held here (added with
        the mute off, or by the CLI) is kept, or returned too if anything is muted:
        ``alive`` is not revived while a muted alias is held."""
        ips = sorted(present, key=lambda a: (a.version, a))
        if not ips:
            return []
        alive = self._alive()
        muted = [ip for ip in ips if not alive and self._held(ip)]
        if muted:
            with self._lock:
                self._muted.update(muted)
            return ips
        for ip in ips:
            self.keep(ip)
        return []

    def refresh(self, elements: ElementSocket, timeout_ms: int | None = None) -> list[IPAddress]:
        """Refresh the node's ``alive`` (through ``elements``, the calling thread's socket)
        while anything is kept; when it had expired, every kept address (muted: never
        revived, reported once, held as muted until forgotten)."""
        timeout = self.window_ms if timeout_ms is None else timeout_ms
        with self._lock:
            if not self._kept:
                return []
            started = time.monotonic()
            try:
                elements.run(refresh_ops(timeout))
            except NftError:
                expired = sorted(self._kept, key=lambda a: (a.version, a))
                self._muted.update(self._kept)
                self._kept.clear()
                self._since = None
                return expired
            self._since = started
            return []

    def extend(self, seconds: int) -> list[IPAddress]:
        """A graceful stop's handover: every kept address live for ``seconds``."""
        return self.refresh(self._elements, seconds * 1000)

    def close(self) -> None:
        self._nft.close()
        self._elements.close()


class Refresher:
    """The thread that keeps the kept addresses live, every ``mute.interval_s``; an
    expired one goes to ``lost`` (called in this thread)."""

    def __init__(
        self, node: str, mute: KernelMute, lost: Callable[[list[IPAddress]], None]
    ) -> None:
        self.node = node
        self.mute = mute
        self._lost = lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mute", daemon=True)
        self.refreshes = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        elements = ElementSocket()
        try:
            next_at = time.monotonic()
            while not self._stop.is_set():
                expired = self.mute.refresh(elements)
                self.refreshes += 1
                if expired:
                    log.warning(
                        kv(
                            "muted",
                            node=self.node,
                            addresses=",".join(map(str, expired)),
                            note="not refreshed within the dead-man window (a stall): "
                            "the kernel stopped answering for them; deleted, and added "
                            "again only after a fresh read and a probe",
                        )
                    )
                    self._lost(expired)
                next_at = max(next_at + self.mute.interval_s, time.monotonic())
                self._stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            elements.close()
