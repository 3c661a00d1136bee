"""The operator's ``/livez`` and ``/readyz`` (``/healthz``: the same as ``/livez``).

Why not kopf's own liveness endpoint (``kopf run --liveness``, ``@kopf.on.probe``): it
exists only while kopf runs, and here kopf runs on the leader only (``main``), so the
standby would fail every probe and be restarted for waiting; and it answers 200 whatever
its probes return unless one raises. So the server is ours, in a thread that serves from
the start (standby included), but **while kopf runs, every answer is computed on kopf's
own event loop**: the request thread hands a callback to the loop and waits at most
``LOOP_ANSWER_S`` for it. A loop that is blocked (a handler that never yields, a
deadlock) cannot run it, and the answer is 503, the way a hung agent's loop cannot
answer at all. Before, ``/healthz`` answered 200 from its thread whatever kopf did.

What each endpoint means, by phase of the process:

- **standby** (waiting for the election Lease): live while its campaign turns (a round
  within ``CAMPAIGN_STALE_S``); ready while the API answered its rounds within
  ``API_STALE_S``. A standby is ready: it is fit to lead. No Service routes to the
  operator, so readiness gates only roll-outs (a replaced replica must be ready before
  the other one is touched: a new replica that cannot reach the API stops the roll-out
  before the leader goes) and the PodDisruptionBudget, which must not count a healthy
  standby as disrupted (it would block draining the leader's node).
- **starting** (leading, waiting for the CRD, kopf starting): live; not ready.
- **running** (kopf's loop started, ``kopf_started``): live while kopf's loop answers
  within ``LOOP_ANSWER_S``; ready while it also still leads, kopf's watches have listed
  (kopf calls handlers only once every index is complete, so the first event handled
  means Nodes, Leases and AliasIPs were all listed), and its Lease watch is alive: with
  the election Lease in the namespace kopf watches, this replica's own renewals (every
  second) are Lease events, so a watch that delivered none for ``LEASE_WATCH_STALE_S``
  while renewals succeeded is stuck (kopf would reconnect only after its client timeout,
  330 s).
- **stopping**: live, not ready.

Bodies are kube-apiserver's format, plain text: ``ok`` on success (every check with
``?verbose``), else one ``[+]``/``[-]`` line per check and the verdict; 200 or 503.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import kopf

from aliasip_api.healthz import Check, render

log = logging.getLogger(__name__)

LOOP_ANSWER_S = 1.0  # kopf's loop must run a probe's callback within this (probe: 3 s)
CAMPAIGN_STALE_S = 10.0  # a standby's election round must have started this recently
API_STALE_S = 10.0  # a standby's rounds must have reached the API this recently
LEASE_WATCH_STALE_S = 30.0  # renewals without a Lease event for this long: watch stuck
PATHS = {"/livez": "livez", "/healthz": "livez", "/readyz": "readyz"}


class Phase(Enum):
    STANDBY = "standby"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"


class Elector(Protocol):
    """What the probes read of ``leader.LeaderElector`` (monotonic seconds)."""

    @property
    def leading(self) -> bool: ...

    tried_at: float | None
    answered_at: float | None
    last_renewed: float | None


def _ago(now: float, then: float) -> str:
    return f"{max(0.0, now - then):.1f} s ago"


class Probes:
    """The facts the endpoints judge, and the judging. ``phase`` is set from main's
    thread; ``kopf_started`` and ``watch_event`` run on kopf's loop (the handlers below),
    and what they write is read there only (``_running_checks``)."""

    def __init__(
        self,
        elector: Elector | None,
        lease_events_expected: bool,
        clock: Callable[[], float] = time.monotonic,
        loop_answer_s: float = LOOP_ANSWER_S,
    ) -> None:
        """``lease_events_expected``: this replica's election Lease is in the namespace
        kopf watches, so its own renewals are Lease events (the watch's heartbeat)."""
        self.elector = elector
        self.lease_events_expected = lease_events_expected and elector is not None
        self._clock = clock
        self.loop_answer_s = loop_answer_s
        self.phase = Phase.STANDBY if elector is not None else Phase.STARTING
        self.loop: asyncio.AbstractEventLoop | None = None
        self.listed_at: float | None = None  # kopf's first event handled (indexes full)
        self.lease_event_at: float | None = None  # kopf's last Lease event
        self._last: dict[str, bool] = {}

    # -- main's thread ---------------------------------------------------------------

    def starting(self) -> None:
        """Leading (or no election): waiting for the CRD, then kopf."""
        self.phase = Phase.STARTING

    def stopping(self) -> None:
        self.phase = Phase.STOPPING

    # -- kopf's loop -----------------------------------------------------------------

    def kopf_started(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        if self.phase is not Phase.STOPPING:
            self.phase = Phase.RUNNING

    def watch_event(self, resource: str) -> None:
        now = self._clock()
        if self.listed_at is None:
            self.listed_at = now
        if resource == "leases":
            self.lease_event_at = now

    # -- answers (any thread) ----------------------------------------------------------

    def checks(self, endpoint: str) -> list[Check]:
        """The checks of ``endpoint`` (``livez`` or ``readyz``) now; while kopf runs,
        computed on its loop, or one failed check if the loop does not answer in time."""
        loop = self.loop
        if self.phase is not Phase.RUNNING or loop is None:
            return self._outside_checks(endpoint)
        sent = self._clock()
        answer: concurrent.futures.Future[list[Check]] = concurrent.futures.Future()

        def on_loop() -> None:
            if not answer.set_running_or_notify_cancel():
                return  # the request gave up already
            try:
                answer.set_result(self._running_checks(endpoint, sent))
            except Exception as exc:
                answer.set_exception(exc)

        try:
            loop.call_soon_threadsafe(on_loop)
        except RuntimeError:
            return [Check("loop", False, "kopf's event loop is closed")]
        try:
            return answer.result(timeout=self.loop_answer_s)
        except concurrent.futures.TimeoutError:
            answer.cancel()
            detail = f"kopf's event loop did not answer within {self.loop_answer_s:g} s"
            return [Check("loop", False, detail)]

    def answer(self, endpoint: str, verbose: bool) -> tuple[int, str]:
        checks = self.checks(endpoint)
        self._note(endpoint, checks)
        return render(endpoint, checks, verbose)

    def _running_checks(self, endpoint: str, sent: float) -> list[Check]:
        """On kopf's loop: it answered; for ``readyz`` also leading, listed, Lease watch."""
        now = self._clock()
        checks = [
            Check("loop", True, f"kopf's event loop answered in {(now - sent) * 1000:.0f} ms")
        ]
        if endpoint == "livez":
            return checks
        elector = self.elector
        if elector is None:
            checks.append(Check("leader", True, "no leader election: the only replica"))
        elif elector.leading:
            checks.append(Check("leader", True, "leading"))
        else:
            checks.append(Check("leader", False, "leadership not proven (renewals failing)"))
        if self.listed_at is None:
            checks.append(Check("watches", False, "kopf has not listed Nodes, Leases, AliasIPs"))
        else:
            checks.append(Check("watches", True, f"listed {_ago(now, self.listed_at)}"))
        if self.lease_events_expected and elector is not None:
            checks.append(self._lease_watch(now, elector))
        return checks

    def _lease_watch(self, now: float, elector: Elector) -> Check:
        seen, renewed = self.lease_event_at, elector.last_renewed
        if seen is None:
            return Check("lease-watch", False, "no Lease event yet")
        if renewed is not None and renewed - seen > LEASE_WATCH_STALE_S:
            detail = (
                f"no Lease event since {_ago(now, seen)}, though this replica renewed its "
                f"Lease {_ago(now, renewed)}: kopf's Lease watch is stuck"
            )
            return Check("lease-watch", False, detail)
        return Check("lease-watch", True, f"last Lease event {_ago(now, seen)}")

    def _outside_checks(self, endpoint: str) -> list[Check]:
        """Before kopf runs (standby, starting) and after (stopping): main's state."""
        now = self._clock()
        phase, elector = self.phase, self.elector
        if phase is Phase.STANDBY and elector is not None:
            tried = elector.tried_at
            if endpoint == "livez":
                if tried is not None and now - tried > CAMPAIGN_STALE_S:
                    detail = f"the last election round started {_ago(now, tried)}"
                    return [Check("campaign", False, detail)]
                return [Check("campaign", True, "standing by for the election Lease")]
            answered = elector.answered_at
            if answered is None or now - answered > API_STALE_S:
                when = "never" if answered is None else _ago(now, answered)
                return [Check("api", False, f"the election Lease was last read {when}")]
            return [
                Check("api", True, f"standing by, the election Lease read {_ago(now, answered)}")
            ]
        if endpoint == "livez":
            return [Check("process", True, phase.value)]
        if phase is Phase.STARTING:
            return [Check("kopf", False, "leading; kopf not started yet (waiting for the CRD?)")]
        return [Check("kopf", False, f"kopf is not running ({phase.value})")]

    def _note(self, endpoint: str, checks: list[Check]) -> None:
        """Log each endpoint's verdict when it changes (not every probe)."""
        ok = all(c.ok for c in checks)
        before, self._last[endpoint] = self._last.get(endpoint, True), ok
        if before == ok:
            return
        failed = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        log.log(
            logging.INFO if ok else logging.WARNING,
            f"{endpoint} {'passing' if ok else 'failing'}",
            extra={"endpoint": endpoint, "why": failed or None, "phase": self.phase.value},
        )


class HealthServer:
    """The endpoints over HTTP, from a thread of their own (``Probes`` does the rest)."""

    def __init__(self, probes: Probes, port: int, host: str = "") -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's naming
                parts = urlsplit(self.path)
                endpoint = PATHS.get(parts.path)
                if endpoint is None:
                    status, body = 404, f"not found: {parts.path}\n"
                else:
                    verbose = "verbose" in parse_qs(parts.query, keep_blank_values=True)
                    status, body = probes.answer(endpoint, verbose)
                payload = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:  # probes every few seconds: quiet
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port: int = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, name="health", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------- kopf's side


def _probes(memo: Any) -> Probes | None:
    found = getattr(memo, "probes", None)
    return found if isinstance(found, Probes) else None


@kopf.on.startup()
async def probes_started(memo: Any, **_: Any) -> None:
    """On kopf's loop, before its watches start: from now on the probes ask this loop."""
    probes = _probes(memo)
    if probes is not None:
        probes.kopf_started(asyncio.get_running_loop())


@kopf.on.event("nodes")
async def node_seen(memo: Any, **_: Any) -> None:
    """Every Node event kopf delivers (the first: its watches have listed)."""
    probes = _probes(memo)
    if probes is not None:
        probes.watch_event("nodes")


@kopf.on.event("coordination.k8s.io", "v1", "leases")
async def lease_seen(memo: Any, **_: Any) -> None:
    """Every Lease event kopf delivers: the Lease watch's heartbeat (our own renewals)."""
    probes = _probes(memo)
    if probes is not None:
        probes.watch_event("leases")
