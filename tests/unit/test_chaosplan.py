"""The chaos schedule (pure): the same seed gives the same plan; plans cover every kind,
stay within the run, heal what they break, and never let two episodes share a resource."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_lab.chaosplan import (
    HEALS_OF,
    HOLD_S,
    HOLDER,
    KINDS,
    Resources,
    plan,
    resources,
    steps,
)

NODES = ["node1", "node2", "node3"]
ALIASIPS = ["chaos-1", "chaos-2"]


def test_the_same_seed_gives_the_same_plan_another_seed_another() -> None:
    assert plan(7, 120, NODES, ALIASIPS) == plan(7, 120, NODES, ALIASIPS)
    assert plan(7, 120, NODES, ALIASIPS) != plan(8, 120, NODES, ALIASIPS)


def test_a_long_plan_draws_every_kind() -> None:
    drawn = {e.kind for e in plan(1, 1800, NODES, ALIASIPS)}
    assert drawn == set(KINDS)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="needs nodes and AliasIPs"):
        plan(1, 60, [], ALIASIPS)


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), duration=st.floats(1, 600))
def test_episodes_start_within_the_run_hold_boundedly_and_heal_what_they_break(
    seed: int, duration: float
) -> None:
    episodes = plan(seed, duration, NODES, ALIASIPS)
    assert [e.at for e in episodes] == sorted(e.at for e in episodes)
    for episode in episodes:
        assert 0 < episode.at < duration
        assert HOLD_S[0] <= episode.hold <= HOLD_S[1]
        assert episode.node in [*NODES, HOLDER]
        assert episode.aliasip in ALIASIPS
        done = steps(episode)
        assert done and done[0].after == 0
        assert all(s.after <= HOLD_S[1] + 6 for s in done)
        faults = [s.fault for s in done]
        for fault, heal in HEALS_OF.items():
            # A frozen agent may end killed by a stop-node instead (healed by start-node).
            heals = {heal, "start-node"} if fault == "freeze" else {heal}
            for index, s in enumerate(done):
                if s.fault == fault:  # a heal comes after it
                    assert heals & set(faults[index:]), (episode.kind, faults)


def test_combinations_hold_every_resource_they_touch() -> None:
    episode = next(e for e in plan(3, 1800, NODES, ALIASIPS) if e.kind == "partition+link-down")
    assert resources(steps(episode), "node2") == {"node2.mgmt", "node2.lan"}
    stop = next(e for e in plan(3, 1800, NODES, ALIASIPS) if e.kind == "stop-node+restart-api")
    assert resources(steps(stop), "node1") == {
        "node1.mgmt", "node1.lan", "node1.agent", "node1.power", "api",
    }  # fmt: skip


def test_resources_are_taken_whole_or_not_at_all() -> None:
    table = Resources()
    assert table.take(1, {"node1.lan", "node1.mgmt"})
    assert not table.take(2, {"node1.lan", "node2.lan"})  # node1.lan is taken
    assert "node2.lan" not in table.owner  # nothing of a refused episode is kept
    table.release(1)
    assert table.take(2, {"node1.lan", "node2.lan"})


def test_the_monitoring_path_faults_heal_and_never_overlap() -> None:
    """Heartbeat loss is healed on its own resource; a key rotation runs its three steps
    in order, a second apart at least (the agents reload keys every second), and holds the
    key directory so two rotations never interleave."""
    episodes = plan(5, 3600, NODES, ALIASIPS)
    loss = next(e for e in episodes if e.kind == "heartbeat-loss")
    assert [s.fault for s in steps(loss)] == ["block-heartbeats", "unblock-heartbeats"]
    on = "node3" if loss.node == HOLDER else loss.node
    assert resources(steps(loss), "node3") == {f"{on}.heartbeats"}
    rotation = steps(next(e for e in episodes if e.kind == "rotate-keys"))
    assert [s.args["step"] for s in rotation] == [1, 2, 3]
    assert all(b.after - a.after >= 1.5 for a, b in itertools.pairwise(rotation))
    assert resources(rotation, "node1") == {"keys"}
    spoof = next(e for e in episodes if e.kind == "spoof-heartbeats")
    assert [s.fault for s in steps(spoof)] == ["spoof-heartbeats"]


def test_an_episode_rounded_to_the_millisecond_still_starts_within_the_run() -> None:
    """Found by hypothesis: a start drawn just below the end rounded up onto it."""
    duration = 470.37775367921466
    assert all(e.at < duration for e in plan(46583113, duration, NODES, ALIASIPS))
