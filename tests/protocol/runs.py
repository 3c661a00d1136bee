"""Helpers to drive the protocol model in scripted runs (scenarios, exhaustive search).

``run_for`` lets time pass in a healthy control plane: every tick, each connected agent
receives its queued watch events, the operator catches up and decides. ``fork`` copies a
settled world (cheaply: the parsed AliasIPs are shared, they are frozen).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import TypeVar

from tests.protocol.world import TICK_S, World

T = TypeVar("T")


def run_for(world: World, seconds: float) -> None:
    """Time passes with the operator running and watch events delivered at once to
    every agent that reaches the API; the safety rules are checked at every tick."""
    for _ in range(round(seconds / TICK_S)):
        world.tick()
        world.check()
        for n in world.names:
            world.deliver(n, len(world.agents[n].queue))
        world.operator_sync()
        for name in world.aliasips:
            world.operator_decide(name)
        world.check()


def fork(world: World) -> World:
    """An independent copy of ``world``: its nodes, agents, API store and operator are
    copied one level deep (what they hold, snapshots and views, is immutable)."""
    return replace(
        _clone(world),
        nodes={n: _clone(node) for n, node in world.nodes.items()},
        agents={n: _clone(agent) for n, agent in world.agents.items()},
        api=_clone(world.api),
        operator=_clone(world.operator),
    )


def _clone(obj: T) -> T:
    """A copy of the dataclass ``obj`` whose dict, list and set fields are new."""
    changes = {
        f.name: copy.copy(value)
        for f in fields(obj)  # type: ignore[arg-type]
        if isinstance(value := getattr(obj, f.name), dict | list | set)
    }
    return replace(obj, **changes)  # type: ignore[type-var]


@dataclass(frozen=True)
class Fault:
    """One scripted fault (``name`` reads as the lab's fault command)."""

    name: str
    apply: Callable[[World], None]

    def __repr__(self) -> str:
        return self.name


def faults(nodes: tuple[str, ...]) -> tuple[Fault, ...]:
    """The lab's fault commands on the holder (the first node) and on a standby."""
    holder, standby = nodes[0], nodes[1]
    return (
        Fault(f"partition {holder}", lambda w: w.partition(holder, breaks_watch=False)),
        Fault(f"partition {holder} (watch breaks)", lambda w: w.partition(holder, True)),
        Fault(f"heal {holder}", lambda w: w.heal(holder)),
        Fault(f"link-down {holder}", lambda w: w.link_down(holder)),
        Fault(f"link-up {holder}", lambda w: w.link_up(holder)),
        Fault(f"stop-node {holder}", lambda w: w.stop_node(holder)),
        Fault(f"kill-agent {holder}", lambda w: w.kill_agent(holder)),
        Fault(f"pause-agent {holder}", lambda w: w.pause_agent(holder)),
        Fault(f"resume-agent {holder}", lambda w: w.resume_agent(holder)),
        Fault(f"switchover a0 --to {standby}", lambda w: w.request_switchover("a0", standby)),
        Fault(f"link-down {standby}", lambda w: w.link_down(standby)),
        Fault(f"partition {standby}", lambda w: w.partition(standby, breaks_watch=False)),
    )
