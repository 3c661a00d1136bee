"""Issue 10's reported failures, replayed in the protocol model; and every short fault
sequence, exhaustively.

Each failure is replayed twice: with today's agent (``TODAY``) the model must catch it,
naming the broken rule (so the model is known to see it), and with issue 10's rules
(``INTENDED``) the same trace must be safe and settle. A rule the agent keeps only in part
is replayed with just that rule off, to show what each rule alone protects.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import replace

import pytest

from aliasip_api.status import Phase
from tests.protocol.behaviour import INTENDED, TODAY, Behaviour, without
from tests.protocol.runs import Fault, faults, fork, run_for
from tests.protocol.world import LIVENESS_BOUND_S, World

TWO = ("n1", "n2")


def holder_by_switchover(behaviour: Behaviour) -> World:
    """n1 holds a0 after a switchover n1 -> n2 -> n1: n2's release is in the status."""
    world = World.steady(behaviour)
    for target in ("n2", "n1"):
        world.request_switchover("a0", target)
        world.settle()
    status = world.api.objects["a0"].status
    assert status.active_node == "n1" and status.phase is Phase.ACTIVE
    assert status.last_transition is not None and status.last_transition.from_node == "n2"
    world.trace.clear()
    return world


# -- failure 1: a switchover whose old holder stops mid-release ---------------------------


def stop_mid_release(behaviour: Behaviour, pause_first: bool) -> World:
    world = World.steady(behaviour)
    if pause_first:
        world.pause_agent("n1")  # SIGSTOP n1's agent, then the switchover, then stop-node
    world.request_switchover("a0", "n2")
    world.operator_sync()
    world.operator_decide("a0")  # step 1: activeNode None, n1 asked to release
    assert world.api.objects["a0"].status.active_node is None
    world.stop_node("n1")  # before n1's agent released
    world.check()
    world.heal_all()  # n1 stays stopped: it is lost
    world.settle()
    return world


@pytest.mark.parametrize("pause_first", [False, True])
def test_switchover_whose_old_holder_stops_mid_release_waits_forever_today(
    pause_first: bool,
) -> None:
    with pytest.raises(AssertionError, match=r"\[liveness\].*'a0': \(None, 'Degraded'"):
        stop_mid_release(TODAY, pause_first)


@pytest.mark.parametrize("pause_first", [False, True])
def test_switchover_whose_old_holder_stops_mid_release_fails_over(pause_first: bool) -> None:
    """A releasing node is watched like a holder: a standby proves it silent after its
    Lease lapsed, and the move completes without it."""
    world = stop_mid_release(INTENDED, pause_first)
    status = world.api.objects["a0"].status
    assert status.active_node == "n2" and world.answering("a0") == {"n2"}
    assert any("heard=False" in line for line in world.trace)


def test_watching_the_releasing_node_alone_completes_the_move() -> None:
    world = stop_mid_release(replace(TODAY, watch_releasing=True), pause_first=False)
    assert world.api.objects["a0"].status.active_node == "n2"


# -- failure 2: partition + link-down + failover, then link-up + heal ----------------------


def partition_link_down_heal(behaviour: Behaviour) -> World:
    world = holder_by_switchover(behaviour)
    world.partition("n1", breaks_watch=False)  # the watch stalls: events arrive late
    world.link_down("n1")
    world.check()
    run_for(world, 7.0)  # Lease lapses, a standby hears nobody: failover to n2
    assert world.api.objects["a0"].status.active_node == "n2"
    world.link_up("n1")
    world.check()
    run_for(world, 1.0)
    world.heal("n1")
    world.check()
    run_for(world, 3.0)
    world.heal_all()
    world.settle()
    return world


def test_link_up_after_failover_makes_two_holders_today() -> None:
    """Today the cut-off holder keeps its alias through the carrier loss (nothing deletes
    it until a full pass, and a cut-off agent makes none): when the link returns, n1
    answers next to n2."""
    with pytest.raises(AssertionError, match=r"\[two-holders\] \['n1', 'n2'\] answer for a0"):
        partition_link_down_heal(TODAY)


def test_heal_acts_on_the_late_stream_and_skips_the_probe_without_a_fresh_read() -> None:
    """With the carrier loss handled, the other half of failure 2: after the heal, n1's
    watch (intact, late) still says n1 holds at the old epoch, and that status says n2
    released before it: n1 adds without a probe while n2 holds."""
    behaviour = without(INTENDED, "relist_after_cut_off,read_before_add")
    with pytest.raises(AssertionError, match=r"\[stale-add\].*probe skipped"):
        partition_link_down_heal(behaviour)


@pytest.mark.parametrize("fresh", ["relist_after_cut_off", "read_before_add"])
def test_either_fresh_read_alone_stops_the_stale_add(fresh: str) -> None:
    others = {"relist_after_cut_off", "read_before_add"} - {fresh}
    world = partition_link_down_heal(without(INTENDED, ",".join(others)))
    assert world.answering("a0") == {"n2"}


def test_partition_link_down_heal_keeps_one_holder() -> None:
    world = partition_link_down_heal(INTENDED)
    assert world.api.objects["a0"].status.active_node == "n2"
    assert world.answering("a0") == {"n2"} and not world.nodes["n1"].kernel


# -- session 4's chaos window: a frozen holder's link returns after the failover -----------


def frozen_holder_cut_and_back(behaviour: Behaviour, settle: bool = True) -> World:
    world = World.steady(behaviour)
    assert world.api.objects["a0"].status.active_node == "n1"
    world.pause_agent("n1")
    world.link_down("n1")  # the carrier rule needs a running agent: the kernel keeps it
    world.check()
    run_for(world, 8.0)  # Lease lapses, the standbys hear silence: failover to n2
    assert world.api.objects["a0"].status.active_node == "n2"
    world.link_up("n1")  # the cable returns, the agent still paused
    world.check()
    if settle:
        run_for(world, 3.0)
        world.heal_all()
        world.settle()
    return world


def test_a_frozen_holders_link_back_after_the_failover_makes_two_macs_without_r9() -> None:
    """Without R9 the rule excused a node whose agent could not act, and the wire had two
    MACs: the window the chaos runs of session 4 counted apart as "unfenceable"."""
    world = frozen_holder_cut_and_back(without(INTENDED, "dead_man"), settle=False)
    assert world.answering("a0") == {"n1", "n2"}


def test_with_r9_the_frozen_holders_alias_expired_before_anyone_called_it_silent() -> None:
    world = frozen_holder_cut_and_back(INTENDED)
    assert world.answering("a0") == {"n2"} and not world.nodes["n1"].kernel
    assert any("n1: ['a0'] expire" in line for line in world.trace)


# -- failure 3: a refusal every node would repeat ------------------------------------------


def refused_everywhere(behaviour: Behaviour, names: tuple[str, ...]) -> World:
    world = World.create(behaviour, names=names, covers={"a0": frozenset()})
    world.settle()
    return world


def test_refusal_every_node_repeats_hops_forever_today() -> None:
    with pytest.raises(AssertionError, match=r"\[liveness\].*'Switching'") as caught:
        refused_everywhere(TODAY, ("n1", "n2", "n3"))
    epoch = int(str(caught.value).split("'Switching', ")[1].split(")")[0])
    assert epoch > LIVENESS_BOUND_S / 2, "one new epoch (at least) per second"


def test_refusal_with_one_candidate_is_a_calm_unavailable_today() -> None:
    world = refused_everywhere(TODAY, ("n1",))
    status = world.api.objects["a0"].status
    assert status.phase is Phase.UNAVAILABLE and status.epoch == 1


@pytest.mark.parametrize("names", [TWO, ("n1", "n2", "n3")])
def test_refusal_stays_an_error_and_the_aliasip_stops_moving(names: tuple[str, ...]) -> None:
    """Each candidate is tried at most once (a release and an assignment: two epochs),
    then the AliasIP stays Unavailable."""
    world = refused_everywhere(INTENDED, names)
    status = world.api.objects["a0"].status
    assert status.phase is Phase.UNAVAILABLE
    assert status.epoch <= 2 * len(names) - 1
    assert all(view.state == "error" for view in status.nodes.values())


# -- every short fault sequence ------------------------------------------------------------

DELAYS = (0.5, 5.0)
LENGTH = int(os.environ.get("ALIASIP_MODEL_EXHAUSTIVE", "2"))


def run_sequence(base: World, sequence: tuple[tuple[Fault, float], ...]) -> World:
    world = fork(base)
    for fault, delay in sequence:
        world.note(repr(fault))
        fault.apply(world)
        world.check()
        run_for(world, delay)
    world.heal_all()
    world.settle()
    return world


def test_every_sequence_of_faults_on_two_nodes_is_safe_and_settles() -> None:
    """Exhaustive for a small case: two nodes, one AliasIP held by n1, every sequence of
    ``LENGTH`` faults from the lab's commands (each followed by 0.5 s or 5 s of a running
    control plane), then every fault heals. ``ALIASIP_MODEL_EXHAUSTIVE=3`` for length 3
    (13,824 sequences, minutes)."""
    base = World.steady(INTENDED, names=TWO, covers={"a0": frozenset(TWO)})
    symbols = [(fault, delay) for fault in faults(TWO) for delay in DELAYS]
    count = 0
    for sequence in itertools.product(symbols, repeat=LENGTH):
        try:
            run_sequence(base, sequence)
        except AssertionError as exc:
            raise AssertionError(f"after {sequence}: {exc}") from exc
        count += 1
    assert count == len(symbols) ** LENGTH


@pytest.mark.parametrize(
    ("sequence", "rule"),
    [
        ((("partition n1", 5.0), ("link-down n1", 5.0)), "two-holders"),
        ((("stop-node n1", 0.5), ("switchover a0 --to n2", 0.5)), "liveness"),
    ],
)
def test_the_exhaustive_search_catches_today_s_agent(
    sequence: tuple[tuple[str, float], ...], rule: str
) -> None:
    """Two of the sequences the exhaustive search fails on with today's agent."""
    base = World.steady(TODAY, names=TWO, covers={"a0": frozenset(TWO)})
    by_name = {fault.name: fault for fault in faults(TWO)}
    with pytest.raises(AssertionError, match=rf"\[{rule}\]"):
        run_sequence(base, tuple((by_name[name], delay) for name, delay in sequence))
