"""A standby calls a lost holder silent only once the silence outlasted the holder's
address lifetime (docs/design.md R9): the pure rule (``silence``) and the daemon's
standby pass in-process, with a fake clock, kernel, wire and API (no networking here;
tests/agent/test_process.py has the real processes)."""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aliasip_api import kubetime
from aliasip_api.lease import (
    HANDOVER_ANNOTATION,
    MUTE_ANNOTATION,
    SILENT_ANNOTATION,
    AgentLease,
    parse_silent,
)
from aliasip_nodeagent.daemon import Agent, Settings
from aliasip_nodeagent.deadman import expiry_window_s
from aliasip_nodeagent.report import Outcome
from aliasip_nodeagent.silence import (
    MUTE_SLACK_S,
    OVERDUE_S,
    PROBE_EVERY_S,
    Silences,
    holder_window_s,
    watch_from,
)
from tests.agent.test_inprocess import (
    FakeApi,
    FakeKernel,
    FakeListener,
    FakeWire,
    aliasip,
    named,
)
from tests.unit.hosts import MAC_OTHER

T0 = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)
KEY = ("web", "node2")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_the_window_is_the_lifetime_plus_the_kernels_check() -> None:
    assert expiry_window_s(1) == 2.0
    assert expiry_window_s(3) == 4.0


def test_silence_counts_from_the_first_silent_probe_of_a_run() -> None:
    s = Silences(window_s=2.0)
    assert s.proven_at(KEY, None) is None
    assert s.silent(KEY, at(1)) == at(1)
    assert s.silent(KEY, at(2.5)) == at(1)  # the run goes on: its start stays
    assert s.proven_at(KEY, None) == at(3)
    s.forget(KEY)  # an answer: a new run must start
    assert s.silent(KEY, at(4)) == at(4)
    assert s.proven_at(KEY, None) == at(6)


def test_a_handover_delays_the_evidence_until_it_ended() -> None:
    s = Silences(window_s=2.0)
    s.silent(KEY, at(1))
    assert s.proven_at(KEY, at(10)) == at(12)
    assert s.proven_at(KEY, at(0)) == at(3)  # a handover long over changes nothing


def test_a_holder_that_advertises_a_mute_window_is_silent_after_it() -> None:
    """R9's fine switch: the holder's own window (plus timer slack) replaces the lifetime's
    2 s; a missing, malformed or longer one leaves the lifetime's (the safe side)."""

    def holder(mute: int | None) -> AgentLease:
        return AgentLease("node2", T0, 3, mute_window_ms=mute)

    assert holder_window_s(holder(200), 2.0) == 0.2 + MUTE_SLACK_S
    assert holder_window_s(holder(None), 2.0) == 2.0
    assert holder_window_s(None, 2.0) == 2.0
    assert holder_window_s(holder(60_000), 2.0) == 2.0
    s = Silences(window_s=2.0)
    s.silent(KEY, at(1))
    assert s.proven_at(KEY, None, 0.25) == at(1.25)
    assert s.proven_at(KEY, at(10), 0.25) == at(10.25)  # a handover still counts whole


def test_the_standby_reads_the_window_from_the_holders_lease() -> None:
    s = standby(mute_ms="200")
    assert "holderHeard" not in s.pass_at(3.1)  # lapsed, first silent probe
    view = s.pass_at(3.1 + 0.2 + MUTE_SLACK_S + 0.01)
    assert view["holderHeard"] is False  # not 2 s later: the holder's mute window
    for bad in ("0", "-5", "soon"):
        s = standby(mute_ms=bad)
        s.pass_at(3.1)
        assert "holderHeard" not in s.pass_at(4.0), bad  # the lifetime's 2 s


def test_the_last_silent_probe_of_a_run_is_kept_until_an_answer() -> None:
    s = Silences(window_s=2.0)
    s.silent(KEY, at(1))
    s.silent(KEY, at(1.5))
    assert s.first(KEY) == at(1) and s.last(KEY) == at(1.5)
    s.forget(KEY)
    assert s.last(KEY) is None


def test_only_watched_keys_are_kept() -> None:
    s = Silences(window_s=2.0)
    s.silent(KEY, at(1))
    s.silent(("db", "node3"), at(1))
    s.keep_only({KEY})
    assert s.proven_at(("db", "node3"), None) is None
    assert s.proven_at(KEY, None) == at(3)


def test_the_watch_starts_when_a_renewal_is_overdue() -> None:
    lease = AgentLease(holder="node2", renew_time=at(0), duration_s=3)
    assert watch_from(lease, 1.0) == at(1.0 + OVERDUE_S)
    assert watch_from(None, 1.0) is None
    assert watch_from(AgentLease(holder="node2", renew_time=None, duration_s=3), 1.0) is None


@dataclass
class Standby:
    """node1, a standby of ``web`` whose status names node2; node2's Lease renewed at T0."""

    agent: Agent
    wire: FakeWire
    api: FakeApi
    clock: list[datetime]
    kernel: FakeKernel

    def pass_at(self, seconds: float) -> dict[str, Any]:
        """One full pass at T0 + ``seconds``; node1's view as the API has it after."""
        self.clock[0] = at(seconds)

        async def go() -> None:
            outcomes, observed = await self.agent._apply(full=True)
            outcomes = await self.agent.holders.watch(observed, outcomes)
            await self.agent._report(observed, outcomes)
            self.agent.claims.close()
            await self.agent.announcements.close()

        asyncio.run(go())
        assert self.api.current is not None
        view: dict[str, Any] = self.api.current["status"].get("nodes", {}).get("node1", {})
        return view


def standby(handover_until: datetime | None = None, mute_ms: str | None = None) -> Standby:
    obj = aliasip("node2", 1, 10)
    clock = [T0]
    wire, api, kernel = FakeWire(), FakeApi(obj), FakeKernel()
    agent = Agent(
        Settings(node="node1", probe_wait_s=0.0),
        api,  # type: ignore[arg-type]
        kernel,
        wire,
        ThreadPoolExecutor(max_workers=1),
        now=lambda: clock[0],
    )
    agent.synced = True
    agent.claims._open = FakeListener  # no packet socket
    agent.objects["web"] = obj
    lease: dict[str, Any] = {
        "metadata": {"name": "aliasip-agent-node2"},
        "spec": {
            "holderIdentity": "node2",
            "leaseDurationSeconds": 3,
            "renewTime": kubetime.format_micro_time(T0),
        },
    }
    annotations = lease["metadata"].setdefault("annotations", {})
    if handover_until is not None:
        annotations[HANDOVER_ANNOTATION] = kubetime.format_micro_time(handover_until)
    if mute_ms is not None:
        annotations[MUTE_ANNOTATION] = mute_ms
    agent.leases.put(lease)
    agent.leases.synced = True
    return Standby(agent, wire, api, clock, kernel)


def test_nothing_is_probed_while_the_renewal_is_on_time() -> None:
    s = standby()
    view = s.pass_at(1.2)
    assert s.wire.probes == 0
    assert "holderHeard" not in view


def test_silence_before_the_window_is_not_reported_after_it_is() -> None:
    s = standby()
    assert "holderHeard" not in s.pass_at(3.1)  # lapsed, first silent probe
    assert s.wire.probes == 1
    assert "holderHeard" not in s.pass_at(4.0)  # silent for 0.9 s only
    view = s.pass_at(5.2)
    assert view["holderHeard"] is False
    assert kubetime.parse_time(view["observedAt"]) == at(5.2)


# A moment the holder's renewal (due at 1 s) is overdue, before its Lease lapses at 3 s.
OVERDUE = 1.0 + OVERDUE_S + 0.1


def test_probing_from_the_overdue_renewal_keeps_the_window_off_the_failover_time() -> None:
    s = standby()
    assert "holderHeard" not in s.pass_at(OVERDUE)  # overdue, not lapsed: probed only
    assert s.wire.probes == 1
    assert "holderHeard" not in s.pass_at(3.05)  # lapsed; silent since OVERDUE
    view = s.pass_at(OVERDUE + 2.05)
    assert view["holderHeard"] is False


def test_a_holder_heard_on_the_monitoring_path_is_not_probed_for_a_late_renewal() -> None:
    """Heartbeats vouch for the holder however late the API delivers its renewals (at 50
    nodes the lab's API ran 0.3 s late during creation, and every standby probing every
    holder then starved it further); its Lease's lapse is still probed."""
    s = standby()
    s.agent.holders._heartbeat = lambda node: True
    s.pass_at(OVERDUE)
    s.pass_at(2.9)
    assert s.wire.probes == 0
    s.pass_at(3.05)  # lapsed: probed, whatever the heartbeats say
    assert s.wire.probes == 1


def test_missed_heartbeats_start_the_probe_before_any_renewal_is_late() -> None:
    s = standby()
    s.agent.holders._heartbeat = lambda node: False
    assert "holderHeard" not in s.pass_at(0.4)  # renewal on time, heartbeats missed
    assert s.wire.probes == 1
    assert "holderHeard" not in s.pass_at(2.3)  # silent since 0.4: proven at 2.4 ...
    assert s.pass_at(3.05)["holderHeard"] is False  # ... reported once the Lease lapsed


def test_a_node_missed_and_silent_for_its_window_is_told_once_for_all_its_aliasips() -> None:
    """Evidence per node: heartbeats missed and the wire silent for the holder's dead-man
    window (its advertised 200 ms + slack) make one claim in this agent's Lease, written
    at once (not once per AliasIP, not at the next renewal); heard again, it is withdrawn.
    Nothing is written per AliasIP before the Lease lapses."""
    s = standby(mute_ms="200")
    heard: list[bool] = [False]
    s.agent.holders._heartbeat = lambda node: heard[0]
    s.agent.holders._quiet_s = lambda node: (s.clock[0] - at(0.1)).total_seconds()
    asked: list[int] = []
    s.agent.liveness.renew_soon = lambda: asked.append(1)  # type: ignore[method-assign]
    assert "holderHeard" not in s.pass_at(0.4)  # missed: the first silent probe
    assert s.agent.holders.silent_nodes == {} and asked == []
    # Its next heartbeat was due at 0.2; its mute ran out by 0.2 + 0.2 + slack at most.
    proven = 0.1 + 0.1 + 0.2 + MUTE_SLACK_S
    assert "holderHeard" not in s.pass_at(proven - 0.01)
    assert s.agent.holders.silent_nodes == {}
    assert "holderHeard" not in s.pass_at(proven)  # silent still: the node is silent
    assert s.agent.holders.silent_nodes == {"node2": at(0.4)}
    assert asked == [1]
    claim = s.agent._lease_annotations()[SILENT_ANNOTATION]
    assert parse_silent(claim) == (("node2", at(0.4)),)
    s.pass_at(0.9)
    assert asked == [1]  # told once
    heard[0] = True
    s.pass_at(1.0)
    assert s.agent.holders.silent_nodes == {} and asked == [1, 1]
    assert SILENT_ANNOTATION not in s.agent._lease_annotations()


def test_a_node_that_answers_on_the_wire_is_never_claimed_silent() -> None:
    s = standby(mute_ms="200")
    s.agent.holders._heartbeat = lambda node: False
    s.agent.holders._quiet_s = lambda node: 1.0
    s.wire.answered_by = "02:00:00:00:00:02"  # its kernel answers: its agent may live
    s.pass_at(0.4)
    s.pass_at(0.8)
    assert s.agent.holders.silent_nodes == {}
    # Silent, but never heard on the monitoring path (no heartbeat to count from), or
    # handed over (its kernel keeps the aliases till then): no claim, the Lease decides.
    for quiet, handover in ((None, None), (1.0, at(5))):
        s = standby(mute_ms="200", handover_until=handover)
        s.agent.holders._heartbeat = lambda node: False
        s.agent.holders._quiet_s = functools.partial(lambda q, _node: q, quiet)
        s.pass_at(0.4)
        s.pass_at(1.5)
        assert s.agent.holders.silent_nodes == {}


def test_lost_heartbeats_from_a_node_that_answers_fall_back_on_the_lease() -> None:
    """A firewall closed to the heartbeats is not a dead node: once it still answers on
    the wire a dead-man window after its heartbeats went missing (a dead agent's kernel
    would have let go by then), it is watched through its Lease (no probe every 0.25 s for
    as long as the firewall stays shut), until its heartbeats come back."""
    s = standby()
    heard: list[bool] = [False]
    s.agent.holders._heartbeat = lambda node: heard[0]
    s.wire.answered_by = "02:00:00:00:00:02"
    for t in (0.1, 0.6, 1.1, 1.6, 2.05):  # answered within the window: still probed
        s.pass_at(t)
    assert s.wire.probes == 5
    s.pass_at(2.15)  # answered 2.05 s after the first: its agent lives, the path is broken
    assert s.wire.probes == 6
    renewed = s.agent.leases._objects["node2"]
    renewed["spec"]["renewTime"] = kubetime.format_micro_time(at(2.3))
    s.pass_at(2.4)  # its Lease renewed on time: not probed
    s.pass_at(2.45)
    assert s.wire.probes == 6
    heard[0] = True  # the heartbeats are back ...
    s.pass_at(2.5)
    heard[0] = False  # ... and missed again: probed at once
    s.pass_at(2.6)
    assert s.wire.probes == 7


def test_a_node_the_monitoring_path_does_not_cover_falls_back_on_the_lease() -> None:
    s = standby()
    s.agent.holders._heartbeat = lambda node: None
    s.pass_at(1.0 + OVERDUE_S - 0.1)
    assert s.wire.probes == 0
    s.pass_at(OVERDUE)
    assert s.wire.probes == 1


def test_an_answer_in_between_starts_the_silence_over_and_is_reported_at_once() -> None:
    s = standby()
    s.pass_at(OVERDUE)
    s.wire.answered_by = "02:00:00:00:00:02"
    assert s.pass_at(3.1)["holderHeard"] is True  # an answer after the expiry: at once
    s.wire.answered_by = None
    assert s.pass_at(3.5)["holderHeard"] is True  # silent since 3.5 only
    assert s.pass_at(5.4)["holderHeard"] is True
    assert s.pass_at(5.6)["holderHeard"] is False


def test_a_handed_over_holder_is_silent_only_after_the_handover() -> None:
    s = standby(handover_until=at(10))
    s.pass_at(3.1)
    assert "holderHeard" not in s.pass_at(6.0)
    assert "holderHeard" not in s.pass_at(11.9)
    assert s.pass_at(12.1)["holderHeard"] is False


def test_silence_heard_before_a_renewal_is_forgotten() -> None:
    """The holder's agent renewed in between: it lived, and may have added again."""
    s = standby()
    s.pass_at(OVERDUE)  # overdue: silent
    renewed = s.agent.leases._objects["node2"]
    renewed["spec"]["renewTime"] = kubetime.format_micro_time(at(OVERDUE + 0.1))
    s.pass_at(OVERDUE + 0.2)  # on time again: forgotten, nothing probed
    assert s.wire.probes == 1
    lapse = OVERDUE + 0.1 + 3
    assert "holderHeard" not in s.pass_at(lapse + 0.1)  # silent since then only
    assert "holderHeard" not in s.pass_at(lapse + 2.0)
    assert s.pass_at(lapse + 2.2)["holderHeard"] is False


def test_a_lost_holders_aliasips_are_probed_as_one_batch_each_by_its_own_addresses() -> None:
    """node2 (its Lease lapsed) held three AliasIPs node1 stands by for: their addresses
    are probed together, one wait (one after the other, 30 ms each, a standby of 20 held
    up the pass that takes them over by 0.6 s); the one another host still answers for is
    heard, the others are silent (an answer for one address says nothing of the others)."""
    s = standby()
    for name, address in (("db", "198.18.0.51"), ("cache", "198.18.0.52")):
        s.agent.objects[name] = named(name, address, aliasip("node2", 1, 11))
    s.wire.answering = {"198.18.0.52": MAC_OTHER}
    s.clock[0] = at(3.1)

    async def go() -> dict[str, Outcome]:
        outcomes, observed = await s.agent._apply(full=True)
        found = await s.agent.holders.watch(observed, outcomes)
        s.agent.claims.close()
        await s.agent.announcements.close()
        return found

    outcomes = asyncio.run(go())
    assert s.wire.batches == [["198.18.0.50", "198.18.0.51", "198.18.0.52"]]
    assert outcomes["cache"].heard is True  # reported at once: its holder answers
    assert outcomes.get("web", Outcome()).heard is None  # silent: counted, not yet proven
    assert outcomes.get("db", Outcome()).heard is None
    assert s.agent.holders.silences.first(("db", "node2")) == at(3.1)
    assert s.agent.holders.silences.first(("cache", "node2")) is None


def failover_to_node1(s: Standby) -> None:
    """The operator moved ``web`` from the silent node2 to node1 (no release from node2)."""
    s.api.current = aliasip(
        "node1", 11, 100, transition={"from": "node2", "to": "node1", "reason": "NodeLost"}
    )
    s.agent.objects["web"] = s.api.current


def test_a_failover_right_after_this_nodes_own_silent_probe_adds_without_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """R1's probe before the add was this node's silent probe of the old holder moments
    ago (within the probe cadence): the add does not wait for a second one, and its log
    says which proof stood in for the probe (not the old holder's word: it gave none)."""
    s = standby(mute_ms="200")
    s.pass_at(3.1)
    assert s.pass_at(3.1 + 0.2 + MUTE_SLACK_S + 0.01)["holderHeard"] is False
    probes = s.wire.probes
    failover_to_node1(s)
    with caplog.at_level(logging.INFO, logger="aliasip.agent"):
        s.pass_at(3.1 + 0.2 + MUTE_SLACK_S + 0.01 + 0.1)
    assert s.kernel.adds == 1 and s.wire.probes == probes
    (hold,) = [r.getMessage() for r in caplog.records if "event=hold " in r.getMessage()]
    assert 'probe="skipped: this node heard the old holder silent"' in hold


def test_a_failover_long_after_the_last_silent_probe_probes_again() -> None:
    s = standby(mute_ms="200")
    s.pass_at(3.1)
    proven = 3.1 + 0.2 + MUTE_SLACK_S + 0.01
    assert s.pass_at(proven)["holderHeard"] is False
    probes = s.wire.probes
    failover_to_node1(s)
    s.pass_at(proven + PROBE_EVERY_S + 0.05)
    assert s.kernel.adds == 1 and s.wire.probes == probes + 1
