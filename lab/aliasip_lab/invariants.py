"""The chaos run's invariants, checked over what its witnesses recorded (pure).

Witnesses: the wire observer's report (``aliasip_lab.observer``), kernel truth's presence
intervals (``aliasip_lab.kerneltruth``), status samples of every AliasIP (the runner polls
the API every ``POLL_S``) and the log of lab commands the runner issued. The invariants:

(a) ``split-brain``: never two MACs answering one alias in one observer round. No
    exception: a node whose agent cannot act (killed, frozen) loses its aliases to the
    dead-man switch before a standby may call it silent (docs/design.md R9), so even its
    cable returning after a failover makes no second answer. A round with such a node
    says so in its detail.
(b) ``stray-alias``: never an alias in the kernel of a powered node that is not the
    AliasIP's ``status.activeNode`` (nor the successor a planned move's release step
    names: R11, a direct handoff) for longer than a bounded moment, counted only while
    that node's agent can act: it runs, is not frozen, and either reaches the API (its
    management cable and the API server are up) or has lost its LAN carrier (the carrier
    rule: a node without carrier drops its aliases on its own). The bound is
    ``REACTION_S`` when the node could already act as the status changed, ``RECOVERY_S``
    when it just became able (an agent started, thawed, reconnected: it must notice first).
    A stopped node (``stop-node``) is powered off: its kernel is not on any wire and
    ``start-node`` flushes it, so it is left out while stopped.
(c) ``convergence``: once every fault is healed, each AliasIP is Active with one holder
    (kernel truth has the alias on exactly ``activeNode``) answering on the wire (the
    observer's last answers are that node's MAC alone) within ``CONVERGE_S``.
(d) ``untouched``: every node's addresses other than the aliases (stationary ones and the
    foreign ones the run added) are the same before and after.
(e) ``epoch``: an AliasIP's ``status.epoch`` never decreases (per object uid: a deleted
    and recreated AliasIP starts again).
(f) ``dead-man``: a powered node whose agent is not running or frozen keeps no alias in
    its kernel longer than ``DEADMAN_S`` after the agent stopped (the aliases expire:
    nobody renews their lifetime), holder or not.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from aliasip_lab.kerneltruth import Presence, bare

POLL_S = 0.1
"""How often the runner samples every AliasIP's status (one list call)."""
REACTION_S = 2.0
"""(b) A running agent that reaches the API drops an alias it no longer holds within its
resync interval (1 s in the lab, and at once on a watch event), plus the status
sampling's ``POLL_S`` and API latency on a loaded 2-core host: 2 s."""
RECOVERY_S = 10.0
"""(b) An agent that has just become able to act (started, thawed, its API path back, the
API server restarted) needs to start (imports), reconnect its watches with back-off and
read afresh before it can drop what it should not hold: 10 s."""
CONVERGE_S = 30.0
"""(c) From the moment every fault is healed to one Active holder answering on the wire:
operators restarted by their supervisor (back-off up to 10 s), agents' Leases renewed,
a failover's Lease expiry (3 s) and wire probe, the agents' start-up: 30 s."""
SETTLE_S = 1.0
"""(a) The AliasIP a split-brain round was about is judged by its status sampled this long
after the round: the poller lags the wire by a poll and the API's latency (more while the
API server is frozen), and a failover's first answers and the stale node's reappearance
can fall in the same round."""
SAMPLE_S = 0.02
"""(b) is checked on a 20 ms grid: far below its bounds."""
DEADMAN_S = 2.5
"""(f) The agent's expiry window (a 1 s lifetime plus 1 s for the kernel's own check,
``deadman.expiry_window_s``), plus its last renewal's age when it stopped (at most
0.25 s) and the lab's command latency: 2.5 s."""


@dataclass(frozen=True)
class Violation:
    invariant: str  # split-brain, stray-alias, convergence, untouched, epoch
    at: float | None  # epoch seconds, when known
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sample:
    """One AliasIP as the status poller saw it at ``at`` (``uid`` None: it did not exist)."""

    at: float
    name: str
    uid: str | None
    active: str | None
    phase: str | None
    epoch: int | None
    addresses: tuple[str, ...] = ()
    # The node a planned move's release step names to take over (R11: it may hold on a
    # direct handoff while ``active`` is None), ``aliasip_api.succession``.
    successor: str | None = None


@dataclass(frozen=True)
class Command:
    """A lab command the runner issued: started at ``t``, returned at ``done_t`` (epoch
    seconds), and whether the lab did it (``ok``; a refusal changes nothing)."""

    t: float
    done_t: float
    fault: str
    args: Mapping[str, Any]
    ok: bool


# -- (a) -------------------------------------------------------------------------------------


def agent_runs(
    commands: Iterable[Command], nodes: Sequence[str], start: float
) -> dict[str, Timeline]:
    """Per node, when its agent process runs and is not frozen (whatever its cables and
    the API): the only times it can do anything to its own kernel."""
    state = {n: {"agent": True, "frozen": False} for n in nodes}
    changes: list[tuple[float, str, str, bool]] = []
    for c in commands:
        node = c.args.get("node")
        if not c.ok or node not in state:
            continue
        if c.fault in ("kill-agent", "stop-node"):
            changes += [(c.t, node, "agent", False), (c.t, node, "frozen", False)]
        if c.fault in ("start-agent", "start-node"):
            changes.append((c.done_t, node, "agent", True))
        if c.fault in ("freeze", "thaw") and c.args.get("target") == "agent":
            changes.append((c.t, node, "frozen", c.fault == "freeze"))
    runs: dict[str, Timeline] = {n: [(start, True)] for n in nodes}
    for at, node, key, value in sorted(changes, key=lambda c: c[0]):
        state[node][key] = value
        _append(runs[node], at, state[node]["agent"] and not state[node]["frozen"])
    return runs


def incapacitated(runs: Timeline, at: float, recovery_s: float = RECOVERY_S) -> bool:
    """Whether an agent could not act on its kernel at ``at``: not running, frozen, or
    started or thawed less than ``recovery_s`` before (it must start and look first)."""
    times = [t for t, _ in runs]
    index = max(bisect.bisect_right(times, at) - 1, 0)
    since, running = runs[index]
    return not running or (index > 0 and at - since < recovery_s)


@dataclass(frozen=True)
class SplitBrain:
    """Two MACs answering one alias in observer rounds, from ``since``."""

    address: str
    since: float
    macs: tuple[str, ...]
    rounds: int
    detail: str


def judge_split_brain(
    found: Iterable[SplitBrain],
    node_of_mac: Mapping[str, str],
    runs: Mapping[str, Timeline],
    samples: Iterable[Sample],
    recovery_s: float = RECOVERY_S,
) -> list[Violation]:
    """(a): every two-MAC run is a violation. Its detail names the holder as the status
    said (read ``SETTLE_S`` after the round) and any answering node whose agent could not
    act then (not running, frozen or just back): the first place to look."""
    timeline = holders(samples)
    violations: list[Violation] = []
    for run in found:
        changes = timeline.get(bare(run.address), [])
        index = bisect.bisect_right([t for t, _ in changes], run.since + SETTLE_S) - 1
        holder = changes[index][1] if index >= 0 else None
        stale = [
            n
            for mac in run.macs
            if (n := node_of_mac.get(mac)) is not None
            and n != holder
            and n in runs
            and incapacitated(runs[n], run.since, recovery_s)
        ]
        detail = f"{run.detail}; activeNode {holder}"
        if stale:
            detail += f"; {', '.join(stale)} answered with its agent unable to act"
        violations.append(Violation("split-brain", run.since, detail))
    return violations


def dead_man(
    presences: Iterable[Presence],
    runs: Mapping[str, Timeline],
    powered: Mapping[str, Timeline],
    end: float,
    limit_s: float = DEADMAN_S,
) -> list[Violation]:
    """(f): each alias still in the kernel of a powered node ``limit_s`` after its agent
    stopped running (killed or frozen), while it still was not running."""
    found = []
    for p in presences:
        timeline = runs.get(p.node)
        if timeline is None:
            continue
        power = powered.get(p.node, [(float("-inf"), True)])
        power_times = [t for t, _ in power]
        for i, (stopped, running) in enumerate(timeline):
            if running:
                continue
            if not power[max(bisect.bisect_right(power_times, stopped) - 1, 0)][1]:
                continue  # a stopped node: powered off, its kernel on no wire
            resumed = timeline[i + 1][0] if i + 1 < len(timeline) else end
            deadline = stopped + limit_s
            until = p.until if p.until is not None else end
            if deadline < resumed and p.since < resumed and until > deadline:
                found.append(
                    Violation(
                        "dead-man", deadline,
                        f"{p.address} in {p.node}'s kernel {until - stopped:.2f} s after its "
                        f"agent stopped running (at {stopped:.3f}), past {limit_s:g} s",
                    )
                )  # fmt: skip
    return found


def split_brain_runs(report: Mapping[str, Any]) -> list[SplitBrain]:
    """The observer report's split-brain runs, for ``judge_split_brain``."""
    return [
        SplitBrain(
            alias["address"], run["since"], tuple(run["macs"]), int(run["rounds"]),
            f"{alias['address']}: {run['rounds']} observer round(s) answered by "
            f"{', '.join(run['macs'])} (rounds {run['first_round']}-{run['last_round']})",
        )
        for alias in report["aliases"].values()
        for run in alias["split_brain"]
    ]  # fmt: skip


# -- (e) -------------------------------------------------------------------------------------


def epochs(samples: Iterable[Sample]) -> list[Violation]:
    found = []
    last: dict[tuple[str, str], Sample] = {}
    for sample in sorted(samples, key=lambda s: s.at):
        if sample.uid is None or sample.epoch is None:
            continue
        key = (sample.name, sample.uid)
        before = last.get(key)
        if before is not None and before.epoch is not None and sample.epoch < before.epoch:
            found.append(
                Violation(
                    "epoch", sample.at, f"{sample.name}: epoch {before.epoch} -> {sample.epoch}"
                )
            )
        last[key] = sample
    return found


# -- (d) -------------------------------------------------------------------------------------


def untouched(
    before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]], at: float
) -> list[Violation]:
    found = []
    for node in sorted(before):
        lost = sorted(set(before[node]) - set(after.get(node, ())))
        added = sorted(set(after.get(node, ())) - set(before[node]))
        if lost or added:
            found.append(
                Violation("untouched", at, f"{node}: lost {lost or '-'}, gained {added or '-'}")
            )
    return found


# -- (b) -------------------------------------------------------------------------------------

Timeline = list[tuple[float, bool]]  # (from when, value), sorted


def ability(
    commands: Iterable[Command], nodes: Sequence[str], start: float
) -> tuple[dict[str, Timeline], dict[str, Timeline]]:
    """Per node, when its agent could act (see the module docstring) and when it was
    powered (not stopped), from the commands the lab did."""
    state = {n: {"agent": True, "frozen": False, "mgmt": True, "lan": True, "power": True}
             for n in nodes}  # fmt: skip
    api = {"up": True, "frozen": False}
    changes: list[tuple[float, str | None, str, bool]] = []
    for c in commands:
        if not c.ok:
            continue
        node = c.args.get("node")
        target = c.args.get("target")
        if c.fault in ("kill-agent", "stop-node"):
            changes += [(c.t, node, "agent", False), (c.t, node, "frozen", False)]
        if c.fault == "stop-node":
            changes += [(c.t, node, "mgmt", False), (c.t, node, "lan", False),
                        (c.t, node, "power", False)]  # fmt: skip
        if c.fault == "start-node":
            changes += [(c.t, node, "power", True), (c.done_t, node, "agent", True),
                        (c.done_t, node, "mgmt", True), (c.done_t, node, "lan", True)]  # fmt: skip
        if c.fault == "start-agent":
            changes.append((c.done_t, node, "agent", True))
        if c.fault in ("partition", "heal"):
            changes.append((c.t, node, "mgmt", c.fault == "heal"))
        if c.fault in ("link-down", "link-up"):
            changes.append((c.t, node, "lan", c.fault == "link-up"))
        if c.fault in ("freeze", "thaw") and target == "agent":
            changes.append((c.t, node, "frozen", c.fault == "freeze"))
        if c.fault in ("freeze", "thaw") and target == "api":
            changes.append((c.t, None, "frozen", c.fault == "freeze"))
        if c.fault == "restart-api":
            changes += [(c.t, None, "up", False), (c.done_t, None, "up", True),
                        (c.done_t, None, "frozen", False)]  # fmt: skip
    able: dict[str, Timeline] = {n: [(start, True)] for n in nodes}
    powered: dict[str, Timeline] = {n: [(start, True)] for n in nodes}
    for at, node, key, value in sorted(changes, key=lambda c: c[0]):
        if node is None:
            api[key] = value
        elif node in state:
            state[node][key] = value
        for n in nodes:
            s = state[n]
            reaches_api = s["mgmt"] and api["up"] and not api["frozen"]
            can = s["agent"] and not s["frozen"] and (reaches_api or not s["lan"])
            _append(able[n], at, bool(can))
            _append(powered[n], at, bool(s["power"]))
    return able, powered


def _append(timeline: Timeline, at: float, value: bool) -> None:
    if timeline[-1][1] != value:
        timeline.append((at, value))


def holders(samples: Iterable[Sample]) -> dict[str, list[tuple[float, str | None]]]:
    """Per alias address (bare), ``status.activeNode`` over time: the sampled AliasIP
    whose spec lists the address (None while it does not exist)."""
    return _per_address(samples, lambda sample: sample.active)


def successors(samples: Iterable[Sample]) -> dict[str, list[tuple[float, str | None]]]:
    """Per alias address (bare), the named successor over time (None outside a planned
    move's release step), like ``holders``."""
    return _per_address(samples, lambda sample: sample.successor)


def _per_address(
    samples: Iterable[Sample], value: Callable[[Sample], str | None]
) -> dict[str, list[tuple[float, str | None]]]:
    """Per alias address (bare), ``value`` of the AliasIP whose spec lists it, at each
    change (None while that AliasIP does not exist)."""
    by_address: dict[str, list[tuple[float, str | None]]] = {}
    owner: dict[str, str] = {}  # address -> AliasIP name
    for sample in sorted(samples, key=lambda s: s.at):
        for address in sample.addresses:
            owner[bare(address)] = sample.name
        for address, name in owner.items():
            if name == sample.name:
                now = value(sample) if sample.uid is not None else None
                timeline = by_address.setdefault(address, [])
                if not timeline or timeline[-1][1] != now:
                    timeline.append((sample.at, now))
    return by_address


def stray_aliases(
    presences: Iterable[Presence],
    samples: Iterable[Sample],
    able: Mapping[str, Timeline],
    powered: Mapping[str, Timeline],
    end: float,
    reaction_s: float = REACTION_S,
    recovery_s: float = RECOVERY_S,
) -> list[Violation]:
    """(b): each run of an alias in a non-holder's kernel longer than its allowance. The
    named successor of a release step may hold (R11: a direct handoff)."""
    samples = list(samples)
    timeline = holders(samples)
    named = successors(samples)
    able_times = {n: [t for t, _ in tl] for n, tl in able.items()}
    powered_times = {n: [t for t, _ in tl] for n, tl in powered.items()}

    def lookup(times: list[float], tl: Timeline, t: float) -> tuple[float, bool]:
        return tl[max(bisect.bisect_right(times, t) - 1, 0)]

    found = []
    for p in presences:
        changes = timeline.get(p.address)
        if not changes or p.node not in able:
            continue
        times = [t for t, _ in changes]
        named_changes = named.get(p.address, [])
        named_times = [t for t, _ in named_changes]
        stray_since: float | None = None
        reported = False
        until = p.until if p.until is not None else end
        steps = int((until - p.since) / SAMPLE_S) + 1
        for t in (p.since + i * SAMPLE_S for i in range(steps)):
            index = bisect.bisect_right(times, t) - 1
            holder = changes[index][1] if index >= 0 else p.node  # before any sample: ok
            at_named = bisect.bisect_right(named_times, t) - 1
            successor = named_changes[at_named][1] if at_named >= 0 else None
            if (
                p.node in (holder, successor)
                or not lookup(powered_times[p.node], powered[p.node], t)[1]
            ):
                stray_since, reported = None, False
                continue
            if stray_since is None:
                stray_since = t
            able_since, can = lookup(able_times[p.node], able[p.node], t)
            if not can or reported:
                continue
            deadline = stray_deadline(
                stray_since, able_since, able[p.node][0][0], reaction_s, recovery_s
            )
            if t > deadline:
                found.append(
                    Violation(
                        "stray-alias", stray_since,
                        f"{p.address} in {p.node}'s kernel while activeNode is {holder}: "
                        f"still there {t - stray_since:.2f} s after the status changed, past "
                        f"its deadline {deadline:.3f} (its agent able since {able_since:.3f})",
                    )
                )  # fmt: skip
                reported = True
    return found


def stray_deadline(
    stray_since: float,
    able_since: float,
    run_start: float,
    reaction_s: float = REACTION_S,
    recovery_s: float = RECOVERY_S,
) -> float:
    """(b) By when a stray alias must be gone. An agent able all along: ``reaction_s``
    after the status changed. One that became able during the run (started, thawed, its
    API path back) is recovering for ``recovery_s`` from that moment, whether the status
    changed before it was back or while it was still noticing that it is (it renews its
    Lease, reads afresh): the later of the two deadlines."""
    if able_since > stray_since:
        return able_since + recovery_s
    deadline = stray_since + reaction_s
    if able_since > run_start:
        deadline = max(deadline, able_since + recovery_s)
    return deadline


def first(violations: Iterable[Violation]) -> Violation | None:
    ordered = sorted(violations, key=lambda v: v.at if v.at is not None else float("inf"))
    return next(itertools.islice(ordered, 1), None)
