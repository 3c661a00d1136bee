"""Status conditions with ``metav1.Condition`` semantics.

A condition's ``lastTransitionTime`` says when its *status* last changed, not when it was
last written: rewriting the same status with a new reason, message or generation keeps
the time (``meta.SetStatusCondition`` in apimachinery; Gafaelfawr's
``KubernetesResourceStatus`` for the observedGeneration habit). So ``kubectl wait`` and
humans can tell how long something has been true. Times are whole seconds, as
``metav1.Time`` stores them, so a condition compares equal after a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from aliasip_api import kubetime


class ConditionStatus(StrEnum):
    """``conditions[].status``; the values mirror the CRD's enum (a test pins them)."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Condition:
    """One condition; ``observed_generation`` is the metadata.generation it was computed from."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    last_transition_time: datetime
    observed_generation: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "status": str(self.status),
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": kubetime.format_time(self.last_transition_time),
        }
        if self.observed_generation is not None:
            body["observedGeneration"] = self.observed_generation
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> Condition:
        """Build from a body the CRD schema has already validated."""
        return cls(
            type=str(body["type"]),
            status=ConditionStatus(body["status"]),
            reason=str(body["reason"]),
            message=str(body["message"]),
            last_transition_time=kubetime.parse_time(str(body["lastTransitionTime"])),
            observed_generation=body.get("observedGeneration"),
        )


def find_condition(conditions: Sequence[Condition], condition_type: str) -> Condition | None:
    """The condition of ``condition_type``, or None."""
    return next((c for c in conditions if c.type == condition_type), None)


def set_condition(
    conditions: Sequence[Condition],
    condition_type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    *,
    observed_generation: int | None,
    now: datetime,
) -> tuple[Condition, ...]:
    """``conditions`` with ``condition_type`` set; the others (and the order) unchanged.

    ``lastTransitionTime`` becomes ``now`` for a new condition or a changed status and is
    kept otherwise; reason, message and observedGeneration are always updated.
    """
    old = find_condition(conditions, condition_type)
    if old is None or old.status != status:
        when = kubetime.truncate_to_seconds(now)
    else:
        when = old.last_transition_time
    new = Condition(condition_type, status, reason, message, when, observed_generation)
    if old is None:
        return (*conditions, new)
    if old == new:
        return tuple(conditions)
    return tuple(new if c.type == condition_type else c for c in conditions)
