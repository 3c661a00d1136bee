"""Refusals a node would repeat: found before being asked, remembered, retried with back-off.

A refusal is this node's answer "I cannot hold these addresses": no interface carries a
stationary address whose subnet covers them, the prefix or the named interface does not
fit, the link has no carrier, or another host already answers for them on the wire. The
rules (docs/design.md, "Refusals are stable"):

- **A standby says so before it is asked.** ``precheck`` runs the data path's own pure
  placement against the node's kernel snapshot for every AliasIP the node is a candidate
  of; a node that would refuse reports ``error`` with the refusal's code and message while
  it is not named. The operator never chooses a node in error, so a refusal every node
  would repeat ends in one stable phase naming the cause instead of an AliasIP hopping
  between nodes (one failed hold, one new epoch, one Warning Event each time).
- **An error stays an error while its cause lasts.** Being no longer named does not turn
  a refusal back into ``standby``; only a pre-check (or a hold) that passes does.
- **The holder retries with back-off.** A named node whose hold failed does not retry on
  every pass (that was an ERROR line per second per agent): it retries after 1, 2, 4 ...
  ``MAX_BACKOFF_S`` seconds, at once when the epoch or the spec's generation changes, and
  its report between retries repeats the standing refusal; a link coming back ends every
  back-off. A cause is logged when it starts or changes, not at every retry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aliasip_nodeagent import errors
from aliasip_nodeagent.backoff import Backoff
from aliasip_nodeagent.hoststate import HostState
from aliasip_nodeagent.placement import AliasRequest, decide_placement


def precheck(requests: Iterable[AliasRequest], snapshot: HostState) -> errors.AliasError | None:
    """Why this node could not hold ``requests`` now, judged from its kernel alone (no
    wire probe), or None if it could. An address already held here is no refusal."""
    for request in requests:
        try:
            decide_placement(request, snapshot)
        except errors.AliasError as exc:
            return exc
    return None


def describe(exc: errors.AliasError) -> str:
    """The report's message: the refusal's stable code first (the operator names the
    cause from it), then the data path's own words."""
    return f"{exc.code}: {exc.message}"


@dataclass(frozen=True)
class Refusal:
    """The standing refusal of one hold: what was said, for which epoch and spec."""

    epoch: int
    generation: int | None
    message: str
    heard: bool | None


class Refusals:
    """Failed holds per AliasIP (by uid), owned by the reconcile task alone; the schedule
    is ``backoff.Backoff``'s (1, 2, 4 ... 30 s), restarted by a new epoch or spec."""

    def __init__(self) -> None:
        self._backoff: Backoff[Refusal] = Backoff()
        self._last: dict[str, Refusal] = {}

    def standing(self, key: str, epoch: int, generation: int | None, now: float) -> Refusal | None:
        """The refusal to report instead of trying again, or None when a try is due
        (none yet, its back-off is over, or the epoch or the spec changed since)."""
        found = self._backoff.pending(key, now)
        if found is None or (found.epoch, found.generation) != (epoch, generation):
            return None
        return found

    def failed(
        self,
        key: str,
        epoch: int,
        generation: int | None,
        message: str,
        heard: bool | None,
        now: float,
    ) -> tuple[bool, float]:
        """Record a failed try: whether its cause is new (worth a log line), and the wait
        before the next try."""
        refusal = Refusal(epoch, generation, message, heard)
        last = self._last.get(key)
        if last is None or (last.epoch, last.generation) != (epoch, generation):
            self._backoff.succeeded(key)  # another assignment: the back-off starts again
        self._last[key] = refusal
        wait = self._backoff.failed(key, now, refusal)
        return last is None or last != refusal, wait

    def succeeded(self, key: str) -> None:
        self._backoff.succeeded(key)
        self._last.pop(key, None)

    def forget(self) -> None:
        """Forget every refusal: the node changed (a link came back), so each hold is
        tried again on the next pass instead of at the end of its back-off."""
        self._backoff.keep_only(())
        self._last.clear()

    def keep_only(self, keys: Iterable[str]) -> None:
        """Forget the refusals of AliasIPs no longer named here."""
        wanted = set(keys)
        self._backoff.keep_only(wanted)
        self._last = {k: r for k, r in self._last.items() if k in wanted}
