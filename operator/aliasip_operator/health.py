"""Judging nodes from observations: who may take the aliases, who must give them up, and
whether a node that lost its agent is provably silent. Pure; ``decide`` builds on it.

The judgements, and why:

- *eligible* (may become the holder): a Node object that is Ready, not cordoned, whose
  agent holds a valid Lease and does not report an error. All four, because each one
  alone leaves a way to hand the aliases to a node that cannot serve them: an expired
  Lease means nobody would add them, NotReady means kubelet (and likely the node) is in
  trouble, a cordon means the admin is emptying the node, an error is the agent's own
  word that it cannot (e.g. its link is down).
- *trouble* (the holder should hand over, but can do so in order): the agent's Lease is
  valid, yet the holder reports an error at the current epoch, is no longer a candidate,
  is not Ready, or is cordoned.
- *silence* of a node whose agent lost its Lease: the design's evidence for an unplanned
  failover. A standby that still hears the addresses answered (after the Lease expired)
  wins over everything: moving then would make two nodes answer (MetalLB #740). Else the
  node is silent if kubelet is gone too (Node not Ready, or no Node) or a standby's probe
  made after the Lease expired heard nobody. Else it is unknown: most likely only the
  agent died, and the node still serves (not a failover; the restarted agent adopts).
- *silent by its peers' evidence* (``peer_silence``, evidence per node): every live
  candidate other than the node (at least two) says in its agent Lease that it missed
  the node's heartbeats and probed its wire silent for the node's dead-man window,
  since a moment after the node's agent last renewed its Lease. Then the node's kernel
  is muted or gone (docs/design.md, R9 and "Evidence per node") whatever its Lease still
  says, and every AliasIP it holds moves, each from that one observation. Two reporters
  at least, and all of them: one standby cut off the LAN with its carrier up hears
  everybody silent, and must not move anything by itself. With fewer (a two-node
  cluster) the Lease's lapse is waited for, as before.
- *clear* (provably not holding at the current epoch): the node reported ``released``,
  ``standby`` or ``error`` at an epoch at least the current one, or its agent is gone and
  the node is silent, or its peers proved it silent. Only then may another node be
  assigned.

The agents' side of this, which the decision relies on: ``state`` first says whether the
node holds the addresses. ``error`` means it holds none and cannot serve them now (link
down, no interface, or its probe heard another node answer: then ``holderHeard`` is
true); an agent that deletes on link loss keeps that true. A node whose delete failed
still holds, so it keeps reporting ``holding`` (with the failure in ``message``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from aliasip_api import kubetime
from aliasip_api.conditions import ConditionStatus
from aliasip_api.status import AliasIPStatus, NodeState, NodeView
from aliasip_operator.observations import Observations

# Trouble reasons (also lastTransition reasons: why the aliases moved).
HOLDER_ERROR = "HolderError"
NOT_A_CANDIDATE = "NotACandidate"
NODE_NOT_READY = "NodeNotReady"
NODE_CORDONED = "NodeCordoned"
# Evidence per node is taken from this many live candidates at least (all of them).
MIN_PEER_REPORTERS = 2


class Silence(Enum):
    """What the evidence says about a node whose agent lost its Lease."""

    HEARD = "heard"  # someone still answers for the addresses: do not move
    SILENT = "silent"  # the node is gone: safe to assign elsewhere
    UNKNOWN = "unknown"  # no evidence either way: wait


@dataclass(frozen=True)
class Verdict:
    """A ``Silence`` judgement and its reason, phrased to follow "because"."""

    silence: Silence
    why: str


@dataclass(frozen=True)
class PeerSilence:
    """Evidence per node: the node is silent since ``since`` (the earliest report), in
    words (``why``, phrased to follow "because")."""

    since: datetime
    why: str


@dataclass(frozen=True)
class Trouble:
    """Why a holder with a live agent should hand over (``reason``) and in words (``why``,
    phrased to follow the node's name)."""

    reason: str
    why: str


@dataclass(frozen=True)
class Health:
    """Judgements about nodes for one AliasIP at one instant.

    ``candidates`` are in preference order (``AliasIPSpec.candidates``); ``status`` is the
    current status, whose ``nodes`` are the agents' reports and whose ``epoch`` is the
    one reports must have reached.
    """

    candidates: tuple[str, ...]
    observed: Observations
    status: AliasIPStatus
    now: datetime
    _peer_silences: dict[str, PeerSilence] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def view(self, node: str) -> NodeView | None:
        """The agent's report for this AliasIP, if it wrote one."""
        return self.status.nodes.get(node)

    def lease_valid(self, node: str) -> bool:
        """Whether ``node``'s agent is alive and reaching the API now."""
        lease = self.observed.leases.get(node)
        return lease is not None and lease.valid_for(node, self.now)

    def lease_expiry(self, node: str) -> datetime | None:
        """When ``node``'s agent Lease expires (or expired); None if it never could."""
        lease = self.observed.leases.get(node)
        return lease.expires_at if lease is not None else None

    def rank(self, node: str) -> int:
        """Preference rank (0 is the primary); non-candidates rank after every candidate."""
        try:
            return self.candidates.index(node)
        except ValueError:
            return len(self.candidates)

    def peer_silence(self, node: str) -> PeerSilence | None:
        """``node`` proven silent by every other live candidate (at least two), each
        since after its agent's last Lease renewal; None otherwise (see the module doc)."""
        return self._peer_silences.get(node)

    def __post_init__(self) -> None:
        # ``peer_silence`` of every node a live candidate claims, worked out once per
        # decision: it is asked for each candidate (``unfit``, ``laggards``, ``silence``),
        # and almost always nobody claims anything.
        live = [c for c in self.candidates if self.lease_valid(c)]
        claimed = {node for c in live for node, _since in self.observed.leases[c].silent}
        found = {}
        for node in claimed:
            silence = self._judge_peer_silence(node, [c for c in live if c != node])
            if silence is not None:
                found[node] = silence
        object.__setattr__(self, "_peer_silences", found)

    def _judge_peer_silence(self, node: str, reporters: list[str]) -> PeerSilence | None:
        lease = self.observed.leases.get(node)
        renewed = lease.renew_time if lease is not None and lease.holder == node else None
        if len(reporters) < MIN_PEER_REPORTERS:
            return None
        sinces = []
        for reporter in reporters:
            since = self.observed.leases[reporter].silent_since(node)
            if since is None or since > self.now or (renewed is not None and since <= renewed):
                return None
            sinces.append(since)
        first = min(sinces)
        verb = _verb(reporters, "hears", "hear")
        why = (
            f"{_names(reporters)} {verb} neither its heartbeats nor its addresses since "
            f"{kubetime.format_time(first)}"
        )
        return PeerSilence(first, why)

    def unfit(self, node: str) -> str | None:
        """Why ``node`` may not become the holder (phrased to follow its name), or None."""
        why = self._unfit_node(node)
        if why is not None:
            return why
        if self.peer_silence(node) is not None:
            return "is silent on the wire (its peers' evidence)"
        view = self.view(node)
        if view is not None and view.state is NodeState.ERROR:
            return "reports an error" + (f": {view.message}" if view.message else "")
        return None

    def refusal(self) -> str | None:
        """The refusal every candidate repeats, or None.

        That is: there is a candidate, and each one is fit but for its agent's error
        report, whose message starts with the same refusal code (``NoCoveringInterface:
        ...``, the agents' ``AliasError.code``). Every node would refuse the addresses
        for the same reason (the address is not on any candidate's subnets, or a foreign
        host answers for it), so moving them would only churn: the AliasIP stays where
        it is, and its condition names the cause. An agent keeps such an error for the
        whole generation, named or not, so this is stable.
        """
        codes: set[str | None] = set()
        for node in self.candidates:
            view = self.view(node)
            if view is None or view.state is not NodeState.ERROR:
                return None
            if self._unfit_node(node) is not None:
                return None
            codes.add(refusal_code(view.message))
        if len(codes) != 1:
            return None
        return codes.pop()

    def _unfit_node(self, node: str) -> str | None:
        """Why ``node`` may not hold, from its Node and agent Lease alone, or None."""
        info = self.observed.nodes.get(node)
        if info is None:
            return "has no Node object"
        lease = self.observed.leases.get(node)
        if lease is None:
            return "has no agent Lease"
        if lease.holder != node:
            return f"has an agent Lease held by {lease.holder or 'nobody'}"
        if lease.expired(self.now):
            expires = lease.expires_at
            if expires is None:
                return "has an agent Lease that was never renewed"
            return f"has an agent Lease that expired at {kubetime.format_time(expires)}"
        if info.ready is not ConditionStatus.TRUE:
            return f"is not Ready (Ready={info.ready})"
        if info.unschedulable:
            return "is cordoned"
        return None

    def eligible(self, node: str) -> bool:
        return node in self.candidates and self.unfit(node) is None

    def best(self, exclude: Collection[str] = ()) -> str | None:
        """The most preferred eligible candidate not in ``exclude``, or None."""
        return next(
            (n for n in self.candidates if n not in exclude and self.unfit(n) is None), None
        )

    def why_none(self, exclude: Collection[str] = ()) -> str:
        """Why no candidate outside ``exclude`` is eligible, one clause per candidate."""
        others = [n for n in self.candidates if n not in exclude]
        if not others:
            return "there is no other candidate" if exclude else "no node is a candidate"
        return "; ".join(f"{n} {self.unfit(n) or 'is eligible'}" for n in others)

    def holds(self, node: str) -> bool:
        """Whether ``node`` reports holding the addresses at the current epoch."""
        view = self.view(node)
        return (
            view is not None
            and view.state is NodeState.HOLDING
            and view.epoch is not None
            and view.epoch >= self.status.epoch
        )

    def trouble(self, holder: str) -> Trouble | None:
        """Why ``holder`` (whose agent Lease is valid) should hand over, or None.

        An error counts when it is about the current assignment: reported at the current
        epoch or later, or without an epoch (a report that names no epoch cannot be
        proven stale).
        """
        view = self.view(holder)
        if (
            view is not None
            and view.state is NodeState.ERROR
            and (view.epoch is None or view.epoch >= self.status.epoch)
        ):
            detail = f": {view.message}" if view.message else ""
            return Trouble(HOLDER_ERROR, f"reports an error{detail}")
        if holder not in self.candidates:
            return Trouble(NOT_A_CANDIDATE, "is no longer a candidate")
        info = self.observed.nodes.get(holder)
        if info is None:
            return Trouble(NODE_NOT_READY, "has no Node object")
        if info.ready is not ConditionStatus.TRUE:
            return Trouble(NODE_NOT_READY, f"is not Ready (Ready={info.ready})")
        if info.unschedulable:
            return Trouble(NODE_CORDONED, "is cordoned")
        return None

    def silence(self, node: str) -> Verdict:
        """Whether ``node`` (whose agent lost its Lease) is provably silent on the wire.

        Only probes made at or after the Lease's expiry count (earlier ones describe the
        node before it was lost; without a Lease at all, before the last move started),
        and only from nodes whose own agent is alive (a dead agent's last word is stale).
        Any standby still hearing an answer wins.
        """
        peers = self.peer_silence(node)
        if peers is not None:
            return Verdict(Silence.SILENT, peers.why)
        expiry = self.lease_expiry(node)
        if expiry is None and self.status.last_transition is not None:
            expiry = self.status.last_transition.started_at
        heard: list[str] = []
        silent: list[str] = []
        for name, view in sorted(self.status.nodes.items()):
            if name == node or view.holder_heard is None or view.observed_at is None:
                continue
            if not self.lease_valid(name) or (expiry is not None and view.observed_at < expiry):
                continue
            (heard if view.holder_heard else silent).append(name)
        if heard:
            verb = _verb(heard, "hears", "hear")
            return Verdict(Silence.HEARD, f"{_names(heard)} still {verb} the addresses answered")
        info = self.observed.nodes.get(node)
        if info is None:
            return Verdict(Silence.SILENT, f"{node} has no Node object")
        if info.ready is not ConditionStatus.TRUE:
            return Verdict(Silence.SILENT, f"Node {node} is not Ready (Ready={info.ready})")
        if silent:
            verb = _verb(silent, "hears", "hear")
            return Verdict(Silence.SILENT, f"{_names(silent)} {verb} nobody answering")
        return Verdict(
            Silence.UNKNOWN,
            f"Node {node} is Ready and no standby has probed the wire since the Lease expired",
        )

    def released(self, node: str) -> bool:
        """Whether ``node`` reported holding nothing at the current epoch or later."""
        view = self.view(node)
        return (
            view is not None
            and view.state is not NodeState.HOLDING
            and view.epoch is not None
            and view.epoch >= self.status.epoch
        )

    def clear(self, node: str) -> bool:
        """Whether ``node`` provably does not hold the addresses: released, or gone."""
        if self.released(node):
            return True
        if self.peer_silence(node) is not None:
            return True
        return not self.lease_valid(node) and self.silence(node).silence is Silence.SILENT

    def laggards(self, target: str) -> tuple[str, ...]:
        """Nodes other than ``target`` whose live agent still reports holding.

        Their agents will release once they see the newest epoch; assigning before that
        would allow two holders. Nodes whose agent is gone were judged when they lost
        the holder role, so only live agents count here.
        """
        return tuple(
            sorted(
                name
                for name, view in self.status.nodes.items()
                if name != target
                and view.state is NodeState.HOLDING
                and self.lease_valid(name)
                and self.peer_silence(name) is None
            )
        )

    def recheck_at(self, involved: Collection[str]) -> datetime | None:
        """The earliest Lease expiry after now among the candidates, the nodes that
        reported, and ``involved``: the decision may change then without any event."""
        names = {*self.candidates, *self.status.nodes, *involved}
        times = [
            expires
            for name in names
            if (lease := self.observed.leases.get(name)) is not None
            and (expires := lease.expires_at) is not None
            and expires > self.now
        ]
        return min(times, default=None)


def refusal_code(message: str | None) -> str | None:
    """The refusal code an agent's error message starts with, or None.

    Agents write ``<Code>: <detail>`` (``NoCoveringInterface: no interface of node1
    covers 198.18.7.5``), the code being a CamelCase word that is also a valid
    condition reason.
    """
    code, colon, _ = (message or "").partition(":")
    valid = colon and 0 < len(code) <= 64 and code.isascii() and code.isalnum()
    return code if valid and code[0].isupper() else None


def _names(names: list[str]) -> str:
    return ", ".join(names)


def _verb(subjects: list[str], singular: str, plural: str) -> str:
    return singular if len(subjects) == 1 else plural
