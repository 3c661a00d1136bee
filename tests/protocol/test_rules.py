"""The model's rules have teeth: each one fires on a state that breaks it.

The exploration (test_model.py, test_scenarios.py) passing means nothing unless the
checks can fail; here each is provoked by hand, outside the agents' logic.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.protocol.behaviour import INTENDED, TODAY, without
from tests.protocol.runs import run_for
from tests.protocol.world import EXPIRY_WINDOW_S, STRAY_BOUND_S, TICK_S, World


def steady() -> World:
    world = World.steady(INTENDED)
    assert world.api.objects["a0"].status.active_node == "n1"
    return world


def test_two_running_agents_answering_is_caught() -> None:
    world = steady()
    world.nodes["n2"].kernel.add("a0")
    with pytest.raises(AssertionError, match=r"\[two-holders\] \['n1', 'n2'\]"):
        world.check()


def test_without_the_dead_man_an_orphan_of_a_dead_agent_is_excused_but_bounded() -> None:
    """Without R9 a node whose agent is dead cannot be fenced: not counted as two holders;
    once its agent runs again and lists, it must let go (the restarted agent releases)."""
    world = World.steady(without(INTENDED, "dead_man"))
    world.kill_agent("n2")
    world.nodes["n2"].kernel.add("a0")
    world.check()
    world.start_agent("n2")
    run_for(world, 2.0)
    assert world.answering("a0") == {"n1"}


def test_with_the_dead_man_an_orphan_is_two_holders_and_expires_within_the_window() -> None:
    """R9: nobody is excused, and a dead agent's kernel drops what it had."""
    world = steady()
    world.kill_agent("n2")
    world.nodes["n2"].kernel.add("a0")
    with pytest.raises(AssertionError, match=r"\[two-holders\] \['n1', 'n2'\]"):
        world.check()
    for _ in range(round(EXPIRY_WINDOW_S / TICK_S)):
        world.tick()
    assert world.answering("a0") == {"n1"}


def test_a_stray_alias_past_the_bound_is_caught() -> None:
    world = steady()
    world.nodes["n2"].kernel.add("a0")
    world.nodes["n1"].kernel.clear()  # not two holders: only the stray rule applies
    world.agents["n2"].synced = False  # an agent that never acts on it
    with pytest.raises(AssertionError, match=r"\[stray\] n2 answers for a0"):
        for _ in range(round(STRAY_BOUND_S / TICK_S) + 1):
            world.tick()
            world.check()


def test_an_epoch_going_back_is_caught() -> None:
    world = steady()
    status = world.api.objects["a0"].status
    with pytest.raises(AssertionError, match=r"\[epoch\] a0's epoch went from 1 to 0"):
        world.write("a0", replace(status, epoch=0), None)


def test_an_announcement_for_an_address_not_held_is_caught_today() -> None:
    world = World.steady(TODAY)
    world.agents["n1"].repeats["a0"] = 2
    world.nodes["n1"].kernel.clear()  # e.g. the wire guard deleted it
    with pytest.raises(AssertionError, match=r"\[announce\] n1 announces a0"):
        world.announce("n1")


def test_announcements_stop_with_holding() -> None:
    world = World.steady(INTENDED)
    world.agents["n1"].repeats["a0"] = 2
    world.nodes["n1"].kernel.clear()
    world.announce("n1")
    assert not world.agents["n1"].repeats


def test_an_add_without_probe_on_a_stale_status_is_caught() -> None:
    """n1's view is held back at the epoch naming it; the API moved on; n1 lost the alias
    and adds it back on the old word of n2's release."""
    world = World.steady(without(INTENDED, "read_before_add"))
    world.request_switchover("a0", "n2")
    world.settle()
    world.request_switchover("a0", "n1")
    world.settle()
    stale = world.agents["n1"].objects["a0"]
    world.request_switchover("a0", "n2")
    world.settle()
    agent = world.agents["n1"]
    agent.objects["a0"] = stale  # as a late watch stream would have it
    agent.newest.clear()
    agent.seen.clear()
    with pytest.raises(AssertionError, match=r"\[stale-add\].*probe skipped"):
        world.agent_pass("n1", full=True)


def test_without_rules_names_unknown_ones() -> None:
    with pytest.raises(ValueError, match="unknown rules"):
        without(INTENDED, "read_before_adds")
    assert without(INTENDED, "all") == TODAY
