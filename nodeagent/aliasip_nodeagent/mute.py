"""The fine dead-man switch: nftables mutes a held alias the moment its agent stops vouching.

docs/design.md, R9. The coarse switch (``deadman``) gives every alias a kernel lifetime of
whole seconds, expired by the kernel's periodic check: a dead or frozen agent's alias may
answer for up to 2 s. This one answers in a fraction of that. Each alias this node holds
is an element of the nftables set ``held4``/``held6`` and, while its agent lives, of
``live4``/``live6``, whose elements carry a timeout of ``window_ms`` (200 ms as shipped:
heartbeat interval x (misses - 1)). The agent refreshes them ``REFRESHES_PER_WINDOW`` times
per window from a thread of its own. The rules drop, for an address held but not live:
ARP sent with it as sender (replies, announcements), IPv4/IPv6 sent from it (a neighbour
advertisement carries the target as its source) and traffic addressed to it. So a node
whose agent cannot run stops answering for its aliases within the window; the addresses
themselves leave with their lifetime, later.

**Nothing muted comes back on its own.** A refresh deletes each live element and adds it
again in one transaction; deleting an element that expired fails, and the whole
transaction with it: a thawed agent cannot revive an alias a standby may have taken over
meanwhile. Such an alias is reported ``lost`` and deleted; a reconcile pass adds it again
only after a fresh read and a probe (R1), as after any loss.

**Nor does the agent speak for a muted alias.** Gratuitous ARPs and neighbour
advertisements leave through packet sockets, which nftables never sees; the announcement
gate therefore asks ``vouched`` before each frame: kept, and refreshed within the window
(less a margin) by this agent's own clock, so a frame queued before a freeze is not sent
after the thaw, before the refresher has noticed the expiry.

One owner: ``KernelMute`` holds the kept addresses with the start of their last good
refresh (under a lock: the data-path thread keeps and forgets, the refresher thread
refreshes, the announcement gate reads); each thread has its own libnftables context.
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

log = logging.getLogger("aliasip.agent.mute")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
TABLE = "aliasip_deadman"
REFRESHES_PER_WINDOW = 4
# A window shorter than this leaves too little room for a refresh (a fraction of a ms
# each, but a thread can be late by tens of ms on a loaded node) before the alias mutes.
MIN_WINDOW_MS = 50
# A frame is announced only this long before the window of its last refresh runs out.
VOUCH_MARGIN_S = 0.02


HOOK = "type filter hook {} priority {}; policy accept;"


def ruleset() -> str:
    """The tables, sets and rules, as one idempotent transaction: tables, sets and chains
    are added if missing (their elements kept: an agent that restarts adopts what the last
    one kept live), the chains' rules replaced."""
    return "\n".join(
        [
            f"add table arp {TABLE}",
            f"add set arp {TABLE} held4 {{ type ipv4_addr; }}",
            f"add set arp {TABLE} live4 {{ type ipv4_addr; flags timeout; }}",
            f"add chain arp {TABLE} out {{ {HOOK.format('output', 0)} }}",
            f"flush chain arp {TABLE} out",
            f"add rule arp {TABLE} out arp saddr ip @held4 arp saddr ip != @live4 drop",
            f"add table inet {TABLE}",
            f"add set inet {TABLE} held4 {{ type ipv4_addr; }}",
            f"add set inet {TABLE} live4 {{ type ipv4_addr; flags timeout; }}",
            f"add set inet {TABLE} held6 {{ type ipv6_addr; }}",
            f"add set inet {TABLE} live6 {{ type ipv6_addr; flags timeout; }}",
            f"add chain inet {TABLE} in {{ {HOOK.format('input', -150)} }}",
            f"add chain inet {TABLE} out {{ {HOOK.format('output', -150)} }}",
            f"flush chain inet {TABLE} in",
            f"flush chain inet {TABLE} out",
            f"add rule inet {TABLE} in ip daddr @held4 ip daddr != @live4 drop",
            f"add rule inet {TABLE} in ip6 daddr @held6 ip6 daddr != @live6 drop",
            f"add rule inet {TABLE} out ip saddr @held4 ip saddr != @live4 drop",
            f"add rule inet {TABLE} out ip6 saddr @held6 ip6 saddr != @live6 drop",
        ]
    )


def _sets(ip: IPAddress) -> list[tuple[str, str, str]]:
    """(family, held set, live set) of every table an address of this version is in."""
    if ip.version == 4:
        return [("arp", "held4", "live4"), ("inet", "held4", "live4")]
    return [("inet", "held6", "live6")]


def refresh_commands(ips: Iterable[IPAddress], timeout_ms: int) -> str:
    """Delete and re-add each live element with a new timeout: one transaction, which
    fails as a whole if any element expired (or was never there)."""
    lines = []
    for ip in ips:
        for family, _held, live in _sets(ip):
            lines.append(f"delete element {family} {TABLE} {live} {{ {ip} }}")
            lines.append(f"add element {family} {TABLE} {live} {{ {ip} timeout {timeout_ms}ms }}")
    return "\n".join(lines)


def keep_commands(ip: IPAddress, timeout_ms: int) -> str:
    """Make ``ip`` held and live for ``timeout_ms`` from now, whether or not it was live:
    one transaction that cannot fail on the element's state (an ``add`` of an element
    already there does nothing, so it is added, deleted and added again with the new
    timeout). Trying a refresh first and falling back on its failure cost 7-16 ms per
    new alias: libnftables is slow to report an error, and a handoff waits on it."""
    lines = []
    for family, held, live in _sets(ip):
        lines.append(f"add element {family} {TABLE} {held} {{ {ip} }}")
        lines.append(f"add element {family} {TABLE} {live} {{ {ip} timeout {timeout_ms}ms }}")
        lines.append(f"delete element {family} {TABLE} {live} {{ {ip} }}")
        lines.append(f"add element {family} {TABLE} {live} {{ {ip} timeout {timeout_ms}ms }}")
    return "\n".join(lines)


class KernelMute:
    """The kept addresses and the kernel's sets that mute them when not refreshed."""

    def __init__(self, window_ms: int, nft: Nft | None = None) -> None:
        """``nft``: the data-path thread's context (made here if not given)."""
        if window_ms < MIN_WINDOW_MS:
            raise ValueError(f"the mute window is at least {MIN_WINDOW_MS} ms")
        self.window_ms = window_ms
        self._nft = nft if nft is not None else Nft()
        self._lock = threading.Lock()
        # kept address -> monotonic start of the last refresh that made it live
        self._kept: dict[IPAddress, float] = {}

    @property
    def interval_s(self) -> float:
        return self.window_ms / 1000 / REFRESHES_PER_WINDOW

    def install(self) -> None:
        self._nft.run(ruleset())

    def kept(self) -> frozenset[IPAddress]:
        with self._lock:
            return frozenset(self._kept)

    def vouched(self, ip: IPAddress) -> bool:
        """Whether this agent may speak for ``ip`` now: kept, and live for a while yet."""
        with self._lock:
            since = self._kept.get(ip)
        until = None if since is None else since + self.window_ms / 1000 - VOUCH_MARGIN_S
        return until is not None and time.monotonic() < until

    def keep(self, ip: IPAddress) -> None:
        """Before ``ip`` is added: held, and live for a whole window from now."""
        started = time.monotonic()
        self._nft.run(keep_commands(ip, self.window_ms))
        with self._lock:
            self._kept[ip] = started

    def forget(self, ip: IPAddress) -> None:
        """After ``ip`` left the kernel: no longer held (nothing to mute or refresh)."""
        with self._lock:
            self._kept.pop(ip, None)
        deletes = [
            f"delete element {family} {TABLE} {name} {{ {ip} }}"
            for family, held, live in _sets(ip)
            for name in (live, held)
        ]
        try:  # one transaction: the common case (every element there) on a move's path
            self._nft.run("\n".join(deletes))
        except NftError:  # one was not there (expired): each on its own
            for line in deletes:
                with contextlib.suppress(NftError):  # not there: nothing to forget
                    self._nft.run(line)

    def sync(self, present: Iterable[IPAddress]) -> None:
        """Forget every kept address the kernel no longer carries (deleted by any room,
        expired): ``present`` is what the lifetime renewal just read."""
        here = set(present)
        for ip in self.kept() - here:
            self.forget(ip)

    def muted(self, ip: IPAddress) -> bool:
        """Held but not live in every table: muted, by an expiry (a previous agent's)."""
        for family, held, live in _sets(ip):
            try:
                self._nft.run(f"get element {family} {TABLE} {held} {{ {ip} }}")
            except NftError:
                return False  # never held here: not muted
            try:
                self._nft.run(f"get element {family} {TABLE} {live} {{ {ip} }}")
            except NftError:
                return True
        return False

    def adopt(self, present: Iterable[IPAddress]) -> list[IPAddress]:
        """At start: keep what the kernel carries with our mark, except what a previous
        agent let expire (muted: returned, for the caller to delete, never revived)."""
        muted = []
        for ip in sorted(present, key=lambda a: (a.version, a)):
            if self.muted(ip):
                muted.append(ip)
            else:
                self.keep(ip)
        return muted

    def refresh(self, nft: Nft, timeout_ms: int | None = None) -> list[IPAddress]:
        """Refresh every kept address (in ``nft``, the calling thread's context); the
        addresses whose element had expired (muted: never revived), if any."""
        ips = sorted(self.kept(), key=lambda a: (a.version, a))
        timeout = self.window_ms if timeout_ms is None else timeout_ms
        if not ips:
            return []
        started = time.monotonic()
        try:
            nft.run(refresh_commands(ips, timeout))
        except NftError:
            pass
        else:
            self._refreshed(ips, started)
            return []
        expired = []
        for ip in ips:  # one at a time: which one expired?
            started = time.monotonic()
            try:
                nft.run(refresh_commands([ip], timeout))
            except NftError:
                with self._lock:
                    if ip in self._kept:  # not forgotten meanwhile
                        del self._kept[ip]  # lost: told once, held (so muted) until forgotten
                        expired.append(ip)
            else:
                self._refreshed([ip], started)
        return expired

    def _refreshed(self, ips: list[IPAddress], started: float) -> None:
        with self._lock:
            for ip in ips:
                if ip in self._kept:
                    self._kept[ip] = started

    def extend(self, seconds: int) -> list[IPAddress]:
        """A graceful stop's handover: every kept address live for ``seconds``."""
        return self.refresh(self._nft, seconds * 1000)

    def close(self) -> None:
        self._nft.close()


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
        nft = Nft()
        try:
            next_at = time.monotonic()
            while not self._stop.is_set():
                expired = self.mute.refresh(nft)
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
            nft.close()
