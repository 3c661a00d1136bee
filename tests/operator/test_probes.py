"""The operator's probes in-process: each phase's checks from a fake elector, answers made
on a real event loop in a thread (standing in for kopf's), that loop blocked and closed,
and the real HTTP server in front. kopf's own loop and watches are in the process test
(tests/operatorproc/test_health.py); blocking *that* loop from outside would need a debug
hook in the product, so the blocked loop is proven here."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import kopf
import pytest

from aliasip_api.healthz import Check
from aliasip_operator.probes import (
    LEASE_WATCH_STALE_S,
    HealthServer,
    Phase,
    Probes,
    lease_seen,
    node_seen,
    probes_started,
)

NOW = 500.0


@dataclass
class FakeElector:
    leading: bool = False
    tried_at: float | None = NOW - 1
    answered_at: float | None = NOW - 1
    last_renewed: float | None = None


def failed(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


def names(checks: list[Check]) -> list[str]:
    return [c.name for c in checks]


# -- before kopf runs: main's state ----------------------------------------------------


def test_a_standby_is_live_while_it_campaigns_and_ready_while_the_api_answers() -> None:
    elector = FakeElector()
    probes = Probes(elector, lease_events_expected=True, clock=lambda: NOW)
    assert probes.phase is Phase.STANDBY
    assert failed(probes.checks("livez")) == {}
    assert failed(probes.checks("readyz")) == {}
    elector.answered_at = NOW - 11
    assert failed(probes.checks("readyz")) == {"api": "the election Lease was last read 11.0 s ago"}
    elector.answered_at = None
    assert failed(probes.checks("readyz")) == {"api": "the election Lease was last read never"}
    assert failed(probes.checks("livez")) == {}  # the API down is no reason to restart
    elector.tried_at = NOW - 12
    assert failed(probes.checks("livez")) == {
        "campaign": "the last election round started 12.0 s ago"
    }


def test_leading_but_kopf_not_running_is_live_and_not_ready() -> None:
    probes = Probes(FakeElector(leading=True), lease_events_expected=True, clock=lambda: NOW)
    probes.starting()
    assert failed(probes.checks("livez")) == {}
    assert "kopf not started yet" in failed(probes.checks("readyz"))["kopf"]
    probes.stopping()
    assert failed(probes.checks("livez")) == {}
    assert failed(probes.checks("readyz")) == {"kopf": "kopf is not running (stopping)"}


def test_without_election_the_process_starts_in_the_starting_phase() -> None:
    probes = Probes(None, lease_events_expected=True)
    assert probes.phase is Phase.STARTING
    assert not probes.lease_events_expected  # nobody renews an election Lease


# -- kopf running: answers made on its loop ----------------------------------------------


@contextmanager
def loop_thread() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread, as kopf's runs beside the health thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield loop
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def on_loop(loop: asyncio.AbstractEventLoop, probes: Probes, resource: str | None) -> None:
    """Run kopf's handlers (ours) on ``loop``: the startup one, or one watch event."""

    async def call() -> None:
        memo = kopf.Memo(probes=probes)
        # kopf types its decorated handlers by what kopf passes; ours read ``memo`` only
        handler: Any = probes_started if resource is None else HANDLERS[resource]
        await handler(memo=memo)

    asyncio.run_coroutine_threadsafe(call(), loop).result(5)


HANDLERS: dict[str, Any] = {"leases": lease_seen, "nodes": node_seen}


def running(elector: FakeElector, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> Probes:
    probes = Probes(elector, lease_events_expected=True, **kwargs)
    probes.starting()
    on_loop(loop, probes, None)
    return probes


def test_running_readiness_waits_for_kopfs_first_events() -> None:
    elector = FakeElector(leading=True, last_renewed=time.monotonic())
    with loop_thread() as loop:
        probes = running(elector, loop)
        assert probes.phase is Phase.RUNNING and probes.loop is loop
        assert failed(probes.checks("livez")) == {}
        assert failed(probes.checks("readyz")).keys() == {"watches", "lease-watch"}
        on_loop(loop, probes, "nodes")
        assert failed(probes.checks("readyz")) == {"lease-watch": "no Lease event yet"}
        on_loop(loop, probes, "leases")
        checks = probes.checks("readyz")
        assert failed(checks) == {}
        assert names(checks) == ["loop", "leader", "watches", "lease-watch"]
        assert "answered in" in checks[0].detail


def test_a_lease_watch_silent_while_our_renewals_succeed_is_stuck() -> None:
    clock = [NOW]
    elector = FakeElector(leading=True, last_renewed=NOW)
    with loop_thread() as loop:
        probes = running(elector, loop, clock=lambda: clock[0])
        on_loop(loop, probes, "leases")
        clock[0] = elector.last_renewed = NOW + LEASE_WATCH_STALE_S
        assert failed(probes.checks("readyz")) == {}
        clock[0] = elector.last_renewed = NOW + LEASE_WATCH_STALE_S + 1
        assert "kopf's Lease watch is stuck" in failed(probes.checks("readyz"))["lease-watch"]
        # renewals failing too: the API is away, not the watch; the leader check says so
        clock[0] = NOW + 100
        elector.leading = False
        assert failed(probes.checks("readyz")).keys() == {"leader", "lease-watch"}
        assert failed(probes.checks("livez")) == {}


def test_no_lease_watch_check_when_the_election_lease_is_elsewhere() -> None:
    elector = FakeElector(leading=True, last_renewed=time.monotonic())
    with loop_thread() as loop:
        probes = Probes(elector, lease_events_expected=False)
        on_loop(loop, probes, None)
        on_loop(loop, probes, "nodes")
        assert names(probes.checks("readyz")) == ["loop", "leader", "watches"]
        assert failed(probes.checks("readyz")) == {}


def test_a_blocked_loop_fails_both_endpoints_within_the_bound() -> None:
    """kopf's loop blocked (a callback that never yields, here a sleep): the checks cannot
    run there, and the answer comes from the bound, not from the health thread's view."""
    elector = FakeElector(leading=True, last_renewed=time.monotonic())
    with loop_thread() as loop:
        probes = running(elector, loop, loop_answer_s=0.3)
        on_loop(loop, probes, "leases")
        assert failed(probes.checks("readyz")) == {}
        entered, unblocked = threading.Event(), threading.Event()

        def block() -> None:
            entered.set()
            time.sleep(2.0)
            unblocked.set()

        loop.call_soon_threadsafe(block)
        assert entered.wait(5)
        for endpoint in ("livez", "readyz"):
            started = time.monotonic()
            assert failed(probes.checks(endpoint)) == {
                "loop": "kopf's event loop did not answer within 0.3 s"
            }
            assert time.monotonic() - started < 0.9  # the bound, not the block's end
        assert unblocked.wait(5)
        assert failed(probes.checks("livez")) == {}  # the abandoned callbacks did no harm


def test_a_closed_loop_fails_at_once() -> None:
    elector = FakeElector(leading=True)
    with loop_thread() as loop:
        probes = running(elector, loop)
    assert failed(probes.checks("livez")) == {"loop": "kopf's event loop is closed"}


# -- over HTTP -------------------------------------------------------------------------


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    with loop_thread() as made:
        yield made


def test_the_endpoints_over_http(loop: asyncio.AbstractEventLoop) -> None:
    elector = FakeElector(leading=True, last_renewed=time.monotonic())
    probes = running(elector, loop, loop_answer_s=0.3)
    server = HealthServer(probes, 0, "127.0.0.1")
    try:
        status, body = get(server.port, "/readyz")
        assert status == 503 and "[-]watches failed" in body and "readyz check failed" in body
        on_loop(loop, probes, "leases")
        assert get(server.port, "/readyz") == (200, "ok\n")
        assert get(server.port, "/livez") == (200, "ok\n")
        assert get(server.port, "/healthz") == (200, "ok\n")  # the old path: /livez
        status, body = get(server.port, "/readyz?verbose")
        assert status == 200 and "[+]lease-watch ok" in body and "readyz check passed" in body
        assert get(server.port, "/metrics")[0] == 404
        entered = threading.Event()

        def block() -> None:
            entered.set()
            time.sleep(1.0)

        loop.call_soon_threadsafe(block)
        assert entered.wait(5)
        status, body = get(server.port, "/livez")
        assert status == 503 and "did not answer within 0.3 s" in body
    finally:
        server.close()
