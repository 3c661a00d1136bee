"""The dead-man mute's refresh cadence (pure): how late a refresh may come before the
node mutes (docs/design.md, R9)."""

from __future__ import annotations

import pytest

from aliasip_nodeagent.mute import refresh_interval_s


@pytest.mark.parametrize(
    ("window_ms", "every_ms"),
    [(200, 100), (150, 75), (100, 25), (50, 12.5), (1000, 500)],
    ids=["shipped", "slack-exactly", "fast-profile", "shortest", "long"],
)
def test_a_refresh_may_always_be_75_ms_late_or_comes_four_times_a_window(
    window_ms: int, every_ms: float
) -> None:
    """Half the window where that leaves 75 ms of slack (the shipped 200 ms: 10 a second,
    not 20); the fast profile keeps the slack that held under stress; never more often
    than four times a window."""
    assert refresh_interval_s(window_ms) == pytest.approx(every_ms / 1000)
