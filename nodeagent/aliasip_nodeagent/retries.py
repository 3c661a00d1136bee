"""When may a refused hold be tried again: a back-off per address (``backoff.Backoff``).

A hold refused because another host answers for an address, or given up because a foreign
host kept claiming it (``claimwatch``), is retried after 1, 2, 4 ... 30 s (with a quarter
of jitter), not on every pass: each retry probes the wire first (``must_probe``, even
after a confirmed release), so the address is never added while the claimer answers, and
the agent does not flap between adding and deleting it. While a retry waits, the pass
reports the refusal it recorded (``waiting``), unchanged, so it costs no status write.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable

from aliasip_nodeagent.backoff import Backoff
from aliasip_nodeagent.hoststate import IPAddress
from aliasip_nodeagent.reconcile import Hold
from aliasip_nodeagent.report import Outcome


class HoldRetries:
    """Refused addresses and when they may be tried again; wakes the agent when one may."""

    def __init__(self, wake: Callable[[], None], backoff: Backoff[Outcome] | None = None) -> None:
        self._wake = wake
        self._backoff = backoff or Backoff(jitter=0.25, random=random.random)

    def waiting(self, h: Hold, now: float | None = None) -> Outcome | None:
        """The recorded refusal to report for ``h`` while one of its addresses waits."""
        at = time.monotonic() if now is None else now
        for r in h.requests:
            found = self._backoff.pending(str(r.ip), at)
            if found is not None:
                return found
        return None

    def must_probe(self, h: Hold) -> bool:
        """Whether ``h`` must probe the wire although the plan says it need not."""
        return any(self._backoff.failures(str(r.ip)) for r in h.requests)

    def refused(self, addresses: Iterable[IPAddress], outcome: Outcome) -> float:
        """Record a refusal of ``addresses``; a pass runs again when the wait is over."""
        now = time.monotonic()
        wait = max((self._backoff.failed(str(a), now, outcome) for a in addresses), default=0.0)
        if wait > 0:
            asyncio.get_running_loop().call_later(wait, self._wake)
        return wait

    def held(self, h: Hold) -> None:
        """``h`` holds every address now: the next refusal starts from the first wait."""
        for r in h.requests:
            self._backoff.succeeded(str(r.ip))
