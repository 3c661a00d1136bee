"""Leader election on a ``coordination.k8s.io/v1`` Lease, as client-go's leaderelection.

Only the leader runs kopf and so decides; the other replica waits to take over. kopf's
peering is priority-based pausing, not leader election (kopf docs/peering.rst), so kopf
runs standalone behind this Lease.

Invariants, and why they hold:

- *At most one replica acts at a time.* A candidate takes the Lease only after it has seen
  the same record (holder, renewTime, resourceVersion) unchanged for a whole
  ``leaseDurationSeconds`` *on its own monotonic clock* (client-go's ``observedTime``), so
  clock skew between nodes does not matter. The leader gives up (the process exits) when
  it has not renewed for ``renew_deadline`` < duration, measured from the moment it *sent*
  its last successful renewal; a call is bounded by ``call_timeout``, and
  ``renew_deadline + call_timeout`` < duration leaves the old leader gone before anyone
  may take over.
- *Writes are optimistic.* Create fails with 409 if another candidate was first; every
  renewal or takeover is a PUT carrying the resourceVersion read, so a lost race is a 409
  and never two holders in the record.
- Timings are short but not twitchy (duration 6 s, renewal every 1 s, each call allowed
  1.5 s, leadership given up after 4 s without a renewal): the Lease is the only thing
  between losing the leader's node and the standby deciding failovers again, but an API
  server busy for two seconds (a burst of failover writes at 1,000 AliasIPs) must not
  end a healthy leader, whose successor would first have to list everything again.
  Session 2's 3 s / 2 s / 0.5 s lost the leader in exactly that burst (bench/scale.py).

``judge`` and ``next_spec`` are pure and table-tested; ``LeaderElector`` does the I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from aliasip_api import kubetime
from aliasip_operator.kube import ApiError, ApiUnavailable, KubeApi

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timings:
    """Lease duration, how long a leader may go without renewing, how often to try, and
    the bound on each API call (see the module docstring for how they relate)."""

    lease_duration_s: int = 6
    renew_deadline_s: float = 4.0
    retry_period_s: float = 1.0
    call_timeout_s: float = 1.5

    def __post_init__(self) -> None:
        if not self.renew_deadline_s + self.call_timeout_s < self.lease_duration_s:
            raise ValueError("renew_deadline + call_timeout must be shorter than the lease")
        if not self.retry_period_s < self.renew_deadline_s:
            raise ValueError("the retry period must be shorter than the renew deadline")


@dataclass(frozen=True)
class LeaseRecord:
    """What election reads from a Lease."""

    holder: str | None
    duration_s: int | None
    renew_time: str | None
    transitions: int
    resource_version: str | None

    @property
    def fingerprint(self) -> tuple[str | None, str | None, str | None]:
        """What must stay unchanged for the record to age: any renewal changes it."""
        return (self.holder, self.renew_time, self.resource_version)


def parse_record(lease: Mapping[str, Any]) -> LeaseRecord:
    spec = lease.get("spec") or {}
    duration = spec.get("leaseDurationSeconds")
    holder = spec.get("holderIdentity")
    renew = spec.get("renewTime")
    return LeaseRecord(
        holder=str(holder) if holder else None,
        duration_s=duration if isinstance(duration, int) and duration > 0 else None,
        renew_time=str(renew) if renew is not None else None,
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=(lease.get("metadata") or {}).get("resourceVersion"),
    )


class Verdict(Enum):
    """What a candidate may do with the Lease it read."""

    CREATE = "create"  # no Lease yet: create it naming me
    RENEW = "renew"  # I hold it: renew
    TAKE = "take"  # free (no holder) or expired: take it over
    WAIT = "wait"  # someone else holds it and it has not expired as I observe it


def judge(
    record: LeaseRecord | None,
    me: str,
    observed_at: float,
    now: float,
    default_duration_s: int,
) -> Verdict:
    """May ``me`` take or keep the Lease?

    ``observed_at`` is when (monotonic, on this process) the current record was first
    seen; the record expires ``duration`` after that, never by comparing ``renewTime``
    with the local wall clock. Expiry is inclusive, as in client-go.
    """
    if record is None:
        return Verdict.CREATE
    if record.holder == me:
        return Verdict.RENEW
    if record.holder is None:
        return Verdict.TAKE
    duration = record.duration_s or default_duration_s
    return Verdict.TAKE if now >= observed_at + duration else Verdict.WAIT


def next_spec(
    record: LeaseRecord | None, me: str, verdict: Verdict, now: datetime, duration_s: int
) -> dict[str, Any]:
    """The Lease spec to write for ``verdict`` (CREATE, RENEW or TAKE).

    ``acquireTime`` and ``leaseTransitions`` change only when the holder changes.
    """
    stamp = kubetime.format_micro_time(now)
    spec: dict[str, Any] = {
        "holderIdentity": me,
        "leaseDurationSeconds": duration_s,
        "renewTime": stamp,
    }
    if verdict is Verdict.CREATE or record is None:
        spec.update(acquireTime=stamp, leaseTransitions=0)
    elif verdict is Verdict.TAKE:
        spec.update(acquireTime=stamp, leaseTransitions=record.transitions + 1)
    elif verdict is not Verdict.RENEW:
        raise ValueError(f"nothing to write for {verdict}")
    return spec


def still_leading(last_renewed: float | None, now: float, renew_deadline_s: float) -> bool:
    """Whether a leader that last renewed (sent a successful write) at ``last_renewed``
    may still act at ``now``."""
    return last_renewed is not None and now - last_renewed < renew_deadline_s


class LeaderElector:
    """Acquire, then keep renewing, the Lease ``namespace/name`` for ``identity``.

    ``acquire()`` blocks until this process leads (or ``stop`` is set). ``keep()`` starts
    a thread that renews and calls ``on_lost`` once the renew deadline passes without a
    successful renewal; ``release()`` hands the Lease over at a clean shutdown.
    """

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        name: str,
        identity: str,
        timings: Timings = Timings(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.timings = timings
        self._clock = clock
        self._lease: dict[str, Any] | None = None
        self._seen: tuple[tuple[str | None, str | None, str | None], float] | None = None
        self.last_renewed: float | None = None
        # For the probes (``probes``): when a round last started, and when the API last
        # answered one (a read, a write, or a refusal: all prove the API reachable).
        self.tried_at: float | None = None
        self.answered_at: float | None = None
        self.stop = threading.Event()
        self._keeper: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        return still_leading(self.last_renewed, self._clock(), self.timings.renew_deadline_s)

    def try_once(self) -> bool:
        """One round: read (unless we hold a fresh copy), judge, write. True if we lead."""
        started = self._clock()
        self.tried_at = started
        timeout = self.timings.call_timeout_s
        try:
            lease = self._lease
            if lease is None or not self.leading:
                lease = self.api.get_lease(self.namespace, self.name, timeout_s=timeout)
                self.answered_at = started
            record = parse_record(lease) if lease is not None else None
            if record is not None and (self._seen is None or self._seen[0] != record.fingerprint):
                self._seen = (record.fingerprint, started)
            observed = self._seen[1] if self._seen is not None else started
            verdict = judge(record, self.identity, observed, started, self.timings.lease_duration_s)
            if verdict is Verdict.WAIT:
                return False
            spec = next_spec(
                record, self.identity, verdict, datetime.now(UTC), self.timings.lease_duration_s
            )
            if verdict is Verdict.CREATE or lease is None:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": spec,
                }
                written = self.api.create_lease(self.namespace, body, timeout_s=timeout)
            else:
                body = {**lease, "spec": {**(lease.get("spec") or {}), **spec}}
                written = self.api.replace_lease(self.namespace, body, timeout_s=timeout)
        except ApiError as exc:
            # 409: another candidate wrote first (or our copy was stale): read it next time.
            self.answered_at = started
            self._lease = None
            log.info("lease write refused", extra={"lease": self.name, "error": str(exc)})
            return False
        except ApiUnavailable as exc:
            self._lease = None
            log.warning("lease call failed", extra={"lease": self.name, "error": str(exc)})
            return False
        if verdict is not Verdict.RENEW:
            log.info(
                "acquired the lease",
                extra={"lease": self.name, "identity": self.identity, "how": verdict.value},
            )
        self._lease = written
        self.last_renewed = self.answered_at = started
        return True

    def acquire(self) -> bool:
        """Block until we lead (True) or ``stop`` is set (False)."""
        while not self.stop.is_set():
            if self.try_once():
                return True
            self.stop.wait(self.timings.retry_period_s)
        return False

    def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew in a thread; ``on_lost`` runs there once leadership cannot be proven."""

        def run() -> None:
            while not self.stop.is_set():
                self.try_once()
                if not self.leading:
                    if self.stop.is_set():
                        return
                    log.error(
                        "lost the lease",
                        extra={"lease": self.name, "identity": self.identity},
                    )
                    on_lost()
                    return
                assert self.last_renewed is not None
                # Try again a retry period after the last renewal; after a failed renewal
                # (the period is over) again a tenth of it later, not in a tight loop that
                # would flood the log and the API server while it restarts.
                due = self.last_renewed + self.timings.retry_period_s - self._clock()
                self.stop.wait(max(self.timings.retry_period_s / 10, due))

        self._keeper = threading.Thread(target=run, name="leader-lease", daemon=True)
        self._keeper.start()

    def release(self) -> None:
        """Stop renewing and give the Lease up (empty holder), so the standby takes over at
        once instead of after a lease duration (client-go's ReleaseOnCancel)."""
        self.stop.set()
        if self._keeper is not None:
            self._keeper.join(self.timings.renew_deadline_s + self.timings.call_timeout_s)
        lease = self._lease
        if lease is None or not self.leading:
            return
        spec = {
            **(lease.get("spec") or {}),
            "holderIdentity": None,
            "leaseDurationSeconds": 1,
            "renewTime": kubetime.format_micro_time(datetime.now(UTC)),
        }
        try:
            self.api.replace_lease(
                self.namespace, {**lease, "spec": spec}, timeout_s=self.timings.call_timeout_s
            )
            log.info("released the lease", extra={"lease": self.name})
        except (ApiError, ApiUnavailable) as exc:
            log.warning("could not release the lease", extra={"error": str(exc)})
        self._lease = None
        self.last_renewed = None
