"""The agent's address changes on a real kernel: prefix, mark, idempotence, ownership."""

from __future__ import annotations

import pytest

from aliasip_lab.lan import Lan
from tests.netns.support import agent, all_addresses, kernel_addresses

OWN_PROTO = 0xA1  # written here, not imported: the test states what the kernel must show
IFA_F_NODAD = 0x02


@pytest.mark.parametrize(
    ("alias", "prefixlen", "label"),
    [("198.18.0.50", 24, "eth1:aip"), ("2001:2::50", 64, None)],
    ids=["ipv4", "ipv6"],
)
def test_apply_adds_alias_with_stationary_prefix_and_mark(
    lan: Lan, alias: str, prefixlen: int, label: str | None
) -> None:
    node = lan.nodes[0]
    stationary_before = kernel_addresses(node)

    run = agent(lan, node, "apply", alias, "--announce-count", "1", "--json")

    assert run.code == 0, run.stderr
    assert run.json["changed"] is True
    assert run.json["prefix"] == prefixlen
    after = kernel_addresses(node)
    added = [a for a in after if a.address == alias]
    assert len(added) == 1
    assert added[0].prefixlen == prefixlen
    assert added[0].proto == OWN_PROTO
    if label is not None:
        assert added[0].label == label
    else:
        assert added[0].flags & IFA_F_NODAD
    assert [a for a in after if a.address != alias] == stationary_before


def test_apply_and_release_are_idempotent(lan: Lan) -> None:
    node = lan.nodes[0]
    first = agent(lan, node, "apply", "198.18.0.50/24", "--announce-count", "1", "--json")
    second = agent(lan, node, "apply", "198.18.0.50/24", "--announce-count", "1", "--json")
    assert (first.code, second.code) == (0, 0)
    assert first.json["changed"] is True
    assert second.json["changed"] is False
    assert second.json["probe_ms"] is None  # we hold it: no probe against ourselves

    listed = agent(lan, node, "list", "--json")
    assert listed.json["aliases"] == [{"address": "198.18.0.50", "prefix": 24, "interface": "eth1"}]

    released = agent(lan, node, "release", "198.18.0.50", "--json")
    again = agent(lan, node, "release", "198.18.0.50", "--json")
    assert (released.code, again.code) == (0, 0)
    assert released.json["changed"] is True
    assert again.json["changed"] is False
    assert "198.18.0.50" not in {a.address for a in kernel_addresses(node)}
    assert agent(lan, node, "list", "--json").json["aliases"] == []


def test_foreign_addresses_survive_release_and_cleanup(lan: Lan) -> None:
    """Addresses someone else added are never deleted, even one that looks like ours."""
    node = lan.nodes[0]
    lan.run(node, "ip", "addr", "add", "198.18.0.60/24", "dev", "eth1")
    lan.run(node, "ip", "addr", "add", "198.18.0.61/24", "dev", "eth1", "label", "eth1:aip")
    lan.run(node, "ip", "addr", "add", "2001:2::60/64", "dev", "eth1", "nodad")
    assert agent(lan, node, "apply", "198.18.0.50", "--announce-count", "1").code == 0
    assert agent(lan, node, "apply", "2001:2::50", "--announce-count", "1").code == 0

    refused = agent(lan, node, "release", "198.18.0.60", "--json")
    assert refused.code == 3
    assert refused.json["error"] == "NotOwned"
    assert "198.18.0.60/24 on eth1 was not added by aliasip" in refused.stderr
    assert agent(lan, node, "release", "198.18.0.61").code == 3

    cleanup = agent(lan, node, "release", "--all", "--json")
    assert cleanup.code == 0
    assert sorted(r["address"] for r in cleanup.json["released"]) == ["198.18.0.50", "2001:2::50"]
    left = {a.address for a in kernel_addresses(node)}
    assert {"198.18.0.60", "198.18.0.61", "2001:2::60", "198.18.0.11"} <= left
    assert not {"198.18.0.50", "2001:2::50"} & left


def test_stationary_addresses_untouched_by_a_whole_cycle(lan: Lan) -> None:
    before = all_addresses(lan)
    node1, node2 = lan.nodes
    assert agent(lan, node1, "apply", "198.18.0.50", "--announce-count", "1").code == 0
    assert agent(lan, node1, "release", "198.18.0.50").code == 0
    assert agent(lan, node2, "apply", "198.18.0.50", "--announce-count", "1").code == 0
    assert agent(lan, node2, "release", "--all").code == 0
    assert all_addresses(lan) == before
