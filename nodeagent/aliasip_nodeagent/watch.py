"""Pure decisions of a standby that watches the holder: when to probe, when to report.

The operator fails over from a holder whose agent Lease expired only with evidence that
the holder is silent on the wire: a live standby's ``holderHeard`` with an ``observedAt``
at or after that expiry (design.md, "Unplanned failover"). If a standby still hears the
addresses answered, the agent alone died and nothing moves ("What is not a failover").

So on each full pass a standby (listed in ``spec.nodes``, or already reporting a view) of
an AliasIP whose status names another node reads that holder's agent Lease, once per
holder per pass, and only when the Lease has lapsed — a failure — probes the addresses
(the bounded probe, tens of milliseconds). The result is written only when it says
something new (API-write budget): no observation yet, another value, or an observation
older than the current expiry (each expiry gets one fresh observation after it; a Lease
renewed and lapsed again has a later expiry). Never periodically otherwise.

Nodes matched only by ``spec.nodeSelector`` are not known here: the agent never reads
Node objects (its RBAC), so it cannot evaluate the selector against its own labels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aliasip_api import kubetime
from aliasip_api.status import NodeView
from aliasip_nodeagent.reconcile import Observed


def lease_name(node: str) -> str:
    """The agent Lease of ``node`` (as ``Settings.lease_name``)."""
    return f"aliasip-agent-{node}"


@dataclass(frozen=True)
class HolderLease:
    """The holder's agent Lease, reduced to what liveness needs (as the operator reads it)."""

    holder: str | None
    renew_time: datetime | None
    duration_s: int | None

    @property
    def expires_at(self) -> datetime | None:
        if self.renew_time is None or self.duration_s is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_s)


def parse_lease(obj: Mapping[str, Any]) -> HolderLease:
    """Read a Lease; a malformed field reads as missing (so the Lease vouches for nobody)."""
    spec = obj.get("spec") or {}
    renew: datetime | None = None
    raw = spec.get("renewTime")
    if raw is not None:
        try:
            renew = kubetime.parse_time(str(raw))
        except ValueError:
            renew = None
    duration = spec.get("leaseDurationSeconds")
    holder = spec.get("holderIdentity")
    return HolderLease(
        holder=str(holder) if holder else None,
        renew_time=renew,
        duration_s=duration if isinstance(duration, int) and duration > 0 else None,
    )


def watched_holder(node: str, obs: Observed) -> str | None:
    """The holder ``node`` should watch for ``obs``, or None.

    ``node`` must be a candidate this agent knows of (listed in ``spec.nodes``, or already
    reporting a view, exactly the AliasIPs ``report.view_for`` reports for) and the status,
    which must parse, must name another node.
    """
    if obs.spec is None or not obs.status_valid:
        return None
    active = obs.status.active_node
    if active is None or active == node:
        return None
    if node not in obs.spec.nodes and obs.view_of(node) is None:
        return None
    return active


def lease_lapsed(lease: HolderLease | None, holder: str, now: datetime) -> bool:
    """Whether the holder's agent Lease vouches for nobody at ``now``: it is missing, given
    up or held by another identity, or ``renewTime + leaseDurationSeconds <= now``.

    Clock skew: ``renewTime`` is written with the holder's clock and compared with ours.
    The operator makes the same comparison (``observedAt`` against the expiry), so a probe
    made when this says lapsed is one the operator accepts; a skew only shifts the moment
    of the probe, never lets a probe from before the expiry count.
    """
    if lease is None or lease.holder != holder:
        return True
    expires = lease.expires_at
    return expires is None or now >= expires


def report_due(current: NodeView | None, heard: bool, lease: HolderLease | None) -> bool:
    """Whether a probe result ``heard`` must be written, given the view the object carries.

    Yes when the object carries no observation, another value, or one made before the
    current Lease's expiry (a new expiry needs one fresh observation after it).
    """
    if current is None or current.holder_heard is None or current.observed_at is None:
        return True
    if current.holder_heard != heard:
        return True
    expires = lease.expires_at if lease is not None else None
    return expires is not None and current.observed_at < expires
