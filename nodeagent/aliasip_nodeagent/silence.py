"""When a standby may call a lost holder silent: long enough that it cannot answer again.

docs/design.md, R9. A holder's kernel keeps an alias only while its agent renews the
alias's lifetime (``deadman``). A holder that is silent on the wire *now* may only be cut
off the LAN with its agent frozen or dead: its kernel still carries the alias and would
answer the moment its cable returns, next to the node that took over. But a frozen or dead
agent renews nothing, so its aliases expire within the expiry window after its last
renewal, which came before the silence began (a live agent deletes its aliases the
instant its carrier goes: R2). Hence: **silence counts as evidence only once it has
lasted the expiry window** (the first silent probe and a silent probe at least the
window later, with no answer heard in between), and not before a handover the holder's
Lease announces has ended.

To keep that off the failover time, a standby starts probing a holder whose heartbeats
it missed (``monitor``; for a holder the monitoring path does not cover: whose Lease
renewal is overdue, ``OVERDUE_S`` past the renewal interval), every ``PROBE_EVERY_S``,
before the Lease lapses: the window then runs alongside the Lease's own expiry. While
the renewal is not overdue nothing is probed, and silence heard before is forgotten (the
holder's agent lived since, and may have added again).

Pure: times come in, decisions go out; ``Agent`` probes, wakes and reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aliasip_api.lease import AgentLease

# A renewal this late (after the renewal interval) starts the silence watch of a holder
# the monitoring path does not cover (with heartbeats, their silence starts it). A whole
# renewal missed: at 50 nodes x 400 AliasIPs on the lab's 2 CPUs the API delivered
# renewals 0.3 s late all the time during creation, and a watch started at 0.3 s had every
# standby probing every holder, which starved the API further (bench/scale.py: no
# convergence in 10 minutes; 63 s with the watch started at the lapse).
OVERDUE_S = 1.0
# How often an overdue or lapsed holder is probed while its silence is being proven.
PROBE_EVERY_S = 0.25
# Added to a holder's advertised mute window: an nftables element's timeout is checked
# against jiffies at each lookup (one tick: 4 ms at HZ=250, 10 ms at HZ=100), and the
# refresh that set it committed a moment (about a millisecond) after the holder's agent
# last ran. 50 ms before issue 11's last session: 30 ms of every node-lost failover
# bought nothing.
MUTE_SLACK_S = 0.02

Key = tuple[str, str]  # (AliasIP, holder)


def watch_from(lease: AgentLease | None, renew_interval_s: float) -> datetime | None:
    """When the silence watch of this holder starts: its renewal overdue. None when the
    Lease vouches for nothing (missing, or no renew time): watch at once."""
    if lease is None or lease.renew_time is None:
        return None
    return lease.renew_time + timedelta(seconds=renew_interval_s + OVERDUE_S)


@dataclass
class Silences:
    """The first silent probe of each watched holder per AliasIP, in a run of silent probes.

    Owned by the reconcile task of one agent (no locking).
    """

    window_s: float
    _first: dict[Key, datetime] = field(default_factory=dict)
    _last: dict[Key, datetime] = field(default_factory=dict)

    def forget(self, key: Key) -> None:
        """An answer was heard, the probe could not look, or the watch paused."""
        self._first.pop(key, None)
        self._last.pop(key, None)

    def keep_only(self, keys: set[Key]) -> None:
        """Drop what is no longer watched (another holder named, an AliasIP gone)."""
        for key in [k for k in self._first if k not in keys]:
            del self._first[key]
            self._last.pop(key, None)

    def last(self, key: Key) -> datetime | None:
        """The latest silent probe of the current run for ``key``, if any."""
        return self._last.get(key)

    def first(self, key: Key) -> datetime | None:
        """The first silent probe of the current run for ``key``, if any."""
        return self._first.get(key)

    def silent(self, key: Key, at: datetime) -> datetime:
        """Record a silent probe that ended at ``at``; the start of the silent run."""
        self._last[key] = max(at, self._last.get(key, at))
        return self._first.setdefault(key, at)

    def proven_at(
        self, key: Key, handover_until: datetime | None, window_s: float | None = None
    ) -> datetime | None:
        """From when the silence of ``key`` counts as evidence; None if none is recorded.
        ``window_s``: the holder's own window (its advertised mute window), if it has one
        shorter than the lifetime's."""
        first = self._first.get(key)
        if first is None:
            return None
        window = timedelta(seconds=self.window_s if window_s is None else window_s)
        proven = first + window
        if handover_until is not None:
            proven = max(proven, handover_until + window)
        return proven


def holder_window_s(lease: AgentLease | None, coarse_s: float) -> float:
    """How long a holder's aliases may answer after its agent stopped: its advertised mute
    window (``mute``) plus the kernel's timer slack, else the lifetime's ``coarse_s``."""
    if lease is None or lease.mute_window_ms is None:
        return coarse_s
    return min(coarse_s, lease.mute_window_ms / 1000 + MUTE_SLACK_S)
