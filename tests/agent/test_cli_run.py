"""``aliasip-agent run``: argument handling that needs no cluster."""

from __future__ import annotations

import pytest

from aliasip_nodeagent.cli import build_parser, main
from aliasip_nodeagent.daemon import Settings


def test_run_defaults() -> None:
    args = build_parser().parse_args(["run", "--node", "node1"])
    assert (args.lease_namespace, args.lease_duration, args.renew_interval) == (
        "aliasip-system",
        3,
        1.0,
    )


def test_run_needs_a_node(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NODE_NAME", raising=False)
    assert main(["run"]) == 2


def test_renewing_more_than_once_a_second_is_refused() -> None:
    with pytest.raises(ValueError, match="once a second"):
        Settings(node="n", renew_interval_s=0.5)
    with pytest.raises(ValueError, match="outlast"):
        Settings(node="n", lease_duration_s=1)


def test_the_mute_window_follows_the_heartbeats_unless_set() -> None:
    """R9's fine switch: heartbeat interval x (misses - 1), at least 50 ms; 0 is off."""
    assert Settings(node="n").mute_ms == 200
    assert Settings(node="n", heartbeat_interval_s=0.05).mute_ms == 100
    assert Settings(node="n", heartbeat_misses=1).mute_ms == 50
    assert Settings(node="n", mute_window_ms=0).mute_ms == 0
    assert Settings(node="n", mute_window_ms=350).mute_ms == 350
    with pytest.raises(ValueError, match="mute window"):
        Settings(node="n", mute_window_ms=10)
    args = build_parser().parse_args(["run", "--node", "n", "--mute-window-ms", "300"])
    assert args.mute_window_ms == 300
