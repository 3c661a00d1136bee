"""The whole protocol as a model: operator, agents, API server, kernels, wire and clock.

Pure and deterministic: no I/O, no real clock. The decisions are the production code's
own pure functions; only the glue around them (watch, Lease, fence, data path, report) is
modelled here, after ``daemon.py`` and the operator's ``handlers.py``:

- the **operator** decides with ``decide`` on *its own view* of each AliasIP and of the
  agent Leases (stale while its leader is paused: refreshed only by ``operator_sync``),
  and writes the status with the resourceVersion it decided from (a 409 re-reads the
  object; it decides again on a later step), then removes a served switchover request;
- each **agent** has its own view of each AliasIP, fed by a watch stream whose events
  reach it late (at most ``MAX_LAG_S`` once connected; held while its node is cut off
  from the API; lost on a watch break, then a relist), its own fencing state, its own
  view of the Leases, and a pass that runs ``reconcile.plan`` on that view, applies it to
  its node's kernel (an add needs the wire probe to find nobody unless the plan skips
  it), watches the holders (``watch.watched_holder``, ``lease_lapsed``, ``report_due``)
  and reports ``report.view_for`` with a merge patch;
- each **node** has a kernel (the AliasIPs whose address it holds), a link (up or down:
  a node whose link is down answers nobody on the wire), a path to the API (partition),
  and may be stopped (its kernel is gone) and started again;
- **time** moves only in ``tick`` (``TICK_S``): Leases are renewed, agents cut off, late
  events forced in, resyncs and announcement rounds run. The Nodes stay Ready whatever
  happens, as in the lab (which plays the kubelet once): the worst case, since kubelet's
  silence is then never evidence.

Where the agent's behaviour under faults differs between today's code and issue 10's
rules, the model asks ``behaviour`` (the ``# PRODUCT BEHAVIOUR:`` spots).

The safety rules are checked as the model runs and raise ``Violation`` (an
AssertionError) naming the rule: ``two-holders``, ``stray``, ``epoch``, ``stale-add``,
``announce``, ``liveness``. See ``check`` and ``settle`` for their exact statements.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache

from aliasip_api.conditions import ConditionStatus
from aliasip_api.lease import AgentLease
from aliasip_api.nodes import NodeInfo
from aliasip_api.spec import AliasIP, parse_aliasip
from aliasip_api.status import AliasIPStatus, NodeState, NodeView, Phase
from aliasip_nodeagent.deadman import expiry_window_s
from aliasip_nodeagent.hoststate import HeldAlias
from aliasip_nodeagent.reconcile import Hold, Observed, plan
from aliasip_nodeagent.report import Outcome, needs_write, view_for
from aliasip_nodeagent.silence import watch_from
from aliasip_nodeagent.watch import lease_lapsed, report_due, watched_holder
from aliasip_operator.decide import decide
from aliasip_operator.observations import (
    SWITCHOVER_ANNOTATION,
    Observations,
    switchover_request,
)
from tests.model.objects import aliasip as aliasip_body
from tests.model.objects import spec as spec_body
from tests.protocol.behaviour import Behaviour

T0 = datetime(2025, 1, 1, tzinfo=UTC)
TICK_S = 0.5
LEASE_S = 3  # the agent's lease_duration_s (daemon.Settings)
FENCE_S = 2.5  # lease_duration_s - fence_margin_s: cut off this long after the last renewal
RESYNC_S = 5.0  # the agent's default resync_interval_s: a full pass (and a wire guard)
MAX_LAG_S = 5.0  # a connected agent's watch delivers an event at most this late
STRAY_BOUND_S = MAX_LAG_S + RESYNC_S + 2 * TICK_S
"""How long a node may keep an alias the API no longer names it for, counting only the
time its agent runs and reaches the API: the late event that tells it (``MAX_LAG_S``),
plus the full pass that acts on it (``RESYNC_S``), plus a tick of each for rounding."""
LIVENESS_BOUND_S = 30.0
"""After every fault heals (a stopped node may stay stopped), every AliasIP some
running candidate can carry is Active, held by exactly one node, within this time; one
no running candidate can carry is held by nobody (Unavailable, or Degraded when its
lost holder cannot be proven silent). Either way the epochs then stay put for
``STABLE_S``: no hopping."""
STABLE_S = 2 * RESYNC_S
RENEW_S = 1.0  # the agent's renew_interval_s: a standby's silence watch starts when overdue
EXPIRY_WINDOW_S = expiry_window_s(1)
"""R9: a node's kernel drops its aliases this long after its agent's last lifetime renewal
(the latest it may, in the model: the real kernel is usually faster); a standby calls a
holder silent only once its silence lasted this long (``silence.Silences``)."""
INTERFACE = "eth0"
ADDRESSES = {"a0": "198.18.0.10/24", "a1": "198.18.0.11/24"}
_BY_IP = {ipaddress.ip_interface(a).ip: name for name, a in ADDRESSES.items()}


class Violation(AssertionError):
    """A safety or liveness rule broken; ``rule`` names it (see the module docstring)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"[{rule}] {message}")
        self.rule = rule


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@cache
def aliasip(name: str, nodes: tuple[str, ...]) -> AliasIP:
    """The AliasIP ``name`` (one address) with ``nodes`` as its candidates, in order."""
    body = spec_body(addresses=[ADDRESSES[name]], nodes=list(nodes))
    return parse_aliasip(aliasip_body(name, body=body))


def held_alias(node: str, name: str) -> HeldAlias:
    mac = f"02:00:00:00:00:0{node[-1]}"
    return HeldAlias(INTERFACE, 2, mac, ipaddress.ip_interface(ADDRESSES[name]))


# -- the API server ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """One version of an AliasIP as the API serves it: its resourceVersion, its status,
    and its switchover annotation (None when absent; "" asks for the next standby)."""

    rv: int
    status: AliasIPStatus
    annotation: str | None = None


@dataclass(frozen=True)
class WatchEvent:
    name: str
    snapshot: Snapshot
    sent_at: float


@dataclass
class Api:
    objects: dict[str, Snapshot]
    leases: dict[str, float] = field(default_factory=dict)  # node -> renewTime (s)
    rv: int = 0


# -- nodes and agents -------------------------------------------------------------------


@dataclass
class Node:
    """What is true on one node. ``covers``: the AliasIPs whose address a stationary
    subnet of this node covers (the others are refused: NoCoveringInterface)."""

    covers: frozenset[str]
    up: bool = True
    link: bool = True
    connected: bool = True  # reaches the API (a partition cuts it off)
    cordoned: bool = False
    kernel: set[str] = field(default_factory=set)
    expires_at: float = float("inf")  # R9: when the kernel drops its aliases unrenewed


@dataclass
class Agent:
    """One agent process's memory (lost when it dies; the kernel is the node's)."""

    started_at: float
    alive: bool = True
    paused: bool = False  # SIGSTOP: nothing runs; its watch stream queues
    objects: dict[str, Snapshot] = field(default_factory=dict)
    queue: list[WatchEvent] = field(default_factory=list)
    synced: bool = False  # listed once (daemon: ``synced`` is never reset)
    needs_list: bool = True  # the watch broke (or never started): list when reachable
    newest: dict[str, int] = field(default_factory=dict)  # plan's fencing tokens
    seen: dict[str, int] = field(default_factory=dict)  # highest epoch in its view
    fenced: bool = False
    renewed_at: float | None = None
    breaks: int = 0
    breaks_at_cut_off: int = 0
    wake: bool = False
    wake_full: bool = True
    leases: dict[str, float] = field(default_factory=dict)  # its view of renewTimes
    repeats: dict[str, int] = field(default_factory=dict)  # announcement rounds left
    refused: dict[str, str] = field(default_factory=dict)  # AliasIP -> refusal
    carrier_lost: bool = False  # a link-down event it has not handled (paused)
    silent_since: dict[tuple[str, str], float] = field(default_factory=dict)  # R9

    def see(self, name: str, snap: Snapshot) -> bool:
        """Keep ``snap`` if it is not older than the version held (``kube.newer``)."""
        known = self.objects.get(name)
        if known is not None and known.rv > snap.rv:
            return False
        self.objects[name] = snap
        self.seen[name] = max(self.seen.get(name, 0), snap.status.epoch)
        return True


@dataclass
class Operator:
    view: dict[str, Snapshot]
    leases: dict[str, float] = field(default_factory=dict)


# -- the world --------------------------------------------------------------------------


@dataclass
class World:
    behaviour: Behaviour
    names: tuple[str, ...]
    aliasips: dict[str, AliasIP]
    nodes: dict[str, Node]
    agents: dict[str, Agent]
    api: Api
    operator: Operator
    t: float = 0.0
    ticks: int = 0
    stray: dict[tuple[str, str], float] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    trace: list[str] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        behaviour: Behaviour,
        names: tuple[str, ...] = ("n1", "n2", "n3"),
        covers: dict[str, frozenset[str]] | None = None,
        orders: dict[str, tuple[str, ...]] | None = None,
    ) -> World:
        """A cluster with no status yet; ``covers`` by AliasIP (default: every node),
        ``orders``: each AliasIP's candidates in preference order (default ``names``)."""
        covers = covers if covers is not None else {"a0": frozenset(names)}
        orders = orders or {}
        aliasips = {a: aliasip(a, orders.get(a, names)) for a in sorted(covers)}
        objects = {a: Snapshot(i + 1, AliasIPStatus()) for i, a in enumerate(aliasips)}
        return cls(
            behaviour=behaviour,
            names=names,
            aliasips=aliasips,
            nodes={n: Node(frozenset(a for a, c in covers.items() if n in c)) for n in names},
            agents={n: Agent(started_at=0.0) for n in names},
            api=Api(dict(objects), rv=len(objects)),
            operator=Operator(dict(objects)),
        )

    @classmethod
    def steady(cls, behaviour: Behaviour, **kwargs: object) -> World:
        """A cluster that has settled: every AliasIP that can be held is Active."""
        world = cls.create(behaviour, **kwargs)  # type: ignore[arg-type]
        world.settle()
        world.trace.clear()
        return world

    def note(self, what: str) -> None:
        self.trace.append(f"t={self.t:5.1f} {what}")

    # -- the wire ---------------------------------------------------------------------------

    def answering(self, name: str) -> set[str]:
        """Nodes whose MAC answers an ARP request for ``name``'s address now."""
        return {
            n for n, node in self.nodes.items() if node.up and node.link and name in node.kernel
        }

    def working(self, n: str) -> bool:
        """Whether ``n``'s agent runs (alive, not stopped, on a running node)."""
        agent = self.agents[n]
        return agent.alive and not agent.paused and self.nodes[n].up

    def accountable(self, n: str) -> bool:
        """Whether ``n``'s agent runs and has listed the AliasIPs: it answers for what its
        node's kernel does on the wire."""
        return self.working(n) and self.agents[n].synced

    # -- the API ------------------------------------------------------------------------------

    def write(self, name: str, status: AliasIPStatus, annotation: str | None) -> Snapshot:
        self.api.rv += 1
        snap = Snapshot(self.api.rv, status, annotation)
        self.api.objects[name] = snap
        high = self.epochs.get(name, 0)
        if status.epoch < high:
            raise Violation("epoch", f"{name}'s epoch went from {high} to {status.epoch}")
        self.epochs[name] = status.epoch
        for n, agent in self.agents.items():
            if agent.alive and self.nodes[n].up:
                agent.queue.append(WatchEvent(name, snap, self.t))
        return snap

    def request_switchover(self, name: str, target: str | None) -> None:
        """``aliasip-lab switchover``: the annotation (empty: the next standby)."""
        current = self.api.objects[name]
        self.write(name, current.status, target or "")
        self.note(f"switchover {name} to {target or 'the next standby'}")

    # -- the operator -------------------------------------------------------------------------

    def operator_sync(self) -> None:
        """The operator's caches catch up with the API (watch events after a pause)."""
        self.operator.view = dict(self.api.objects)
        self.operator.leases = dict(self.api.leases)

    def observations(self, name: str, annotation: str | None) -> Observations:
        nodes = [
            NodeInfo(n, ready=ConditionStatus.TRUE, unschedulable=node.cordoned)
            for n, node in self.nodes.items()
        ]
        leases = {n: AgentLease(n, at(r), LEASE_S) for n, r in self.operator.leases.items()}
        annotations = {SWITCHOVER_ANNOTATION: annotation} if annotation is not None else None
        return Observations.of(nodes, leases, switchover_request(annotations))

    def operator_decide(self, name: str) -> None:
        """One decision on the operator's view, written with its resourceVersion."""
        seen = self.operator.view[name]
        decision = decide(
            self.aliasips[name], self.observations(name, seen.annotation), seen.status, self.now
        )
        current = self.api.objects[name]
        if decision.changed(seen.status):
            if current.rv != seen.rv:
                self.operator.view[name] = current  # 409: read again, decide later
                return
            status = replace(decision.status, nodes=current.status.nodes)
            current = self.write(name, status, current.annotation)
            self.operator.view[name] = current
            self.note(
                f"operator: {name} activeNode={status.active_node} epoch={status.epoch} "
                f"phase={status.phase}"
            )
        if decision.remove_switchover and current.annotation is not None:
            self.operator.view[name] = self.write(name, current.status, None)

    @property
    def now(self) -> datetime:
        return at(self.t)

    # -- agents: watch, Lease, fence ------------------------------------------------------------

    def relist(self, n: str) -> None:
        """The agent lists the AliasIPs (it must reach the API)."""
        agent = self.agents[n]
        if not (self.working(n) and self.nodes[n].connected):
            return
        for name, snap in self.api.objects.items():
            agent.see(name, snap)
        agent.synced, agent.needs_list = True, False
        agent.wake_full = True

    def deliver(self, n: str, count: int) -> None:
        """The first ``count`` queued watch events reach ``n``'s agent, in order."""
        agent = self.agents[n]
        if not (self.working(n) and self.nodes[n].connected):
            return
        for event in agent.queue[:count]:
            if agent.see(event.name, event.snapshot):
                agent.wake = True
        del agent.queue[:count]

    def break_watch(self, n: str) -> None:
        """The agent's AliasIP watch breaks: queued events are lost, a relist follows."""
        agent = self.agents[n]
        if not agent.alive:
            return
        agent.queue.clear()
        agent.breaks += 1
        agent.needs_list = True

    def _renew(self, n: str) -> None:
        agent = self.agents[n]
        if not (self.working(n) and self.nodes[n].connected):
            return
        self.api.leases[n] = self.t
        agent.leases = dict(self.api.leases)  # its Lease watch
        if agent.renewed_at is None:
            agent.wake_full = True
        agent.renewed_at = self.t
        if agent.fenced:
            self._unfence(n)

    def _unfence(self, n: str) -> None:
        agent = self.agents[n]
        # PRODUCT BEHAVIOUR: today (daemon._unfence) an agent whose AliasIP watch did not
        # break while it was cut off acts on what that watch delivers, however late;
        # issue 10: read everything afresh after any cut-off.
        intact = agent.synced and agent.breaks == agent.breaks_at_cut_off
        if intact and not self.behaviour.relist_after_cut_off:
            agent.fenced = False
            agent.wake_full = True
            return
        agent.fenced = False
        self.relist(n)

    def _fence(self, n: str) -> None:
        agent = self.agents[n]
        if not self.working(n) or agent.fenced:
            return
        base = agent.renewed_at if agent.renewed_at is not None else agent.started_at
        if self.t - base >= FENCE_S:
            agent.fenced = True
            agent.breaks_at_cut_off = agent.breaks
            self.note(f"{n}: cut off from the API (keeps what it holds)")

    def _guard_held(self, n: str) -> None:
        """While cut off, every resync: delete a held alias another host answers for
        (daemon ``_guard_held``; a probe through a link without carrier hears nobody)."""
        node = self.nodes[n]
        for name in sorted(node.kernel):
            if node.link and self.answering(name) - {n}:
                node.kernel.discard(name)
                self.note(f"{n}: guard deletes {name} (another node answers)")

    # -- agents: the link -----------------------------------------------------------------------

    def link_down(self, n: str) -> None:
        self.nodes[n].link = False
        self.note(f"{n}: link down")
        if self.working(n):
            self._carrier_lost(n)
        elif self.agents[n].alive:
            self.agents[n].carrier_lost = True  # handled when the agent runs again

    def _carrier_lost(self, n: str) -> None:
        # PRODUCT BEHAVIOUR: today nothing happens until the next full pass finds the link
        # without carrier (``_keep``), and nothing at all while the agent is cut off;
        # issue 10: loss of carrier deletes held aliases at once, fenced or not.
        agent = self.agents[n]
        agent.carrier_lost = False
        if not self.behaviour.delete_on_carrier_loss:
            return
        node = self.nodes[n]
        if node.kernel:
            self.note(f"{n}: carrier lost, deletes {sorted(node.kernel)}")
        node.kernel.clear()
        agent.repeats.clear()
        agent.wake = True

    def link_up(self, n: str) -> None:
        self.nodes[n].link = True
        self.note(f"{n}: link up")

    # -- agents: lifecycle ----------------------------------------------------------------------

    def kill_agent(self, n: str) -> None:
        """The agent process dies (SIGKILL): its memory is lost, the kernel kept (until
        the aliases' lifetime runs out, R9)."""
        self.agents[n] = Agent(started_at=self.t, alive=False)
        self.note(f"{n}: agent killed")

    def start_agent(self, n: str) -> None:
        if self.agents[n].alive or not self.nodes[n].up:
            return
        self.agents[n] = Agent(started_at=self.t)
        self.note(f"{n}: agent started")
        if not self.nodes[n].link:
            self._carrier_lost(n)  # daemon: CarrierWatch.start checks every link

    def pause_agent(self, n: str) -> None:
        self.agents[n].paused = True
        self.note(f"{n}: agent paused")

    def resume_agent(self, n: str) -> None:
        agent = self.agents[n]
        if not agent.paused:
            return
        agent.paused = False
        self.note(f"{n}: agent resumed")
        if agent.carrier_lost and self.working(n):
            self._carrier_lost(n)

    def stop_node(self, n: str) -> None:
        """The node stops: nothing of it answers, its agent and kernel are gone."""
        node = self.nodes[n]
        node.up, node.kernel = False, set()
        self.agents[n] = Agent(started_at=self.t, alive=False)
        self.note(f"{n}: node stopped")

    def start_node(self, n: str) -> None:
        node = self.nodes[n]
        if node.up:
            return
        node.up, node.link, node.kernel = True, True, set()
        self.agents[n] = Agent(started_at=self.t)
        self.note(f"{n}: node started")

    def partition(self, n: str, breaks_watch: bool) -> None:
        self.nodes[n].connected = False
        if breaks_watch:
            self.break_watch(n)
        self.note(f"{n}: partitioned from the API" + (" (watch broken)" if breaks_watch else ""))

    def heal(self, n: str) -> None:
        self.nodes[n].connected = True
        self.note(f"{n}: partition healed")

    # -- agents: one reconcile pass -------------------------------------------------------------

    def observed(self, name: str, snap: Snapshot) -> Observed:
        aip = self.aliasips[name]
        return Observed(name, f"uid-{name}", aip.spec, snap.status, resource_version=str(snap.rv))

    def agent_pass(self, n: str, full: bool) -> None:
        """One pass of ``n``'s reconcile task (daemon ``_reconcile_task``)."""
        agent = self.agents[n]
        full = full or agent.wake_full
        if not self.working(n) or not agent.synced or agent.fenced or agent.renewed_at is None:
            return
        agent.wake = agent.wake_full = False
        node = self.nodes[n]
        if node.connected:
            agent.leases = dict(self.api.leases)
        observed = {name: self.observed(name, snap) for name, snap in agent.objects.items()}
        held = [held_alias(n, name) for name in sorted(node.kernel)]
        p = plan(n, observed.values(), held, agent.newest)
        agent.newest = {**agent.newest, **p.newest}
        outcomes: dict[str, Outcome] = {}
        for release in p.releases:
            name = _BY_IP[release.held.address.ip]
            agent.repeats.pop(name, None)  # daemon: _stop_repeats for a named AliasIP
            node.kernel.discard(name)
            outcomes[name] = Outcome(released=True)
            self.note(f"{n}: releases {name} ({release.reason})")
        for hold in p.holds:
            if hold.adopt:
                if full:
                    outcomes[hold.aliasip] = self._keep(n, hold)
                continue
            outcome, fresh = self._hold(n, hold)
            outcomes[hold.aliasip] = outcome
            if fresh is not None:
                observed[hold.aliasip] = fresh
        for name in observed:
            mine = name in node.kernel
            base = outcomes.get(name, Outcome())
            outcomes[name] = replace(
                base,
                holds_all=mine,
                holds_any=mine,
                interface=base.interface or (INTERFACE if mine else None),
            )
        if full:
            self._watch_holders(n, observed, outcomes)
        self._report(n, observed, outcomes)

    def _keep(self, n: str, hold: Hold) -> Outcome:
        """An alias held as wanted, on a full pass: the placement is checked again (a
        link without carrier, or a refusal, fails the hold: daemon ``_keep``)."""
        refusal = self._placement_refusal(n, hold.aliasip)
        if refusal is not None:
            return self._hold_failed(n, hold, refusal)
        return Outcome(interface=INTERFACE)

    def _placement_refusal(self, n: str, name: str) -> str | None:
        node = self.nodes[n]
        if name not in node.covers:
            return "NoCoveringInterface: no interface has a stationary address covering it"
        if not node.link:
            return "InterfaceDown: interface eth0 has no carrier (link down)"
        return None

    def _hold(self, n: str, hold: Hold) -> tuple[Outcome, Observed | None]:
        """Probe (unless the plan skips it), add, announce (daemon ``_hold``). Returns the
        outcome and, when the agent read the object afresh first, what it read."""
        agent, node = self.agents[n], self.nodes[n]
        fresh: Observed | None = None
        # PRODUCT BEHAVIOUR: today the add is made on the agent's watch view, however old;
        # issue 10: an agent reads the object afresh (GET) before it adds, and plans the
        # add (epoch, probe) on that: a status read before a gap proves nothing.
        if self.behaviour.read_before_add:
            if not node.connected:
                return Outcome(error="cannot read the AliasIP before adding it"), None
            agent.see(hold.aliasip, self.api.objects[hold.aliasip])
            fresh = self.observed(hold.aliasip, agent.objects[hold.aliasip])
            again = plan(n, [fresh], [], agent.newest)
            agent.newest = {**agent.newest, **again.newest}
            redo = next((h for h in again.holds if h.aliasip == hold.aliasip), None)
            if redo is None:
                return Outcome(), fresh
            hold = redo
        refusal = self._placement_refusal(n, hold.aliasip)
        if refusal is not None:
            return self._hold_failed(n, hold, refusal), fresh
        others = self.answering(hold.aliasip) - {n}
        if hold.probe and others:
            message = f"AddressInUse: {', '.join(sorted(others))} answers for it"
            return self._hold_failed(n, hold, message, heard=True), fresh
        self.note(
            f"{n}: adds {hold.aliasip} at epoch {hold.epoch}"
            + ("" if hold.probe else " (probe skipped: the old holder confirmed)")
        )
        self._check_add(n, hold)
        node.kernel.add(hold.aliasip)
        node.expires_at = self.t + EXPIRY_WINDOW_S
        agent.repeats[hold.aliasip] = self.aliasips[hold.aliasip].spec.announce.count - 1
        return Outcome(interface=INTERFACE), fresh

    def _check_add(self, n: str, hold: Hold) -> None:
        """The rules an add must keep: never at an epoch older than one this agent has
        seen; and (issue 10, act only on a view proven fresh) an add without a wire probe
        only while the API names this node at this very epoch: "the old holder released"
        is only true of the current status.

        (An add after a probe on a view a little behind is safe, and today's agent makes
        such adds: the epoch orders it. A node reports at the epoch of its view, so the
        operator assigns elsewhere only after this node reported at a newer epoch, i.e.
        after it saw that epoch and released.)"""
        agent = self.agents[n]
        seen = agent.seen.get(hold.aliasip, 0)
        if hold.epoch < seen:
            raise Violation("stale-add", f"{n} adds {hold.aliasip} at {hold.epoch} < {seen}")
        current = self.api.objects[hold.aliasip].status
        if not hold.probe and (current.active_node != n or current.epoch != hold.epoch):
            raise Violation(
                "stale-add",
                f"{n} adds {hold.aliasip} at epoch {hold.epoch} while the API names "
                f"{current.active_node} at epoch {current.epoch}"
                + " (its probe skipped: the old holder confirmed)",
            )

    def _hold_failed(self, n: str, hold: Hold, message: str, heard: bool | None = None) -> Outcome:
        agent, node = self.agents[n], self.nodes[n]
        agent.repeats.pop(hold.aliasip, None)
        node.kernel.discard(hold.aliasip)
        if message.startswith("NoCoveringInterface"):
            agent.refused[hold.aliasip] = message
        return Outcome(error=message, heard=heard, observed_at=self.now if heard else None)

    def _watched(self, n: str, obs: Observed) -> str | None:
        # PRODUCT BEHAVIOUR: the shipped ``watched_holder`` watches a releasing node (no
        # holder, a move waiting for it) like a holder, so its silence can be proven
        # (issue 10); before, a standby watched only the node ``activeNode`` names.
        if self.behaviour.watch_releasing or obs.status.active_node is not None:
            return watched_holder(n, obs)
        return None

    def _watch_holders(
        self, n: str, observed: dict[str, Observed], outcomes: dict[str, Outcome]
    ) -> None:
        """A standby probes the addresses of a holder whose Lease lapsed (daemon
        ``_watch_holders``; it cannot look through a dead link or an uncovered subnet).
        With ``dead_man`` it probes from the overdue renewal on and reports silence only
        once it lasted the expiry window."""
        agent, node = self.agents[n], self.nodes[n]
        for name, obs in observed.items():
            holder = self._watched(n, obs)
            if holder is None:
                continue
            key = (name, holder)
            renewed = agent.leases.get(holder)
            lease = AgentLease(holder, at(renewed), LEASE_S) if renewed is not None else None
            lapsed = lease_lapsed(lease, holder, self.now)
            if not lapsed:
                start = watch_from(lease, RENEW_S)
                # PRODUCT BEHAVIOUR: R9's standby watches an overdue holder before it lapses.
                if not self.behaviour.dead_man or (start is not None and self.now < start):
                    agent.silent_since.pop(key, None)
                    continue
            if not node.link or name not in node.covers or name in node.kernel:
                agent.silent_since.pop(key, None)
                continue
            heard = bool(self.answering(name) - {n})
            if self.behaviour.dead_man:
                if heard:
                    agent.silent_since.pop(key, None)
                else:
                    first = agent.silent_since.setdefault(key, self.t)
                if not lapsed or (not heard and self.t - first < EXPIRY_WINDOW_S):
                    agent.wake_full = True  # probed again next tick (every 0.25 s in daemon)
                    continue
            if not report_due(obs.view_of(n), heard, lease):
                continue
            base = outcomes.get(name, Outcome())
            outcomes[name] = replace(base, heard=heard, observed_at=self.now, fresh=True)

    def _view(self, n: str, obs: Observed, outcome: Outcome) -> NodeView | None:
        view = view_for(n, obs, outcome, self.now)
        refusal = self.agents[n].refused.get(obs.name)
        # PRODUCT BEHAVIOUR: today a node whose hold was refused reports standby again as
        # soon as the status no longer names it; issue 10: a refusal every node would
        # repeat stays an error for that generation (so the operator does not name it
        # again and again).
        if (
            self.behaviour.sticky_refusals
            and view is not None
            and refusal is not None
            and view.state is not NodeState.HOLDING
        ):
            return replace(view, state=NodeState.ERROR, message=refusal)
        return view

    def _report(self, n: str, observed: dict[str, Observed], outcomes: dict[str, Outcome]) -> None:
        agent = self.agents[n]
        for name, obs in observed.items():
            outcome = outcomes.get(name, Outcome())
            view = self._view(n, obs, outcome)
            if view is None:
                continue
            if not (needs_write(obs.view_of(n), view) or outcome.fresh):
                continue
            if not self.nodes[n].connected:
                continue  # report-failed: the next pass tries again
            current = self.api.objects[name]
            status = replace(current.status, nodes={**current.status.nodes, n: view})
            agent.see(name, self.write(name, status, current.annotation))
            self.note(
                f"{n}: reports {name} {view.state} at epoch {view.epoch}"
                + (f" heard={view.holder_heard}" if outcome.fresh else "")
                + (f" ({view.message})" if view.message else "")
            )

    # -- announcements ------------------------------------------------------------------------

    def announce(self, n: str) -> None:
        """One round of each pending announcement task of ``n``'s agent."""
        agent, node = self.agents[n], self.nodes[n]
        if not self.working(n):
            return
        for name in sorted(agent.repeats):
            # PRODUCT BEHAVIOUR: today a round is sent while its task lives (a delete by
            # the wire guard does not stop it); issue 10: only while the address is held.
            if self.behaviour.announce_only_while_holding and name not in node.kernel:
                del agent.repeats[name]
                continue
            if node.link and name not in node.kernel:
                raise Violation("announce", f"{n} announces {name}, which it does not hold")
            agent.repeats[name] -= 1
            if agent.repeats[name] <= 0:
                del agent.repeats[name]

    # -- time ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """``TICK_S`` passes: every timer that is due fires."""
        self.t += TICK_S
        self.ticks += 1
        resync_ticks = round(RESYNC_S / TICK_S)
        self._lifetimes()
        for i, n in enumerate(self.names):
            self._renew(n)
            self._fence(n)
            agent = self.agents[n]
            if not self.working(n):
                continue
            if self.nodes[n].connected:
                if agent.needs_list:
                    self.relist(n)
                due = sum(1 for e in agent.queue if self.t - e.sent_at >= MAX_LAG_S)
                self.deliver(n, due)
            self.announce(n)
            resync = (self.ticks + 3 * i) % resync_ticks == 0
            if agent.fenced and resync:
                self._guard_held(n)
            if resync or agent.wake or agent.wake_full:
                self.agent_pass(n, full=resync)
        self._account_strays()

    def _lifetimes(self) -> None:
        """R9 (``deadman``): a running agent renews its kernel's aliases, API or not; an
        unrenewed kernel drops them once the window since the last renewal is over."""
        if not self.behaviour.dead_man:
            return
        for n, node in self.nodes.items():
            if self.working(n):
                node.expires_at = self.t + EXPIRY_WINDOW_S
            elif node.kernel and self.t >= node.expires_at:
                self.note(f"{n}: {sorted(node.kernel)} expire (nobody renewed them)")
                node.kernel.clear()

    def _account_strays(self) -> None:
        for n, node in self.nodes.items():
            accountable = self.working(n) and node.connected
            for name in self.aliasips:
                stray = n in self.answering(name) and self.api.objects[name].status.active_node != n
                key = (n, name)
                if not stray:
                    self.stray.pop(key, None)
                elif accountable:
                    self.stray[key] = self.stray.get(key, 0.0) + TICK_S

    # -- the rules ----------------------------------------------------------------------------

    def check(self) -> None:
        """The safety rules over the current state (after every step).

        ``two-holders``: never two nodes answer for one address. With the dead-man switch
        (R9) no node is excused; without it (``TODAY``), a node whose agent is dead,
        stopped by SIGSTOP or not yet listed cannot be fenced and may answer next to the
        holder if its link came back while its agent was not running, so only nodes whose
        agents run and have listed count. ``stray``: see ``STRAY_BOUND_S``.
        """
        for name in self.aliasips:
            live = {n for n in self.answering(name) if self.accountable(n)}
            if self.behaviour.dead_man:
                live = self.answering(name)  # R9: no node is excused, running agent or not
            if len(live) > 1:
                raise Violation("two-holders", f"{sorted(live)} answer for {name}")
        for (n, name), spent in self.stray.items():
            if spent > STRAY_BOUND_S:
                active = self.api.objects[name].status.active_node
                raise Violation(
                    "stray",
                    f"{n} answers for {name} for {spent} s while the API names {active}",
                )

    def heal_all(self) -> None:
        """Every fault heals, except that a stopped node may stay stopped (a lost node);
        the operator's leader runs again."""
        for n, node in self.nodes.items():
            node.connected, node.cordoned = True, False
            if node.up and not node.link:
                self.link_up(n)
            self.resume_agent(n)
            self.start_agent(n)
        if not any(node.up for node in self.nodes.values()):
            for n in self.names:
                self.start_node(n)
        self.note("every fault healed")

    def settled(self) -> bool:
        for name, aip in self.aliasips.items():
            status = self.api.objects[name].status
            able = [n for n in aip.spec.nodes if self.nodes[n].up and name in self.nodes[n].covers]
            if able:
                holder = status.active_node
                if status.phase is not Phase.ACTIVE or holder is None:
                    return False
                if self.answering(name) != {holder}:
                    return False
                if any(name in node.kernel for m, node in self.nodes.items() if m != holder):
                    return False
            elif status.phase is Phase.ACTIVE or any(
                name in node.kernel for node in self.nodes.values()
            ):
                return False
        return True

    def settle(self) -> float:
        """Liveness: with every fault healed, run the cluster (watch events delivered at
        once, the operator deciding every tick) until ``settled`` has held for
        ``STABLE_S`` with no epoch changing, within ``LIVENESS_BOUND_S``. Returns the
        time it took to settle (before the stable window)."""
        start = self.t
        since: float | None = None
        epochs: dict[str, int] = {}
        while self.t - start <= LIVENESS_BOUND_S + STABLE_S:
            self.tick()
            for n in self.names:
                self.deliver(n, len(self.agents[n].queue))
            self.operator_sync()
            for name in self.aliasips:
                self.operator_decide(name)
            self.check()
            now_epochs = {a: s.status.epoch for a, s in self.api.objects.items()}
            if self.settled() and (since is None or now_epochs == epochs):
                if since is None:
                    since, epochs = self.t, now_epochs
                elif self.t - since >= STABLE_S:
                    return since - start
            else:
                since = None
                if self.t - start > LIVENESS_BOUND_S:
                    break
        summary = {
            a: (s.status.active_node, str(s.status.phase), s.status.epoch)
            for a, s in self.api.objects.items()
        }
        kernels = {n: sorted(node.kernel) for n, node in self.nodes.items()}
        raise Violation(
            "liveness",
            f"not settled {LIVENESS_BOUND_S} s after every fault healed: status "
            f"{summary}, kernels {kernels}",
        )
