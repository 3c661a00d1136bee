"""The failover benchmark's aliasip trial (``bench.failover.AliasipTrials``) on a real lab:
one planned switchover, measured as the benchmark measures it (client prober and wire
observer over the same window).

A planned switchover releases on the old holder before the new one adds (the operator
names the new node only once the old one reported ``released``), so the wire observer --
which hears every kernel answering its broadcast ARP, unlike the client -- must count no
round answered by two MACs; the benchmark's tables carry that figure per scenario.
"""

from __future__ import annotations

from typing import Any

from bench import peers
from bench.failover import SCENARIOS, AliasipTrials

from tests.e2e.lab import E2ELab


def test_planned_switchover_trial_counts_split_brain_on_the_wire(lab: E2ELab) -> None:
    trials = AliasipTrials(lab.lab, lab.lab.lan)
    trials.create()
    report: dict[str, Any] = trials.trial("planned")

    assert (report["from"], report["to"]) == ("node1", "node2")
    assert report["segments"][-1]["mac"] == lab.mac("node2")
    wire = report["wire"]
    assert wire["rounds"] > 0 and wire["answered"] > 0
    assert [c["macs"] for c in wire["changes"]] == [[lab.mac("node1")], [lab.mac("node2")]]
    assert report["split_brain_rounds"] == 0, wire["split_brain"]
    assert report["longest_split_brain_ms"] == 0.0
    assert report["holderless_ms"] == max(
        (g["ms"] for g in wire["gaps"] if not g["leading"]), default=0.0
    )

    scenario = SCENARIOS["planned"]
    summary = peers.summarize([report])
    assert (summary["split_brain_rounds"], summary["split_brain_trials"]) == (0, 0)
    row = peers.table({scenario: [report]}).splitlines()[-1]
    assert row.startswith(f"| {scenario.name} | 1 |") and "| 0 (0/1; 0) |" in row
