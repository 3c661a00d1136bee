"""Agent Lease reads shared between decisions (``handlers.confirm_leases``): peers'
evidence that a node is silent queues every AliasIP it holds at once, and their
decisions must not each read that node's Lease; but a read sent before the moment a
decision needs proves nothing for it, so that one reads again."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aliasip_api.lease import AgentLease
from aliasip_operator.handlers import Context, confirm_leases


@dataclass
class BlockingLeases:
    """``get_lease`` that waits until ``release`` is set (bounded): reads stay in flight
    while the test starts other decisions. Answers node1's Lease, renewed ``renewed``."""

    renewed: datetime
    release: threading.Event = field(default_factory=threading.Event)
    reads: list[str] = field(default_factory=list)

    def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads.append(name)
        self.release.wait(5.0)
        stamp = self.renewed.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"holderIdentity": "node1", "renewTime": stamp, "leaseDurationSeconds": 3},
        }


def claimed(since: datetime) -> AgentLease:
    """node2's Lease, saying node1 is silent since ``since``."""
    return AgentLease("node2", since, 3, silent=(("node1", since),))


async def until(check: Any) -> None:
    for _ in range(500):  # bounded: 5 s at most
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


def test_decisions_needing_the_same_lease_share_a_read_sent_late_enough() -> None:
    async def go() -> None:
        start = datetime.now(UTC)
        api = BlockingLeases(renewed=start - timedelta(seconds=0.5))
        ctx = Context(api=api)  # type: ignore[arg-type]
        node1 = AgentLease("node1", start - timedelta(seconds=0.5), 3)
        view = {"node1": node1, "node2": claimed(start - timedelta(seconds=0.2))}
        first = asyncio.create_task(confirm_leases(ctx, ["node1"], view, start))
        await until(lambda: len(api.reads) == 1)
        # a second decision on the same claim: it waits for the read in flight
        second = asyncio.create_task(confirm_leases(ctx, ["node1"], view, start))
        # a third one on a claim made after that read was sent: it reads again
        later = datetime.now(UTC)  # after the first read was sent
        newer = {"node1": node1, "node2": claimed(later)}
        third = asyncio.create_task(confirm_leases(ctx, ["node1"], newer, later))
        await until(lambda: len(api.reads) == 2)
        assert not second.done()
        api.release.set()
        await asyncio.gather(first, second, third)
        assert len(api.reads) == 2
        assert ctx.lease_reads == {}
        assert ctx.lease_views.unproven(["node1"], view, start) == []
        assert ctx.lease_views.unproven(["node1"], newer, later) == []  # the third's read

    asyncio.run(go())


def test_a_failed_read_releases_those_that_waited_for_it() -> None:
    """The sharers find the node still unproven and read themselves (their next round)."""

    class Failing(BlockingLeases):
        def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
            super().get_lease(namespace, name)
            raise OSError("connection reset")

    async def go() -> None:
        start = datetime.now(UTC)
        api = Failing(renewed=start)
        ctx = Context(api=api)  # type: ignore[arg-type]
        view = {"node2": claimed(start - timedelta(seconds=0.2))}
        first = asyncio.create_task(confirm_leases(ctx, ["node1"], view, start))
        await until(lambda: len(api.reads) == 1)
        second = asyncio.create_task(confirm_leases(ctx, ["node1"], view, start))
        await asyncio.sleep(0)
        api.release.set()
        results = await asyncio.gather(first, second, return_exceptions=True)
        assert isinstance(results[0], OSError) and results[1] is None
        assert ctx.lease_reads == {}
        assert ctx.lease_views.unproven(["node1"], view, start) == ["node1"]

    asyncio.run(go())
