"""Announcements belong to holding, in-process: ``Announcements`` on a real event loop and
a real data-path thread, with a recording announcer (no packets: the real wire is in
test_claims_process.py). A round is sent only while the address is held at its epoch;
a release, a deleted AliasIP or a newer epoch stops the remaining rounds at once."""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from aliasip_nodeagent.announcing import Announcements, Gate, Token
from aliasip_nodeagent.dataplane import ProbeOutcome
from aliasip_nodeagent.hoststate import HeldAlias, IPAddress
from aliasip_nodeagent.placement import AliasRequest, Placement
from aliasip_nodeagent.reconcile import Hold, Plan, Release

IP = ipaddress.ip_address("198.18.0.50")
MAC = "02:a1:00:00:00:0b"
PLACEMENT = Placement(1, "eth1", MAC, ipaddress.ip_interface("198.18.0.50/24"))
HOLD = Hold(
    aliasip="web",
    key="uid-1",
    epoch=3,
    requests=(AliasRequest(ip=IP, prefixlen=24),),
    announce_count=5,
    announce_interval_s=0.2,
    adopt=False,
)


@dataclass
class Recorder:
    """An Announce that records each round it is asked to send (on which thread)."""

    sent: list[IPAddress] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)

    def announce(self, interface: str, mac: str, ip: IPAddress) -> int:
        self.sent.append(ip)
        self.threads.add(threading.current_thread().name)
        return 2

    def probe(self, interface: str, mac: str, ip: IPAddress, wait_s: float) -> ProbeOutcome:
        raise AssertionError("not probed here")


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataplane")
    yield pool
    pool.shutdown()


def drive(
    executor: ThreadPoolExecutor, body: Callable[[Announcements, Recorder], Awaitable[None]]
) -> Recorder:
    recorder = Recorder()

    async def main() -> None:
        a = Announcements(recorder, executor, "node1")
        try:
            await body(a, recorder)
        finally:
            await a.close()

    asyncio.run(main())
    return recorder


async def until(condition: Callable[[], bool]) -> None:
    """Poll (bounded: 5 s) until ``condition``; the loop reacts within milliseconds, well
    inside the 200 ms between rounds, so 'after the second round' is exact."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached in 5 s")


async def first_round_and_repeats(a: Announcements, h: Hold = HOLD) -> None:
    """What ``Agent._hold`` does: the token, the gated first round, the repeats."""
    gated = a.holding(h)
    assert gated.announce("eth1", MAC, IP) == 2
    a.start(h, [PLACEMENT])


def test_all_rounds_while_held(executor: ThreadPoolExecutor) -> None:
    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        await until(lambda: len(rec.sent) == 5)
        await asyncio.sleep(0.3)

    rec = drive(executor, body)
    assert rec.sent == [IP] * 5
    repeats = rec.threads - {"MainThread"}  # the first round: the caller's (apply_alias)
    assert repeats and all(t.startswith("dataplane") for t in repeats)


def test_a_release_between_rounds_sends_nothing_more(executor: ThreadPoolExecutor) -> None:
    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        await until(lambda: len(rec.sent) == 2)  # the first repeat went out
        held = HeldAlias("eth1", 1, MAC, PLACEMENT.address)
        a.follow(Plan(releases=(Release(held, None, None, "no AliasIP wants it here"),), holds=()))
        await asyncio.sleep(0.6)

    assert drive(executor, body).sent == [IP] * 2


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("DELETED", {"activeNode": "node1", "epoch": 3}),
        ("MODIFIED", {"activeNode": "node1", "epoch": 4}),  # a newer epoch, even naming us
        ("MODIFIED", {"activeNode": "node2", "epoch": 3}),
        ("MODIFIED", {"activeNode": None, "epoch": 3}),
    ],
    ids=["deleted", "newer-epoch", "another-node", "no-node"],
)
def test_an_event_stops_the_rounds_at_once(
    executor: ThreadPoolExecutor, kind: str, status: dict[str, Any]
) -> None:
    obj = {"metadata": {"name": "web", "uid": "uid-1"}, "status": status}

    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        await until(lambda: len(rec.sent) == 2)
        a.on_event("node1", kind, obj)
        assert a.held() == {}
        await asyncio.sleep(0.6)

    assert drive(executor, body).sent == [IP] * 2


@pytest.mark.parametrize(
    ("meta", "status"),
    [
        ({"name": "web", "uid": "uid-1"}, {"activeNode": "node2", "epoch": 2}),  # stale event
        ({"name": "web", "uid": "uid-1"}, {"activeNode": "node1", "epoch": 3}),  # the same
        ({"name": "db", "uid": "uid-2"}, {"activeNode": "node2", "epoch": 9}),  # another one
    ],
    ids=["older-epoch", "same", "other-aliasip"],
)
def test_events_that_do_not_concern_the_holding_change_nothing(
    executor: ThreadPoolExecutor, meta: dict[str, str], status: dict[str, Any]
) -> None:
    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        a.on_event("node1", "MODIFIED", {"metadata": meta, "status": status})
        await until(lambda: len(rec.sent) == 5)
        await asyncio.sleep(0.3)

    assert drive(executor, body).sent == [IP] * 5


def test_a_newer_epoch_in_the_plan_stops_the_old_rounds(executor: ThreadPoolExecutor) -> None:
    """The next pass holds the same address at a newer epoch, adopted (nothing to add):
    the old epoch's rounds stop; the address stays announceable at the new token."""

    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        await until(lambda: len(rec.sent) == 2)
        a.follow(Plan(releases=(), holds=(replace(HOLD, epoch=4, adopt=True),)))
        assert a.held() == {IP: Token("uid-1", 4)}
        await asyncio.sleep(0.6)

    assert drive(executor, body).sent == [IP] * 2


def test_a_round_queued_on_the_data_path_is_checked_right_before_sending(
    executor: ThreadPoolExecutor,
) -> None:
    """The data-path thread is busy (a netlink call) when a round is due; the release
    comes meanwhile. The round, already queued, sends nothing: the gate is read under its
    lock right before the frame, not when the round was scheduled."""
    busy, go = threading.Event(), threading.Event()

    def netlink_call() -> None:
        busy.set()
        go.wait(5)

    async def body(a: Announcements, rec: Recorder) -> None:
        await first_round_and_repeats(a)
        loop = asyncio.get_running_loop()
        blocker = loop.run_in_executor(executor, netlink_call)
        await asyncio.to_thread(busy.wait, 5)
        await asyncio.sleep(0.3)  # the repeat (due at 0.2 s) is queued behind the call
        a.revoke(IP, "released")
        go.set()
        await blocker
        await asyncio.sleep(0.3)

    assert drive(executor, body).sent == [IP]


def test_the_first_round_of_a_revoked_hold_is_not_sent(executor: ThreadPoolExecutor) -> None:
    async def body(a: Announcements, rec: Recorder) -> None:
        gated = a.holding(HOLD)
        a.on_event("node1", "DELETED", {"metadata": {"name": "web", "uid": "uid-1"}})
        assert gated.announce("eth1", MAC, IP) == 0  # apply_alias's first round
        a.start(HOLD, [PLACEMENT])
        await asyncio.sleep(0.6)

    assert drive(executor, body).sent == []


def test_refresh_and_defend_only_while_held(executor: ThreadPoolExecutor) -> None:
    async def body(a: Announcements, rec: Recorder) -> None:
        assert await a.defend(IP, "eth1", MAC) == 0  # not held: no defence
        kept = replace(HOLD, adopt=True)
        a.follow(Plan(releases=(), holds=(kept,)))
        await a.refresh(kept, [PLACEMENT], every_s=30)
        await a.refresh(kept, [PLACEMENT], every_s=30)  # not due again
        assert await a.defend(IP, "eth1", MAC) == 2
        a.revoke(IP, "released")
        assert await a.defend(IP, "eth1", MAC) == 0
        await a.refresh(kept, [PLACEMENT], every_s=0)

    assert drive(executor, body).sent == [IP, IP]


def test_no_frame_for_an_address_the_dead_man_switch_no_longer_vouches_for() -> None:
    """R9's fine switch: nftables never sees a packet socket's frames, so the gate asks
    the mute right before each one (a round queued before a freeze, sent after the thaw)."""
    vouched = {True}
    gate = Gate(vouched=lambda _ip: True in vouched)
    address, token = ipaddress.ip_address("198.18.0.50"), Token("uid", 3)
    gate.set(address, token)
    assert gate.send_if(address, token, lambda: 1) == 1
    vouched.clear()  # the window ran out before the refresher could renew it
    assert gate.send_if(address, token, lambda: 1) == 0
