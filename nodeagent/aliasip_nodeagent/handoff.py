"""Direct handoff of planned moves, the agent's side (docs/design.md, R11).

One room of the agent (``daemon.Agent`` wires it); everything here runs on the event
loop. Both ends of a handoff:

- **the old holder**, named ``from`` in the release step at epoch E
  (``aliasip_api.succession``), tells the named successor ``released`` at E over the
  monitoring path the moment it holds none of the addresses any more (``to_tell``), once
  per AliasIP and epoch, before its own API report;
- **the old holder waits for the successor's "ready"** (its read done, R1) before it
  deletes, at most ``READY_WAIT_S`` and only for a successor the monitoring path reaches
  (``defer``), so the addresses are gone from the old holder only while the successor
  needs nothing but the datagram to add them;
- **the successor** keeps what it was told (``heard``, for ``TOLD_TTL_S``: a datagram
  may come before its watch shows E) and takes the handoff for an AliasIP only while its
  own view names it successor at that same epoch, from that same node (``follow``). A
  taken handoff is a hold at E (``reconcile.plan``'s ``handed``) without a wire probe on
  the first add: the old holder just said it let go, signed and fresh.

What it owns: ``awaiting`` (the AliasIPs this node is named successor of now, by uid),
``taken`` (uid -> the release step whose handoff it took: one epoch may see a second
release step, from the successor, when it cannot take the addresses after all), what
it was told and what it told. While ``awaiting`` is not empty the monitoring path reads
its socket as datagrams come (``monitor.Monitor.arm``), not once per heartbeat interval.

Why this is safe: at E nobody is allowed to hold, the old holder has deleted the
addresses (it tells only then), and the operator counts the successor as a possible
holder from E on: it assigns E+1 to the successor, or, if the successor cannot take the
addresses any more, releases again from the successor before anyone else is named
(``decide`` rule 7). A successor that never hears the handoff loses nothing: the API
path (``released``, then the assignment at E+1) follows as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aliasip_api.succession import Succession, succession
from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.reconcile import Observed, matches, requests_for

log = logging.getLogger("aliasip.agent")
# A handoff heard before this node's watch showed its name at that epoch is kept this
# long (a watch event is late by milliseconds on a healthy cluster; the API path covers
# anything later).
TOLD_TTL_S = 2.0
# The old holder waits at most this long for the named successor's "ready" (it has read
# the AliasIP: R1) before it lets go: the successor then adds within a datagram's time of
# the delete, not after its own read. Only for a successor the monitoring path reaches;
# a lost "ready" costs the move this much, never safety.
READY_WAIT_S = 0.05
MAX_READY = 1024


@dataclass(frozen=True)
class Tell:
    """Tell ``to_node`` that this node released AliasIP ``key`` (``aliasip``) at ``epoch``."""

    to_node: str
    aliasip: str
    key: str
    epoch: int


class Handoffs:
    """Both ends of the direct handoff for one agent (see the module docstring)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.awaiting: dict[str, Succession] = {}
        self.taken: dict[str, Succession] = {}
        self._heard: dict[tuple[str, int], tuple[str, float]] = {}  # (uid, epoch) -> from, at
        self._told: set[tuple[str, int]] = set()
        self._ready: dict[tuple[str, int], str] = {}  # (uid, epoch) -> the successor ready
        self._step_seen: dict[tuple[str, int], float] = {}  # a release step, first seen

    def readied(self, sender: str, ready: Iterable[tuple[str, int]]) -> None:
        """A named successor's signed "ready": it has read the AliasIP at that epoch."""
        for key, epoch in ready:
            self._ready[(key, epoch)] = sender

    def defer(self, obs: Observed, now: float, reachable: Callable[[str], bool]) -> float | None:
        """How much longer this node, the old holder, keeps ``obs``'s addresses before it
        lets go in a release step (None: let go now). It waits for the named successor's
        "ready" for at most ``READY_WAIT_S`` from the first time it saw the step, and only
        for a successor the monitoring path reaches (``reachable``: it has an address in
        one of our subnets). Waiting costs no outage: the addresses answer meanwhile."""
        named = succession(obs.status)
        if named is None or named.from_node != self.node or not reachable(named.to_node):
            return None
        step = (obs.key, named.epoch)
        if self._ready.get(step) == named.to_node:
            return None
        first = self._step_seen.setdefault(step, now)
        left = first + READY_WAIT_S - now
        return left if left > 0 else None

    def heard(self, sender: str, released: Iterable[tuple[str, int]], now: float) -> list[str]:
        """A peer's signed ``released`` entries; the uids of the handoffs they complete
        among those this node awaits now (the caller takes them: ``take``)."""
        due = []
        for key, epoch in released:
            self._heard[(key, epoch)] = (sender, now)
            waiting = self.awaiting.get(key)
            if waiting is not None and (waiting.epoch, waiting.from_node) == (epoch, sender):
                due.append(key)
        return due

    def take(self, key: str, aliasip: str) -> Succession | None:
        """Take the awaited handoff of ``key`` now (its ``released`` was heard): the
        release step it is taken at, or None if it is not awaited (any more)."""
        named = self.awaiting.get(key)
        told = self._heard.get((key, named.epoch)) if named is not None else None
        if named is None or told is None or told[0] != named.from_node:
            return None
        del self.awaiting[key]
        self.taken[key] = named
        self._log_taken(aliasip, named)
        return named

    def _log_taken(self, aliasip: str, named: Succession) -> None:
        log.info(
            kv(
                "handoff-taken",
                node=self.node,
                aliasip=aliasip,
                epoch=named.epoch,
                peer=named.from_node,
            )
        )

    def follow(self, observed: Iterable[Observed], now: float) -> dict[str, int]:
        """What this node is named successor of in ``observed`` (the pass's view), the
        handoffs taken in that view (uid -> epoch, for ``reconcile.plan``), and the
        ones heard before the view caught up, taken now."""
        awaiting: dict[str, Succession] = {}
        taken: dict[str, Succession] = {}
        for obs in observed:
            if obs.spec is None or not obs.status_valid:
                continue
            named = succession(obs.status)
            if named is None or named.to_node != self.node:
                continue
            if self.taken.get(obs.key) == named:
                taken[obs.key] = named
                continue
            told = self._heard.get((obs.key, named.epoch))
            if told is not None and told[0] == named.from_node:
                taken[obs.key] = named
                self._log_taken(obs.name, named)
                continue
            awaiting[obs.key] = named
        self.awaiting = awaiting
        self.taken = taken
        self._heard = {
            k: (sender, at) for k, (sender, at) in self._heard.items() if now - at <= TOLD_TTL_S
        }
        return {key: named.epoch for key, named in taken.items()}

    def holds(self, obs: Observed) -> bool:
        """Whether this node holds ``obs`` on a handoff taken at its current release step."""
        named = succession(obs.status)
        return named is not None and self.taken.get(obs.key) == named

    def to_tell(self, observed: Iterable[Observed], held: Iterable[HeldAlias]) -> list[Tell]:
        """The handoffs this node owes: AliasIPs whose release step names it ``from``
        and none of whose addresses it holds now; each once per AliasIP and epoch."""
        held = tuple(held)
        due: list[Tell] = []
        current: set[tuple[str, int]] = set()
        for obs in observed:
            if obs.spec is None or not obs.status_valid:
                continue
            named = succession(obs.status)
            if named is None or named.from_node != self.node:
                continue
            current.add((obs.key, named.epoch))
            if (obs.key, named.epoch) in self._told:
                continue
            if any(matches(h, r) for h in held for r in requests_for(obs.spec)):
                continue  # not let go yet (a failed delete): nothing to tell
            due.append(Tell(named.to_node, obs.name, obs.key, named.epoch))
        # Remember only the release steps still in view (bounded sets).
        self._told = (self._told & current) | {(t.key, t.epoch) for t in due}
        self._step_seen = {k: v for k, v in self._step_seen.items() if k in current}
        # A "ready" may come before this node's watch shows the step: kept, and bounded.
        if len(self._ready) > MAX_READY:
            self._ready = {k: v for k, v in self._ready.items() if k in current}
        return due
