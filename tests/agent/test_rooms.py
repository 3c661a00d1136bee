"""The agent's rooms in-process, each with fakes: the Lease store and liveness (cut-off,
resume, the guard while cut off). The standby room is tested in test_silence.py, the
dead-man switch in test_deadman.py."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aliasip_api import kubetime
from aliasip_nodeagent.announcing import Announcements
from aliasip_nodeagent.daemon import Settings
from aliasip_nodeagent.kube import ApiUnavailable
from aliasip_nodeagent.leasestore import LeaseStore
from aliasip_nodeagent.liveness import Liveness
from tests.agent.test_inprocess import FakeKernel, FakeWire

T0 = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


def lease(node: str, rv: int, renewed: datetime = T0) -> dict[str, Any]:
    return {
        "metadata": {"name": f"aliasip-agent-{node}", "resourceVersion": str(rv)},
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": 3,
            "renewTime": kubetime.format_micro_time(renewed),
        },
    }


@dataclass
class FakeKube:
    reachable: bool = True
    gets: list[str] = field(default_factory=list)
    renewals: int = 0

    def get_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.gets.append(name)
        if not self.reachable:
            raise ApiUnavailable("GET leases: connection refused")
        return lease(name.removeprefix("aliasip-agent-"), 1)

    def renew_lease(self, *args: Any) -> dict[str, Any]:
        if not self.reachable:
            raise ApiUnavailable("PUT leases: connection refused")
        self.renewals += 1
        return {}


def store(kube: FakeKube, watched: frozenset[str]) -> tuple[LeaseStore, list[str]]:
    told: list[str] = []
    s = LeaseStore(
        "node1",
        "aliasip-system",
        kube,  # type: ignore[arg-type]
        watched=lambda: watched,
        changed=lambda node, _lease: told.append(node),
    )
    return s, told


def test_the_store_keeps_what_the_watch_saw_after_the_list_was_read() -> None:
    s, told = store(FakeKube(), frozenset({"node2"}))
    assert s.seen("MODIFIED", lease("node2", 7)) is True  # watched: the loop hears of it
    assert s.seen("MODIFIED", lease("node3", 8)) is False  # not watched: kept quietly
    assert s.seen("MODIFIED", {"metadata": {"name": "aliasip-operator"}}) is False
    s.listed((lease("node2", 5), lease("node3", 9)))  # node2's list copy is older
    assert s._objects["node2"]["metadata"]["resourceVersion"] == "7"
    assert s._objects["node3"]["metadata"]["resourceVersion"] == "9"
    assert s.synced and told == ["node2"]


def test_the_store_reads_directly_while_the_watch_is_broken() -> None:
    kube = FakeKube()
    s, _ = store(kube, frozenset())
    s.listed(())
    assert asyncio.run(s.read("node2")) == (True, None)  # listed: no such Lease, no GET
    s.broken()
    known, got = asyncio.run(s.read("node2"))
    assert known and got is not None and got.holder == "node2"
    assert kube.gets == ["aliasip-agent-node2"]
    kube.reachable = False
    assert asyncio.run(s.read("node2")) == (False, None)  # nothing known


def liveness(
    kube: FakeKube,
    wire: FakeWire,
    kernel: FakeKernel,
    resume: Callable[[], bool],
    reconnected: Callable[[], None] = lambda: None,
) -> Liveness:
    executor = ThreadPoolExecutor(max_workers=1)

    async def io(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    async def resumed() -> bool:
        return resume()

    return Liveness(
        Settings(node="node1", probe_wait_s=0.0),
        kube,  # type: ignore[arg-type]
        netlink=kernel,
        announcer=wire,
        announcements=Announcements(wire, executor, "node1"),
        io=io,
        dataplane=asyncio.Lock(),
        now=lambda: T0,
        acquired=lambda: None,
        resume=resumed,
        kernel_changed=lambda: None,
        watch_breaks=lambda: 3,
        reconnected=reconnected,
    )


def test_cut_off_keeps_the_alias_until_another_host_answers_for_it() -> None:
    kernel, wire = FakeKernel([ipaddress.IPv4Interface("198.18.0.50/24")]), FakeWire()
    live = liveness(FakeKube(reachable=False), wire, kernel, resume=lambda: True)
    live.started_at = time.monotonic() - 10  # never renewed: past the deadline
    assert live.fence_deadline() < time.monotonic()
    live.cut_off()
    assert live.fenced and live.breaks_at_cut_off == 3
    asyncio.run(live.guard_held())
    assert kernel.owned  # nobody else answers: kept (an API outage takes nothing down)
    wire.answered_by = "02:00:00:00:00:02"
    asyncio.run(live.guard_held())
    assert kernel.owned == []  # the operator moved it while this node was away


def test_a_renewal_ends_the_cut_off_only_once_the_view_is_resumed() -> None:
    kube = FakeKube()
    answers = [False, True]
    live = liveness(kube, FakeWire(), FakeKernel(), resume=lambda: answers.pop(0))
    live.cut_off()
    asyncio.run(_one_renewal(live))
    assert kube.renewals == 1 and live.fenced  # the re-read failed: still cut off
    asyncio.run(_one_renewal(live))
    assert kube.renewals == 2 and not live.fenced


async def _one_renewal(live: Liveness) -> None:
    task = asyncio.create_task(live.run_lease())
    await asyncio.sleep(0.05)
    task.cancel()


def test_the_streams_are_reopened_when_the_api_answers_again_before_any_resume() -> None:
    """R1: a renewal that succeeds after one failed, or while cut off (it may itself have
    waited out the cut), tells the agent to reopen its watch streams, before the resume's
    re-read; a renewal in a row of good ones does not."""
    kube = FakeKube()
    said: list[str] = []

    def resume() -> bool:
        said.append("resume")
        return True

    live = liveness(
        kube, FakeWire(), FakeKernel(), resume, reconnected=lambda: said.append("reconnected")
    )
    asyncio.run(_one_renewal(live))
    assert said == []  # all well: the streams are as fresh as the API
    kube.reachable = False
    asyncio.run(_one_renewal(live))
    kube.reachable = True
    asyncio.run(_one_renewal(live))
    assert said == ["reconnected"]  # not cut off: no resume
    asyncio.run(_one_renewal(live))
    assert said == ["reconnected"]
    live.cut_off()
    asyncio.run(_one_renewal(live))  # no renewal failed in this test's view: still reopened
    assert said == ["reconnected", "reconnected", "resume"] and not live.fenced
