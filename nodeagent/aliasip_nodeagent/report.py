"""Pure decisions about what an agent reports under ``status.nodes.<node>``, and when.

The operator reads these views (docs/design.md, "The contract between operator and agent"):

- ``holding`` at epoch E: this node holds every address of the AliasIP for epoch E; also
  while it still holds any of them after a failed delete (``message`` says why), because
  the operator must never assign elsewhere while this node may still answer;
- ``error`` at epoch E: status names this node, it holds none of the addresses and cannot
  serve them now (link down, no covering interface, another node answers on the wire);
- ``released`` at epoch E: status does not name this node and it holds none of the
  addresses, after having held them (the first step of a planned move waits for this);
- ``standby``: status does not name this node, which has not held them since.

Write budget: a view is written only when it differs from the one the object already
carries, ignoring the times (``needs_write``), so a steady cluster costs no writes and a
restarted agent whose view is already right writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aliasip_api.status import ForeignClaim, NodeState, NodeView, node_view_patch
from aliasip_nodeagent.reconcile import Observed

# Every key a NodeView may carry: a merge patch must send null for the ones a view
# leaves out, or an old ``message`` would outlive the error it described (RFC 7386).
_VIEW_KEYS = (
    "state",
    "message",
    "epoch",
    "interface",
    "updatedAt",
    "holderHeard",
    "observedAt",
    "foreignClaim",
)


@dataclass(frozen=True)
class Outcome:
    """What the daemon achieved for one AliasIP in one pass.

    ``holds_all``: every address is held as wanted; ``holds_any``: at least one is still
    held; ``error``: why holding (or releasing) failed; ``released``: addresses were deleted
    in this pass; ``heard``/``observed_at``: a standby's probe on the wire, if one was made;
    ``fresh``: that probe must be written even if its value is unchanged (a new expiry of
    the holder's Lease, ``watch.report_due``); ``foreign_claim``: another MAC's claim on
    one of the addresses while this node held it (``claimwatch``), reported in every view.
    """

    holds_all: bool = False
    holds_any: bool = False
    error: str | None = None
    released: bool = False
    interface: str | None = None
    heard: bool | None = None
    observed_at: datetime | None = None
    fresh: bool = False
    foreign_claim: ForeignClaim | None = None


def view_for(
    node: str,
    obs: Observed,
    outcome: Outcome,
    now: datetime,
    *,
    in_progress: bool = False,
    handed: bool = False,
    awaiting: bool = False,
) -> NodeView | None:
    """The view this node should report for ``obs``, or None to report nothing (yet).

    Nothing is reported for an object whose status does not parse, for a hold still in
    progress, or for an AliasIP this node has no part in (not listed in ``spec.nodes``,
    never reported, holding nothing). ``handed``: this node holds on a direct handoff
    taken at the current epoch (``holding`` then, without a complaint). ``awaiting``: it
    is the named successor and has not been handed the addresses yet: it reports nothing
    at this epoch but a refusal (or a probe, told at the epoch before), because a
    ``standby`` at the epoch would tell the operator it let go while a handoff may still
    come (R11).
    """
    if not obs.status_valid or in_progress:
        return None
    if handed and outcome.holds_any:
        return NodeView(
            NodeState.HOLDING,
            outcome.error,
            obs.status.epoch,
            outcome.interface,
            now,
            foreign_claim=outcome.foreign_claim,
        )
    if awaiting and outcome.error is None and not outcome.holds_any:
        if outcome.heard is None:
            return None
        # A probe of the releasing node is evidence the operator needs (R3), told at the
        # epoch before: it proves nothing about letting go at this one.
        return NodeView(
            NodeState.STANDBY,
            None,
            obs.status.epoch - 1,
            None,
            now,
            outcome.heard,
            outcome.observed_at,
        )
    previous = obs.view_of(node)
    epoch = obs.status.epoch
    claim = outcome.foreign_claim
    if obs.status.active_node == node:
        if outcome.holds_all and outcome.error is None:
            return NodeView(
                NodeState.HOLDING, None, epoch, outcome.interface, now, foreign_claim=claim
            )
        if outcome.holds_any:
            return NodeView(
                NodeState.HOLDING, outcome.error, epoch, outcome.interface, now, foreign_claim=claim
            )
        message = outcome.error or obs.problem or "the addresses are not held"
        return NodeView(
            NodeState.ERROR,
            message,
            epoch,
            outcome.interface,
            now,
            outcome.heard,
            outcome.observed_at if outcome.heard is not None else None,
            claim,
        )
    listed = obs.spec is not None and node in obs.spec.nodes
    if not (listed or previous is not None or outcome.released or outcome.holds_any):
        return None
    if outcome.holds_any:
        message = outcome.error or "still holds addresses it must release"
        return NodeView(
            NodeState.HOLDING, message, epoch, outcome.interface, now, foreign_claim=claim
        )
    was_holder = previous is not None and previous.state in (NodeState.HOLDING, NodeState.RELEASED)
    state = NodeState.RELEASED if outcome.released or was_holder else NodeState.STANDBY
    if outcome.error is not None:
        # A refusal this node would repeat if named (``refusals.precheck``): it stays an
        # error while its cause lasts, so the operator never names it in vain.
        state = NodeState.ERROR
    heard, observed = outcome.heard, outcome.observed_at
    if heard is None and previous is not None:
        heard, observed = previous.holder_heard, previous.observed_at
    return NodeView(state, outcome.error, epoch, None, now, heard, observed, claim)


def needs_write(current: NodeView | None, desired: NodeView | None) -> bool:
    """Whether ``desired`` says something ``current`` (what the object carries) does not.

    Times are ignored, except that a new probe result (``holderHeard``) is always news,
    and a foreign claim is compared whole (its ``at`` names the claim episode, so a claim
    costs one write per episode and step, not one per frame).
    """
    if desired is None:
        return False
    if current is None:
        return True
    return _essence(current) != _essence(desired)


def _essence(view: NodeView) -> tuple[object, ...]:
    claim = view.foreign_claim.to_dict() if view.foreign_claim is not None else None
    return (view.state, view.message, view.epoch, view.interface, view.holder_heard, claim)


def patch_body(node: str, view: NodeView) -> dict[str, Any]:
    """The merge patch for ``status.nodes.<node>``: the view, with null for absent keys."""
    body = node_view_patch(node, view)
    mine: dict[str, Any] = body["status"]["nodes"][node]
    for key in _VIEW_KEYS:
        mine.setdefault(key, None)
    return body
