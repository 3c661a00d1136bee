"""The agent's health endpoint: ``/livez`` and ``/readyz`` for kubelet's probes.

A small HTTP/1.1 server (``asyncio.start_server``: the standard library, no web framework
imported into the agent) on the agent's **own event loop**, off unless ``--health-port``
is given. Being on that loop is the point: an answer proves the loop turns, and a hung or
frozen loop answers nothing, which kubelet counts as a failure when its probe times out.
A server in a thread of its own would answer 200 from a dead agent.

- ``/livez``: the loop answered (by construction) and the data-path thread is not stuck
  in one call for longer than ``DATAPATH_STUCK_S`` (``timedexecutor``). Failing it makes
  kubelet restart the agent; a restarted agent adopts its aliases (no failover), but a
  restart is still not free, so only a stuck agent fails it, never a slow one.
- ``/readyz``: the agent can act: its Lease was renewed within the fence deadline (not
  cut off from the API, ``liveness``), the kernel answered a lifetime renewal within
  ``kernel_stale_s`` (``deadman``), and the first list of AliasIPs arrived. Not ready
  changes nothing in the agent (a cut-off holder keeps serving); it holds a DaemonSet
  roll-out on this node and shows in ``kubectl get pods``.

Answers, as kube-apiserver's own ``/livez`` and ``/readyz``: 200 with the body ``ok``, or
503 with one line per check (``[+]lease ok: renewed 0.4 s ago``, ``[-]lease failed: ...``)
and a last line naming the endpoint; ``?verbose`` lists every check on success too.
Plain text only. The module judges from ``AgentFacts``, narrow callables the wiring
(``service``) builds on the agent: it never touches the agent's rooms itself.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from aliasip_api.healthz import Check, render
from aliasip_nodeagent.logfmt import kv

log = logging.getLogger("aliasip.agent")
# A data-path call running longer than this is stuck (the longest legitimate ones, a
# batch's probe and a dump of a thousand addresses, take well under a second).
DATAPATH_STUCK_S = 10.0
# The kernel must have answered a lifetime renewal this recently (renewals run every
# half second as shipped): at least this, or three renewal intervals.
KERNEL_STALE_S = 5.0
# A probe's request must arrive whole within this, or the connection is dropped.
REQUEST_TIMEOUT_S = 5.0
MAX_HEADER_LINES = 100
LINE_LIMIT = 8192
PATHS = ("/livez", "/readyz")


@dataclass(frozen=True)
class AgentFacts:
    """What the probes read, each a callable evaluated on the event loop at probe time.
    Times are ``time.monotonic()`` seconds."""

    synced: Callable[[], bool]  # the first list of AliasIPs arrived
    lease_renewed_at: Callable[[], float | None]  # the last successful Lease renewal
    fenced: Callable[[], bool]  # cut off from the API (liveness.Liveness)
    kernel_renewed_at: Callable[[], float | None]  # the last lifetime renewal that worked
    dataplane_busy_since: Callable[[], float | None]  # the running data-path call's start
    lease_fresh_s: float  # a renewal older than this is a cut-off (duration - margin)
    kernel_stale_s: float = KERNEL_STALE_S
    dataplane_stuck_s: float = DATAPATH_STUCK_S


def _ago(now: float, then: float) -> str:
    return f"{max(0.0, now - then):.1f} s ago"


def live_checks(facts: AgentFacts, now: float) -> list[Check]:
    """``/livez``: the loop answers (it is running this), the data path is not stuck."""
    checks = [Check("loop", True, "the event loop answered")]
    busy = facts.dataplane_busy_since()
    if busy is None:
        checks.append(Check("dataplane", True, "idle"))
    elif now - busy <= facts.dataplane_stuck_s:
        checks.append(Check("dataplane", True, f"in a call since {_ago(now, busy)}"))
    else:
        detail = f"stuck in one call since {_ago(now, busy)} (bound {facts.dataplane_stuck_s:g} s)"
        checks.append(Check("dataplane", False, detail))
    return checks


def ready_checks(facts: AgentFacts, now: float) -> list[Check]:
    """``/readyz``: Lease renewed (not cut off), the kernel answering, AliasIPs listed."""
    checks = []
    renewed = facts.lease_renewed_at()
    if renewed is None:
        checks.append(Check("lease", False, "not renewed yet"))
    elif facts.fenced() or now - renewed >= facts.lease_fresh_s:
        detail = (
            f"cut off from the API: last renewed {_ago(now, renewed)} (keeping what it "
            "holds, acting on nothing new)"
        )
        checks.append(Check("lease", False, detail))
    else:
        checks.append(Check("lease", True, f"renewed {_ago(now, renewed)}"))
    kernel = facts.kernel_renewed_at()
    if kernel is None:
        checks.append(Check("kernel", False, "no lifetime renewal has succeeded yet"))
    elif now - kernel > facts.kernel_stale_s:
        detail = f"the last lifetime renewal that succeeded was {_ago(now, kernel)}"
        checks.append(Check("kernel", False, detail))
    else:
        checks.append(Check("kernel", True, f"lifetimes renewed {_ago(now, kernel)}"))
    if facts.synced():
        checks.append(Check("aliasips", True, "listed"))
    else:
        checks.append(Check("aliasips", False, "the first list has not arrived"))
    return checks


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the agent starts: ``OSError`` (the port is
    taken) ends it before it touches the kernel."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


class HealthServer:
    """``/livez`` and ``/readyz`` on the event loop it is started on (``start``)."""

    def __init__(
        self, facts: AgentFacts, node: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.facts = facts
        self.node = node
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._last: dict[str, bool] = {}  # each endpoint's last verdict (logged on change)

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, sock: socket.socket) -> None:
        """Serve on ``sock`` (``listen``), from the running loop."""
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=LINE_LIMIT)

    def close(self) -> None:
        if self._server is not None:
            self._server.close()

    def answer(self, method: str, target: str) -> tuple[int, str]:
        """The status and body for one request (``GET``/``HEAD`` on the two paths)."""
        parts = urlsplit(target)
        if parts.path not in PATHS:
            return 404, f"not found: {parts.path} (try {' or '.join(PATHS)})\n"
        if method not in ("GET", "HEAD"):
            return 405, "method not allowed\n"
        verbose = "verbose" in parse_qs(parts.query, keep_blank_values=True)
        now = self._clock()
        endpoint = parts.path.lstrip("/")
        checks = (live_checks if endpoint == "livez" else ready_checks)(self.facts, now)
        status, body = render(endpoint, checks, verbose)
        self._note(endpoint, checks)
        return status, body

    def _note(self, endpoint: str, checks: list[Check]) -> None:
        """Log each endpoint's verdict when it changes (not every probe)."""
        ok = all(c.ok for c in checks)
        if self._last.get(endpoint, True) == ok:
            self._last[endpoint] = ok
            return
        self._last[endpoint] = ok
        failed = "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)
        log.log(
            logging.INFO if ok else logging.WARNING,
            kv(f"{endpoint}-{'passing' if ok else 'failing'}", node=self.node, why=failed or None),
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                request = await self._read_request(reader)
                if request is None:
                    return
                method, target = request
                status, body = self.answer(method, target)
                payload = body.encode()
                head = (
                    f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    f"Content-Length: {len(payload)}\r\n"
                    "Cache-Control: no-store\r\n"
                    "Connection: close\r\n\r\n"
                )
                writer.write(head.encode() + (b"" if method == "HEAD" else payload))
                await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # a slow, broken or oversized request: dropped, the probe fails
        finally:
            writer.close()

    @staticmethod
    async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str] | None:
        """The request line's method and target; the headers are read and ignored."""
        line = (await reader.readline()).decode("latin-1").split()
        for _ in range(MAX_HEADER_LINES):
            if (await reader.readline()) in (b"\r\n", b"\n", b""):
                break
        else:
            return None
        if len(line) != 3 or not line[2].startswith("HTTP/"):
            return None
        return line[0], line[1]


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}
