"""A simulated cluster for the decision tests: the truth (power, links, kernels) and what
the API shows (Nodes, agent Leases, the AliasIP's status and annotation).

Agents follow the design's contract, simplified to one atomic step (``act``): renew the
Lease, then make the kernel agree with the newest status (add after a probe on the wire
finds nobody answering, delete otherwise) and report ``status.nodes.<node>``, including a
standby's probe (``holderHeard``). The direct handoff (R11) too: an old holder that let
go tells the named successor (``told``, while both are up on the LAN), which then adds
at the release step's epoch without a probe. The operator is ``decide``, run by ``operate`` on the
current observations. Time only moves with ``tick``: no sleeps, no real clock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aliasip_api.conditions import ConditionStatus
from aliasip_api.errors import Finding
from aliasip_api.nodes import NodeInfo
from aliasip_api.spec import AliasIP, parse_aliasip
from aliasip_api.status import AliasIPStatus, ForeignClaim, NodeState, NodeView
from aliasip_api.succession import succession
from aliasip_operator.decide import decide
from aliasip_operator.decision import Decision
from aliasip_operator.observations import AgentLease, Observations, SwitchoverRequest
from tests.model.objects import aliasip as aliasip_body
from tests.model.objects import spec as spec_body

T0 = datetime(2025, 1, 1, tzinfo=UTC)
LEASE_S = 10


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_aliasip(
    nodes: tuple[str, ...] = ("a", "b", "c"), failback: str = "Manual", **changes: Any
) -> AliasIP:
    return parse_aliasip(
        aliasip_body(body=spec_body(nodes=list(nodes), failback=failback, **changes))
    )


@dataclass
class Host:
    """One node: what is true on it, and what its agent last did."""

    powered: bool = True
    kubelet: bool = True
    agent: bool = True
    api: bool = True  # whether the node (agent and kubelet) reaches the API
    link: bool = True
    cordoned: bool = False
    kernel: bool = False  # the alias addresses are on the interface
    renewed: float | None = None  # the agent Lease's renewTime (seconds)
    # Evidence per node: the nodes this agent proved silent, since when (seconds)
    claims: dict[str, float] = field(default_factory=dict)
    synced: bool = True  # the agent reconciled since its Lease was last invalid
    refusal: str | None = None  # a refusal code: the agent cannot carry the addresses here


@dataclass
class World:
    """The cluster; tests mutate it with the methods below, then ``operate``."""

    aliasip: AliasIP = field(default_factory=make_aliasip)
    hosts: dict[str, Host] = field(default_factory=dict)
    t: float = 0.0
    status: AliasIPStatus = field(default_factory=AliasIPStatus)  # the whole status
    annotation: str | None = None
    conflicts: tuple[Finding, ...] = ()
    decisions: list[Decision] = field(default_factory=list)
    foreign: str | None = None  # the MAC of a host that is not ours answering, if any
    foreign_since: float | None = None  # when it started to (the claim's time)
    # Direct handoffs told over the monitoring path: (successor, epoch) (R11).
    told: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def of(cls, *names: str, **kwargs: Any) -> World:
        world = cls(hosts={n: Host() for n in names}, **kwargs)
        for name in names:
            world.hosts[name].renewed = 0.0
        return world

    @property
    def now(self) -> datetime:
        return at(self.t)

    # -- what the operator observes -----------------------------------------------------

    def node_info(self, name: str) -> NodeInfo:
        host = self.hosts[name]
        ready = host.powered and host.kubelet and host.api
        return NodeInfo(
            name,
            ready=ConditionStatus.TRUE if ready else ConditionStatus.UNKNOWN,
            unschedulable=host.cordoned,
        )

    def observations(self) -> Observations:
        leases = {
            name: AgentLease(
                name,
                at(host.renewed),
                LEASE_S,
                silent=tuple(sorted((n, at(t)) for n, t in host.claims.items())),
            )
            for name, host in self.hosts.items()
            if host.renewed is not None
        }
        request = None if self.annotation is None else SwitchoverRequest(self.annotation or None)
        nodes = [self.node_info(n) for n in self.hosts]
        return Observations.of(nodes, leases, request, self.conflicts)

    def operate(self) -> Decision:
        """The operator decides once; its status and the annotation's removal are applied."""
        decision = decide(self.aliasip, self.observations(), self.status, self.now)
        self.status = dataclasses.replace(decision.status, nodes=self.status.nodes)
        if decision.remove_switchover:
            self.annotation = None
        self.decisions.append(decision)
        return decision

    # -- the truth ------------------------------------------------------------------------

    def answering(self) -> set[str]:
        """Nodes that answer for the addresses on the wire now."""
        return {n for n, h in self.hosts.items() if h.powered and h.link and h.kernel}

    def lease_valid(self, name: str) -> bool:
        renewed = self.hosts[name].renewed
        return renewed is not None and self.t < renewed + LEASE_S

    # -- the agents ---------------------------------------------------------------------

    def report(self, name: str, state: NodeState, **fields: Any) -> None:
        view = NodeView(state, epoch=self.status.epoch, updated_at=self.now, **fields)
        self.status = dataclasses.replace(self.status, nodes={**self.status.nodes, name: view})

    def act(self, name: str) -> None:
        """One reconcile of ``name``'s agent, if it runs (see the module docstring)."""
        host = self.hosts[name]
        if not (host.powered and host.agent):
            return
        if not host.api:
            # Self-fencing: an agent that cannot renew drops what it holds once its Lease
            # is no longer valid (the real agent does so before it expires).
            if not self.lease_valid(name):
                host.kernel = False
            return
        host.renewed = self.t
        host.synced = True
        self.observe_peers(name)
        active = self.status.active_node == name
        others = self.answering() - {name}
        named = succession(self.status)
        if not host.link:
            # Deleting on link loss: the addresses never come back with the carrier
            # unless the agent re-adds them after a probe (kube-vip #682).
            host.kernel = False
            self.report(name, NodeState.ERROR, message="InterfaceDown: link down")
        elif host.refusal is not None:
            # The agent cannot carry the addresses on this node (no covering subnet, a
            # prefix mismatch, an unknown interface): it adds nothing and says so, named
            # or not, for as long as the cause lasts (the generation, for a real agent).
            host.kernel = False
            self.report(name, NodeState.ERROR, message=f"{host.refusal}: {name} cannot serve")
        elif active:
            if not host.kernel and (others or self.foreign is not None):
                self.report(
                    name,
                    NodeState.ERROR,
                    message="AddressInUse: another host answers",
                    holder_heard=True,
                    observed_at=self.now,
                )
                return
            host.kernel = True
            self.report(name, NodeState.HOLDING, foreign_claim=self.claim())
        elif self.foreign is not None:
            # A standby's pre-check hears a host that is not ours: it could not take the
            # addresses either (AddressInUse), and it holds none.
            host.kernel = False
            self.report(
                name,
                NodeState.ERROR,
                message=f"AddressInUse: {self.foreign} answers",
                holder_heard=True,
                observed_at=self.now,
            )
        elif named is not None and named.to_node == name:
            # The named successor (R11): it adds on the old holder's word, without a
            # probe, or waits, reporting at most its probe (at the epoch before).
            if (name, named.epoch) in self.told:
                host.kernel = True
                self.report(name, NodeState.HOLDING)
            elif others:
                view = NodeView(
                    NodeState.STANDBY,
                    epoch=self.status.epoch - 1,
                    updated_at=self.now,
                    holder_heard=True,
                    observed_at=self.now,
                )
                self.status = dataclasses.replace(
                    self.status, nodes={**self.status.nodes, name: view}
                )
        else:
            held = host.kernel
            host.kernel = False
            previous = self.status.nodes.get(name)
            released = held or (previous is not None and previous.state is NodeState.HOLDING)
            self.report(
                name,
                NodeState.RELEASED if released else NodeState.STANDBY,
                holder_heard=bool(others),
                observed_at=self.now,
            )
            if named is not None and named.from_node == name:
                self.tell(name, named.to_node, named.epoch)

    def tell(self, sender: str, successor: str, epoch: int) -> None:
        """The old holder's handoff datagram: it arrives while both ends are up and on the
        service LAN (the monitoring path), whatever the API does."""
        ends = (self.hosts[sender], self.hosts[successor])
        if all(h.powered and h.agent and h.link for h in ends):
            self.told.add((successor, epoch))

    def observe_peers(self, name: str) -> None:
        """Evidence per node, as a real agent gathers it (docs/design.md): another node is
        claimed silent while its heartbeats are missed (its agent does not run, it is off,
        or its link is down) and nothing answers for the addresses from it; since the
        first time this agent saw that. Anything else withdraws the claim."""
        host = self.hosts[name]
        answering = self.answering()
        for other, peer in self.hosts.items():
            if other == name:
                continue
            missed = not (peer.powered and peer.agent and peer.link)
            if missed and other not in answering and host.link:
                host.claims.setdefault(other, self.t)
            else:
                host.claims.pop(other, None)

    def claim(self) -> ForeignClaim | None:
        """What a holder reports while a host that is not ours claims the address."""
        if self.foreign is None:
            return None
        since = self.foreign_since if self.foreign_since is not None else self.t
        return ForeignClaim(self.foreign, "198.18.0.50", at(since), defended=True)

    def set_foreign(self, mac: str | None) -> None:
        """A host that is not ours starts (a MAC) or stops (None) answering."""
        if mac != self.foreign:
            self.foreign, self.foreign_since = mac, (self.t if mac is not None else None)

    def renew(self, name: str) -> None:
        """The agent's Lease loop alone (a real agent renews apart from reconciling)."""
        host = self.hosts[name]
        if not (host.powered and host.agent and host.api):
            return
        if not self.lease_valid(name):
            host.synced = False
        host.renewed = self.t

    def act_all(self) -> None:
        for name in sorted(self.hosts):
            self.act(name)

    def settle(self, rounds: int = 6) -> Decision:
        """Operator and agents take turns until nothing changes (bounded)."""
        decision = self.operate()
        for _ in range(rounds):
            before = (self.status, {n: dataclasses.astuple(h) for n, h in self.hosts.items()})
            self.act_all()
            decision = self.operate()
            after = (self.status, {n: dataclasses.astuple(h) for n, h in self.hosts.items()})
            if before == after:
                break
        return decision

    # -- things that happen -----------------------------------------------------------------

    def tick(self, seconds: float) -> None:
        self.t += seconds

    def power_off(self, name: str) -> None:
        host = self.hosts[name]
        host.powered, host.kernel = False, False

    def power_on(self, name: str) -> None:
        self.hosts[name].powered = True

    def kill_agent(self, name: str) -> None:
        self.hosts[name].agent = False

    def start_agent(self, name: str) -> None:
        self.hosts[name].agent = True
