"""Property tests over random histories (hypothesis) and every order of a few events.

Like MetalLB's split-brain test, the decision is run at every step and the invariants
are asserted each time (tests/operator/invariants.py): never two nodes allowed to hold,
the epoch follows activeNode, an expired-Lease or cordoned node is never chosen, a
cordoned holder is moved, the annotation is consumed exactly when served. Like Cilium's
TestHappyPathPermutations, a fixed set of events is replayed in every order. And whatever
happened, once the cluster heals, exactly one node answers and the AliasIP is Active.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliasip_api.conditions import ConditionStatus, find_condition
from aliasip_api.errors import ADDRESS_CONFLICT, Finding
from aliasip_api.spec import AliasIP
from aliasip_api.status import AliasIPStatus, LastTransition, NodeState, NodeView, Phase
from tests.operator.invariants import check_converges, check_decision, check_wire
from tests.operator.world import World, at, make_aliasip

NODES = ("a", "b", "c")
TRUTHS = ("powered", "kubelet", "agent", "api", "link", "cordoned")
CONFLICT = Finding("spec.addresses[0]", "198.18.0.50 is already claimed", ADDRESS_CONFLICT)


def operate(world: World) -> None:
    """The operator decides once; every invariant is checked on that decision."""
    prev = world.status
    observed = world.observations()
    annotation = world.annotation
    decision = world.operate()
    check_decision(world.aliasip, observed, prev, world.now, decision, annotation)
    check_converges(world)


@dataclass(frozen=True)
class Event:
    """One thing that happens; ``name`` for hypothesis' reports."""

    name: str
    apply: Callable[[World], None]

    def __repr__(self) -> str:
        return self.name


def set_truth(node: str, truth: str, value: bool) -> Event:
    def apply(world: World) -> None:
        host = world.hosts[node]
        setattr(host, truth, value)
        if truth == "powered" and not value:
            host.kernel = False
        if truth in ("powered", "agent", "api") and not value:
            host.synced = False

    return Event(f"{node}.{truth}={value}", apply)


def annotate(value: str | None) -> Event:
    def apply(world: World) -> None:
        world.annotation = value

    return Event(f"annotate({value!r})", apply)


def act(node: str) -> Event:
    return Event(f"act({node})", lambda world: world.act(node))


def renew(node: str) -> Event:
    return Event(f"renew({node})", lambda world: world.renew(node))


def tick(seconds: float) -> Event:
    return Event(f"tick({seconds})", lambda world: world.tick(seconds))


SPECS: dict[tuple[bool, str], AliasIP] = {}


def validity(valid: bool) -> Event:
    """The spec becomes valid or invalid (a network address as the alias)."""

    def apply(world: World) -> None:
        failback = str(world.aliasip.spec.failback)
        if (valid, failback) not in SPECS:
            addresses = ["198.18.0.50/24"] if valid else ["198.18.0.0/24"]
            SPECS[valid, failback] = make_aliasip(NODES, failback, addresses=addresses)
        world.aliasip = SPECS[valid, failback]

    return Event(f"valid={valid}", apply)


def refusing(node: str, code: str | None) -> Event:
    """``node``'s agent cannot carry the addresses (``code``), or can again (None)."""

    def apply(world: World) -> None:
        world.hosts[node].refusal = code

    return Event(f"{node}.refusal={code}", apply)


def foreign_host(mac: str | None) -> Event:
    """A host that is not ours answers for the address (``mac``), or stops (None)."""
    return Event(f"foreign={mac}", lambda world: world.set_foreign(mac))


def conflicting(on: bool) -> Event:
    def apply(world: World) -> None:
        world.conflicts = (CONFLICT,) if on else ()

    return Event(f"conflict={on}", apply)


OPERATE = Event("operate", operate)


def round_of(moves: tuple[str, ...], seconds: float, operate_first: bool) -> Event:
    """Time passes; each agent reconciles, only renews its Lease, or stalls; the operator
    decides (before or after the agents). Rounds let a history make progress, so that
    failovers and switchovers complete between disturbances."""

    def apply(world: World) -> None:
        world.tick(seconds)
        if operate_first:
            operate(world)
        for node, move in zip(NODES, moves, strict=True):
            if move == "act":
                world.act(node)
            elif move == "renew":
                world.renew(node)
            check_wire(world)
        operate(world)

    name = ",".join(f"{n}:{m}" for n, m in zip(NODES, moves, strict=True))
    return Event(f"round(+{seconds}s {name}{' op-first' if operate_first else ''})", apply)


moves = st.sampled_from(["act", "act", "act", "act", "renew", "idle"])
rounds = st.builds(
    round_of,
    st.tuples(*(moves for _ in NODES)),
    st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.0, 6.0, 11.0]),
    st.booleans(),
)
# The first holder (a) is disturbed most, its first standby next.
nodes = st.sampled_from(["a", "a", "a", "b", "b", "c"])
disturbances = st.one_of(
    st.just(OPERATE),
    st.builds(act, nodes),
    st.builds(renew, nodes),
    st.builds(tick, st.sampled_from([0.5, 2.0, 4.0, 6.0, 11.0])),
    st.builds(set_truth, nodes, st.sampled_from(TRUTHS), st.booleans()),
    st.builds(set_truth, nodes, st.sampled_from(TRUTHS), st.booleans()),
    st.builds(set_truth, nodes, st.sampled_from(TRUTHS), st.booleans()),
    st.builds(annotate, st.sampled_from(["a", "b", "c", "d", "", None])),
)
CODES = ("NoCoveringInterface", "PrefixMismatch", "UnknownInterface", "AddressInUse")
rare = st.one_of(
    st.builds(validity, st.booleans()),
    st.builds(conflicting, st.booleans()),
    st.builds(refusing, nodes, st.sampled_from([*CODES[:2], None, None])),
    st.builds(foreign_host, st.sampled_from(["02:00:00:00:00:99", None])),
)
events = st.one_of(rounds, rounds, rounds, disturbances, disturbances, rare)


def heal_and_settle(world: World) -> None:
    """Everything comes back; after a few rounds exactly one node answers, and it is the
    active node, Active (nothing lost, whatever happened before)."""
    for host in world.hosts.values():
        host.powered = host.kubelet = host.agent = host.api = host.link = True
        host.cordoned = False
        host.refusal = None
    world.set_foreign(None)
    world.conflicts = ()
    world.annotation = None
    validity(True).apply(world)
    for _ in range(6):
        world.tick(1.0)
        for node in sorted(world.hosts):
            world.act(node)
            check_wire(world)
        operate(world)
    assert world.status.phase is Phase.ACTIVE, world.status
    assert world.answering() == {world.status.active_node}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    failback=st.sampled_from(["Manual", "Auto"]),
    history=st.lists(events, min_size=5, max_size=80),
)
def test_random_histories_keep_every_invariant(failback: str, history: list[Event]) -> None:
    world = World.of(*NODES, "d", aliasip=make_aliasip(NODES, failback))
    world.settle()
    assert world.status.active_node == "a"
    for event in history:
        event.apply(world)
        check_wire(world)
    heal_and_settle(world)


PERMUTED = (
    annotate("c"),
    set_truth("a", "cordoned", True),
    set_truth("b", "agent", False),
    set_truth("c", "link", False),
    tick(11.0),
)


def test_every_order_of_a_few_events() -> None:
    """Each event is followed by the operator, then the live agents, then the operator."""
    orders = list(itertools.permutations(PERMUTED))
    assert len(orders) == 120
    for order in orders:
        world = World.of(*NODES)
        world.settle()
        for event in order:
            event.apply(world)
            check_wire(world)
            operate(world)
            for node in NODES:
                world.act(node)
                check_wire(world)
            operate(world)
        heal_and_settle(world)


def cut_off(node: str) -> Event:
    """The node leaves the LAN and its agent and kubelet die; its kernel keeps the
    addresses (nobody deletes them)."""

    def apply(world: World) -> None:
        host = world.hosts[node]
        host.agent = host.kubelet = host.link = host.synced = False

    return Event(f"cut_off({node})", apply)


def revive_lease_only(node: str) -> Event:
    """The node's agent starts and renews its Lease before its first reconcile."""

    def apply(world: World) -> None:
        world.hosts[node].agent = True
        world.renew(node)

    return Event(f"revive_lease_only({node})", apply)


FAILOVER_AND_RETURN = (
    cut_off("a"),
    tick(11.0),
    act("b"),
    act("c"),
    revive_lease_only("a"),
    set_truth("b", "cordoned", True),
)


def test_every_order_of_a_failover_and_a_return() -> None:
    """Each event is followed by the operator alone, so agents lag as they may; a node
    whose agent returns still reporting ``holding`` from an older epoch must let go
    before anyone else is assigned."""
    for order in itertools.permutations(FAILOVER_AND_RETURN):
        world = World.of(*NODES)
        world.settle()
        for event in (*order, act("b"), OPERATE, act("c"), OPERATE):
            event.apply(world)
            check_wire(world)
            operate(world)
        heal_and_settle(world)


def _refusing_status(
    code: str,
    holder: str | None,
    epoch: int,
    move: tuple[str | None, str | None, bool] | None,
    standby_epochs: tuple[int, int, int],
    heard: bool,
) -> AliasIPStatus:
    """A status in which every candidate's agent reports the same refusal: the holder's
    at the current epoch, the others' at any epoch up to it."""
    nodes = {}
    for name, lag in zip(NODES, standby_epochs, strict=True):
        view_epoch = epoch if name == holder else max(epoch - lag, 0)
        nodes[name] = NodeView(
            NodeState.ERROR,
            message=f"{code}: {name} cannot serve the addresses",
            epoch=view_epoch,
            updated_at=at(0),
            holder_heard=heard if code == "AddressInUse" else None,
            observed_at=at(0) if code == "AddressInUse" else None,
        )
    transition = None
    if move is not None:
        source, target, finished = move
        if holder is not None:
            target = holder
        transition = LastTransition(source, target, "Placement", at(0), at(0) if finished else None)
    return AliasIPStatus(
        active_node=holder,
        phase=Phase.SWITCHING,
        epoch=epoch if holder is None else max(epoch, 1),
        nodes=nodes,
        last_transition=transition,
    )


maybe_node = st.sampled_from([None, *NODES])


@settings(max_examples=300, deadline=None)
@given(
    code=st.sampled_from(CODES),
    holder=maybe_node,
    epoch=st.integers(0, 6),
    move=st.none() | st.tuples(maybe_node, maybe_node, st.booleans()),
    lags=st.tuples(*(st.integers(0, 2) for _ in NODES)),
    heard=st.booleans(),
    annotation=st.sampled_from([None, "", "a", "b", "c", "d"]),
)
def test_a_refusal_every_candidate_repeats_never_moves_and_is_reported_once(
    code: str,
    holder: str | None,
    epoch: int,
    move: tuple[str | None, str | None, bool] | None,
    lags: tuple[int, int, int],
    heard: bool,
    annotation: str | None,
) -> None:
    """Whatever the status it starts from, with every candidate reporting the same
    refusal the decision never changes activeNode or the epoch, and after its first
    decision (which may change the phase and condition, with their one Event, and
    answer a request) it emits nothing: one Event per cause, no hopping."""
    world = World.of(*NODES, aliasip=make_aliasip(NODES))
    world.status = _refusing_status(code, holder, epoch, move, lags, heard)
    world.annotation = annotation
    start = (world.status.active_node, world.status.epoch)
    for index in range(6):
        operate(world)
        decision = world.decisions[-1]
        assert (world.status.active_node, world.status.epoch) == start
        if index > 0:
            assert decision.events == (), decision.events
            assert not decision.changed(world.decisions[-2].status)
        ready = find_condition(world.status.conditions, "Ready")
        assert ready is not None and ready.status is ConditionStatus.FALSE
        if world.status.phase in (Phase.UNAVAILABLE, Phase.PENDING):
            assert ready.reason == code, ready
            for name in NODES:
                assert f"{name} reports an error: {code}: {name}" in ready.message
        world.tick(0.5)
        for name in NODES:
            world.renew(name)
