"""Twenty AliasIPs over five nodes, one node lost: every alias it held moves, each to its
own next preference, each reachable again from the client, the others untouched."""

from __future__ import annotations

import subprocess

from tests.e2e.lab import E2ELab, eventually, outage

COUNT = 20


def _spec(index: int, nodes: list[str]) -> tuple[str, str, list[str]]:
    """AliasIP ``i``: address .60+i, preference rotated so each node is first for four."""
    shift = index % len(nodes)
    return f"many{index:02d}", f"198.18.0.{60 + index}/24", nodes[shift:] + nodes[:shift]


def _reachable(lab: E2ELab, address: str) -> bool:
    done = subprocess.run(
        ["ip", "netns", "exec", lab.lab.lan.client.netns, "ping", "-c", "1", "-W", "1",
         address.split("/")[0]],
        capture_output=True, timeout=5,
    )  # fmt: skip
    return done.returncode == 0


def test_twenty_aliasips_over_five_nodes_one_node_lost(lab5: E2ELab) -> None:
    lab = lab5
    nodes = lab.lab.node_names
    specs = [_spec(i, nodes) for i in range(COUNT)]
    for name, address, preference in specs:
        lab.apply(name, address, nodes=preference)
    for name, address, preference in specs:
        lab.wait_active(name, preference[0], timeout=20)
        lab.wait_held(preference[0], address)
    lost = nodes[2]
    on_lost = [s for s in specs if s[2][0] == lost]
    assert len(on_lost) == COUNT // len(nodes)
    watched = on_lost[0][1]
    probe = lab.probe(watched, 60.0, wait_on=lost)
    epochs = {name: lab.status(name)["epoch"] for name, _, _ in specs}
    lab.lab.stop_node(lost)
    for name, address, preference in on_lost:
        lab.wait_active(name, preference[1], above=epochs[name], timeout=12)
        lab.wait_held(preference[1], address, gone=(lost,))
        eventually(lambda a=address: _reachable(lab, a), 5, f"{address} reachable")  # type: ignore[misc]
    report = probe.finish()
    lab.served_by(report, lost, on_lost[0][2][1])
    outage(f"node with {len(on_lost)} aliases lost, watched {watched}", report)
    for name, address, preference in specs:
        if preference[0] != lost:
            got = lab.status(name)
            assert (got["activeNode"], got["epoch"]) == (preference[0], epochs[name]), name
            assert lab.holders(address, gone=(lost,)) == [preference[0]]
