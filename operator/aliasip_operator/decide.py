"""Where an AliasIP's addresses live: a pure function of observations and current status.

``decide(aliasip, observations, status, now)`` returns the operator's part of the next
status, the Events to emit and whether the switchover annotation was served. It changes
nothing itself; running it again on its own result with the same observations converges
in a step or two and then changes (and emits) nothing, so the kopf glue may run it on any
event or timer, after a crash or a missed event (level-triggered, docs/design.md).

Invariants (tests/operator/test_properties.py checks them over random histories):

- at most one node is allowed to hold: ``activeNode`` is one name or None, and it only
  becomes a node after every node that might hold has provably let go (see ``health``:
  released at the current epoch or later, or its agent gone and the node silent);
- ``epoch`` (the fencing token) grows by one at every change of ``activeNode`` and never
  otherwise, so it never decreases;
- a node is only ever chosen while its agent Lease is valid, its Node Ready and not
  cordoned, and its agent reports no error;
- a planned move releases before it assigns (docs/design.md, "Switching, step by step"): step
  1 sets ``activeNode`` to None (epoch+1), step 2 names the new node (epoch+1) once the
  old one reported ``released`` at the step-1 epoch or later.

The rules, in the order they apply (each one is a branch below):

1. Invalid spec or findings (reserved, duplicate or stationary addresses, conflicts with
   an older AliasIP): phase Invalid or Conflict, ``activeNode`` None (the holder, if any,
   releases), a Ready=False condition naming every finding, a Warning Event; a pending
   switchover request is refused. Nothing else is touched: other AliasIPs are decided
   on their own.
2. The holder's agent Lease expired (unplanned): if a standby that probed the wire after
   the Lease expired still hears the addresses answered, or nothing proves the node
   silent (its Node is still Ready and no probe since), it is *not* a failover: phase
   Degraded, the addresses stay (the restarted agent adopts them). If the node is silent
   (Node not Ready or gone, or a fresh probe heard nobody), fail over: ``activeNode`` :=
   the best eligible standby at once, epoch+1, phase Switching; its own probe before
   adding is the last guard. No eligible standby: ``activeNode`` None, Unavailable.
   The same failover comes before the Lease lapses when the holder's peers proved it
   silent (``health.peer_silence``, evidence per node: every other live candidate, at
   least two, missed its heartbeats and heard its wire silent for its dead-man window,
   since after its last renewal): one observation moves every AliasIP it holds.
3. The holder's agent is alive but the holder cannot or should not serve (it reports an
   error at the current epoch, is no longer a candidate, is not Ready, or is cordoned):
   planned move to the best eligible standby (or the requested one). With no eligible
   standby it stays: Unavailable if it reports an error, else Degraded. It also stays
   (Unavailable) when its error says its own probe heard another node answer (it
   refused to add, ``holderHeard``): every standby's probe would hear the same answer,
   so moving would only churn; the move completes once that node lets go.
   When every candidate refuses for the same reason (each one fit but for its agent's
   error, whose message starts with the same refusal code: ``NoCoveringInterface``,
   ``PrefixMismatch``, ``UnknownInterface``, ``InterfaceDown``, ``AddressInUse``, ...),
   the Ready reason is that code and the message lists each node's error (a Warning
   Event, once): the refusal would follow the addresses anywhere, so they stay.
4. The holder has not yet reported ``holding`` at the current epoch: Switching, wait.
5. The holder holds: phase Active, and an unfinished ``lastTransition`` is finished (with
   ``outageMs`` for a planned move, from the old holder's ``released`` report to the new
   holder's ``holding`` report). A move is never started in the decision that finishes
   one, so every move is visible in status. Then, in this order: a switchover request is
   served (a named eligible candidate, or the best other one for an empty value) by a
   planned move, or refused; with failback Auto, a more preferred eligible candidate
   gets the addresses back by a planned move. Failback Manual stays where it is.
6. No holder, and the previous one has not provably let go: wait (Switching; Degraded if
   its agent is gone but it cannot be proven silent). A releasing node is watched like a
   holder (rule 2): once its agent Lease expired and it is provably silent (Node not
   Ready or gone, or a live standby probed at or after the expiry and heard nobody, and
   none heard it), rule 7 completes the move, as a ``Failover``: it never released, and
   the outage spans the time without a holder (``startedAt`` stays the move's start).
7. No holder, nobody holds: assign the move's target if still eligible, else the best
   eligible candidate (the requested one for a switchover request), epoch+1, Switching;
   but wait while a live agent still reports holding from an older epoch. The target of
   a planned move is its named successor and may hold on a direct handoff (R11,
   ``aliasip_api.succession``): it is assigned when it reports holding even if no longer
   eligible (rule 3 moves it on), and anyone else is assigned only once it let go: while
   it has not, a second release step from it (same epoch) comes first. Nobody
   eligible: Pending if the AliasIP never had a holder, else Unavailable (reason
   ``NoEligibleNode``, or the refusal code every candidate agrees on, as in rule 3).

Switchover requests (the ``aliasip.io/switchover-to`` annotation): served only while
Active, i.e. the request becomes a move in rule 5 (or picks the target in rules 3 and 7),
and is consumed when that move completes. A request naming a node that is not a
candidate or not eligible is refused at once whatever the phase (Warning Event, consumed,
nothing moves); one naming the current holder is consumed with a Normal Event
(AlreadyActive), unless the last move was a finished switchover to that holder: then it
is the request that switchover served, still visible because the glue removes the
annotation only after writing the status that completes the move (the next decision may
run on that status with the annotation still present), and it is consumed without an
Event. One that a move of another kind supersedes is consumed with a Warning Event.
Otherwise it waits. (An empty request seen again that way cannot be told from a new one:
it starts a move, whose status write the glue then drops with a 409, as for any decision
made on a stale object.)

Foreign claims: the ``ForeignClaim`` condition is True (reason ``ForeignClaim``, the
message naming MAC, address, time and whether the holder defended it) while the holder's
own report carries ``foreignClaim``, else False (``NoForeignClaim``); Ready and the
placement are not affected (the holder still holds and defends the address).

Events are emitted when the phase, the holder, the epoch or the Ready reason changes (and
when an Invalid or Conflict message changes), plus one per consumed request, plus one
Warning ``ForeignClaim`` per new claim (the condition turns True, or names another MAC or
address): never for a decision that changes nothing. Warning for Degraded, Unavailable,
Invalid, Conflict, no eligible node (like kube-scheduler's FailedScheduling), failovers,
holder errors, refusals and foreign claims; Normal otherwise.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from aliasip_api import kubetime
from aliasip_api.conditions import ConditionStatus, find_condition, set_condition
from aliasip_api.errors import Finding
from aliasip_api.findings import address_findings, phase_for, stationary_findings
from aliasip_api.spec import AliasIP, Failback
from aliasip_api.status import AliasIPStatus, LastTransition, NodeState, Phase
from aliasip_operator.decision import Decision, Event, EventType
from aliasip_operator.health import HOLDER_ERROR, Health, Silence, Trouble, refusal_code
from aliasip_operator.observations import Observations, SwitchoverRequest

READY = "Ready"
"""True while the active node reports holding the addresses."""

FOREIGN_CLAIM = "ForeignClaim"
"""True while the holder reports another MAC claiming one of its addresses (RFC 5227
section 2.4); its reason is ``ForeignClaim`` then, ``NoForeignClaim`` otherwise. Ready is
not affected: the holder still holds (and defends) the addresses."""
NO_FOREIGN_CLAIM = "NoForeignClaim"

# Reasons, shared by the Ready condition, Events and lastTransition (CamelCase).
PLACEMENT = "Placement"
SWITCHOVER = "Switchover"
FAILOVER = "Failover"
FAILBACK = "Failback"
HELD = "Held"
SWITCHING = "Switching"
RELEASING = "Releasing"
AGENT_LOST = "HolderAgentLost"
NO_ELIGIBLE_NODE = "NoEligibleNode"
SWITCHOVER_COMPLETE = "SwitchoverComplete"
SWITCHOVER_REFUSED = "SwitchoverRefused"
SWITCHOVER_FAILED = "SwitchoverFailed"
ALREADY_ACTIVE = "AlreadyActive"

MESSAGE_MAX = 32768
"""A condition message's maxLength in the CRD (one error per candidate may exceed it)."""

_WARNING_PHASES = frozenset({Phase.DEGRADED, Phase.UNAVAILABLE, Phase.INVALID, Phase.CONFLICT})
_WARNING_REASONS = frozenset({FAILOVER, HOLDER_ERROR, NO_ELIGIBLE_NODE})


def decide(
    aliasip: AliasIP, observed: Observations, current: AliasIPStatus, now: datetime
) -> Decision:
    """The next status of ``aliasip`` given what is observed at ``now`` (rules above)."""
    spec = aliasip.spec
    findings = (
        *address_findings(spec),
        *stationary_findings(spec, observed.nodes.values()),
        *observed.conflicts,
    )
    if findings:
        return decide_invalid(findings, observed, current, now, generation=aliasip.generation)
    health = Health(spec.candidates(observed.nodes.values()), observed, current, now)
    planner = _Planner(aliasip.spec.failback, observed.switchover, health)
    return _compose(planner, planner.plan(), aliasip.generation)


def decide_invalid(
    findings: Sequence[Finding],
    observed: Observations,
    current: AliasIPStatus,
    now: datetime,
    *,
    generation: int | None,
) -> Decision:
    """Rule 1, also for an object whose spec does not even parse (``InvalidAliasIP``'s
    findings): no node may hold its addresses, and the user is told why."""
    if not findings:
        raise ValueError("decide_invalid needs at least one finding")
    phase = phase_for(findings) or Phase.INVALID
    reason = findings[0].reason
    message = "; ".join(str(f) for f in findings)
    holder = current.active_node
    transition = current.last_transition
    if holder is not None:
        transition = LastTransition(holder, None, reason, started_at=now)
    request = _Request()
    if observed.switchover is not None:
        request = _refusal(observed.switchover, f"this AliasIP is {phase}: {message}")
    health = Health((), observed, current, now)
    planner = _Planner(Failback.MANUAL, observed.switchover, health)
    plan = _Plan(None, phase, _Ready(ConditionStatus.FALSE, reason, message), transition, request)
    return _compose(planner, plan, generation)


@dataclass(frozen=True)
class _Ready:
    status: ConditionStatus
    reason: str
    message: str
    warning: bool = False  # a Warning Event whatever the phase (a refusal's own reason)


@dataclass(frozen=True)
class _Request:
    """What becomes of the switchover annotation: consumed or not, and the Event saying so."""

    consume: bool = False
    event: Event | None = None


@dataclass(frozen=True)
class _Plan:
    """One decision before the epoch, conditions and Events are derived from it."""

    active: str | None
    phase: Phase
    ready: _Ready
    transition: LastTransition | None
    request: _Request = _Request()


def _refusal(request: SwitchoverRequest, why: str) -> _Request:
    message = f"switchover to {request} refused: {why}; nothing moves"
    return _Request(True, Event(EventType.WARNING, SWITCHOVER_REFUSED, message))


@dataclass(frozen=True)
class _Planner:
    """Rules 2 to 7 for one valid AliasIP; see the module docstring."""

    failback: Failback
    request: SwitchoverRequest | None
    health: Health

    @property
    def status(self) -> AliasIPStatus:
        return self.health.status

    @property
    def now(self) -> datetime:
        return self.health.now

    @property
    def next_epoch(self) -> int:
        return self.status.epoch + 1

    @property
    def moving(self) -> LastTransition | None:
        """The unfinished move, if any."""
        transition = self.status.last_transition
        if transition is None or transition.finished_at is not None:
            return None
        return transition

    @property
    def in_flight(self) -> LastTransition | None:
        """The unfinished move that serves a switchover request, if any."""
        moving = self.moving
        return moving if moving is not None and moving.reason == SWITCHOVER else None

    @property
    def releasing(self) -> str | None:
        """The node a move is waiting on to let go: no holder now, one before."""
        moving = self.moving
        if self.status.active_node is not None or moving is None:
            return None
        return moving.from_node

    def plan(self) -> _Plan:
        holder = self.status.active_node
        if holder is not None:
            return self._with_holder(holder)
        return self._without_holder(self.releasing)

    # -- rules 2 to 5: there is a holder ------------------------------------------------

    def _with_holder(self, holder: str) -> _Plan:
        health = self.health
        if not health.lease_valid(holder):
            return self._holder_lost(holder)
        peers = health.peer_silence(holder)
        if peers is not None:  # evidence per node: its Lease has not lapsed yet
            return self._failover(holder, f"{holder} is silent: {peers.why}", peers.since)
        trouble = health.trouble(holder)
        if trouble is not None:
            return self._hand_over(holder, trouble)
        if not health.holds(holder):
            ready = self._still_moving(holder) or _Ready(
                ConditionStatus.FALSE,
                self._moving_reason(),
                f"waiting for {holder} to report holding the addresses at epoch "
                f"{self.status.epoch}",
            )
            return _Plan(
                holder, Phase.SWITCHING, ready, self.status.last_transition, self._pending()
            )
        return self._settled(holder)

    def _holder_lost(self, holder: str) -> _Plan:
        """Rule 2: the holder's agent is gone; fail over only if the node is silent."""
        health = self.health
        verdict = health.silence(holder)
        expiry = health.lease_expiry(holder)
        lost = f"the agent on {holder} lost its Lease"
        if expiry is not None:
            lost += f" at {kubetime.format_time(expiry)}"
        if verdict.silence is Silence.SILENT:
            return self._failover(holder, f"{lost} and {verdict.why}", expiry)
        message = (
            f"{lost}, but {verdict.why}: the addresses stay on {holder} until its agent "
            f"returns and adopts them, or {holder} is provably silent"
        )
        ready = _Ready(ConditionStatus.UNKNOWN, AGENT_LOST, message)
        return _Plan(holder, Phase.DEGRADED, ready, self.status.last_transition, self._pending())

    def _failover(self, holder: str, why: str, expiry: datetime | None) -> _Plan:
        health = self.health
        target = health.best(exclude={holder})
        started = min(expiry, self.now) if expiry is not None else self.now
        transition = LastTransition(holder, target, FAILOVER, started_at=started)
        if target is None:
            message = f"{why}; no other candidate can take over ({health.why_none({holder})})"
            ready = _Ready(ConditionStatus.FALSE, NO_ELIGIBLE_NODE, message)
            return _Plan(None, Phase.UNAVAILABLE, ready, transition, self._pending())
        laggards = health.laggards(target)
        if laggards:
            message = f"{why}; {target} takes over once {', '.join(laggards)} let go"
            ready = _Ready(ConditionStatus.FALSE, FAILOVER, message)
            return _Plan(None, Phase.SWITCHING, ready, transition, self._pending())
        message = f"{why}: {target} takes over at epoch {self.next_epoch}"
        ready = _Ready(ConditionStatus.FALSE, FAILOVER, message)
        return _Plan(target, Phase.SWITCHING, ready, transition, self._pending())

    def _hand_over(self, holder: str, trouble: Trouble) -> _Plan:
        """Rule 3: a live holder that should not serve hands over in order, if it can."""
        health = self.health
        view = health.view(holder)
        refused = self._refused() if trouble.reason == HOLDER_ERROR else None
        if trouble.reason == HOLDER_ERROR and view is not None and view.holder_heard:
            message = (
                f"{holder} {trouble.why}; it heard another node answer for the addresses, "
                "and so would any standby: waiting for that node to let go"
            )
            # The reason names the cause the holder's agent gave (``AddressInUse``).
            reason = refusal_code(view.message) or HOLDER_ERROR
            ready = refused or _Ready(ConditionStatus.FALSE, reason, message)
            transition = self.status.last_transition
            return _Plan(holder, Phase.UNAVAILABLE, ready, transition, self._pending())
        target, request = self._requested(exclude={holder})
        reason = SWITCHOVER
        if target is None:
            target, reason = health.best(exclude={holder}), trouble.reason
        if target is not None:
            return self._release(holder, target, reason, f"{holder} {trouble.why}", request)
        message = (
            f"{holder} {trouble.why}, but no other candidate can take over "
            f"({health.why_none({holder})})"
        )
        if trouble.reason == HOLDER_ERROR:
            phase, status = Phase.UNAVAILABLE, ConditionStatus.FALSE
        else:
            phase = Phase.DEGRADED
            status = ConditionStatus.TRUE if health.holds(holder) else ConditionStatus.FALSE
        ready = refused or _Ready(status, trouble.reason, message)
        request = request if request.consume else self._pending()
        return _Plan(holder, phase, ready, self.status.last_transition, request)

    def _settled(self, holder: str) -> _Plan:
        """Rule 5: the holder holds; finish the move, then serve requests and failback."""
        health = self.health
        finishing = self.moving
        if finishing is not None:
            done = self._finished(finishing, holder)
            request = _Request()
            if (
                finishing.reason == SWITCHOVER
                and self.request is not None
                and self.request.target in (None, holder)
            ):
                message = f"switched over from {finishing.from_node or 'no node'} to {holder}"
                if done.outage_ms is not None:
                    message += f" ({done.outage_ms} ms without a holder)"
                event = Event(EventType.NORMAL, SWITCHOVER_COMPLETE, message)
                request = _Request(True, event)
            return self._active(holder, done, request)
        transition = self.status.last_transition
        target, request = self._requested(exclude={holder})
        if target is not None:
            why = f"switchover to {target} requested"
            return self._release(holder, target, SWITCHOVER, why, request)
        if not request.consume and self.failback is Failback.AUTO:
            best = health.best()
            if best is not None and health.rank(best) < health.rank(holder):
                why = f"{best} is preferred over {holder} and eligible again (failback Auto)"
                return self._release(holder, best, FAILBACK, why, request)
        return self._active(holder, transition, request)

    def _active(self, holder: str, transition: LastTransition | None, request: _Request) -> _Plan:
        message = f"{holder} holds the addresses at epoch {self.status.epoch}"
        return _Plan(
            holder, Phase.ACTIVE, _Ready(ConditionStatus.TRUE, HELD, message), transition, request
        )

    def _finished(self, moving: LastTransition, holder: str) -> LastTransition:
        """``moving`` finished when ``holder`` reported holding (its report's time)."""
        view = self.health.view(holder)
        finished = view.updated_at if view is not None and view.updated_at else self.now
        return LastTransition(
            moving.from_node,
            holder,
            moving.reason,
            moving.started_at,
            finished,
            self._outage(moving, finished),
        )

    def _outage(self, moving: LastTransition, finished: datetime) -> int | None:
        """Milliseconds between the old holder's ``released`` and the new one's ``holding``
        reports, for a planned move (an unplanned one has no release to measure from)."""
        old = moving.from_node
        if old is None or moving.reason == FAILOVER:
            return None
        view = self.health.view(old)
        if (
            view is None
            or view.state not in (NodeState.RELEASED, NodeState.STANDBY)
            or view.updated_at is None
            or view.epoch is None
            or view.epoch < self.status.epoch - 1
        ):
            return None
        outage = (finished - view.updated_at).total_seconds() * 1000
        return round(outage) if outage >= 0 else None

    def _release(
        self,
        holder: str,
        target: str,
        reason: str,
        why: str,
        request: _Request,
        started_at: datetime | None = None,
    ) -> _Plan:
        """Step 1 of a planned move: nobody may hold until ``holder`` reports released
        (``started_at``: the move's start, when this step continues one)."""
        transition = LastTransition(holder, target, reason, started_at=started_at or self.now)
        # A second release step (from a named successor) keeps the epoch: nobody is active.
        epoch = self.status.epoch if self.status.active_node is None else self.next_epoch
        message = (
            f"{why}: {holder} releases the addresses (epoch {epoch}), then {target} takes them"
        )
        ready = _Ready(ConditionStatus.FALSE, reason, message)
        return _Plan(None, Phase.SWITCHING, ready, transition, request)

    # -- rules 6 and 7: no holder -------------------------------------------------------

    def _without_holder(self, releasing: str | None) -> _Plan:
        health = self.health
        if releasing is not None and not health.clear(releasing):
            return self._wait_for_release(releasing)
        # Rule 7: nobody holds, as far as can be proven. The move this assignment
        # continues (if any) keeps its reason and start; a release-only move (an invalid
        # spec, or no node left to fail over to) becomes a placement, unless it was a
        # failover: then the outage spans the time without a holder.
        continuing = self.moving if releasing is not None else None
        pinned = continuing.to_node if continuing is not None else None
        reason = PLACEMENT
        if continuing is not None and (pinned is not None or continuing.reason == FAILOVER):
            reason = continuing.reason or SWITCHING
        # The node asked to release never said it did: it was proven silent instead (its
        # agent lost its Lease, and its Node is gone or a fresh probe heard nobody). The
        # move completes, but as a failover: nothing was handed over in order, and the
        # outage spans the whole time without a holder (from the move's start).
        lost = releasing is not None and not health.released(releasing)
        if lost and continuing is not None:
            reason = FAILOVER
        request = _Request()
        target = pinned if pinned is not None and health.eligible(pinned) else None
        handoff = (
            continuing is not None
            and pinned is not None
            and continuing.reason != FAILOVER
            and pinned != releasing
        )
        if handoff and target is None and pinned is not None and continuing is not None:
            # R11: the named successor may hold on a direct handoff. If it says so, it is
            # the holder (rule 3 moves it on if it should not serve); if it may, it must
            # let go before anyone else is named: release again, from it.
            if health.lease_valid(pinned) and health.holds(pinned):
                target = pinned
            elif not health.clear(pinned):
                return self._release_successor(pinned, continuing)
        if target is None and releasing is None:
            target, request = self._requested(exclude=())
            if target is not None:
                reason = SWITCHOVER
        if target is None:
            target = health.best()
            if pinned is not None and self.in_flight is not None and self.request is not None:
                why = health.unfit(pinned) or "is not a candidate"
                message = f"switchover to {pinned} cannot complete: {pinned} {why}"
                if target is not None:
                    message += f"; {target} takes the addresses instead"
                request = _Request(True, Event(EventType.WARNING, SWITCHOVER_FAILED, message))
        if target is None:
            phase = Phase.PENDING if self.status.epoch == 0 else Phase.UNAVAILABLE
            message = f"no candidate can take the addresses: {health.why_none()}"
            ready = self._refused() or _Ready(ConditionStatus.FALSE, NO_ELIGIBLE_NODE, message)
            request = request if request.consume else self._pending()
            return _Plan(None, phase, ready, self.status.last_transition, request)
        laggards = health.laggards(target)
        if laggards:
            message = f"{target} takes the addresses once {', '.join(laggards)} let go"
            ready = _Ready(ConditionStatus.FALSE, reason, message)
            return _Plan(None, Phase.SWITCHING, ready, self.status.last_transition, request)
        started = continuing.started_at if continuing is not None else None
        transition = LastTransition(releasing, target, reason, started_at=started or self.now)
        message = f"{target} takes the addresses at epoch {self.next_epoch}"
        if lost and releasing is not None:
            message = f"{self._lost_release(releasing)}: {message}"
        ready = _Ready(ConditionStatus.FALSE, reason, message)
        return _Plan(target, Phase.SWITCHING, ready, transition, request)

    def _release_successor(self, successor: str, moving: LastTransition) -> _Plan:
        """Rule 7 when the named successor of a planned move cannot take the addresses
        but may hold them on a direct handoff (R11): a release step from it to the best
        other candidate, keeping the move's reason and start. Nobody eligible: wait, no
        holder (Unavailable) while the successor may still let go."""
        health = self.health
        why = health.unfit(successor) or "is not a candidate"
        target = health.best(exclude={successor})
        request = _Request()
        if self.in_flight is not None and self.request is not None:
            message = f"switchover to {successor} cannot complete: {successor} {why}"
            if target is not None:
                message += f"; {target} takes the addresses instead"
            request = _Request(True, Event(EventType.WARNING, SWITCHOVER_FAILED, message))
        if target is None:
            message = (
                f"{successor} was named to take the addresses but {why}, and no other "
                f"candidate can ({health.why_none({successor})})"
            )
            ready = self._refused() or _Ready(ConditionStatus.FALSE, NO_ELIGIBLE_NODE, message)
            request = request if request.consume else self._pending()
            return _Plan(None, Phase.UNAVAILABLE, ready, moving, request)
        why = (
            f"{successor} {why}, after it was named to take the addresses (a handoff may "
            "have given them to it)"
        )
        reason = moving.reason or SWITCHING
        return self._release(successor, target, reason, why, request, moving.started_at)

    def _lost_release(self, releasing: str) -> str:
        """Why a move goes on without ``releasing``'s release (it is provably silent)."""
        health = self.health
        peers = health.peer_silence(releasing)
        if peers is not None:
            return f"{releasing} was asked to release the addresses, but {peers.why}"
        expiry = health.lease_expiry(releasing)
        lost = f"{releasing} was asked to release the addresses, but its agent lost its Lease"
        if expiry is not None:
            lost += f" at {kubetime.format_time(expiry)}"
        return f"{lost} and {health.silence(releasing).why}"

    def _wait_for_release(self, releasing: str) -> _Plan:
        """Rule 6: the previous holder has not provably let go yet."""
        health = self.health
        transition = self.status.last_transition
        if health.lease_valid(releasing):
            view = health.view(releasing)
            seen = (
                f"it reports {view.state} at epoch {view.epoch}"
                if view is not None
                else "it has not reported yet"
            )
            message = (
                f"waiting for {releasing} to release the addresses at epoch "
                f"{self.status.epoch} ({seen})"
            )
            moving = self.moving
            reason = self._moving_reason() if moving and moving.to_node else RELEASING
            ready = _Ready(ConditionStatus.FALSE, reason, message)
            return _Plan(None, Phase.SWITCHING, ready, transition, self._pending())
        verdict = health.silence(releasing)
        message = (
            f"{releasing} was asked to release the addresses, but its agent lost its Lease "
            f"and {verdict.why}: waiting for its agent to return, or for {releasing} to be "
            "provably silent"
        )
        ready = _Ready(ConditionStatus.UNKNOWN, AGENT_LOST, message)
        return _Plan(None, Phase.DEGRADED, ready, transition, self._pending())

    def _refused(self) -> _Ready | None:
        """Ready=False naming the refusal every candidate repeats (its code as the reason,
        each node's error in the message), or None if they do not all agree."""
        code = self.health.refusal()
        if code is None:
            return None
        message = f"every candidate refuses the addresses ({code}): {self.health.why_none()}"
        return _Ready(ConditionStatus.FALSE, code, message, warning=True)

    # -- switchover requests ------------------------------------------------------------

    def _still_moving(self, holder: str) -> _Ready | None:
        """The Ready condition the write that named ``holder`` gave, while the move it
        started runs on: its words ("... takes over at epoch N") stay until the holder
        reports. Rewording it the moment the standbys' reports at the new epoch came in
        cost a second Switching write for one move in ten (100 failovers: ~10 writes more
        in the burst that bounds their time)."""
        current = find_condition(self.status.conditions, READY)
        if (
            self.status.phase is not Phase.SWITCHING
            or current is None
            or current.status != ConditionStatus.FALSE
            or current.reason != self._moving_reason()
            or self.moving is None
            or self.moving.to_node != holder
        ):
            return None
        return _Ready(current.status, current.reason, current.message)

    def _moving_reason(self) -> str:
        moving = self.moving
        return moving.reason if moving is not None and moving.reason else SWITCHING

    def _judge(self, target: str) -> _Request | None:
        """A named request's refusal (or acknowledgement), or None if it can be served."""
        assert self.request is not None
        health = self.health
        if target not in health.candidates:
            candidates = ", ".join(health.candidates) or "none"
            return _refusal(self.request, f"{target} is not a candidate ({candidates})")
        why = health.unfit(target)
        if why is not None:
            return _refusal(self.request, f"{target} {why}")
        if target == self.status.active_node:
            if self._switched_to(target):
                return _Request(True)  # served by the switchover that completed: no Event
            message = f"{target} already is the active node; nothing to switch"
            return _Request(True, Event(EventType.NORMAL, ALREADY_ACTIVE, message))
        return None

    def _switched_to(self, holder: str) -> bool:
        """Whether the last move is a finished switchover to ``holder``: a request naming
        ``holder`` then is the one that switchover served (see the module docstring)."""
        last = self.status.last_transition
        return (
            last is not None
            and last.finished_at is not None
            and last.reason == SWITCHOVER
            and last.to_node == holder
        )

    def _requested(self, exclude: Collection[str]) -> tuple[str | None, _Request]:
        """The node a request asks for now (None if none), and what becomes of it.

        While a switchover is in flight, the request is that switchover's own.
        """
        request = self.request
        if request is None or self.in_flight is not None:
            return None, _Request()
        if request.target is None:
            target = self.health.best(exclude)
            if target is None:
                why = f"no other candidate can take over ({self.health.why_none(exclude)})"
                return None, _refusal(request, why)
            return target, _Request()
        judged = self._judge(request.target)
        if judged is not None:
            return None, judged
        return request.target, _Request()

    def _pending(self) -> _Request:
        """A request while no move can start: refused if it can never be served as asked,
        acknowledged if it names the holder, else left for later."""
        request = self.request
        if request is None or request.target is None or self.in_flight is not None:
            return _Request()
        return self._judge(request.target) or _Request()


def _compose(planner: _Planner, plan: _Plan, generation: int | None) -> Decision:
    """Derive the epoch, the Ready condition and the Events from ``plan``."""
    if len(plan.ready.message) > MESSAGE_MAX:
        plan = replace(plan, ready=replace(plan.ready, message=plan.ready.message[:MESSAGE_MAX]))
    current = planner.status
    now = planner.now
    epoch = current.epoch + 1 if plan.active != current.active_node else current.epoch
    conditions = set_condition(
        current.conditions,
        READY,
        plan.ready.status,
        plan.ready.reason,
        plan.ready.message,
        observed_generation=generation,
        now=now,
    )
    claim = _foreign_claim(current)
    conditions = set_condition(
        conditions,
        FOREIGN_CLAIM,
        claim.status,
        claim.reason,
        claim.message,
        observed_generation=generation,
        now=now,
    )
    status = AliasIPStatus(
        active_node=plan.active,
        phase=plan.phase,
        epoch=epoch,
        conditions=conditions,
        last_transition=plan.transition,
    )
    request = plan.request
    in_flight = planner.in_flight
    superseded = (
        in_flight is not None
        and planner.request is not None
        and not request.consume
        and plan.transition is not in_flight
        and (plan.transition is None or plan.transition.reason != SWITCHOVER)
    )
    if superseded and in_flight is not None:
        message = f"switchover to {in_flight.to_node} did not complete: {plan.ready.message}"
        if plan.transition is not None and plan.transition.to_node == in_flight.to_node:
            message = f"switchover to {in_flight.to_node} became a failover: {plan.ready.message}"
        request = _Request(True, Event(EventType.WARNING, SWITCHOVER_FAILED, message))
    events: list[Event] = []
    old = find_condition(current.conditions, READY)
    before = (current.phase, current.active_node, current.epoch, old.reason if old else None)
    after = (plan.phase, plan.active, epoch, plan.ready.reason)
    message_changed = old is None or old.message != plan.ready.message
    if before != after or (plan.phase in (Phase.INVALID, Phase.CONFLICT) and message_changed):
        warning = (
            plan.phase in _WARNING_PHASES
            or plan.ready.reason in _WARNING_REASONS
            or plan.ready.warning
        )
        kind = EventType.WARNING if warning else EventType.NORMAL
        events.append(Event(kind, plan.ready.reason, plan.ready.message))
    if request.event is not None:
        events.append(request.event)
    if claim.warning is not None and _new_claim(current, claim.warning):
        events.append(Event(EventType.WARNING, FOREIGN_CLAIM, claim.message))
    health = planner.health
    involved = {n for n in (current.active_node, plan.active, planner.releasing) if n}
    return Decision(
        status=status,
        events=tuple(events),
        remove_switchover=request.consume and planner.request is not None,
        recheck_at=health.recheck_at(involved),
    )


@dataclass(frozen=True)
class _Claim:
    """The ForeignClaim condition, and the claim's identity (``warning``: the part of the
    message that names MAC and address) while there is one."""

    status: ConditionStatus
    reason: str
    message: str
    warning: str | None = None


_NO_CLAIM = _Claim(
    ConditionStatus.FALSE,
    NO_FOREIGN_CLAIM,
    "no foreign claim: the holder reports no other MAC claiming its addresses",
)


def _foreign_claim(current: AliasIPStatus) -> _Claim:
    """The ForeignClaim condition from the holder's own report (its agent listens for
    ARP and NDP frames from other MACs claiming a held address, and defends it at most
    once per 10 s, RFC 5227 section 2.4 (b)). Only the holder's view counts: another
    node's report of a claim is stale (it held before) or not its to make."""
    holder = current.active_node
    view = current.nodes.get(holder) if holder is not None else None
    found = view.foreign_claim if view is not None else None
    if holder is None or found is None:
        return _NO_CLAIM
    identity = f"MAC {found.mac} claims {found.address} "
    outcome = (
        "it defended the address with one announcement"
        if found.defended
        else "it has given up defending the address"
    )
    message = (
        f"{holder} reports that {identity}(seen at {kubetime.format_time(found.at)}); {outcome}"
    )
    return _Claim(ConditionStatus.TRUE, FOREIGN_CLAIM, message, identity)


def _new_claim(current: AliasIPStatus, identity: str) -> bool:
    """Whether the claim named by ``identity`` is new: the condition was not True, or
    named another (MAC, address). A claim seen again later (a new ``at``) while the
    condition stays True is the same claim: one Warning Event per claim, not per report."""
    old = find_condition(current.conditions, FOREIGN_CLAIM)
    return old is None or old.status is not ConditionStatus.TRUE or identity not in old.message
