"""A deduplicating work queue of AliasIP names (the shape of client-go's workqueue).

Why not one handler run per watch event: at 1,000 AliasIPs the triggers (watch events,
Node and Lease changes, retries) arrive far faster than decisions are written, and
deciding on each in turn means deciding on versions already superseded (each write then
fails with 409). Here a name is queued at most once however often it is added, and never
processed by two workers at once: added while being processed, it is processed once more
afterwards, with the newest version of the object. Workers always decide on the newest
body known, so a burst of events costs one decision.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WorkQueue:
    """``add`` / ``add_after`` names; workers ``get`` one, then call ``done`` with it."""

    def __init__(self) -> None:
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()
        self._ready = asyncio.Event()
        self._later: set[str] = set()  # names with a delayed add pending

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, name: str) -> None:
        if name in self._dirty:
            return
        self._dirty.add(name)
        if name not in self._processing:
            self._queue.append(name)
            self._ready.set()

    def add_all(self, names: list[str]) -> None:
        for name in names:
            self.add(name)

    def add_after(self, name: str, delay_s: float) -> None:
        """Add ``name`` in ``delay_s`` seconds (a retry); an earlier pending one stays."""
        if name in self._later:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._later.discard(name)
            self.add(name)

        self._later.add(name)
        loop.call_later(delay_s, fire)

    async def get(self) -> str:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        name = self._queue.popleft()
        self._dirty.discard(name)
        self._processing.add(name)
        if self._queue:
            self._ready.set()
        return name

    def done(self, name: str) -> None:
        self._processing.discard(name)
        if name in self._dirty:
            self._queue.append(name)
            self._ready.set()
