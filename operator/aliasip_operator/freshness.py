"""Act only on a view you can prove fresh: agent Leases judged expired are read again.

The operator learns of agent Lease renewals from a watch, which can deliver them late: a
leader paused for a few seconds (SIGSTOP, a long GC, a starved node) resumes with its
expiry timers due and the renewals made meanwhile still unread in its socket. A decision
made then reads "expired" from a view that is merely old, and writes a false Degraded, a
HolderAgentLost Warning, or even a failover.

The rule: a judgement that a node's agent Lease does *not* vouch (expired, given up, or
missing) may lead to a write only if it rests on a read of that Lease made after the
moment the view says it stopped vouching. The glue asks ``unproven`` before it writes a
decision; for every node named, it GETs the Lease (a read the API serves from its current
state, so it is at least as new as anything the watch can still deliver), records it
with ``confirm``, and decides again on ``merged``. A view that says "valid" needs no proof:
at worst it delays a failover until the watch catches up, never causes a wrong move.

Evidence per node rests on a Lease too: peers say a node is silent since a moment after
its agent last renewed. So a node some peer claims silent is read as well, once after
the latest such moment: an agent alive after all has renewed since, and that read shows
it (``claimed_silent``).

Pure: no I/O, times passed in; ``handlers`` does the reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aliasip_api.lease import AgentLease


def invalid_since(lease: AgentLease | None, node: str) -> datetime | None:
    """The moment from which ``lease`` (as viewed) stopped vouching for ``node``: its
    expiry if it is ``node``'s, else when it was last written (given up or taken by
    another holder); None when the view cannot say (no Lease, or no renew time)."""
    if lease is None:
        return None
    if lease.holder == node:
        return lease.expires_at
    return lease.renew_time


def claimed_silent(view: Mapping[str, AgentLease]) -> dict[str, datetime]:
    """Per node some agent Lease claims silent (evidence per node), the latest claim."""
    claims: dict[str, datetime] = {}
    for lease in view.values():
        for node, since in lease.silent:
            if node not in claims or since > claims[node]:
                claims[node] = since
    return claims


def newer(a: AgentLease | None, b: AgentLease | None) -> bool:
    """Whether Lease view ``a`` is newer than ``b``: every write of an agent Lease (a
    renewal, a release, a takeover) sets a later ``renewTime``, so the later one is the
    later state of the same object."""
    if a is None or a.renew_time is None:
        return False
    return b is None or b.renew_time is None or a.renew_time > b.renew_time


@dataclass
class LeaseViews:
    """Per node: the Lease as last read by a GET (``fresh``, kept while it is newer than
    the watch's view) and when that read was sent (``confirmed``)."""

    fresh: dict[str, AgentLease | None] = field(default_factory=dict)
    confirmed: dict[str, datetime] = field(default_factory=dict)

    def merged(self, watched: Mapping[str, AgentLease]) -> dict[str, AgentLease]:
        """The watch's view of the Leases (``watched``, by node), each replaced by the
        Lease read since where that read is newer. A read that found no Lease (404)
        counts until the watch says anything about that node (``observe``)."""
        view = dict(watched)
        for node, lease in self.fresh.items():
            if lease is None:
                view.pop(node, None)
            elif newer(lease, view.get(node)):
                view[node] = lease
        return view

    def observe(self, node: str, lease: AgentLease | None) -> None:
        """A watch event for ``node``'s Lease: a read it has caught up with is dropped."""
        if node in self.fresh and not newer(self.fresh[node], lease):
            del self.fresh[node]

    def confirm(self, node: str, lease: AgentLease | None, sent: datetime) -> None:
        """``node``'s Lease as a GET sent at ``sent`` returned it (None: there is none)."""
        self.fresh[node] = lease
        known = self.confirmed.get(node)
        if known is None or sent > known:
            self.confirmed[node] = sent

    def needed_after(
        self, node: str, view: Mapping[str, AgentLease], now: datetime
    ) -> datetime | None:
        """The moment a read of ``node``'s Lease must be sent at or after to prove what
        ``view`` says of it at ``now`` (what ``unproven`` asks): the latest claim that it
        is silent, and for a Lease that does not vouch the moment it stopped; None when
        any read will do."""
        moments = [claimed_silent(view).get(node)]
        lease = view.get(node)
        if lease is None or not lease.valid_for(node, now):
            moments.append(invalid_since(lease, node))
        found = [m for m in moments if m is not None]
        return max(found) if found else None

    def unproven(
        self, nodes: Iterable[str], view: Mapping[str, AgentLease], now: datetime
    ) -> list[str]:
        """The nodes among ``nodes`` whose Lease ``view`` says does not vouch at ``now``,
        or that a peer claims silent, without a read made at or after the moment it
        stopped vouching (or the claim's moment): they must be read before a decision
        resting on them is written. Sorted, no duplicates."""
        claims = claimed_silent(view)
        found = []
        for node in sorted(set(nodes)):
            lease = view.get(node)
            known = self.confirmed.get(node)
            if node in claims and (known is None or known < claims[node]):
                found.append(node)
                continue
            if lease is not None and lease.valid_for(node, now):
                continue
            since = invalid_since(lease, node)
            if known is None or (since is not None and known < since):
                found.append(node)
        return found
