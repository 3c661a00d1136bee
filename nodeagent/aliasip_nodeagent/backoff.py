"""Pure retry back-off per key: after a refusal, when may the same thing be tried again?

Why: a refusal that would repeat (another host answers for the address, a foreign host
claimed it and this node ceased using it) must not be retried on every pass: each retry
probes the wire and logs an error, and a retry that *succeeded* while the claimer still
claims would add the address only to delete it again (flapping). The wait doubles per
consecutive failure of a key, from ``first_s`` up to ``cap_s`` (1, 2, 4 ... 30 s), with an
optional jitter so two nodes refused at the same moment do not retry in lock-step.

Times are inputs (monotonic seconds), so every rule is table-tested without sleeping.
Invariants: a key's wait never exceeds ``cap_s * (1 + jitter)``; ``succeeded`` forgets the
key entirely (the next failure waits ``first_s`` again); ``pending`` returns the value
recorded with the last failure only while its wait runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

FIRST_S = 1.0
CAP_S = 30.0


def delay_for(failures: int, first_s: float = FIRST_S, cap_s: float = CAP_S) -> float:
    """The wait after the ``failures``-th consecutive failure (1 → first_s, doubling)."""
    if failures < 1:
        return 0.0
    return min(first_s * float(2 ** min(failures - 1, 62)), cap_s)


@dataclass(frozen=True)
class _Entry(Generic[T]):
    failures: int
    retry_at: float
    value: T


class Backoff(Generic[T]):
    """Consecutive failures per key, the time each key may be retried, and a value (e.g.
    the outcome to report while waiting) kept with the last failure."""

    def __init__(
        self,
        first_s: float = FIRST_S,
        cap_s: float = CAP_S,
        jitter: float = 0.0,
        random: Callable[[], float] = lambda: 0.0,
    ) -> None:
        if not 0 < first_s <= cap_s:
            raise ValueError("the back-off needs 0 < first_s <= cap_s")
        if not 0 <= jitter <= 1:
            raise ValueError("the back-off's jitter is a fraction between 0 and 1")
        self.first_s = first_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._random = random
        self._entries: dict[str, _Entry[T]] = {}

    def failed(self, key: str, now: float, value: T) -> float:
        """Record a failure of ``key`` at ``now``; returns the wait before the next try."""
        known = self._entries.get(key)
        failures = (known.failures if known is not None else 0) + 1
        wait = delay_for(failures, self.first_s, self.cap_s)
        wait *= 1 + self.jitter * min(max(self._random(), 0.0), 1.0)
        self._entries[key] = _Entry(failures, now + wait, value)
        return wait

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def pending(self, key: str, now: float) -> T | None:
        """The value of ``key``'s last failure while its wait runs, else None (may try)."""
        entry = self._entries.get(key)
        if entry is None or now >= entry.retry_at:
            return None
        return entry.value

    def failures(self, key: str) -> int:
        entry = self._entries.get(key)
        return entry.failures if entry is not None else 0

    def retry_at(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return entry.retry_at if entry is not None else None

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget every key not in ``keys`` (objects deleted, addresses no longer wanted)."""
        wanted = set(keys)
        self._entries = {k: e for k, e in self._entries.items() if k in wanted}
