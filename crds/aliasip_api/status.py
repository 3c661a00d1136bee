"""The typed AliasIP status: what the operator and the agents write, read back.

Ownership (docs/design.md, "The contract between operator and agent"): the operator writes
``activeNode``, ``phase``, ``epoch``, ``conditions`` and ``lastTransition``; each agent
writes only its own key of ``nodes``, with a merge patch (``node_view_patch``), so writers
never overwrite each other. ``AliasIPStatus.to_dict(nodes=False)`` is the operator's side.
Fields this model does not know (kopf's own, kept by ``x-kubernetes-preserve-unknown-fields``)
are ignored on read and never written, so a merge patch leaves them alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from aliasip_api import kubetime
from aliasip_api.conditions import Condition
from aliasip_api.crd import AliasIPCRD, packaged_crd
from aliasip_api.errors import INVALID_STATUS, Finding, InvalidAliasIP


class Phase(StrEnum):
    """``status.phase``; the values mirror the CRD's enum (a test pins them)."""

    PENDING = "Pending"
    ACTIVE = "Active"
    DEGRADED = "Degraded"
    SWITCHING = "Switching"
    UNAVAILABLE = "Unavailable"
    INVALID = "Invalid"
    CONFLICT = "Conflict"


class NodeState(StrEnum):
    """``status.nodes.<node>.state``; the values mirror the CRD's enum (a test pins them)."""

    HOLDING = "holding"
    RELEASED = "released"
    STANDBY = "standby"
    ERROR = "error"


@dataclass(frozen=True)
class ForeignClaim:
    """A frame from another MAC claiming a held address (RFC 5227 section 2.4): who, which
    address, when, and whether the holder defended it with one announcement."""

    mac: str
    address: str
    at: datetime
    defended: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "address": self.address,
            "at": kubetime.format_micro_time(self.at),
            "defended": self.defended,
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> ForeignClaim:
        at = _time(body.get("at"))
        assert at is not None  # required by the CRD schema
        return cls(
            mac=str(body["mac"]),
            address=str(body["address"]),
            at=at,
            defended=bool(body.get("defended", True)),
        )


@dataclass(frozen=True)
class NodeView:
    """One node's own view, written by that node's agent.

    ``holder_heard`` and ``observed_at`` are a standby's probe on the wire (docs/design.md,
    "Unplanned failover"): whether some node answered for the addresses when this node
    last probed, and when. They tell the operator an agent that died on a node that still
    answers (not a failover: Degraded) from a node that is gone (fail over). ``observed_at``
    is separate from ``updated_at`` because it says when the wire was looked at, and the
    operator only trusts a probe made after the holder's Lease expired.

    ``foreign_claim`` is a holder's: another MAC claimed one of its addresses on the wire.
    """

    state: NodeState
    message: str | None = None
    epoch: int | None = None
    interface: str | None = None
    updated_at: datetime | None = None
    holder_heard: bool | None = None
    observed_at: datetime | None = None
    foreign_claim: ForeignClaim | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": str(self.state)}
        if self.message is not None:
            body["message"] = self.message
        if self.epoch is not None:
            body["epoch"] = self.epoch
        if self.interface is not None:
            body["interface"] = self.interface
        if self.updated_at is not None:
            body["updatedAt"] = kubetime.format_micro_time(self.updated_at)
        if self.holder_heard is not None:
            body["holderHeard"] = self.holder_heard
        if self.observed_at is not None:
            body["observedAt"] = kubetime.format_micro_time(self.observed_at)
        if self.foreign_claim is not None:
            body["foreignClaim"] = self.foreign_claim.to_dict()
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> NodeView:
        """Build from a body the CRD schema has already validated."""
        return cls(
            state=NodeState(body["state"]),
            message=body.get("message"),
            epoch=body.get("epoch"),
            interface=body.get("interface"),
            updated_at=_time(body.get("updatedAt")),
            holder_heard=body.get("holderHeard"),
            observed_at=_time(body.get("observedAt")),
            foreign_claim=(
                ForeignClaim.from_dict(body["foreignClaim"])
                if body.get("foreignClaim") is not None
                else None
            ),
        )


@dataclass(frozen=True)
class LastTransition:
    """The last move, as measured by the agents (``from_node``/``to_node``: None for none)."""

    from_node: str | None
    to_node: str | None
    reason: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outage_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"from": self.from_node, "to": self.to_node}
        if self.reason is not None:
            body["reason"] = self.reason
        if self.started_at is not None:
            body["startedAt"] = kubetime.format_micro_time(self.started_at)
        if self.finished_at is not None:
            body["finishedAt"] = kubetime.format_micro_time(self.finished_at)
        if self.outage_ms is not None:
            body["outageMs"] = self.outage_ms
        return body

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> LastTransition:
        """Build from a body the CRD schema has already validated."""
        return cls(
            from_node=body.get("from"),
            to_node=body.get("to"),
            reason=body.get("reason"),
            started_at=_time(body.get("startedAt")),
            finished_at=_time(body.get("finishedAt")),
            outage_ms=body.get("outageMs"),
        )


@dataclass(frozen=True)
class AliasIPStatus:
    """The whole status; an object nobody has written status for reads as the defaults."""

    active_node: str | None = None
    phase: Phase | None = None
    epoch: int = 0
    nodes: Mapping[str, NodeView] = field(default_factory=dict, hash=False)
    conditions: tuple[Condition, ...] = ()
    last_transition: LastTransition | None = None

    def __post_init__(self) -> None:
        # Frozen all the way down, like the rest of the model.
        object.__setattr__(self, "nodes", MappingProxyType(dict(self.nodes)))

    def to_dict(self, *, nodes: bool = True) -> dict[str, Any]:
        """The status body. ``activeNode`` is always present: null means "no node".

        ``nodes=False`` leaves out the agents' part, for the operator's merge patch.
        """
        body: dict[str, Any] = {"activeNode": self.active_node, "epoch": self.epoch}
        if self.phase is not None:
            body["phase"] = str(self.phase)
        if nodes and self.nodes:
            body["nodes"] = {name: view.to_dict() for name, view in self.nodes.items()}
        if self.conditions:
            body["conditions"] = [c.to_dict() for c in self.conditions]
        if self.last_transition is not None:
            body["lastTransition"] = self.last_transition.to_dict()
        return body

    @classmethod
    def from_dict(cls, body: Any, crd: AliasIPCRD | None = None) -> AliasIPStatus:
        """Validate ``body`` (a status, or None) against the CRD and parse it.

        Raises ``InvalidAliasIP`` (reason InvalidStatus) for a status the CRD forbids:
        it can only come from a bug in a writer, and acting on it would be guessing.
        """
        if body is None:
            return cls()
        crd = crd or packaged_crd()
        body = crd.status_schema.default(body)
        findings = crd.status_schema.validate(body, "status", INVALID_STATUS)
        if findings:
            raise InvalidAliasIP(findings)
        phase = body.get("phase")
        last = body.get("lastTransition")
        return cls(
            active_node=body.get("activeNode"),
            phase=Phase(phase) if phase is not None else None,
            epoch=body.get("epoch", 0),
            nodes={name: NodeView.from_dict(v) for name, v in body.get("nodes", {}).items()},
            conditions=tuple(Condition.from_dict(c) for c in body.get("conditions", ())),
            last_transition=LastTransition.from_dict(last) if last is not None else None,
        )


def node_view_patch(node: str, view: NodeView) -> dict[str, Any]:
    """The merge-patch body (for the ``/status`` subresource) an agent sends for its node."""
    return {"status": {"nodes": {node: view.to_dict()}}}


def update_findings(
    old: AliasIPStatus, new: AliasIPStatus, crd: AliasIPCRD | None = None
) -> tuple[Finding, ...]:
    """What the CRD's transition rules forbid in writing ``new`` over ``old`` (e.g. an epoch
    that goes backwards), checked in Python because the lab's API server does not run CEL."""
    crd = crd or packaged_crd()
    return tuple(
        crd.status_schema.validate_update(old.to_dict(), new.to_dict(), "status", INVALID_STATUS)
    )


def _time(value: Any) -> datetime | None:
    return kubetime.parse_time(str(value)) if value is not None else None
