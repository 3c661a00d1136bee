"""Scenario tables: each row is a story told step by step; after every step the operator
decides once and the table says where the addresses must be allowed (activeNode), the
phase, the epoch, the Events and what is left of the switchover annotation.

The agents and the wire are simulated (tests/operator/world.py); agents only act when a
step says so, so every intermediate decision is visible.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from aliasip_api.errors import ADDRESS_CONFLICT, Finding
from aliasip_api.status import NodeState, NodeView, Phase
from aliasip_operator.decision import EventType
from tests.operator.world import World, at, make_aliasip

Action = Callable[[World], None]
KEEP = "<unchanged>"


@dataclass(frozen=True)
class Step:
    """Run ``actions``, let the operator decide once, then check the outcome."""

    actions: tuple[Action, ...]
    active: str | None
    phase: Phase
    epoch: int
    events: tuple[str, ...] | None = None  # reasons, in order; None: not checked
    annotation: str | None = KEEP  # KEEP: not checked


def step(
    *actions: Action,
    expect: tuple[str | None, Phase, int],
    events: tuple[str, ...] | None = None,
    annotation: str | None = KEEP,
) -> Step:
    active, phase, epoch = expect
    return Step(actions, active, phase, epoch, events, annotation)


# -- actions ----------------------------------------------------------------------------


def act(*names: str) -> Action:
    """The named agents reconcile once (renew, make the kernel agree, report)."""

    def run(world: World) -> None:
        for name in names:
            world.act(name)

    return run


def renew_only(*names: str) -> Action:
    """The named agents renew their Lease without reporting (a probe not yet made)."""

    def run(world: World) -> None:
        for name in names:
            world.hosts[name].renewed = world.t

    return run


def tick(seconds: float) -> Action:
    return lambda world: world.tick(seconds)


def host(name: str, **truth: bool) -> Action:
    """Change what is true on a node (power, kubelet, agent, link, cordon, ...)."""

    def run(world: World) -> None:
        for key, value in truth.items():
            setattr(world.hosts[name], key, value)
        if truth.get("powered") is False:
            world.hosts[name].kernel = False

    return run


def refuse(code: str | None, *names: str) -> Action:
    """The named agents cannot carry the addresses (``code``), or can again (None)."""

    def run(world: World) -> None:
        for name in names:
            world.hosts[name].refusal = code

    return run


def foreign(mac: str | None) -> Action:
    """A host that is not ours starts (``mac``) or stops (None) answering."""
    return lambda world: world.set_foreign(mac)


def annotate(value: str | None) -> Action:
    def run(world: World) -> None:
        world.annotation = value

    return run


def respec(nodes: tuple[str, ...] = ("a", "b", "c"), addresses: str = "198.18.0.50/24") -> Action:
    def run(world: World) -> None:
        world.aliasip = make_aliasip(nodes, addresses=[addresses])

    return run


def conflict() -> Action:
    def run(world: World) -> None:
        world.conflicts = (
            Finding(
                "spec.addresses[0]",
                "198.18.0.50 is already claimed by AliasIP old, created earlier",
                ADDRESS_CONFLICT,
            ),
        )

    return run


def report(name: str, state: NodeState, epoch: int) -> Action:
    def run(world: World) -> None:
        view = NodeView(state, epoch=epoch, updated_at=world.now)
        world.status = dataclasses.replace(world.status, nodes={**world.status.nodes, name: view})

    return run


# -- worlds -----------------------------------------------------------------------------


def fresh(*names: str, failback: str = "Manual") -> Callable[[], World]:
    return lambda: World.of(*names, aliasip=make_aliasip(names, failback))


def active_on_a(failback: str = "Manual") -> Callable[[], World]:
    """a holds at epoch 1 (placed and confirmed), b and c are live standbys, t=0."""

    def build() -> World:
        world = World.of("a", "b", "c", aliasip=make_aliasip(("a", "b", "c"), failback))
        world.operate()
        world.act_all()
        world.operate()
        assert (world.status.active_node, world.status.phase, world.status.epoch) == (
            "a",
            Phase.ACTIVE,
            1,
        )
        return world

    return build


S, A, D, U, P = Phase.SWITCHING, Phase.ACTIVE, Phase.DEGRADED, Phase.UNAVAILABLE, Phase.PENDING

SCENARIOS: list[tuple[Callable[[], World], list[Step], str]] = [
    (
        fresh("a", "b", "c"),
        [
            step(expect=("a", S, 1), events=("Placement",)),
            step(expect=("a", S, 1), events=()),
            step(act("a"), expect=("a", A, 1), events=("Held",)),
            step(expect=("a", A, 1), events=()),
        ],
        "placement-on-the-first-candidate",
    ),
    (
        fresh("a", "b", "c"),
        [
            step(
                host("a", kubelet=False),
                host("b", cordoned=True),
                expect=("c", S, 1),
                events=("Placement",),
            ),
        ],
        "placement-skips-not-ready-and-cordoned",
    ),
    (
        fresh("a", "b"),
        [
            step(tick(10), expect=(None, P, 0), events=("NoEligibleNode",)),
            step(act("b"), expect=("b", S, 1), events=("Placement",)),
        ],
        "pending-until-an-agent-renews",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",), annotation="b"),
            step(tick(1), expect=(None, S, 2), events=(), annotation="b"),
            step(act("b", "c"), expect=(None, S, 2), events=(), annotation="b"),
            step(act("a"), expect=("b", S, 3), events=("Switchover",), annotation="b"),
            step(
                act("b"), expect=("b", A, 3), events=("Held", "SwitchoverComplete"), annotation=None
            ),
            step(expect=("b", A, 3), events=()),
        ],
        "switchover-by-name-releases-then-assigns",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",), annotation="b"),
            step(act("a"), expect=("b", S, 3), events=("Switchover",), annotation="b"),
            step(
                act("b"), expect=("b", A, 3), events=("Held", "SwitchoverComplete"), annotation=None
            ),
            # The glue writes the completing status first and removes the annotation after:
            # the next decision may still see the request the switchover just served. It is
            # consumed, and no AlreadyActive follows SwitchoverComplete.
            step(annotate("b"), expect=("b", A, 3), events=(), annotation=None),
            step(tick(1), act("a", "b", "c"), expect=("b", A, 3), events=()),
        ],
        "switchover-request-seen-after-it-completed-is-consumed-without-an-event",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            step(act("a"), expect=("b", S, 3)),
            step(act("b"), expect=("b", A, 3), events=("Held", "SwitchoverComplete")),
            # b was active before this request, reached by a switchover: moving elsewhere
            # and back by another kind of move, the next request for it is AlreadyActive.
            step(host("b", cordoned=True), expect=(None, S, 4), events=("NodeCordoned",)),
            step(act("b"), expect=("a", S, 5)),
            step(host("b", cordoned=False), act("a"), expect=("a", A, 5), events=("Held",)),
            step(annotate("a"), expect=("a", A, 5), events=("AlreadyActive",), annotation=None),
        ],
        "switchover-to-the-node-already-active-before-the-request-is-already-active",
    ),
    (
        active_on_a(),
        [
            step(annotate(""), expect=(None, S, 2), annotation=""),
            step(act("a"), expect=("b", S, 3)),
            step(act("b"), expect=("b", A, 3), annotation=None),
            step(annotate(""), expect=(None, S, 4)),
            step(act("b"), expect=("a", S, 5)),
        ],
        "switchover-empty-goes-to-the-best-other-node",
    ),
    (
        active_on_a(),
        [
            step(
                annotate("zzz"),
                expect=("a", A, 1),
                events=("SwitchoverRefused",),
                annotation=None,
            ),
            step(
                host("b", cordoned=True),
                annotate("b"),
                expect=("a", A, 1),
                events=("SwitchoverRefused",),
                annotation=None,
            ),
            step(
                tick(5),
                act("a", "b"),
                tick(6),
                annotate("c"),
                expect=("a", A, 1),
                events=("SwitchoverRefused",),
                annotation=None,
            ),
            step(annotate("a"), expect=("a", A, 1), events=("AlreadyActive",), annotation=None),
        ],
        "switchover-refused-unknown-cordoned-expired-or-already-there",
    ),
    (
        fresh("a", "b"),
        [
            step(host("b", cordoned=True), expect=("a", S, 1)),
            step(act("a"), expect=("a", A, 1)),
            step(annotate(""), expect=("a", A, 1), events=("SwitchoverRefused",), annotation=None),
        ],
        "switchover-empty-refused-without-standby",
    ),
    (
        fresh("a", "b", "c"),
        [
            step(expect=("a", S, 1)),
            step(annotate("c"), expect=("a", S, 1), events=(), annotation="c"),
            step(act("a"), expect=("a", A, 1), events=("Held",), annotation="c"),
            step(expect=(None, S, 2), events=("Switchover",), annotation="c"),
        ],
        "switchover-waits-until-active",
    ),
    (
        fresh("a", "b", "c"),
        [
            step(annotate("c"), expect=("c", S, 1), events=("Switchover",), annotation="c"),
            step(act("c"), expect=("c", A, 1), annotation=None),
        ],
        "switchover-before-placement-picks-the-first-holder",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2)),
            # a let go and told b (R11), which has not acted: b may hold on the handoff,
            # so b is asked to let go before a takes the addresses back.
            step(
                host("b", cordoned=True),
                act("a"),
                expect=(None, S, 2),
                events=("SwitchoverFailed",),
                annotation=None,
            ),
            step(act("b"), expect=("a", S, 3), events=("Switchover",)),
            step(act("a"), expect=("a", A, 3), events=("Held",)),
        ],
        "switchover-target-lost-midway-goes-to-the-best-eligible",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2)),
            # a lets go and tells b directly; b adds at epoch 2 before the operator sees
            # a's report (R11): the assignment at 3 finds b already holding.
            step(act("a", "b"), expect=("b", S, 3), events=("Switchover",)),
            step(act("b"), expect=("b", A, 3), annotation=None),
        ],
        "switchover-by-direct-handoff-the-successor-holds-before-it-is-assigned",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2)),
            # b took the handoff, then was cordoned: it is the holder all the same (it is
            # assigned), and the cordon moves the addresses on in order.
            step(act("a", "b"), host("b", cordoned=True), expect=("b", S, 3)),
            step(act("b"), expect=(None, S, 4)),
            step(act("b"), expect=("a", S, 5)),
            step(act("a"), expect=("a", A, 5)),
        ],
        "a-successor-that-took-the-handoff-is-assigned-even-if-cordoned-then-moved-on",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2)),
            # b's link is down: the handoff never reaches it, and b refuses at epoch 2
            # (InterfaceDown): a refusal is a clear "no", so a takes the addresses back
            # at once, without a second release step.
            step(host("b", link=False), act("a", "b"), expect=("a", S, 3)),
            step(act("a"), expect=("a", A, 3)),
        ],
        "a-successor-off-the-lan-hears-no-handoff",
    ),
    (
        active_on_a(),
        [
            # a is cordoned: a planned move to b. a lets go and tells b, then b is
            # cordoned too and c is not Ready: nobody else may take the addresses, and b
            # may hold them on the handoff: no holder named, Unavailable, b still the
            # move's target. Once b is uncordoned it is assigned.
            step(host("c", kubelet=False), host("a", cordoned=True), expect=(None, S, 2)),
            step(act("a"), host("b", cordoned=True), expect=(None, U, 2)),
            step(expect=(None, U, 2), events=()),
            step(host("b", cordoned=False), expect=("b", S, 3)),
            step(act("b"), expect=("b", A, 3)),
        ],
        "a-successor-turned-unfit-with-nobody-else-waits-unassigned",
    ),
    (
        active_on_a(),
        [
            step(host("a", cordoned=True), expect=(None, S, 2), events=("NodeCordoned",)),
            step(expect=(None, S, 2), events=()),
            step(act("a"), expect=("b", S, 3)),
            step(act("b"), expect=("b", A, 3)),
            step(host("a", cordoned=False), expect=("b", A, 3), events=()),
        ],
        "cordoned-holder-is-moved-and-manual-stays",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", cordoned=True),
                host("b", cordoned=True),
                host("c", kubelet=False),
                expect=("a", D, 1),
                events=("NodeCordoned",),
            ),
            step(host("b", cordoned=False), expect=(None, S, 2)),
        ],
        "cordoned-holder-stays-degraded-without-standby",
    ),
    (
        active_on_a(),
        [
            step(host("a", kubelet=False), expect=(None, S, 2), events=("NodeNotReady",)),
            step(act("a"), expect=("b", S, 3)),
        ],
        "not-ready-holder-with-live-agent-hands-over-in-order",
    ),
    (
        active_on_a(),
        [
            # Kubelet is gone at once, the agent's Lease is still valid: release first.
            # Only b has looked (c's agent has not acted since): one reporter is no
            # evidence per node, so the Lease is waited for.
            step(
                host("a", powered=False),
                tick(5),
                act("b"),
                expect=(None, S, 2),
                events=("NodeNotReady",),
            ),
            step(tick(4.999), expect=(None, S, 2), events=()),
            # a never released: it is gone (not Ready, Lease expired), so the move that
            # started as an orderly hand-over completes as a failover.
            step(tick(0.001), expect=("b", S, 3), events=("Failover",)),
            step(act("b"), expect=("b", A, 3), events=("Held",)),
        ],
        "node-gone-assigned-only-once-its-lease-expired",
    ),
    (
        active_on_a(),
        [
            # Evidence per node: b and c (every live candidate) miss a and hear nothing
            # from it: a fails over while its Lease is still valid, in one decision.
            step(
                host("a", powered=False),
                tick(1),
                act("b", "c"),
                expect=("b", S, 2),
                events=("Failover",),
            ),
            step(act("b"), expect=("b", A, 2), events=("Held",)),
        ],
        "node-gone-fails-over-at-once-on-every-peers-evidence",
    ),
    (
        active_on_a(),
        [
            # a's agent is alive but its cable is cut: b and c hear nothing from it
            # (heartbeats missed, wire silent), but a renews its Lease after their
            # claims: it lives, so no evidence; its own error report hands over in order.
            step(
                host("a", link=False),
                tick(1),
                act("b", "c"),
                lambda w: w.renew("a"),
                expect=("a", A, 1),
            ),
            step(tick(0.5), act("a"), expect=(None, S, 2), events=("HolderError",)),
        ],
        "a-holder-that-renews-after-its-peers-claims-is-not-silent",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", agent=False),
                tick(5),
                act("b", "c"),
                tick(6),
                expect=("a", D, 1),
                events=("HolderAgentLost",),
            ),
            step(act("b", "c"), expect=("a", D, 1), events=()),
            step(tick(30), act("b", "c"), expect=("a", D, 1), events=()),
            step(host("a", agent=True), act("a"), expect=("a", A, 1), events=("Held",)),
        ],
        "agent-killed-node-answers-degraded-then-adopted-without-a-move",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", agent=False, kubelet=False),
                tick(11),
                act("b", "c"),
                expect=("a", D, 1),
                events=("HolderAgentLost",),
            ),
            step(host("a", powered=False), expect=("a", D, 1)),
            step(act("b", "c"), expect=("b", S, 2), events=("Failover",)),
        ],
        "a-standby-still-hearing-the-holder-beats-node-not-ready",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", agent=False, link=False),
                tick(11),
                act("b", "c"),
                expect=("b", S, 2),
                events=("Failover",),
            ),
        ],
        "failover-when-a-fresh-probe-hears-nobody",
    ),
    (
        active_on_a(),
        [
            # Only b looks at first (one reporter: no evidence per node).
            step(
                host("a", agent=False, link=False),
                tick(1),
                act("b"),
                tick(10),
                renew_only("b", "c"),
                expect=("a", D, 1),
            ),
            step(act("b"), expect=("b", S, 2)),
        ],
        "a-probe-made-before-the-lease-expired-does-not-count",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", powered=False),
                host("b", powered=False),
                host("c", powered=False),
                tick(10),
                expect=(None, U, 2),
                events=("NoEligibleNode",),
            ),
            step(tick(10), expect=(None, U, 2), events=()),
            step(host("c", powered=True), act("c"), expect=("c", S, 3), events=("Failover",)),
            step(act("c"), expect=("c", A, 3)),
        ],
        "no-standby-unavailable-until-one-returns",
    ),
    (
        active_on_a("Auto"),
        [
            step(host("a", powered=False), tick(5), act("b", "c"), tick(5), expect=("b", S, 2)),
            step(act("b"), expect=("b", A, 2)),
            step(
                host("a", powered=True, agent=True),
                act("a"),
                expect=(None, S, 3),
                events=("Failback",),
            ),
            step(act("b"), expect=("a", S, 4)),
            step(act("a"), expect=("a", A, 4)),
        ],
        "failback-auto-returns-to-the-primary-in-order",
    ),
    (
        active_on_a("Manual"),
        [
            step(host("a", powered=False), tick(5), act("b", "c"), tick(5), expect=("b", S, 2)),
            step(act("b"), expect=("b", A, 2)),
            step(host("a", powered=True, agent=True), act("a"), expect=("b", A, 2), events=()),
        ],
        "failback-manual-stays",
    ),
    (
        active_on_a(),
        [
            step(host("a", link=False), act("a"), expect=(None, S, 2), events=("HolderError",)),
            step(act("a"), expect=("b", S, 3)),
            step(act("b"), expect=("b", A, 3)),
            step(host("a", link=True), act("a"), expect=("b", A, 3)),
        ],
        "holder-error-link-down-moves-in-order",
    ),
    (
        active_on_a(),
        [
            step(
                host("b", cordoned=True),
                host("c", cordoned=True),
                host("a", link=False),
                act("a"),
                expect=("a", U, 1),
                events=("HolderError",),
            ),
            step(host("a", link=True), act("a"), expect=("a", A, 1), events=("Held",)),
        ],
        "holder-error-without-standby-unavailable-then-recovers",
    ),
    (
        active_on_a(),
        [
            # a's agent and kubelet die, its kernel still answers; probes before expiry.
            step(
                host("a", agent=False, kubelet=False),
                tick(5),
                act("b", "c"),
                tick(6),
                renew_only("b", "c"),
                expect=("b", S, 2),
                events=("Failover",),
            ),
            # b's own probe is the last guard: it hears a and refuses; no churn to c.
            step(act("b"), expect=("b", U, 2), events=("AddressInUse",)),
            step(act("b", "c"), expect=("b", U, 2), events=()),
            # a's agent returns, sees it is not the holder, lets go; b then takes over.
            step(host("a", agent=True, kubelet=True), act("a"), act("b"), expect=("b", A, 2)),
        ],
        "address-in-use-on-takeover-waits-for-the-orphan",
    ),
    (
        active_on_a(),
        [
            step(respec(nodes=("b", "c")), expect=(None, S, 2), events=("NotACandidate",)),
            step(act("a"), expect=("b", S, 3)),
        ],
        "holder-removed-from-candidates-hands-over",
    ),
    (
        active_on_a(),
        [
            step(
                respec(addresses="198.18.0.0/24"),
                expect=(None, Phase.INVALID, 2),
                events=("ReservedAddress",),
            ),
            step(expect=(None, Phase.INVALID, 2), events=()),
            step(respec(), expect=(None, S, 2), events=("Releasing",)),
            step(act("a"), expect=("a", S, 3)),
        ],
        "invalid-spec-releases-then-recovers-after-the-release",
    ),
    (
        fresh("a", "b"),
        [
            step(
                conflict(),
                annotate("b"),
                expect=(None, Phase.CONFLICT, 0),
                events=("AddressConflict", "SwitchoverRefused"),
                annotation=None,
            ),
            step(expect=(None, Phase.CONFLICT, 0), events=()),
        ],
        "conflict-changes-nothing-and-refuses-requests",
    ),
    # Failure 1 of issue 10: the node asked to release dies before it reports released.
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            # a stops (its Node stays Ready): nobody answers, nobody released. Only b
            # looks (one reporter: no evidence per node), so the Lease decides.
            step(host("a", agent=False, link=False), tick(5), act("b"), expect=(None, S, 2)),
            # Its Lease expired, no probe since: its silence is not proven yet.
            step(tick(6), expect=(None, D, 2), events=("HolderAgentLost",)),
            step(expect=(None, D, 2), events=()),
            # The standbys probe after the expiry and hear nobody: the move completes, as
            # a failover (the request it served is consumed: it did not go as planned).
            step(
                act("b", "c"),
                expect=("b", S, 3),
                events=("Failover", "SwitchoverFailed"),
                annotation=None,
            ),
            step(act("b"), expect=("b", A, 3), events=("Held",)),
            step(expect=("b", A, 3), events=()),
        ],
        "releasing-node-dies-silent-probe-completes-the-move-as-a-failover",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            step(host("a", powered=False), tick(5), act("b"), expect=(None, S, 2)),
            # Node not Ready and the Lease expired: silent without any probe.
            step(
                tick(5),
                expect=("b", S, 3),
                events=("Failover", "SwitchoverFailed"),
                annotation=None,
            ),
        ],
        "releasing-node-powered-off-completes-the-move-at-its-lease-expiry",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            # Evidence per node: every live candidate proves a silent; the move does not
            # wait for a's Lease and completes as a failover.
            step(
                host("a", agent=False, link=False),
                tick(1),
                act("b", "c"),
                expect=("b", S, 3),
                events=("Failover", "SwitchoverFailed"),
                annotation=None,
            ),
        ],
        "releasing-node-dies-its-peers-evidence-completes-the-move-at-once",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            # Only a's agent dies: its kernel still answers, and the standbys hear it.
            step(host("a", agent=False), tick(11), act("b", "c"), expect=(None, D, 2)),
            step(tick(5), act("b", "c"), expect=(None, D, 2), events=()),
            step(tick(30), act("b", "c"), expect=(None, D, 2), events=()),
            # Its agent returns and releases: the switchover goes on as planned.
            step(host("a", agent=True), act("a"), expect=("b", S, 3), events=("Switchover",)),
            step(act("b"), expect=("b", A, 3), events=("Held", "SwitchoverComplete")),
        ],
        "releasing-node-still-heard-waits-degraded-then-releases",
    ),
    (
        active_on_a(),
        [
            step(annotate("b"), expect=(None, S, 2), events=("Switchover",)),
            step(host("a", powered=False), host("b", powered=False), expect=(None, S, 2)),
            # The target is gone too: the best eligible candidate takes the addresses.
            step(
                tick(11),
                act("c"),
                expect=("c", S, 3),
                events=("Failover", "SwitchoverFailed"),
                annotation=None,
            ),
            step(act("c"), expect=("c", A, 3), events=("Held",)),
        ],
        "releasing-node-and-target-die-the-best-eligible-takes-over",
    ),
    (
        active_on_a(),
        [
            step(host("a", cordoned=True), expect=(None, S, 2), events=("NodeCordoned",)),
            step(host("a", agent=False, link=False), tick(11), act("b", "c"), expect=("b", S, 3)),
        ],
        "cordon-drain-whose-node-dies-mid-release-completes",
    ),
    # Failure 3 of issue 10: a refusal every node would repeat. The agents report it as
    # an error, named or not, for the whole generation.
    (
        fresh("a", "b", "c"),
        [
            step(refuse("NoCoveringInterface", "a", "b", "c"), expect=("a", S, 1)),
            step(act("a", "b", "c"), expect=("a", U, 1), events=("NoCoveringInterface",)),
            step(tick(1), act("a", "b", "c"), expect=("a", U, 1), events=()),
            step(tick(30), act("a", "b", "c"), expect=("a", U, 1), events=()),
            # The cause goes away (the spec or the nodes fixed): a takes the addresses.
            step(refuse(None, "a", "b", "c"), act("a", "b", "c"), expect=("a", A, 1)),
        ],
        "refusal-every-candidate-repeats-stays-unavailable-naming-the-cause",
    ),
    (
        fresh("a", "b", "c"),
        [
            # The agents' pre-checks are slower than the operator: each node refuses once
            # it is named, and the AliasIP stops at the last one (never hops back).
            step(refuse("PrefixMismatch", "a", "b", "c"), expect=("a", S, 1)),
            step(act("a"), expect=(None, S, 2), events=("HolderError",)),
            step(act("a"), expect=("b", S, 3)),
            step(act("b"), expect=(None, S, 4), events=("HolderError",)),
            step(act("b"), expect=("c", S, 5)),
            step(act("c"), expect=("c", U, 5), events=("PrefixMismatch",)),
            step(tick(1), act("a", "b", "c"), expect=("c", U, 5), events=()),
            step(tick(1), act("a", "b", "c"), expect=("c", U, 5), events=()),
        ],
        "refusal-found-node-by-node-stops-at-the-last-one",
    ),
    (
        fresh("a", "b", "c"),
        [
            step(
                refuse("UnknownInterface", "a", "b", "c"), act("a", "b", "c"), expect=(None, P, 0)
            ),
            step(tick(1), act("a", "b", "c"), expect=(None, P, 0), events=()),
        ],
        "refusal-before-placement-is-pending-naming-the-cause",
    ),
    (
        fresh("a", "b"),
        [
            step(
                refuse("NoCoveringInterface", "a"),
                refuse("PrefixMismatch", "b"),
                act("a", "b"),
                expect=(None, P, 0),
                events=("NoEligibleNode",),
            ),
            step(tick(1), act("a", "b"), expect=(None, P, 0), events=()),
        ],
        "refusals-that-differ-are-no-eligible-node",
    ),
    (
        fresh("a", "b", "c"),
        [
            # A host that is not ours answers for the address before placement.
            step(foreign("02:00:00:00:00:99"), expect=("a", S, 1), events=("Placement",)),
            step(act("a", "b", "c"), expect=("a", U, 1), events=("AddressInUse",)),
            step(tick(1), act("a", "b", "c"), expect=("a", U, 1), events=()),
            step(foreign(None), act("b", "c"), act("a"), expect=("a", A, 1), events=("Held",)),
        ],
        "foreign-host-answering-before-placement-no-hopping",
    ),
    (
        active_on_a(),
        [
            step(
                host("a", link=False),
                host("b", link=False),
                host("c", link=False),
                act("a", "b", "c"),
                expect=("a", U, 1),
                events=("InterfaceDown",),
            ),
            step(tick(1), act("a", "b", "c"), expect=("a", U, 1), events=()),
        ],
        "every-link-down-is-unavailable-interface-down",
    ),
    (
        fresh("a", "b", "c"),
        [
            step(report("c", NodeState.HOLDING, 0), expect=(None, S, 0), events=("Placement",)),
            step(act("c"), expect=("a", S, 1)),
        ],
        "a-live-agent-still-holding-from-an-older-epoch-blocks-assignment",
    ),
]


def run(build: Callable[[], World], steps: list[Step]) -> World:
    world = build()
    for index, expected in enumerate(steps):
        for action in expected.actions:
            action(world)
        decision = world.operate()
        where = f"step {index}"
        got = (world.status.active_node, world.status.phase, world.status.epoch)
        assert got == (expected.active, expected.phase, expected.epoch), where
        if expected.events is not None:
            assert tuple(e.reason for e in decision.events) == expected.events, where
        if expected.annotation != KEEP:
            assert world.annotation == expected.annotation, where
    return world


@pytest.mark.parametrize(
    ("build", "steps"), [(b, s) for b, s, _ in SCENARIOS], ids=[i for _, _, i in SCENARIOS]
)
def test_scenario(build: Callable[[], World], steps: list[Step]) -> None:
    run(build, steps)


WARNING_REASONS = {"Failover", "HolderError", "NoEligibleNode"}
# The agents' refusal codes (nodeagent/aliasip_nodeagent/errors.py) the scenarios use:
# every candidate refusing is a Warning, whatever the phase (also Pending).
REFUSAL_REASONS = {
    "NoCoveringInterface",
    "PrefixMismatch",
    "UnknownInterface",
    "InterfaceDown",
    "AddressInUse",
}
WARNING_PHASES = {Phase.DEGRADED, Phase.UNAVAILABLE, Phase.INVALID, Phase.CONFLICT}
REQUEST_EVENTS = {
    "SwitchoverComplete": EventType.NORMAL,
    "AlreadyActive": EventType.NORMAL,
    "SwitchoverRefused": EventType.WARNING,
    "SwitchoverFailed": EventType.WARNING,
}


def test_event_types_across_all_scenarios() -> None:
    """Warning for what needs a human's attention (a phase that is not fine, a failover,
    an error, no node at all, a request not served), Normal for the rest."""
    seen: set[str] = set()
    for build, steps, _ in SCENARIOS:
        world = run(build, steps)
        for decision in world.decisions:
            phase = decision.status.phase
            for event in decision.events:
                seen.add(event.reason)
                if event.reason in REQUEST_EVENTS:
                    assert event.type is REQUEST_EVENTS[event.reason]
                    continue
                warning = (
                    phase in WARNING_PHASES
                    or event.reason in WARNING_REASONS
                    or event.reason in REFUSAL_REASONS
                )
                expected = EventType.WARNING if warning else EventType.NORMAL
                assert event.type is expected, (event, phase)
    assert set(REQUEST_EVENTS) <= seen
    assert seen >= REFUSAL_REASONS


def test_a_release_wait_rechecks_at_the_releasing_nodes_lease_expiry() -> None:
    """No watch event announces that the releasing node's Lease expired: the decision
    that waits for its release asks to be made again at that instant."""
    world = active_on_a()()
    world.tick(3)
    renew_only("b", "c")(world)  # a's Lease (renewed at 0) now expires first, at 10
    world.annotation = "b"
    decision = world.operate()
    assert (world.status.active_node, world.status.epoch) == (None, 2)
    assert decision.recheck_at == world.observations().leases["a"].expires_at == at(10)
