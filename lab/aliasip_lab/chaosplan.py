"""The chaos run's fault schedule, from a seed (pure: no clock, no lab).

``plan(seed, ...)`` draws *episodes*: a fault kind, when it starts, whom it targets, how
long until it heals. Episodes overlap (a new one starts every ``MEAN_GAP_S`` on average
while others are still open) and some kinds are combinations on purpose, the ones the
issue found broken: partition together with link-down, stop-node right after a
switchover, a frozen agent asked to switch over then lost, restart-api during a
failover, delete + recreate during a move, an isolated holder coming back.

``steps(episode)`` expands an episode into lab commands at offsets from its start. A
target may be symbolic (``holder``: the node holding the episode's AliasIP when the
episode starts), resolved by the runner from what it last saw; the runner logs the
concrete commands it issued, and a replay issues those, so a run is replayable even
though the plan depends on where the aliases happened to be.

``Resources`` keeps two episodes off one resource at once (a node's LAN cable, its
management cable, its agent, its power, the API server, the operators, an AliasIP): an
episode whose resources are taken is skipped, so a heal never undoes another episode's
fault, and a stopped node never gets its cable back without booting.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MEAN_GAP_S = 2.5
"""Mean time between episode starts: with holds of 1-8 s, two to four are open at once."""
HOLD_S = (1.0, 8.0)
"""How long a fault lasts before its heal (uniform)."""
HOLDER = "holder"

KINDS: dict[str, float] = {
    # single faults (healed after the hold)
    "partition": 1.0,
    "link-down": 1.0,
    "stop-node": 1.0,
    "freeze-agent": 1.0,
    "kill-agent": 0.7,
    "cordon": 0.7,
    "freeze-operator": 0.7,
    "kill-operator": 0.5,
    "freeze-api": 0.5,
    "restart-api": 0.5,
    # the monitoring path (issue 11): heartbeats lost, forged, keys rotated in traffic
    "heartbeat-loss": 0.8,
    "spoof-heartbeats": 0.5,
    "rotate-keys": 0.4,
    # admin actions (nothing to heal)
    "switchover": 1.5,
    "spec-order": 0.6,
    "spec-failback": 0.6,
    "recreate": 0.6,
    # combinations
    "partition+link-down": 1.0,
    "switchover+stop-node": 1.0,
    "freeze+switchover+stop-node": 0.7,
    "stop-node+restart-api": 0.7,
    "switchover+recreate": 0.7,
    "isolate-and-return": 1.0,
}
"""Episode kinds and their relative weights."""


@dataclass(frozen=True)
class Episode:
    """One drawn fault: ``kind`` at offset ``at`` (seconds), on ``node`` (a node name or
    ``HOLDER``), about AliasIP ``aliasip``, healed after ``hold``; ``delta``: the gap
    between the parts of a combination; ``extra``: kind-specific choices."""

    index: int
    at: float
    kind: str
    node: str
    aliasip: str
    hold: float
    delta: float
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One lab command of an episode, ``after`` seconds from its start. ``args`` may name
    ``HOLDER`` (resolved when the episode starts) or ``OTHER`` (a node that is not it)."""

    after: float
    fault: str
    args: dict[str, Any]


OTHER = "other"
HEALS_OF = {
    "partition": "heal",
    "link-down": "link-up",
    "stop-node": "start-node",
    "kill-agent": "start-agent",
    "cordon": "uncordon",
    "kill-operator": "start-operator",
    "freeze": "thaw",
    "delete": "create",
    "block-heartbeats": "unblock-heartbeats",
}
"""Each fault and the command that heals it: every episode issues both."""


def plan(
    seed: int, duration_s: float, nodes: Sequence[str], aliasips: Sequence[str]
) -> list[Episode]:
    """The episodes of a run of ``duration_s`` seconds: the same for the same arguments."""
    if not nodes or not aliasips:
        raise ValueError("a chaos plan needs nodes and AliasIPs")
    rng = random.Random(seed)
    kinds, weights = list(KINDS), list(KINDS.values())
    episodes: list[Episode] = []
    at = rng.uniform(0.5, MEAN_GAP_S)
    while round(at, 3) < duration_s:  # an episode's start is kept to the millisecond
        kind = rng.choices(kinds, weights)[0]
        node = HOLDER if rng.random() < 0.6 or "+" in kind or "return" in kind else None
        extra: dict[str, Any] = {
            "leader": rng.random() < 0.6,
            "order": rng.sample(list(nodes), len(nodes)),
            "failback": rng.choice(["Auto", "Manual"]),
            "to": rng.choice([*nodes, ""]),  # "" asks for the next standby
            "heal_link_first": rng.random() < 0.5,
        }
        episodes.append(
            Episode(
                index=len(episodes),
                at=round(at, 3),
                kind=kind,
                node=node or rng.choice(list(nodes)),
                aliasip=rng.choice(list(aliasips)),
                hold=round(rng.uniform(*HOLD_S), 3),
                delta=round(rng.uniform(0.0, 0.3), 3),
                extra=extra,
            )
        )
        at += rng.expovariate(1 / MEAN_GAP_S)
    return episodes


def steps(episode: Episode) -> list[Step]:
    """The lab commands of ``episode``, in order of ``after``."""
    e, n, a, h, d = episode, {"node": episode.node}, episode.aliasip, episode.hold, episode.delta
    switch = Step(0.0, "switchover", {"name": a, "to": e.extra["to"] or OTHER})
    kind = e.kind
    table: dict[str, list[Step]] = {
        "partition": [Step(0, "partition", n), Step(h, "heal", n)],
        "link-down": [Step(0, "link-down", n), Step(h, "link-up", n)],
        "stop-node": [Step(0, "stop-node", n), Step(h, "start-node", n)],
        "freeze-agent": [Step(0, "freeze", {"target": "agent", **n}),
                         Step(h, "thaw", {"target": "agent", **n})],
        "kill-agent": [Step(0, "kill-agent", n), Step(h, "start-agent", n)],
        "cordon": [Step(0, "cordon", n), Step(h, "uncordon", n)],
        "freeze-operator": [Step(0, "freeze", {"target": "operator", "leader": e.extra["leader"]}),
                            Step(h, "thaw", {"target": "operator"})],
        "kill-operator": [Step(0, "kill-operator", {"leader": e.extra["leader"]}),
                          Step(h, "start-operator", {})],
        "freeze-api": [Step(0, "freeze", {"target": "api"}),
                       Step(min(h, 5.0), "thaw", {"target": "api"})],
        "restart-api": [Step(0, "restart-api", {})],
        "heartbeat-loss": [Step(0, "block-heartbeats", n), Step(h, "unblock-heartbeats", n)],
        "spoof-heartbeats": [Step(0, "spoof-heartbeats", {})],
        "rotate-keys": [Step(0, "rotate-keys", {"step": 1}), Step(1.5, "rotate-keys", {"step": 2}),
                        Step(3.0, "rotate-keys", {"step": 3})],
        "switchover": [switch],
        "spec-order": [Step(0, "spec", {"name": a, "nodes": e.extra["order"]})],
        "spec-failback": [Step(0, "spec", {"name": a, "failback": e.extra["failback"]})],
        "recreate": [Step(0, "delete", {"name": a}),
                     Step(d * 5, "create", {"name": a, "nodes": e.extra["order"]})],
        "partition+link-down": [
            Step(0, "partition", n), Step(d, "link-down", n),
            *_heals(h, n, e.extra["heal_link_first"]),
        ],
        "switchover+stop-node": [switch, Step(d / 3, "stop-node", n), Step(h, "start-node", n)],
        "freeze+switchover+stop-node": [
            Step(0, "freeze", {"target": "agent", **n}),
            Step(0.2, "switchover", {"name": a, "to": e.extra["to"] or OTHER}),
            Step(0.2 + d, "stop-node", n), Step(h + 0.2, "start-node", n),
        ],
        "stop-node+restart-api": [
            Step(0, "stop-node", n), Step(d * 10, "restart-api", {}), Step(h, "start-node", n),
        ],
        "switchover+recreate": [
            switch, Step(d, "delete", {"name": a}),
            Step(d + 1.0, "create", {"name": a, "nodes": e.extra["order"]}),
        ],
        "isolate-and-return": [
            Step(0, "partition", n), Step(0, "link-down", n),
            *_heals(5.0 + h / 2, n, True, gap=d * 3),
        ],
    }  # fmt: skip
    return sorted(table[kind], key=lambda s: s.after)


def _heals(at: float, n: dict[str, Any], link_first: bool, gap: float = 0.5) -> list[Step]:
    first, second = ("link-up", "heal") if link_first else ("heal", "link-up")
    return [Step(at, first, n), Step(at + gap, second, n)]


def resources(episode_steps: Iterable[Step], node: str) -> set[str]:
    """What an episode occupies while it is open (``node``: its resolved node)."""
    held: set[str] = set()
    for step in episode_steps:
        on = step.args.get("node")
        at = node if on == HOLDER else on
        if step.fault in ("partition", "heal"):
            held.add(f"{at}.mgmt")
        elif step.fault in ("link-down", "link-up"):
            held.add(f"{at}.lan")
        elif step.fault in ("stop-node", "start-node"):
            held |= {f"{at}.mgmt", f"{at}.lan", f"{at}.agent", f"{at}.power"}
        elif step.fault in ("kill-agent", "start-agent"):
            held.add(f"{at}.agent")
        elif step.fault in ("cordon", "uncordon"):
            held.add(f"{at}.cordon")
        elif step.fault in ("freeze", "thaw"):
            target = step.args["target"]
            held.add(f"{at}.agent" if target == "agent" else target)
        elif step.fault in ("kill-operator", "start-operator"):
            held.add("operator")
        elif step.fault == "restart-api":
            held.add("api")
        elif step.fault in ("delete", "create"):
            held.add(f"aliasip.{step.args['name']}")
        elif step.fault in ("block-heartbeats", "unblock-heartbeats"):
            held.add(f"{at}.heartbeats")
        elif step.fault == "rotate-keys":
            held.add("keys")
    return held


class Resources:
    """Which episode holds which resource; an episode takes all of its own or none."""

    def __init__(self) -> None:
        self.owner: dict[str, int] = {}

    def take(self, episode: int, wanted: set[str]) -> bool:
        if any(r in self.owner for r in wanted):
            return False
        for r in wanted:
            self.owner[r] = episode
        return True

    def release(self, episode: int) -> None:
        self.owner = {r: e for r, e in self.owner.items() if e != episode}
