"""The data-path thread, timed: since when it is inside the call it is running now.

The agent runs every netlink and packet call on one thread (``service``: pyroute2's
synchronous API cannot run inside the event loop, and one thread serialises them). A call
that never returns (a netlink socket that stops answering, a driver wedged in a
syscall) stops the dead-man switch's renewals and every pass while the event loop itself
still turns, so the loop answering a probe does not prove the agent works. This executor
records when the call in progress started, for the health endpoint's ``/livez``
(``health``): a call older than its bound means the agent is stuck.

Reading ``busy_since`` from another thread is safe: it is one attribute, written whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class TimedExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` (one worker, as the agent uses it) that knows since when
    its worker is busy with the call it is running (``busy_since``, monotonic; None when
    idle). With more workers it tells the start of the call that started last."""

    def __init__(
        self,
        max_workers: int = 1,
        thread_name_prefix: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._clock = clock
        self.busy_since: float | None = None

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        def timed() -> T:
            self.busy_since = self._clock()
            try:
                return fn(*args, **kwargs)
            finally:
                self.busy_since = None

        return super().submit(timed)
