"""The chaos run's invariant checks (pure), on hand-made observations."""

from __future__ import annotations

from aliasip_lab.invariants import (
    DEADMAN_S,
    REACTION_S,
    RECOVERY_S,
    SETTLE_S,
    Command,
    Sample,
    ability,
    agent_runs,
    dead_man,
    epochs,
    incapacitated,
    judge_split_brain,
    split_brain_runs,
    stray_aliases,
    stray_deadline,
    untouched,
)
from aliasip_lab.kerneltruth import Presence

NODES = ["node1", "node2"]
ADDR = "198.18.0.50"


def sample(at: float, active: str | None, epoch: int = 1, uid: str | None = "u1") -> Sample:
    return Sample(at, "web", uid, active, "Active", epoch, (f"{ADDR}/24",))


def cmd(t: float, fault: str, ok: bool = True, done: float | None = None, **args: str) -> Command:
    return Command(t, t if done is None else done, fault, args, ok)


def _report(since: float, macs: list[str]) -> dict[str, object]:
    run = {"since": since, "rounds": 2, "macs": macs, "first_round": 9, "last_round": 10}
    return {"aliases": {ADDR: {"address": ADDR, "split_brain_rounds": 2, "split_brain": [run]}}}


MACS = {"m1": "node1", "m2": "node2"}


def test_split_brain_with_every_agent_able_is_a_violation() -> None:
    runs = agent_runs([], NODES, 0.0)
    found = judge_split_brain(
        split_brain_runs(_report(50.0, ["m1", "m2"])), MACS, runs, [sample(1, "node1")]
    )
    assert [(v.invariant, v.at) for v in found] == [("split-brain", 50.0)]
    assert "m1, m2" in found[0].detail and "unable to act" not in found[0].detail


def test_a_stale_node_whose_agent_cannot_act_is_a_violation_that_names_it() -> None:
    """The dead-man switch leaves no excuse: node2's frozen or killed agent let its alias
    expire before anyone could call node2 silent (docs/design.md R9)."""
    for commands in (
        [cmd(40, "freeze", target="agent", node="node2")],
        [cmd(40, "kill-agent", node="node2"), cmd(48, "start-agent", node="node2")],
    ):
        runs = agent_runs(commands, NODES, 0.0)
        (found,) = judge_split_brain(
            split_brain_runs(_report(50.0, ["m1", "m2"])), MACS, runs, [sample(1, "node1")]
        )
        assert found.invariant == "split-brain"
        assert "activeNode node1; node2 answered with its agent unable to act" in found.detail


def test_the_holder_is_read_after_the_round_settles() -> None:
    """The poller sees a new holder up to a poll and the API's latency after the wire
    does: the status SETTLE_S after the round names the holder in the detail."""
    runs = agent_runs([cmd(40, "freeze", target="agent", node="node2")], NODES, 0.0)
    samples = [sample(1, "node2"), sample(50.4, "node1", epoch=2)]
    (found,) = judge_split_brain(split_brain_runs(_report(50.0, ["m1", "m2"])), MACS, runs, samples)
    assert "activeNode node1; node2 answered" in found.detail
    late = [sample(1, "node2"), sample(50.0 + SETTLE_S + 0.5, "node1", epoch=2)]
    (found,) = judge_split_brain(split_brain_runs(_report(50.0, ["m1", "m2"])), MACS, runs, late)
    assert "activeNode node2" in found.detail and "unable" not in found.detail


def test_a_dead_or_frozen_agents_alias_must_expire() -> None:
    commands = [
        cmd(10, "freeze", target="agent", node="node1"),
        cmd(20, "thaw", target="agent", node="node1"),
        cmd(30, "kill-agent", node="node2"),
        cmd(31, "start-agent", done=32, node="node2"),
        cmd(40, "stop-node", node="node1"),
        cmd(60, "start-node", done=61, node="node1"),
    ]
    runs = agent_runs(commands, NODES, 0.0)
    _, powered = ability(commands, NODES, 0.0)
    fine = [
        Presence("node1", ADDR, 0.0, 10 + DEADMAN_S - 0.1),  # expired in time
        Presence("node1", ADDR, 21.0, None),  # added again once thawed
        Presence("node2", ADDR, 0.0, 31.5),  # the agent was back before the deadline
    ]
    found = dead_man(fine, runs, powered, end=39.0)
    assert found == []
    late = [Presence("node1", ADDR, 0.0, 10 + DEADMAN_S + 0.5)]
    (v,) = dead_man(late, runs, powered, end=39.0)
    assert v.invariant == "dead-man" and "node1's kernel 3.00 s after its agent stopped" in v.detail
    # A stopped node is powered off: its kernel is on no wire, its agent's absence no fault.
    assert dead_man([Presence("node1", ADDR, 35.0, 59.0)], runs, powered, end=70.0) == []


def test_agent_runs_and_the_recovery_grace() -> None:
    runs = agent_runs(
        [
            cmd(10, "freeze", target="agent", node="node1"),
            cmd(12, "thaw", target="agent", node="node1"),
            cmd(30, "stop-node", node="node2"),
            cmd(40, "start-node", done=41, node="node2"),
            cmd(60, "kill-agent", node="node9"),  # not a node of this lab: ignored
        ],
        NODES,
        0.0,
    )
    assert runs["node1"] == [(0.0, True), (10, False), (12, True)]
    assert runs["node2"] == [(0.0, True), (30, False), (41, True)]
    assert not incapacitated(runs["node1"], 5.0)
    assert incapacitated(runs["node1"], 11.0)
    assert incapacitated(runs["node1"], 12 + RECOVERY_S - 0.1)
    assert not incapacitated(runs["node1"], 12 + RECOVERY_S + 0.1)


def test_epochs_never_decrease_per_object() -> None:
    assert epochs([sample(1, "node1", 1), sample(2, "node2", 3), sample(3, "node2", 3)]) == []
    (found,) = epochs([sample(1, "node1", 4), sample(2, "node1", 2)])
    assert found.invariant == "epoch" and "4 -> 2" in found.detail
    # A recreated object (another uid) starts again at 1: not a decrease.
    assert epochs([sample(1, "node1", 4), sample(2, "node1", 1, uid="u2")]) == []


def test_untouched_names_what_was_lost_and_gained() -> None:
    before = {"node1": ["inet 198.18.0.11/24"], "node2": ["inet 198.18.0.12/24"]}
    assert untouched(before, before, 9.0) == []
    (found,) = untouched(before, {"node1": [], "node2": before["node2"]}, 9.0)
    assert "node1: lost ['inet 198.18.0.11/24']" in found.detail


def test_ability_follows_the_faults() -> None:
    able, powered = ability(
        [
            cmd(10, "partition", node="node1"),
            cmd(12, "heal", node="node1"),
            cmd(20, "freeze", target="api"),
            cmd(21, "thaw", target="api"),
            cmd(30, "stop-node", node="node2"),
            cmd(40, "start-node", done=41, node="node2"),
            cmd(50, "kill-agent", ok=False, node="node1"),  # refused: changes nothing
            cmd(60, "partition", node="node1"),
            cmd(61, "link-down", node="node1"),  # no carrier: it must act on its own again
        ],
        NODES,
        0.0,
    )
    assert able["node1"] == [(0, True), (10, False), (12, True), (20, False), (21, True),
                             (60, False), (61, True)]  # fmt: skip
    assert able["node2"] == [(0, True), (20, False), (21, True), (30, False), (41, True)]
    assert powered["node2"] == [(0, True), (30, False), (40, True)]
    assert powered["node1"] == [(0.0, True)]


def test_a_stray_alias_beyond_the_reaction_bound_is_a_violation() -> None:
    samples = [sample(0, "node1"), sample(10, "node2", 2)]
    able, powered = ability([], NODES, 0.0)
    quick = [Presence("node1", ADDR, 0.0, 11.0), Presence("node2", ADDR, 10.5, None)]
    assert stray_aliases(quick, samples, able, powered, end=20.0) == []
    slow = [Presence("node1", ADDR, 0.0, 13.0)]
    (found,) = stray_aliases(slow, samples, able, powered, end=20.0)
    assert found.invariant == "stray-alias" and abs((found.at or 0) - 10.0) < 0.05
    assert "while activeNode is node2" in found.detail


def test_the_named_successor_may_hold_through_the_release_step_but_no_longer() -> None:
    """R11: node2, named successor at epoch 2, holds on a direct handoff while activeNode
    is None (an operator down for 15 s between the two steps); once a second release step
    names node3 instead, node2 must let go within the reaction bound."""
    step = Sample(10, "web", "u1", None, "Switching", 2, (f"{ADDR}/24",), "node2")
    samples = [sample(0, "node1"), step, sample(25, "node2", 3)]
    able, powered = ability([], NODES, 0.0)
    handed = [Presence("node1", ADDR, 0.0, 10.1), Presence("node2", ADDR, 10.2, None)]
    assert stray_aliases(handed, samples, able, powered, end=30.0) == []
    again = Sample(12, "web", "u1", None, "Switching", 2, (f"{ADDR}/24",), "node3")
    late = [Presence("node2", ADDR, 10.2, 12 + REACTION_S + 1)]
    (found,) = stray_aliases(late, [sample(0, "node1"), step, again], able, powered, end=30.0)
    assert found.invariant == "stray-alias" and abs((found.at or 0) - 12.0) < 0.05


def test_a_node_that_cannot_act_is_not_blamed_until_it_can() -> None:
    samples = [sample(0, "node1"), sample(10, None, 2)]
    # node1 is cut from the API at 5 (a switchover it cannot see), healed at 30.
    able, powered = ability(
        [cmd(5, "partition", node="node1"), cmd(30, "heal", node="node1")], NODES, 0.0
    )
    within = [Presence("node1", ADDR, 0.0, 30 + RECOVERY_S - 1)]
    assert stray_aliases(within, samples, able, powered, end=60.0) == []
    beyond = [Presence("node1", ADDR, 0.0, 30 + RECOVERY_S + 1)]
    assert len(stray_aliases(beyond, samples, able, powered, end=60.0)) == 1


def test_a_stopped_node_is_powered_off_its_kernel_does_not_count() -> None:
    samples = [sample(0, "node1"), sample(10, "node2", 2)]
    able, powered = ability(
        [cmd(9, "stop-node", node="node1"), cmd(40, "start-node", done=40.2, node="node1")],
        NODES,
        0.0,
    )
    kept = [Presence("node1", ADDR, 0.0, 40.0)]  # start-node flushes it as it boots
    assert stray_aliases(kept, samples, able, powered, end=60.0) == []


def test_a_deleted_aliasip_must_leave_every_kernel() -> None:
    samples = [sample(0, "node1"), Sample(10, "web", None, None, None, None, (f"{ADDR}/24",))]
    able, powered = ability([], NODES, 0.0)
    (found,) = stray_aliases([Presence("node1", ADDR, 0.0, None)], samples, able, powered, end=20.0)
    assert "activeNode is None" in found.detail


def test_the_stray_deadline_counts_a_recovery_from_its_start() -> None:
    """Chaos seed 3: node3's API path came back at 689.5; the status asked it to release
    at 690.3, before it had even renewed its Lease: it was still recovering."""
    assert stray_deadline(100.0, 0.0, 0.0) == 100.0 + REACTION_S  # able all along
    assert stray_deadline(100.0, 103.0, 0.0) == 103.0 + RECOVERY_S  # back after the change
    assert stray_deadline(100.8, 100.0, 0.0) == 100.0 + RECOVERY_S  # changed while recovering
    assert stray_deadline(200.0, 100.0, 0.0) == 200.0 + REACTION_S  # long recovered
