"""Bad input and unsafe requests: a specific error, a non-zero exit, and no change anywhere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from aliasip_lab.lan import Lan
from tests.netns.support import agent, all_addresses


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    code: str
    exit_code: int
    message: str
    setup: Callable[[Lan], None] = field(default=lambda lan: None)


def _admin_down(lan: Lan) -> None:
    lan.run(lan.nodes[0], "ip", "link", "set", "eth1", "down")


def _cable_pulled(lan: Lan) -> None:
    lan.set_link(lan.nodes[0], up=False)


CASES = {
    "no-covering-interface": Case(
        ("198.18.9.9",), "NoCoveringInterface", 3,
        "no interface has a stationary address in a subnet containing 198.18.9.9",
    ),
    "no-covering-interface-v6": Case(
        ("2001:2:0:9::1",), "NoCoveringInterface", 3,
        "no interface has a stationary address in a subnet containing 2001:2:0:9::1",
    ),
    "unknown-interface": Case(
        ("198.18.0.50", "--interface", "eth9"), "UnknownInterface", 3,
        "interface eth9 does not exist",
    ),
    "loopback-interface": Case(
        ("198.18.0.50", "--interface", "lo"), "InterfaceNotCovering", 3,
        "lo is a loopback interface",
    ),
    "interface-admin-down": Case(
        ("198.18.0.50",), "InterfaceDown", 3,
        "interface eth1 is administratively down", _admin_down,
    ),
    "interface-no-carrier": Case(
        ("198.18.0.50",), "InterfaceDown", 3,
        "interface eth1 has no carrier (link down)", _cable_pulled,
    ),
    "equals-stationary": Case(
        ("198.18.0.11",), "StationaryAddress", 2,
        "198.18.0.11 is already an address of this host (198.18.0.11/24 on eth1)",
    ),
    "equals-stationary-v6": Case(
        ("2001:2::b",), "StationaryAddress", 2,
        "2001:2::b is already an address of this host (2001:2::b/64 on eth1)",
    ),
    "network": Case(
        ("198.18.0.0",), "ReservedAddress", 2,
        "198.18.0.0 is the network address of 198.18.0.0/24 on eth1",
    ),
    "network-v6": Case(
        ("2001:2::",), "ReservedAddress", 2,
        "2001:2:: is the network address of 2001:2::/64 on eth1",
    ),
    "broadcast": Case(
        ("198.18.0.255",), "ReservedAddress", 2,
        "198.18.0.255 is the broadcast address of 198.18.0.0/24 on eth1",
    ),
    "limited-broadcast": Case(
        ("255.255.255.255",), "ReservedAddress", 2, "255.255.255.255 is a broadcast address",
    ),
    "multicast": Case(("224.0.0.18",), "ReservedAddress", 2, "224.0.0.18 is a multicast address"),
    "multicast-v6": Case(("ff02::12",), "ReservedAddress", 2, "ff02::12 is a multicast address"),
    "loopback": Case(("127.0.0.2",), "ReservedAddress", 2, "127.0.0.2 is a loopback address"),
    "loopback-v6": Case(("::1",), "ReservedAddress", 2, "::1 is a loopback address"),
    "link-local": Case(
        ("169.254.10.10",), "ReservedAddress", 2, "169.254.10.10 is a link-local address"
    ),
    "link-local-v6": Case(("fe80::50",), "ReservedAddress", 2, "fe80::50 is a link-local address"),
    "unspecified": Case(("0.0.0.0",), "ReservedAddress", 2, "0.0.0.0 is an unspecified address"),
    "unspecified-v6": Case(("::",), "ReservedAddress", 2, ":: is an unspecified address"),
    "prefix-mismatch": Case(
        ("198.18.0.50/25",), "PrefixMismatch", 2,
        "198.18.0.50/25 does not match the stationary subnet 198.18.0.0/24 on eth1",
    ),
    "prefix-mismatch-v6": Case(
        ("2001:2::50/80",), "PrefixMismatch", 2,
        "2001:2::50/80 does not match the stationary subnet 2001:2::/64 on eth1",
    ),
    "not-an-address": Case(
        ("198.18.0.500",), "InvalidAddress", 2, "'198.18.0.500' is not an IPv4 or IPv6 address"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refused_with_specific_error_and_no_change(lan: Lan, case: Case) -> None:
    # Another alias already held elsewhere must not be disturbed by the refusal either.
    assert agent(lan, lan.nodes[1], "apply", "198.18.0.77", "--announce-count", "1").code == 0
    case.setup(lan)
    before = all_addresses(lan)

    run = agent(lan, lan.nodes[0], "apply", *case.args, "--announce-count", "1", "--json")

    assert run.code == case.exit_code, run.stderr
    assert run.json == {"ok": False, "error": case.code, "message": run.json["message"]}
    assert case.message in run.json["message"]
    stderr_lines = run.stderr.strip().splitlines()
    assert len(stderr_lines) == 1
    assert stderr_lines[0].startswith(f"aliasip-agent: {case.code}: ")
    assert all_addresses(lan) == before


@pytest.mark.parametrize(
    "alias", ["198.18.0.50", "2001:2::50"], ids=["arp-reply", "neighbour-advertisement"]
)
def test_probe_refuses_an_address_another_host_answers_for(lan: Lan, alias: str) -> None:
    """Someone (not aliasip) holds the address on node1: node2's apply must not take it."""
    holder, taker = lan.nodes
    prefix = "24" if ":" not in alias else "64"
    lan.run(
        holder,
        "ip",
        "addr",
        "add",
        f"{alias}/{prefix}",
        "dev",
        "eth1",
        "nodad" if ":" in alias else "noprefixroute",
    )
    before = all_addresses(lan)

    run = agent(lan, taker, "apply", alias, "--json")

    assert run.code == 4, run.stderr
    assert run.json["error"] == "AddressInUse"
    assert run.json["message"] == f"{alias} is answered on the wire by {holder.mac}; not taking it"
    assert all_addresses(lan) == before


def test_probe_can_be_skipped_explicitly(lan: Lan) -> None:
    """--no-probe is the admin's override (e.g. the old holder is known to be powered off)."""
    holder, taker = lan.nodes
    assert agent(lan, holder, "apply", "198.18.0.50", "--announce-count", "1").code == 0
    run = agent(lan, taker, "apply", "198.18.0.50", "--no-probe", "--announce-count", "1", "--json")
    assert run.code == 0
    assert run.json["probe_ms"] is None
