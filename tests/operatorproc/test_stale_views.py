"""Act only on a view you can prove fresh: a paused leader, the real operator process.

A leader stopped (SIGSTOP) for longer than the agents' Leases last comes back with a view
of them that is seconds old: its watch delivers the renewals made meanwhile only after
the expiry timers have fired. A judgement that a Lease expired must rest on a read made
after the expiry moment (issue 10, failure 6a); until then nothing is written.
"""

from __future__ import annotations

import signal
import time
from typing import Any

from tests.api.support import ApiLab, eventually
from tests.operatorproc.support import (
    ALIASIPS,
    Agents,
    create,
    events,
    leader,
    obj,
    operators,
    prepare,
    report,
    wait_status,
)

# Longer than the agents' 2 s Leases (the leader's view of them is stale when it resumes),
# and short enough that the leader is still within its renew deadline (4 s, renewals every
# 1 s: at most 1 + 2.5 s since its last renewal): a pause past that deadline makes it give
# up leadership, as client-go's does, and which of "give up" and "renew" came first was a
# race this test lost under load.
PAUSE_S = 2.5


def _phases(seen: list[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    """(phase, Ready reason) of every version of the AliasIP the watch delivered."""
    found = []
    for event in seen:
        status = event["object"].get("status") or {}
        conditions = status.get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c["type"] == "Ready"), {})
        found.append((status.get("phase"), ready.get("reason")))
    return found


def test_a_paused_leader_writes_nothing_from_its_stale_lease_view(lab: ApiLab) -> None:
    prepare(lab)
    with Agents(lab).running(), operators(lab, "op-a") as (op,):
        eventually(lambda: leader(lab), timeout=10)
        create(lab, "web")
        wait_status(lab, "web", activeNode="node1", epoch=1)
        report(lab, "web", "node1", "holding", 1)
        report(lab, "web", "node2", "standby", 1)
        wait_status(lab, "web", activeNode="node1", epoch=1, phase="Active")
        eventually(lambda: {e["reason"] for e in events(lab, "web")} == {"Placement", "Held"})
        rv = obj(lab, "web")["metadata"]["resourceVersion"]
        with lab.client.watch(ALIASIPS, resourceVersion=rv) as watch:
            assert watch.status == 200
            for _ in range(3):  # each time the expiry timers are due when it resumes
                op.proc.send_signal(signal.SIGSTOP)
                try:
                    time.sleep(PAUSE_S)
                finally:
                    op.proc.send_signal(signal.SIGCONT)
                time.sleep(2.0)
            seen = watch.quiet(1.0)
        try:
            assert all(phase == "Active" for phase, _ in _phases(seen)), _phases(seen)
            warnings = [e for e in events(lab, "web") if e["type"] == "Warning"]
            assert warnings == []
            assert {e["reason"] for e in events(lab, "web")} == {"Placement", "Held"}
            assert op.proc.poll() is None  # still the leader: it renewed after the pause
            assert leader(lab) == "op-a"
        except AssertionError:
            print(op.output()[-6000:])
            raise
