"""Semantic checks: duplicates, reserved addresses, stationary addresses, conflicts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasip_api.addresses import IPAddress
from aliasip_api.errors import (
    ADDRESS_CONFLICT,
    DUPLICATE_ADDRESS,
    INVALID_SPEC,
    RESERVED_ADDRESS,
    STATIONARY_ADDRESS,
    Finding,
)
from aliasip_api.findings import address_findings, conflict_findings, phase_for, stationary_findings
from aliasip_api.nodes import parse_node
from aliasip_api.spec import AliasIP, parse_aliasip, parse_spec
from aliasip_api.status import Phase
from tests.model.objects import aliasip, node, spec


@pytest.mark.parametrize(
    ("addresses", "expected"),
    [
        (["198.18.0.50/24", "2001:2::50/64"], []),
        (["198.18.0.0/31", "198.18.0.1/31", "2001:2::/127"], []),
        (["198.18.0.0/32", "2001:2::/128"], []),
        (
            ["198.18.0.50/24", "198.18.0.50/32"],
            [
                (
                    "spec.addresses[1]",
                    "198.18.0.50 is the same address as spec.addresses[0] (198.18.0.50/24)",
                    DUPLICATE_ADDRESS,
                )
            ],
        ),
        (
            ["2001:2::50/64", "2001:2:0::50/120"],
            [
                (
                    "spec.addresses[1]",
                    "2001:2::50 is the same address as spec.addresses[0] (2001:2::50/64)",
                    DUPLICATE_ADDRESS,
                )
            ],
        ),
        (
            ["198.18.0.0/24"],
            [
                (
                    "spec.addresses[0]",
                    "198.18.0.0 is the network address of 198.18.0.0/24 and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["198.18.0.255/24"],
            [
                (
                    "spec.addresses[0]",
                    "198.18.0.255 is the broadcast address of 198.18.0.0/24 and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["198.18.0.3/30"],
            [
                (
                    "spec.addresses[0]",
                    "198.18.0.3 is the broadcast address of 198.18.0.0/30 and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["2001:2::/64"],
            [
                (
                    "spec.addresses[0]",
                    "2001:2:: is the network address of 2001:2::/64 and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["224.0.0.1/4"],
            [
                (
                    "spec.addresses[0]",
                    "224.0.0.1 is a multicast address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["ff02::1/16"],
            [
                (
                    "spec.addresses[0]",
                    "ff02::1 is a multicast address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["127.0.0.5/8"],
            [
                (
                    "spec.addresses[0]",
                    "127.0.0.5 is a loopback address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["::1/128"],
            [
                (
                    "spec.addresses[0]",
                    "::1 is a loopback address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["169.254.1.1/16"],
            [
                (
                    "spec.addresses[0]",
                    "169.254.1.1 is a link-local address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["fe80::1/64"],
            [
                (
                    "spec.addresses[0]",
                    "fe80::1 is a link-local address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["0.0.0.0/32"],
            [
                (
                    "spec.addresses[0]",
                    "0.0.0.0 is an unspecified address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["255.255.255.255/32"],
            [
                (
                    "spec.addresses[0]",
                    "255.255.255.255 is a broadcast address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["::ffff:198.18.0.50/128"],
            [
                (
                    "spec.addresses[0]",
                    "::ffff:c612:32 is an IPv4-mapped address and cannot be an alias",
                    RESERVED_ADDRESS,
                )
            ],
        ),
        (
            ["198.18.0.50/24", "198.18.0.0/24", "198.18.0.50/25"],
            [
                (
                    "spec.addresses[1]",
                    "198.18.0.0 is the network address of 198.18.0.0/24 and cannot be an alias",
                    RESERVED_ADDRESS,
                ),
                (
                    "spec.addresses[2]",
                    "198.18.0.50 is the same address as spec.addresses[0] (198.18.0.50/24)",
                    DUPLICATE_ADDRESS,
                ),
            ],
        ),
    ],
    ids=[
        "ordinary",
        "point-to-point-prefixes-have-no-network",
        "host-prefixes",
        "v4-same-ip-other-prefix",
        "v6-same-ip-other-spelling",
        "v4-network",
        "v4-broadcast",
        "v4-30-broadcast",
        "v6-network",
        "v4-multicast",
        "v6-multicast",
        "v4-loopback",
        "v6-loopback",
        "v4-link-local",
        "v6-link-local",
        "unspecified",
        "limited-broadcast",
        "ipv4-mapped",
        "several",
    ],
)
def test_address_findings(addresses: list[str], expected: list[tuple[str, str, str]]) -> None:
    found = address_findings(parse_spec(spec(addresses=addresses)))
    assert found == tuple(Finding(*e) for e in expected)


def test_stationary_addresses_of_nodes_cannot_be_aliases() -> None:
    nodes = [
        parse_node(node("node-a", InternalIP="198.18.0.10", Hostname="node-a")),
        parse_node(node("node-b", InternalIP="198.18.0.11", ExternalIP="2001:2::11")),
        parse_node(node("node-c", InternalIP="not-an-ip")),
    ]
    parsed = parse_spec(spec(addresses=["198.18.0.50/24", "198.18.0.11/24", "2001:2::11/64"]))
    assert stationary_findings(parsed, nodes) == (
        Finding(
            "spec.addresses[1]",
            "198.18.0.11 is a stationary address (InternalIP of node node-b)"
            " and cannot be an alias",
            STATIONARY_ADDRESS,
        ),
        Finding(
            "spec.addresses[2]",
            "2001:2::11 is a stationary address (ExternalIP of node node-b) and cannot be an alias",
            STATIONARY_ADDRESS,
        ),
    )
    assert stationary_findings(parse_spec(spec()), nodes) == ()


def claimant(name: str, created: str | None, *addresses: str) -> AliasIP:
    return parse_aliasip(aliasip(name, spec(addresses=list(addresses)), created=created))


T0 = "2025-01-01T00:00:00Z"
T1 = "2025-01-01T00:00:01Z"


@pytest.mark.parametrize(
    ("aliasips", "expected"),
    [
        (
            [claimant("a", T0, "198.18.0.50/24"), claimant("b", T0, "198.18.0.51/24")],
            {"a": [], "b": []},
        ),
        (
            [claimant("young", T1, "198.18.0.50/24"), claimant("old", T0, "198.18.0.50/32")],
            {
                "old": [],
                "young": [
                    (
                        "spec.addresses[0]",
                        "198.18.0.50 is already claimed by AliasIP old,"
                        " created earlier (2025-01-01T00:00:00Z)",
                    )
                ],
            },
        ),
        (
            [claimant("b", T0, "2001:2::50/64"), claimant("a", T0, "2001:2::50/64")],
            {
                "a": [],
                "b": [
                    (
                        "spec.addresses[0]",
                        "2001:2::50 is already claimed by AliasIP a,"
                        " created at the same time (2025-01-01T00:00:00Z) and first by name",
                    )
                ],
            },
        ),
        (
            [claimant("draft", None, "198.18.0.50/24"), claimant("live", T1, "198.18.0.50/24")],
            {
                "live": [],
                "draft": [
                    (
                        "spec.addresses[0]",
                        "198.18.0.50 is already claimed by AliasIP live,"
                        " created earlier (2025-01-01T00:00:01Z)",
                    )
                ],
            },
        ),
        (
            # b loses 198.18.0.50 to a, and still keeps 198.18.0.51 from c: the rule is local.
            [
                claimant("a", T0, "198.18.0.50/24"),
                claimant("b", T1, "198.18.0.51/24", "198.18.0.50/24"),
                claimant("c", "2025-01-01T00:00:02Z", "198.18.0.51/24"),
            ],
            {
                "a": [],
                "b": [
                    (
                        "spec.addresses[1]",
                        "198.18.0.50 is already claimed by AliasIP a,"
                        " created earlier (2025-01-01T00:00:00Z)",
                    )
                ],
                "c": [
                    (
                        "spec.addresses[0]",
                        "198.18.0.51 is already claimed by AliasIP b,"
                        " created earlier (2025-01-01T00:00:01Z)",
                    )
                ],
            },
        ),
    ],
    ids=[
        "disjoint",
        "younger-loses",
        "tie-broken-by-name",
        "not-yet-created-is-youngest",
        "local-rule",
    ],
)
def test_conflict_findings(
    aliasips: list[AliasIP], expected: dict[str, list[tuple[str, str]]]
) -> None:
    found = conflict_findings(aliasips)
    assert found == {
        name: tuple(Finding(p, m, ADDRESS_CONFLICT) for p, m in items)
        for name, items in expected.items()
    }


POOL = [f"198.18.0.{n}" for n in range(1, 5)] + [f"2001:2::{n}" for n in range(1, 5)]
BASE = datetime(2025, 1, 1, tzinfo=UTC)


@st.composite
def claimants(draw: st.DrawFn) -> list[AliasIP]:
    names = draw(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=6, unique=True))
    result = []
    for name in names:
        ips = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=3))
        addresses = [f"{ip}/{32 if ':' not in ip else 128}" for ip in ips]
        # Few distinct times so that ties (broken by name) and "not yet created" happen.
        seconds = draw(st.sampled_from([None, 0, 0, 1, 2]))
        created = (
            None
            if seconds is None
            else (BASE + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        result.append(claimant(name, created, *dict.fromkeys(addresses)))
    return result


@settings(max_examples=300, deadline=None)
@given(claimants())
def test_exactly_the_oldest_claimant_of_each_address_keeps_it(aliasips: list[AliasIP]) -> None:
    found = conflict_findings(aliasips)
    assert set(found) == {a.name for a in aliasips}
    lost: dict[str, set[IPAddress]] = {
        a.name: {a.spec.addresses[int(f.path.split("[")[1].rstrip("]"))].ip for f in found[a.name]}
        for a in aliasips
    }
    for ip in {address.ip for a in aliasips for address in a.spec.addresses}:
        claimants_of_ip = [a for a in aliasips if ip in {x.ip for x in a.spec.addresses}]
        keepers = [a for a in claimants_of_ip if ip not in lost[a.name]]
        oldest = min(claimants_of_ip, key=lambda a: a.seniority)
        assert keepers == [oldest]
        for loser in claimants_of_ip:
            if loser is not oldest:
                message = next(
                    f.message for f in found[loser.name] if f.message.startswith(f"{ip} ")
                )
                assert f"AliasIP {oldest.name}," in message
    for a in aliasips:
        assert (phase_for(found[a.name]) is Phase.CONFLICT) == bool(lost[a.name])


@settings(max_examples=50, deadline=None)
@given(claimants())
def test_conflicts_do_not_depend_on_the_order_objects_are_listed(aliasips: list[AliasIP]) -> None:
    expected = conflict_findings(aliasips)
    for order in itertools.islice(itertools.permutations(aliasips), 24):
        assert conflict_findings(order) == expected


@pytest.mark.parametrize(
    ("reasons", "phase"),
    [
        ([], None),
        ([ADDRESS_CONFLICT], Phase.CONFLICT),
        ([ADDRESS_CONFLICT, ADDRESS_CONFLICT], Phase.CONFLICT),
        ([RESERVED_ADDRESS], Phase.INVALID),
        ([ADDRESS_CONFLICT, STATIONARY_ADDRESS], Phase.INVALID),
        ([INVALID_SPEC], Phase.INVALID),
    ],
    ids=["none", "conflict", "conflicts", "reserved", "invalid-beats-conflict", "schema"],
)
def test_phase_for(reasons: list[str], phase: Phase | None) -> None:
    assert phase_for(Finding("spec", "m", r) for r in reasons) is phase
