"""The operator's work queue: each name at most once in the queue, never processed twice
at once, processed again when added while in progress; delayed adds."""

from __future__ import annotations

import asyncio

from aliasip_operator.workqueue import WorkQueue


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout=5))  # type: ignore[arg-type]


def test_a_name_added_many_times_is_queued_once() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        for name in ["a", "b", "a", "a", "b", "c"]:
            q.add(name)
        assert len(q) == 3
        assert [await q.get() for _ in range(3)] == ["a", "b", "c"]

    run(scenario())


def test_added_while_processing_comes_back_once_after_done() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        q.add("a")
        assert await q.get() == "a"
        q.add("a")
        q.add("a")
        assert len(q) == 0  # not handed to a second worker while the first has it
        q.done("a")
        assert len(q) == 1
        assert await q.get() == "a"
        q.done("a")
        assert len(q) == 0

    run(scenario())


def test_get_waits_for_an_add() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        waiting = asyncio.create_task(q.get())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        q.add("x")
        assert await waiting == "x"

    run(scenario())


def test_two_workers_never_hold_the_same_name() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        busy: set[str] = set()
        seen: list[str] = []

        async def worker() -> None:
            while True:
                name = await q.get()
                assert name not in busy
                busy.add(name)
                seen.append(name)
                await asyncio.sleep(0.001)
                busy.discard(name)
                q.done(name)

        workers = [asyncio.create_task(worker()) for _ in range(3)]
        for i in range(40):
            q.add(f"n{i % 3}")
            await asyncio.sleep(0.0005)
        for _ in range(30):
            q.add("n0")
        for _ in range(200):  # bounded: until drained
            if not len(q) and not busy:
                break
            await asyncio.sleep(0.005)
        for w in workers:
            w.cancel()
        results = await asyncio.gather(*workers, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results)  # no assertion failed
        assert set(seen) == {"n0", "n1", "n2"}
        assert seen[-1] == "n0"  # the last add is processed after the earlier ones

    run(scenario())


def test_add_after_adds_once_later() -> None:
    async def scenario() -> None:
        q = WorkQueue()
        q.add_after("a", 0.05)
        q.add_after("a", 0.01)  # one pending retry is enough
        assert len(q) == 0
        await asyncio.sleep(0.1)
        assert len(q) == 1

    run(scenario())
