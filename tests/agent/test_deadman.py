"""The dead-man switch's room in-process (fake kernel, fake clock): renewals, and the
graceful stop's order, Lease first (docs/design.md R9)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aliasip_nodeagent import errors
from aliasip_nodeagent.deadman import DeadMan
from tests.agent.test_inprocess import FakeKernel

T0 = datetime(2026, 12, 7, 6, 0, 0, tzinfo=UTC)


async def _direct(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def test_renewal_is_four_times_per_lifetime() -> None:
    assert DeadMan("node1", FakeKernel(), _direct, 1).interval_s == 0.25
    assert DeadMan("node1", FakeKernel(), _direct, 2).interval_s == 0.5
    with pytest.raises(ValueError, match="at least 1"):
        DeadMan("node1", FakeKernel(), _direct, 0)


def test_the_handover_writes_the_lease_before_it_extends_anything() -> None:
    kernel = FakeKernel()
    order: list[str] = []

    async def write(until: datetime) -> bool:
        order.append(f"lease until +{(until - T0).total_seconds():.0f}s")
        assert kernel.lifetimes == []  # nothing extended before the Lease says so
        return True

    clock = iter([T0, T0 + timedelta(seconds=0.3)])
    handed = asyncio.run(
        DeadMan("node1", kernel, _direct, 1).hand_over(lambda: next(clock), 15, write)
    )
    assert handed
    assert order == ["lease until +15s"]
    assert kernel.lifetimes == [14]  # whole seconds that end before the Lease's moment


def test_no_lease_no_handover() -> None:
    kernel = FakeKernel()

    async def refused(until: datetime) -> bool:
        return False

    assert not asyncio.run(DeadMan("node1", kernel, _direct, 1).hand_over(lambda: T0, 15, refused))
    assert kernel.lifetimes == []  # the aliases expire as after a crash
    assert not asyncio.run(DeadMan("node1", kernel, _direct, 1).hand_over(lambda: T0, 0, refused))


def test_a_failing_renewal_is_reported_once_and_the_recovery_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(FakeKernel):
        fail = True

        def renew_lifetimes(self, lifetime_s: int | None = None) -> int:
            if self.fail:
                raise errors.KernelError("renewing the lifetime of 198.18.0.50/24 failed")
            return super().renew_lifetimes(lifetime_s)

    kernel = Broken()
    deadman = DeadMan("node1", kernel, _direct, 1)
    with caplog.at_level("INFO", logger="aliasip.agent.deadman"):
        assert asyncio.run(deadman.renew()) is None
        assert asyncio.run(deadman.renew()) is None
        kernel.fail = False
        assert asyncio.run(deadman.renew()) == 0
    events = [r.getMessage().split()[0] for r in caplog.records]
    assert events == ["event=lifetime-renew-failed", "event=lifetime-renewed"]


def test_fewer_aliases_than_at_the_last_renewal_wake_a_pass() -> None:
    kernel = FakeKernel()
    woken: list[int] = []
    deadman = DeadMan("node1", kernel, _direct, 1, fewer=lambda: woken.append(1))
    kernel.owned = [ipaddress.IPv4Interface("198.18.0.50/24")]
    asyncio.run(deadman.renew())
    assert woken == []
    kernel.owned = []  # expired after a stall, or deleted by hand
    asyncio.run(deadman.renew())
    assert woken == [1]
    asyncio.run(deadman.renew())
    assert woken == [1]  # once per loss
