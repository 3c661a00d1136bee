"""The whole protocol, explored by hypothesis: random interleavings of every fault.

Each example starts from a settled cluster (two AliasIPs: ``a0`` which every node can
carry, ``a1`` which only a random subset can, preference order random), then runs random
steps: time passing, watch events delivered late or lost, agent passes at any moment,
operator decisions on a stale view, partitions with or without a broken watch, link
down/up, agents killed, restarted or paused (SIGSTOP), nodes stopped and started,
switchover requests, cordons, announcement rounds. After every step the safety rules
hold (``World.check``, and the rules checked as the model acts: ``epoch``,
``stale-add``, ``announce``); at the end every fault heals and the cluster must settle
(``World.settle``: liveness within ``LIVENESS_BOUND_S``).

Deterministic in CI: derandomized, no example database. ``ALIASIP_MODEL_EXAMPLES`` runs
more examples (a deep local run: 500 takes a few minutes).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from tests.protocol.behaviour import PRODUCT, Behaviour, without
from tests.protocol.runs import run_for
from tests.protocol.world import World

# PRODUCT BEHAVIOUR: the agent rules the shipped agent keeps (behaviour.PRODUCT). To explore
# without some of them: ALIASIP_MODEL_OFF=read_before_add,... (a comma-separated list of
# Behaviour fields), or ALIASIP_MODEL_OFF=all for the agent before issue 10 (it fails:
# test_scenarios.py has the traces).
MODELLED: Behaviour = without(PRODUCT, os.environ.get("ALIASIP_MODEL_OFF", ""))

NODES = ("n1", "n2", "n3")
EXAMPLES = int(os.environ.get("ALIASIP_MODEL_EXAMPLES", "40"))

nodes = st.sampled_from(NODES)
aliasips = st.sampled_from(("a0", "a1"))


class Protocol(RuleBasedStateMachine):
    """The model world driven by hypothesis (rule names read as the fault commands)."""

    world: World | None = None

    @initialize(
        a1_covered_by=st.sets(nodes),
        a1_reversed=st.booleans(),
    )
    def start(self, a1_covered_by: set[str], a1_reversed: bool) -> None:
        order = tuple(reversed(NODES)) if a1_reversed else NODES
        self.world = World.steady(
            MODELLED,
            names=NODES,
            covers={"a0": frozenset(NODES), "a1": frozenset(a1_covered_by)},
            orders={"a1": order},
        )

    @property
    def w(self) -> World:
        assert self.world is not None
        return self.world

    @rule(ticks=st.integers(1, 12))
    def time_passes(self, ticks: int) -> None:
        for _ in range(ticks):
            self.w.tick()
            self.w.check()

    @rule(
        name=aliasips,
        fault=st.sampled_from(
            ["partition", "partition_breaking_watch", "link_down", "kill_agent", "pause_agent"]
        ),
    )
    def fault_on_holder(self, name: str, fault: str) -> None:
        """A fault on the node the API names for ``name`` (faults on the holder are the
        interesting ones; found by chance among 3 nodes they are rare)."""
        holder = self.w.api.objects[name].status.active_node
        if holder is None:
            return
        if fault.startswith("partition"):
            self.w.partition(holder, breaks_watch=fault == "partition_breaking_watch")
        else:
            getattr(self.w, fault)(holder)

    @rule()
    def heal_links_and_partitions(self) -> None:
        for n, node in self.w.nodes.items():
            if not node.link:
                self.w.link_up(n)
            self.w.heal(n)

    @rule(seconds=st.sampled_from([1.0, 3.0, 8.0]))
    def control_plane_runs(self, seconds: float) -> None:
        """Time passes with the operator deciding every tick on fresh caches and watch
        events delivered at once to every agent that reaches the API."""
        run_for(self.w, seconds)

    @rule(n=nodes, count=st.integers(1, 3))
    def deliver(self, n: str, count: int) -> None:
        self.w.deliver(n, count)

    @rule(n=nodes, full=st.booleans())
    def agent_pass(self, n: str, full: bool) -> None:
        self.w.agent_pass(n, full)

    @rule(name=aliasips)
    def operator_decide(self, name: str) -> None:
        self.w.operator_decide(name)

    @rule()
    def operator_sync(self) -> None:
        self.w.operator_sync()

    @rule(n=nodes, breaks_watch=st.booleans())
    def partition(self, n: str, breaks_watch: bool) -> None:
        self.w.partition(n, breaks_watch)

    @rule(n=nodes)
    def heal(self, n: str) -> None:
        self.w.heal(n)

    @rule(n=nodes)
    def break_watch(self, n: str) -> None:
        self.w.break_watch(n)

    @rule(n=nodes)
    def link_down(self, n: str) -> None:
        self.w.link_down(n)

    @rule(n=nodes)
    def link_up(self, n: str) -> None:
        self.w.link_up(n)

    @rule(n=nodes)
    def kill_agent(self, n: str) -> None:
        self.w.kill_agent(n)

    @rule(n=nodes)
    def start_agent(self, n: str) -> None:
        self.w.start_agent(n)

    @rule(n=nodes)
    def pause_agent(self, n: str) -> None:
        self.w.pause_agent(n)

    @rule(n=nodes)
    def resume_agent(self, n: str) -> None:
        self.w.resume_agent(n)

    @precondition(lambda self: self.world is not None and self.world.nodes["n1"].up)
    @rule(n=nodes)
    def stop_node(self, n: str) -> None:
        # n1 stays up unless stopped here first: a world where every node is lost at
        # once says nothing about failover.
        if n != "n1" or sum(node.up for node in self.w.nodes.values()) > 1:
            self.w.stop_node(n)

    @rule(n=nodes)
    def start_node(self, n: str) -> None:
        self.w.start_node(n)

    @rule(name=aliasips, to=st.none() | nodes)
    def switchover(self, name: str, to: str | None) -> None:
        self.w.request_switchover(name, to)

    @rule(n=nodes, cordoned=st.booleans())
    def cordon(self, n: str, cordoned: bool) -> None:
        self.w.nodes[n].cordoned = cordoned

    @rule(n=nodes)
    def announce(self, n: str) -> None:
        self.w.announce(n)

    @invariant()
    def safe(self) -> None:
        if self.world is not None:
            self.world.check()

    def teardown(self) -> None:
        if self.world is not None:
            self.world.heal_all()
            self.world.settle()


Protocol.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestProtocol = Protocol.TestCase
