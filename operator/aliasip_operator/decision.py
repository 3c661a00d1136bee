"""What one decision returns: the operator's part of the next status, Events, and whether
to remove the switchover annotation. Plain data; the kopf glue applies it.

The operator owns ``activeNode``, ``phase``, ``epoch``, ``conditions`` and
``lastTransition``; the agents own ``status.nodes``. A ``Decision``'s status therefore
never carries ``nodes``, and ``status_patch`` is a merge patch that cannot touch them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aliasip_api.status import AliasIPStatus

_TRANSITION_OPTIONAL = ("reason", "startedAt", "finishedAt", "outageMs")


class EventType(StrEnum):
    """``core/v1`` Event types: Kubernetes knows only these two."""

    NORMAL = "Normal"
    WARNING = "Warning"


@dataclass(frozen=True)
class Event:
    """One Kubernetes Event about the AliasIP (``reason`` is CamelCase, as kubectl shows it)."""

    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Decision:
    """The outcome of ``decide``.

    ``status`` is the operator's part of the next status (``nodes`` is always empty).
    ``events`` are emitted only when something changed, so running the same decision
    again emits nothing. ``remove_switchover`` says the ``aliasip.io/switchover-to``
    annotation has been served (completed, refused, or naming the holder already).
    ``recheck_at`` is the earliest time at which the same observations could lead to
    another decision (a Lease expiring): the glue must decide again by then even if no
    watch event arrives. It does so per node rather than per AliasIP: every Lease of a
    node this decision reads is looked at again at its expiry, and a change queues the
    AliasIPs involving that node (``relations``, ``handlers.Context.track_lease``).
    """

    status: AliasIPStatus
    events: tuple[Event, ...] = ()
    remove_switchover: bool = False
    recheck_at: datetime | None = None

    def changed(self, current: AliasIPStatus) -> bool:
        """Whether the operator's part differs from ``current``'s (i.e. a patch is needed)."""
        return self.status.to_dict(nodes=False) != current.to_dict(nodes=False)

    def status_patch(self) -> dict[str, Any]:
        """The merge patch for the ``/status`` subresource.

        A merge patch merges objects key by key, so a field this status no longer has
        must be sent as null to be removed: otherwise a new ``lastTransition`` would keep
        the previous move's ``finishedAt`` and ``outageMs``.
        """
        body = self.status.to_dict(nodes=False)
        transition = body.get("lastTransition")
        if transition is not None:
            for key in _TRANSITION_OPTIONAL:
                transition.setdefault(key, None)
        return {"status": body}
