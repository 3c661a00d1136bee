"""The agent's health endpoint in-process: the checks from fake facts, the real server on a
real event loop and socket (a blocked loop answers nothing), the timed data-path thread,
and the wiring that reads a real ``Agent`` (``service.health_facts``). The process tests
(a real agent, fenced, frozen) are in test_health_process.py."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import pytest

from aliasip_api.healthz import Check, render
from aliasip_nodeagent.cli import build_parser, main
from aliasip_nodeagent.daemon import Agent, Settings
from aliasip_nodeagent.health import (
    AgentFacts,
    HealthServer,
    listen,
    live_checks,
    ready_checks,
)
from aliasip_nodeagent.service import health_facts
from aliasip_nodeagent.timedexecutor import TimedExecutor
from tests.agent.test_inprocess import FakeApi, FakeKernel, FakeWire

NOW = 1000.0


@dataclass
class Facts:
    """Plain values behind ``AgentFacts``' callables, changed by the tests."""

    synced: bool = True
    lease_renewed_at: float | None = NOW - 0.4
    fenced: bool = False
    kernel_renewed_at: float | None = NOW - 0.2
    busy_since: float | None = None

    def facts(self, **bounds: float) -> AgentFacts:
        return AgentFacts(
            synced=lambda: self.synced,
            lease_renewed_at=lambda: self.lease_renewed_at,
            fenced=lambda: self.fenced,
            kernel_renewed_at=lambda: self.kernel_renewed_at,
            dataplane_busy_since=lambda: self.busy_since,
            lease_fresh_s=2.5,
            **bounds,
        )


def failed(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.ok}


# -- the checks ----------------------------------------------------------------------------


def test_live_while_the_data_path_is_idle_or_in_a_call_shorter_than_the_bound() -> None:
    state = Facts()
    assert failed(live_checks(state.facts(), NOW)) == {}
    state.busy_since = NOW - 9.9
    assert failed(live_checks(state.facts(), NOW)) == {}
    state.busy_since = NOW - 10.5
    assert failed(live_checks(state.facts(), NOW)) == {
        "dataplane": "stuck in one call since 10.5 s ago (bound 10 s)"
    }


def test_ready_needs_a_fresh_lease_a_kernel_that_answers_and_the_first_list() -> None:
    assert failed(ready_checks(Facts().facts(), NOW)) == {}
    cases = {
        "no renewal yet": (Facts(lease_renewed_at=None), {"lease": "not renewed yet"}),
        "fenced": (Facts(fenced=True), {"lease": "cut off from the API"}),
        # past the fence deadline, before the fence task has noticed
        "stale lease": (Facts(lease_renewed_at=NOW - 2.6), {"lease": "last renewed 2.6 s"}),
        "no kernel yet": (Facts(kernel_renewed_at=None), {"kernel": "no lifetime renewal"}),
        "kernel stale": (Facts(kernel_renewed_at=NOW - 6), {"kernel": "6.0 s ago"}),
        "not listed": (Facts(synced=False), {"aliasips": "the first list has not arrived"}),
    }
    for case, (state, expected) in cases.items():
        got = failed(ready_checks(state.facts(), NOW))
        assert got.keys() == expected.keys(), case
        for name, words in expected.items():
            assert words in got[name], (case, got)


def test_the_kernel_bound_is_the_facts_own() -> None:
    state = Facts(kernel_renewed_at=NOW - 6)
    assert failed(ready_checks(state.facts(kernel_stale_s=7.5), NOW)) == {}


def test_bodies_are_kube_apiservers_format() -> None:
    good = [Check("loop", True, "the event loop answered")]
    bad = [*good, Check("dataplane", False, "stuck")]
    assert render("livez", good, verbose=False) == (200, "ok\n")
    assert render("livez", good, verbose=True) == (
        200,
        "[+]loop ok: the event loop answered\nlivez check passed\n",
    )
    assert render("livez", bad, verbose=False) == (
        503,
        "[+]loop ok: the event loop answered\n[-]dataplane failed: stuck\nlivez check failed\n",
    )


# -- the timed data-path thread --------------------------------------------------------


def test_the_data_path_thread_tells_since_when_its_call_runs() -> None:
    executor = TimedExecutor(thread_name_prefix="dataplane")
    release = threading.Event()
    try:
        assert executor.busy_since is None
        before = time.monotonic()
        running = executor.submit(release.wait, 5)
        queued = executor.submit(lambda: "second")
        _eventually(lambda: executor.busy_since is not None)
        since = executor.busy_since
        assert since is not None and before <= since <= time.monotonic()
        release.set()
        assert running.result(5) is True and queued.result(5) == "second"
        _eventually(lambda: executor.busy_since is None)
    finally:
        release.set()
        executor.shutdown()


def test_a_failing_call_leaves_the_thread_idle() -> None:
    executor = TimedExecutor()
    try:
        with pytest.raises(ZeroDivisionError):
            executor.submit(lambda: 1 / 0).result(5)
        assert executor.busy_since is None
    finally:
        executor.shutdown()


# -- the server on a real loop and socket ----------------------------------------------


@dataclass
class Served:
    port: int
    loop: asyncio.AbstractEventLoop


@contextmanager
def serving(facts: AgentFacts) -> Iterator[Served]:
    """``HealthServer`` on 127.0.0.1 (any port), on an event loop in a thread."""
    loop = asyncio.new_event_loop()
    sock = listen("127.0.0.1", 0)
    server = HealthServer(facts, "node1")
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start(sock))
        loop.call_soon(started.set)
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(5)
    try:
        yield Served(sock.getsockname()[1], loop)
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
        sock.close()


def get(port: int, path: str, timeout: float = 2.0, method: str = "GET") -> tuple[int, str]:
    """One request as kubelet makes it (a new connection each time)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, reply.read().decode()
    finally:
        conn.close()


def test_the_server_answers_each_endpoint_with_its_verdict() -> None:
    state = Facts(synced=False, lease_renewed_at=time.monotonic())
    state.kernel_renewed_at = time.monotonic()
    with serving(state.facts()) as served:
        assert get(served.port, "/livez") == (200, "ok\n")
        status, body = get(served.port, "/livez?verbose")
        assert status == 200 and body.startswith("[+]loop ok") and "livez check passed" in body
        status, body = get(served.port, "/readyz")
        assert status == 503
        assert "[-]aliasips failed: the first list has not arrived" in body
        assert body.endswith("readyz check failed\n")
        state.synced = True
        assert get(served.port, "/readyz") == (200, "ok\n")
        assert get(served.port, "/readyz", method="HEAD") == (200, "")
        assert get(served.port, "/healthz")[0] == 404
        assert get(served.port, "/livez", method="POST")[0] == 405


def test_a_garbled_request_is_dropped_and_the_server_keeps_serving() -> None:
    with serving(Facts().facts()) as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=2) as raw:
            raw.sendall(b"nonsense\r\n\r\n")
            assert raw.recv(100) == b""  # closed without an answer
        assert get(served.port, "/livez") == (200, "ok\n")


def test_a_blocked_loop_answers_nothing_until_it_turns_again() -> None:
    """The server is on the agent's loop: while that loop is blocked (here: a callback
    that sleeps), a probe gets no answer at all, which kubelet counts as a failure."""
    with serving(Facts().facts()) as served:
        entered, unblocked = threading.Event(), threading.Event()

        def block() -> None:
            entered.set()
            time.sleep(1.5)
            unblocked.set()

        served.loop.call_soon_threadsafe(block)
        assert entered.wait(5)  # the loop is inside the callback now
        with pytest.raises(TimeoutError):
            get(served.port, "/livez", timeout=0.5)
        assert unblocked.wait(5)
        assert get(served.port, "/livez") == (200, "ok\n")


def test_a_stuck_data_path_fails_livez_while_the_loop_answers() -> None:
    executor = TimedExecutor()
    release = threading.Event()
    state = Facts()
    facts = replace(
        state.facts(dataplane_stuck_s=0.2), dataplane_busy_since=lambda: executor.busy_since
    )
    try:
        with serving(facts) as served:
            assert get(served.port, "/livez") == (200, "ok\n")
            executor.submit(release.wait, 10)
            time.sleep(0.3)
            status, body = get(served.port, "/livez")
            assert status == 503
            assert "[-]dataplane failed: stuck in one call since" in body
            release.set()
            _eventually(lambda: get(served.port, "/livez") == (200, "ok\n"))
    finally:
        release.set()
        executor.shutdown()


def test_a_taken_port_is_refused_at_once() -> None:
    with listen("127.0.0.1", 0) as taken, pytest.raises(OSError):
        listen("127.0.0.1", taken.getsockname()[1])


# -- the flags and the wiring: what the facts read of a real Agent ------------------------


def test_health_is_off_by_default_and_on_loopback_when_on() -> None:
    args = build_parser().parse_args(["run", "--node", "node1"])
    assert (args.health_port, args.health_address) == (0, "127.0.0.1")


def test_a_health_port_out_of_range_is_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--node", "node1", "--health-port", "70000"]) == 2
    assert "--health-port is a TCP port" in capsys.readouterr().err


def test_the_facts_read_the_agents_lease_kernel_list_and_data_path() -> None:
    executor = TimedExecutor()
    agent = Agent(
        Settings(node="node1"),
        FakeApi(None),  # type: ignore[arg-type]
        FakeKernel(),
        FakeWire(),
        executor,
    )
    facts = health_facts(agent, executor)
    try:
        assert facts.lease_fresh_s == 2.5  # the Lease's 3 s less the fence margin
        assert facts.kernel_stale_s == 5.0  # renewals every 0.25 s: the floor
        now = time.monotonic
        assert failed(ready_checks(facts, now())).keys() == {"lease", "kernel", "aliasips"}
        agent.liveness.renewed_at = now()
        assert asyncio.run(agent.deadman.renew()) == 0  # through the data-path thread
        agent._replace_all(())
        assert failed(ready_checks(facts, now())) == {}
        agent.liveness.fenced = True
        assert "cut off from the API" in failed(ready_checks(facts, now()))["lease"]
        assert failed(live_checks(facts, now())) == {}
    finally:
        executor.shutdown()


def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
