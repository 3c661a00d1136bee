"""The carrier rule (docs/design.md, R2): aliases never outlive their link's carrier.

``CarrierWatch`` follows the kernel's link notifications on the agent's event loop (a
plain rtnetlink socket, ``netlink.LinkEvents``; no thread) and owns what it learns:

- an interface that loses carrier (or goes down) loses every alias held on it **at
  once**, fenced or not: cut off from the API, the agent still owns its kernel, and a copy
  kept through carrier loss answers next to the new holder the moment the cable returns
  (kube-vip #682 is the same bug);
- at start, the same judgement over every link: an agent started while a link is already
  down hears no notification for it (chaos seed 2 found that window);
- carrier back: ``on_back`` (the agent ends its refusals' back-off and makes a full pass,
  whose adds read afresh and probe first).

Owned here, and only here: the last known serving state of each link and the deletion
tasks. The kernel is changed only under the agent's data-path lock, on its data-path
thread (``io``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aliasip_nodeagent import errors
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.dataplane import Netlink
from aliasip_nodeagent.logfmt import kv
from aliasip_nodeagent.netlink import LinkEvents

log = logging.getLogger("aliasip.agent")
Io = Callable[..., Awaitable[Any]]


class CarrierWatch:
    """Link notifications and the deletions they call for; call only from the loop."""

    def __init__(
        self,
        node: str,
        netlink: Netlink,
        io: Io,
        dataplane: asyncio.Lock,
        announcements: Announcements,
        changed: Callable[[], None],
        on_back: Callable[[], None],
        fenced: Callable[[], bool],
    ) -> None:
        self._node = node
        self._netlink = netlink
        self._io = io
        self._dataplane = dataplane
        self._announcements = announcements
        self._changed = changed
        self._on_back = on_back
        self._fenced = fenced
        self._serving: dict[str, bool] = {}  # by interface name
        self._tasks: set[asyncio.Task[None]] = set()
        self._events: LinkEvents | None = None

    def start(self) -> None:
        """Listen, then judge every link once (the rule from the agent's first instant)."""
        try:
            self._events = LinkEvents()
        except OSError as exc:  # no rtnetlink here: the periodic pass still finds loss
            log.error(kv("link-events-unavailable", node=self._node, error=exc))
        else:
            asyncio.get_running_loop().add_reader(self._events.fileno(), self._readable)
        self._drop({None}, "no carrier at start")

    async def close(self) -> None:
        if self._events is not None:
            asyncio.get_running_loop().remove_reader(self._events.fileno())
            self._events.close()
            self._events = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _readable(self) -> None:
        """Only changes of whether a link serves count (up, with carrier)."""
        assert self._events is not None
        lost: set[str | None] = set()
        back = False
        for change in self._events.read():
            if change.name is None:  # notifications were lost: judge every link again
                lost.add(None)
                continue
            if self._serving.get(change.name) == change.serving:
                continue
            self._serving[change.name] = change.serving
            if change.serving:
                back = True
            else:
                lost.add(change.name)
        if lost:
            self._drop(lost, "carrier lost")
        if back:
            log.info(kv("link-up", node=self._node, note="a full pass, probing first"))
            self._on_back()

    def _drop(self, interfaces: set[str | None], reason: str) -> None:
        task = asyncio.create_task(self._delete_on_dead(interfaces, reason), name="carrier")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delete_on_dead(self, interfaces: set[str | None], reason: str) -> None:
        """Delete the aliases held on ``interfaces`` (None: any) without carrier now."""
        async with self._dataplane:
            snapshot = await self._io(self._netlink.snapshot)
            for i in snapshot.interfaces:
                if i.name is not None:
                    self._serving.setdefault(i.name, i.admin_up and i.carrier)
            dead = {
                i.name
                for i in snapshot.interfaces
                if not (i.admin_up and i.carrier) and (None in interfaces or i.name in interfaces)
            }
            for held in snapshot.owned():
                if held.interface not in dead:
                    continue
                self._announcements.revoke(held.address.ip, reason)
                try:
                    deleted = await self._io(self._netlink.delete, held)
                except errors.AliasError as exc:
                    log.error(
                        kv("release-failed", node=self._node, address=held.address, error=exc)
                    )
                    continue
                log.warning(
                    kv(
                        "release",
                        node=self._node,
                        address=held.address,
                        interface=held.interface,
                        reason=reason,
                        changed=deleted,
                        fenced=self._fenced(),
                    )
                )
        self._changed()  # a pass reads the kernel and reports the error
