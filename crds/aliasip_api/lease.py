"""The node agent's Lease: the liveness contract between agents and the operator.

Each agent renews a ``coordination.k8s.io/v1`` Lease ``aliasip-agent-<node>`` whose
``holderIdentity`` is its node's name. The operator reads it to decide whether an agent is
alive; a standby agent reads the holder's to know when to probe the wire for it. One
reading, shared by both, so they agree on when a Lease has expired.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aliasip_api import kubetime

AGENT_LEASE_PREFIX = "aliasip-agent-"
# Written by an agent that stops gracefully (a roll-out): until this moment its node's
# kernel may keep the aliases it held without a live agent (docs/design.md, R9), so no
# standby calls that node silent before it.
HANDOVER_ANNOTATION = "aliasip.io/handover-until"
# Where the node's agent hears heartbeats (docs/design.md, "The monitoring path"): its
# stationary addresses on the service LANs, ``address/prefix`` separated by commas.
MONITOR_ANNOTATION = "aliasip.io/monitor"
# How long after its agent stops the node's aliases may still answer, in ms: the fine
# dead-man switch (docs/design.md, R9). Without it, the address lifetime's window.
MUTE_ANNOTATION = "aliasip.io/mute-window-ms"
# The nodes this agent proved silent (docs/design.md, "Evidence per node"): heartbeats
# missed and a wire probe silent for the node's dead-man window, as
# ``node=<since, RFC 3339 micro>`` separated by commas. One write per observation.
SILENT_ANNOTATION = "aliasip.io/silent"
# The annotations an agent writes with every renewal (set when it has a value, removed
# otherwise); the handover annotation is written apart, on a graceful stop only.
AGENT_ANNOTATIONS = (MONITOR_ANNOTATION, MUTE_ANNOTATION, SILENT_ANNOTATION)


def agent_lease_name(node: str) -> str:
    """The name of ``node``'s agent Lease."""
    return f"{AGENT_LEASE_PREFIX}{node}"


@dataclass(frozen=True)
class AgentLease:
    """A node agent's Lease, reduced to what liveness needs.

    ``holder`` is ``spec.holderIdentity``: the agent writes its node's name; client-go
    empties it when an agent gives the Lease up on shutdown, which reads as expired.
    """

    holder: str | None
    renew_time: datetime | None
    duration_s: int | None
    handover_until: datetime | None = None
    monitor: str | None = None
    mute_window_ms: int | None = None
    # (node, since) for each node this agent proved silent, sorted by node
    silent: tuple[tuple[str, datetime], ...] = ()

    def silent_since(self, node: str) -> datetime | None:
        """Since when this Lease's agent says ``node`` is silent, or None."""
        return next((since for name, since in self.silent if name == node), None)

    @property
    def expires_at(self) -> datetime | None:
        """``renewTime + leaseDurationSeconds``; None when either is missing."""
        if self.renew_time is None or self.duration_s is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_s)

    def expired(self, now: datetime) -> bool:
        """Whether the Lease vouches for nobody at ``now``.

        A Lease without a renew time or a duration never vouched for anyone, so it counts
        as expired: liveness must be proven, not assumed. Expiry is inclusive (at exactly
        ``renewTime + duration`` the Lease is expired), as client-go's leader election.
        """
        expires = self.expires_at
        return expires is None or now >= expires

    def valid_for(self, node: str, now: datetime) -> bool:
        """Whether this Lease proves ``node``'s agent alive at ``now``.

        The holder must be that node: a Lease given up (empty holder) or taken by
        someone else proves nothing about the node's agent.
        """
        return self.holder == node and not self.expired(now)


def parse_lease(obj: Mapping[str, Any]) -> AgentLease:
    """Read a ``coordination.k8s.io/v1`` Lease (a dict as the API returns it).

    A malformed ``renewTime`` reads as missing (so the Lease counts as expired) rather
    than raising: one bad Lease must not stop the decisions for every AliasIP.
    """
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
    return AgentLease(
        holder=str(holder) if holder else None,
        renew_time=renew,
        duration_s=duration if isinstance(duration, int) and duration > 0 else None,
        handover_until=_handover_until(obj),
        monitor=_annotation(obj, MONITOR_ANNOTATION),
        mute_window_ms=_mute_window_ms(obj),
        silent=parse_silent(_annotation(obj, SILENT_ANNOTATION)),
    )


def _annotation(obj: Mapping[str, Any], name: str) -> str | None:
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(name)
    return None if raw is None else str(raw)


def format_silent(silent: Mapping[str, datetime]) -> str:
    """The silent annotation's value (``parse_silent`` reads it back)."""
    return ",".join(f"{node}={kubetime.format_micro_time(silent[node])}" for node in sorted(silent))


def parse_silent(raw: str | None) -> tuple[tuple[str, datetime], ...]:
    """The silent annotation's pairs; a malformed entry is dropped (no evidence: the safe
    side), never the whole Lease."""
    found: dict[str, datetime] = {}
    for entry in (raw or "").split(","):
        node, equals, stamp = entry.strip().partition("=")
        if not equals or not node:
            continue
        try:
            found[node] = kubetime.parse_time(stamp)
        except ValueError:
            continue
    return tuple(sorted(found.items()))


def _mute_window_ms(obj: Mapping[str, Any]) -> int | None:
    """The advertised mute window; a malformed one reads as none (the coarse window: the
    safe side)."""
    raw = _annotation(obj, MUTE_ANNOTATION)
    if raw is None or not raw.isdigit() or int(raw) <= 0:
        return None
    return int(raw)


def _handover_until(obj: Mapping[str, Any]) -> datetime | None:
    """The handover annotation's moment. A malformed one (never our agent's writing) reads
    as a handover without end: standbys then wait for the node's next agent, the safe side."""
    raw = ((obj.get("metadata") or {}).get("annotations") or {}).get(HANDOVER_ANNOTATION)
    if raw is None:
        return None
    try:
        return kubetime.parse_time(str(raw))
    except ValueError:
        return datetime.max.replace(tzinfo=UTC)
