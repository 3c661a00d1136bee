"""The named successor of a planned move: who may take the addresses on a direct handoff.

Issue 11's direct handoff (docs/design.md, R11): in the release step of a planned move
the operator writes ``activeNode: null`` at epoch E with ``lastTransition`` going from
the holder to the node it chose. That write names the next holder *at epoch E*. The old
holder deletes the addresses and tells the named node over the monitoring path (a
signed datagram: ``released`` at E); the named node may then add at once instead of
waiting for the API round trip (the ``released`` report, the operator's assignment at
E+1 and its watch event). The API stays the authority: the successor adds only having
seen its own name at E, and the operator treats it as a possible holder from then on
(it assigns anyone else only after the successor let go, ``decide`` rule 7).

One definition for both sides, so the agent never takes a handoff the operator does not
account for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aliasip_api.errors import InvalidAliasIP
from aliasip_api.status import AliasIPStatus, Phase

FAILOVER = "Failover"
"""A failover has no release step that could hand anything over: the old holder is lost,
and other nodes may still hold older epochs (the operator waits for those laggards)."""


@dataclass(frozen=True)
class Succession:
    """At ``epoch``, ``from_node`` releases and ``to_node`` is named to take over."""

    from_node: str
    to_node: str
    epoch: int


def succession(status: AliasIPStatus) -> Succession | None:
    """The release step of a planned move in ``status``, or None.

    It is one only while nobody is allowed to hold (``activeNode`` null), the phase is
    Switching (an Invalid or Conflict spec, or no eligible node, ends any handoff), and
    the unfinished ``lastTransition`` goes from one node to another for a reason other
    than a failover.
    """
    moving = status.last_transition
    if (
        status.active_node is not None
        or status.phase is not Phase.SWITCHING
        or moving is None
        or moving.finished_at is not None
        or moving.reason == FAILOVER
        or not moving.from_node
        or not moving.to_node
        or moving.from_node == moving.to_node
    ):
        return None
    return Succession(moving.from_node, moving.to_node, status.epoch)


def succession_of(body: Mapping[str, Any] | None) -> Succession | None:
    """``succession`` of a status body as the API sends it (None too for one that does not
    parse: a status the CRD forbids names nobody)."""
    try:
        return succession(AliasIPStatus.from_dict(body))
    except InvalidAliasIP:
        return None
