"""The agents' Leases as this agent knows them: one store, fed by the Lease watch.

A standby learns when each holder's Lease expires from a watch of the agents' Leases, not
by reading them: session 2 read the holder's Lease on every full pass, and at 50 nodes and
1,000 AliasIPs (each node a standby of ~40 holders, a pass a second) that was some 2,000
GETs a second, and the API server fell behind.

Ownership: the Lease watch thread writes ``_objects`` (``seen``: one dict assignment per
event, atomic in CPython) and tells the loop only of the nodes it watches (``watched``, a
frozenset the standby room replaces whole); everything else runs on the event loop.
While the watch is broken (``synced`` False) a Lease is read directly, one GET.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aliasip_api.lease import AGENT_LEASE_PREFIX, AgentLease, agent_lease_name, parse_lease
from aliasip_nodeagent.kube import ApiError, ApiUnavailable, KubeApi, newer
from aliasip_nodeagent.logfmt import kv

log = logging.getLogger("aliasip.agent")


def lease_node(obj: Mapping[str, Any]) -> str | None:
    """The node an agent Lease is named for, or None for any other Lease."""
    name = str((obj.get("metadata") or {}).get("name", ""))
    return name.removeprefix(AGENT_LEASE_PREFIX) if name.startswith(AGENT_LEASE_PREFIX) else None


class LeaseStore:
    """Every agent Lease by node, as the watch delivered it."""

    def __init__(
        self,
        node: str,
        namespace: str,
        kube: KubeApi,
        watched: Callable[[], frozenset[str]],
        changed: Callable[[str, AgentLease | None], None],
    ) -> None:
        """``watched``: the nodes whose news the loop needs; ``changed``: called on the
        loop with such a node's Lease whenever it changed (or was listed again)."""
        self.node = node
        self.namespace = namespace
        self.kube = kube
        self._watched = watched
        self._changed = changed
        self._objects: dict[str, dict[str, Any]] = {}
        self.synced = False

    def lease(self, node: str) -> AgentLease | None:
        obj = self._objects.get(node)
        return parse_lease(obj) if obj is not None else None

    def put(self, obj: dict[str, Any]) -> None:
        """Keep one Lease object (a test, or a list's item)."""
        node = lease_node(obj)
        if node is not None:
            self._objects[node] = obj

    async def read(self, node: str) -> tuple[bool, AgentLease | None]:
        """(known, lease): from the watch when it is listed, else read directly; ``known``
        is False when the API did not answer (nothing is known)."""
        if self.synced:
            return True, self.lease(node)
        try:
            body = await asyncio.to_thread(
                self.kube.get_lease, self.namespace, agent_lease_name(node)
            )
        except (ApiUnavailable, ApiError) as exc:
            log.warning(kv("holder-lease-failed", node=self.node, holder=node, error=exc))
            return False, None
        return True, (parse_lease(body) if body is not None else None)

    # -- the watch's handlers ------------------------------------------------------------

    def listed(self, items: tuple[dict[str, Any], ...]) -> None:
        """On the loop: a fresh list. Events the watch thread kept since this list was read
        are newer: they are kept."""
        known = self._objects
        fresh = {n: o for o in items if (n := lease_node(o)) is not None}
        self._objects = {n: (o if newer(o, known.get(n)) else known[n]) for n, o in fresh.items()}
        self.synced = True
        for node in sorted(self._watched()):
            self._changed(node, self.lease(node))

    def seen(self, kind: str | None, obj: dict[str, Any]) -> bool:
        """In the watch thread: keep the Lease; True if the loop must hear of it."""
        node = lease_node(obj)
        if node is None:
            return False
        if kind == "DELETED":
            self._objects.pop(node, None)
        else:
            self._objects[node] = obj
        return node in self._watched()

    def news(self, kind: str | None, obj: dict[str, Any]) -> None:
        """On the loop: a watched node's Lease changed."""
        node = lease_node(obj)
        if node is not None:
            self._changed(node, self.lease(node))

    def broken(self) -> None:
        """The watch broke: read Leases directly until it is listed again."""
        self.synced = False
