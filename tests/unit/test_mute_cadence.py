"""The dead-man mute's refresh cadence (pure): how late a refresh may come before the
node mutes (docs/design.md, R9)."""

from __future__ import annotations

import pytest

from aliasip_nodeagent.mute import refresh_interval_s


@pytest.mark.parametrize(
    ("window_ms", "every_ms"),
    [(200, 50), (100, 25), (50, 12.5)],
    ids=["shipped", "fast-profile", "shortest"],
)
def test_a_refresh_may_be_three_quarters_of_a_window_late(window_ms: int, every_ms: float) -> None:
    """Four refreshes per window whatever its length: 150 ms of slack as shipped (half
    a window, tried in session 10, muted more aliases under load)."""
    assert refresh_interval_s(window_ms) == pytest.approx(every_ms / 1000)
