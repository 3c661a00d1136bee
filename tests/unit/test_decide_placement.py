"""placement.decide_placement and select_release over hand-built host snapshots."""

from __future__ import annotations

import ipaddress

import pytest

from aliasip_nodeagent import errors
from aliasip_nodeagent.hoststate import HostState
from aliasip_nodeagent.placement import (
    AliasRequest,
    Placement,
    decide_placement,
    parse_request,
    select_release,
)
from tests.unit.hosts import (
    MAC_ETH1,
    MAC_ETH2,
    host,
    iface,
    link_scope,
    loopback,
    owned,
    stationary,
)

# A typical dual-stack node: loopback, eth1 on the LAN (v4 /24 + v6 /64), eth2 elsewhere.
NODE = host(
    loopback(),
    iface(
        "eth1",
        stationary("198.18.0.2/24"),
        stationary("2001:2::2/64"),
        link_scope("fe80::2/64"),
    ),
    iface("eth2", stationary("198.19.7.2/24"), stationary("2001:2:0:7::2/64")),
)


def place(text: str, hoststate: HostState, interface: str | None = None) -> Placement:
    return decide_placement(parse_request(text, interface), hoststate)


@pytest.mark.parametrize(
    ("text", "interface", "hoststate", "expected_iface", "expected_address"),
    [
        ("198.18.0.50", None, NODE, "eth1", "198.18.0.50/24"),
        ("198.18.0.50/24", None, NODE, "eth1", "198.18.0.50/24"),
        ("198.18.0.50", "eth1", NODE, "eth1", "198.18.0.50/24"),
        ("198.19.7.50", None, NODE, "eth2", "198.19.7.50/24"),
        ("2001:2::50", None, NODE, "eth1", "2001:2::50/64"),
        ("2001:2::50/64", "eth1", NODE, "eth1", "2001:2::50/64"),
        ("2001:2:0:7::50", None, NODE, "eth2", "2001:2:0:7::50/64"),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", stationary("198.18.0.2/16"), stationary("198.18.0.3/24"))),
            "eth1",
            "198.18.0.50/24",
        ),
        (
            "198.18.5.50",
            None,
            host(iface("eth1", stationary("198.18.0.2/16"), stationary("198.18.0.3/24"))),
            "eth1",
            "198.18.5.50/16",
        ),
        (
            "198.18.0.1",
            None,
            host(iface("eth1", stationary("198.18.0.0/31"))),
            "eth1",
            "198.18.0.1/31",
        ),
        (
            "198.18.0.0",
            None,
            host(iface("eth1", stationary("198.18.0.1/31"))),
            "eth1",
            "198.18.0.0/31",
        ),
        (
            "2001:2::",
            None,
            host(iface("eth1", stationary("2001:2::1/127"))),
            "eth1",
            "2001:2::/127",
        ),
        (
            "198.18.0.50",
            None,
            host(
                iface("eth1", stationary("198.18.0.2/24")),
                iface("eth2", owned("198.18.0.60/24")),
            ),
            "eth1",
            "198.18.0.50/24",
        ),
        (
            "198.18.0.50",
            "eth1",
            host(
                iface("eth1", stationary("198.18.0.2/24")),
                iface("eth2", stationary("198.18.0.3/24")),
            ),
            "eth1",
            "198.18.0.50/24",
        ),
        (
            "198.18.0.50",
            None,
            host(loopback(stationary("198.18.0.9/24")), iface("eth1", stationary("198.18.0.2/24"))),
            "eth1",
            "198.18.0.50/24",
        ),
    ],
    ids=[
        "v4-covering-interface",
        "v4-matching-prefix",
        "v4-explicit-interface",
        "v4-second-interface",
        "v6-covering-interface",
        "v6-explicit-matching-prefix",
        "v6-second-interface",
        "most-specific-subnet-wins",
        "only-the-wider-subnet-covers",
        "v4-31-other-half",
        "v4-31-low-address",
        "v6-127-low-address",
        "owned-address-elsewhere-is-not-coverage",
        "explicit-interface-breaks-a-tie",
        "loopback-coverage-ignored",
    ],
)
def test_decide_placement_places(
    text: str,
    interface: str | None,
    hoststate: HostState,
    expected_iface: str,
    expected_address: str,
) -> None:
    placement = place(text, hoststate, interface)
    chosen = hoststate.by_name(expected_iface)
    assert chosen is not None
    assert placement == Placement(
        index=chosen.index,
        interface=expected_iface,
        mac=chosen.mac,
        address=ipaddress.ip_interface(expected_address),
        already_held=False,
    )


def test_decide_placement_reports_the_chosen_interface_identity() -> None:
    placement = place("198.19.7.50", NODE)
    assert (placement.index, placement.interface, placement.mac) == (3, "eth2", MAC_ETH2)
    placement = place("198.18.0.50", NODE)
    assert (placement.index, placement.interface, placement.mac) == (2, "eth1", MAC_ETH1)


@pytest.mark.parametrize(
    ("text", "interface", "hoststate", "error", "fragments"),
    [
        (
            "198.18.0.50",
            "eth9",
            NODE,
            errors.UnknownInterface,
            ["interface eth9 does not exist"],
        ),
        (
            "198.18.0.50",
            "lo",
            host(loopback(stationary("198.18.0.9/24")), iface("eth1", stationary("198.18.0.2/24"))),
            errors.InterfaceNotCovering,
            ["lo is a loopback interface"],
        ),
        (
            "198.18.0.50",
            "eth2",
            NODE,
            errors.InterfaceNotCovering,
            ["interface eth2 has no stationary address", "198.18.0.50", "198.19.7.2/24"],
        ),
        (
            "2001:2::50",
            "eth2",
            NODE,
            errors.InterfaceNotCovering,
            ["interface eth2 has no stationary address", "2001:2:0:7::2/64"],
        ),
        (
            "198.18.0.50",
            "eth1",
            host(iface("eth1", owned("198.18.0.60/24"), stationary("198.19.0.2/24"))),
            errors.InterfaceNotCovering,
            ["(it has: 198.19.0.2/24)"],
        ),
        (
            "198.18.0.50",
            "eth1",
            host(iface("eth1", stationary("2001:2::2/64"))),
            errors.InterfaceNotCovering,
            ["(it has: none)"],
        ),
        (
            "198.18.9.50",
            None,
            NODE,
            errors.NoCoveringInterface,
            [
                "no interface has a stationary address in a subnet containing 198.18.9.50",
                "IPv4 stationary addresses",
                "eth1: 198.18.0.2/24",
                "eth2: 198.19.7.2/24",
            ],
        ),
        (
            "2001:2:0:9::50",
            None,
            NODE,
            errors.NoCoveringInterface,
            ["IPv6 stationary addresses", "eth1: 2001:2::2/64", "eth2: 2001:2:0:7::2/64"],
        ),
        (
            "198.18.0.50",
            None,
            host(loopback()),
            errors.NoCoveringInterface,
            ["no interfaces"],
        ),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", owned("198.18.0.60/24"))),
            errors.NoCoveringInterface,
            ["eth1: none"],
        ),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", link_scope("198.18.0.2/24"))),
            errors.NoCoveringInterface,
            ["eth1: none"],
        ),
        (
            "198.18.0.50",
            None,
            host(
                iface("eth1", stationary("198.18.0.2/24")),
                iface("eth2", stationary("198.18.0.3/16")),
            ),
            errors.AmbiguousInterface,
            ["several interfaces (eth1, eth2)", "--interface"],
        ),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", stationary("198.18.0.2/24"), admin_up=False, carrier=False)),
            errors.InterfaceDown,
            ["interface eth1 is administratively down"],
        ),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", stationary("198.18.0.2/24"), carrier=False)),
            errors.InterfaceDown,
            ["interface eth1 has no carrier (link down)"],
        ),
        (
            "2001:2::50",
            None,
            host(iface("eth1", stationary("2001:2::2/64"), carrier=False)),
            errors.InterfaceDown,
            ["interface eth1 has no carrier"],
        ),
        (
            "198.18.0.2",
            None,
            NODE,
            errors.StationaryAddress,
            ["198.18.0.2 is already an address of this host (198.18.0.2/24 on eth1)"],
        ),
        (
            "198.19.7.2/24",
            "eth1",
            NODE,
            errors.StationaryAddress,
            ["198.19.7.2/24 on eth2", "aliasip did not add"],
        ),
        (
            "2001:2::2",
            None,
            NODE,
            errors.StationaryAddress,
            ["2001:2::2/64 on eth1"],
        ),
        (
            "198.18.0.60",
            None,
            host(iface("eth1", stationary("198.18.0.2/24"), link_scope("198.18.0.60/32"))),
            errors.StationaryAddress,
            ["198.18.0.60/32 on eth1"],
        ),
        (
            "198.18.0.0",
            None,
            NODE,
            errors.ReservedAddress,
            ["198.18.0.0 is the network address of 198.18.0.0/24 on eth1"],
        ),
        (
            "198.18.0.255",
            None,
            NODE,
            errors.ReservedAddress,
            ["198.18.0.255 is the broadcast address of 198.18.0.0/24 on eth1"],
        ),
        (
            "2001:2::",
            None,
            NODE,
            errors.ReservedAddress,
            ["2001:2:: is the network address of 2001:2::/64 on eth1"],
        ),
        (
            "198.18.0.50/16",
            None,
            NODE,
            errors.PrefixMismatch,
            [
                "198.18.0.50/16 does not match the stationary subnet 198.18.0.0/24 on eth1",
                "use /24 or no prefix",
            ],
        ),
        (
            "198.18.0.50/32",
            None,
            NODE,
            errors.PrefixMismatch,
            ["use /24"],
        ),
        (
            "2001:2::50/128",
            None,
            NODE,
            errors.PrefixMismatch,
            ["stationary subnet 2001:2::/64 on eth1", "use /64 or no prefix"],
        ),
        (
            "198.18.0.50",
            None,
            host(
                iface("eth1", stationary("198.18.0.2/24")),
                iface("eth2", owned("198.18.0.50/24")),
            ),
            errors.HeldElsewhere,
            ["198.18.0.50 is already held by aliasip as 198.18.0.50/24 on eth2", "release it"],
        ),
        (
            "198.18.0.50",
            None,
            host(iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/32"))),
            errors.HeldElsewhere,
            ["198.18.0.50/32 on eth1"],
        ),
        (
            "2001:2::50",
            None,
            host(
                iface("eth1", stationary("2001:2::2/64")),
                iface("eth2", owned("2001:2::50/64")),
            ),
            errors.HeldElsewhere,
            ["2001:2::50/64 on eth2"],
        ),
    ],
    ids=[
        "unknown-interface",
        "explicit-loopback",
        "explicit-not-covering-v4",
        "explicit-not-covering-v6",
        "explicit-owned-is-not-coverage",
        "explicit-only-other-family",
        "no-covering-v4-lists-what-exists",
        "no-covering-v6-lists-what-exists",
        "no-covering-only-loopback",
        "no-covering-owned-does-not-count",
        "no-covering-link-scope-does-not-count",
        "ambiguous-two-covering",
        "admin-down",
        "no-carrier",
        "v6-no-carrier",
        "stationary-address",
        "stationary-address-other-interface",
        "v6-stationary-address",
        "non-global-foreign-address",
        "v4-network-address",
        "v4-broadcast-address",
        "v6-network-address",
        "prefix-mismatch-wider",
        "prefix-mismatch-host",
        "v6-prefix-mismatch",
        "held-on-other-interface",
        "held-same-interface-other-prefix",
        "v6-held-on-other-interface",
    ],
)
def test_decide_placement_refuses(
    text: str,
    interface: str | None,
    hoststate: HostState,
    error: type[errors.AliasError],
    fragments: list[str],
) -> None:
    with pytest.raises(errors.AliasError) as caught:
        place(text, hoststate, interface)
    assert type(caught.value) is error
    for fragment in fragments:
        assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("error", "code", "exit_code"),
    [
        (errors.InvalidInput, "InvalidAddress", 2),
        (errors.ReservedAddress, "ReservedAddress", 2),
        (errors.PrefixMismatch, "PrefixMismatch", 2),
        (errors.StationaryAddress, "StationaryAddress", 2),
        (errors.NoCoveringInterface, "NoCoveringInterface", 3),
        (errors.UnknownInterface, "UnknownInterface", 3),
        (errors.InterfaceNotCovering, "InterfaceNotCovering", 3),
        (errors.AmbiguousInterface, "AmbiguousInterface", 3),
        (errors.InterfaceDown, "InterfaceDown", 3),
        (errors.HeldElsewhere, "HeldElsewhere", 3),
        (errors.NotOwned, "NotOwned", 3),
        (errors.AddressInUse, "AddressInUse", 4),
        (errors.KernelError, "KernelError", 1),
    ],
    ids=lambda value: value.__name__ if isinstance(value, type) else None,
)
def test_error_codes_are_stable(error: type[errors.AliasError], code: str, exit_code: int) -> None:
    exc = error("boom")
    assert (exc.code, exc.exit_code, exc.message) == (code, exit_code, "boom")


@pytest.mark.parametrize(
    ("text", "hoststate", "expected_iface", "expected_address"),
    [
        (
            "198.18.0.50",
            host(iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24"))),
            "eth1",
            "198.18.0.50/24",
        ),
        (
            "198.18.0.50/24",
            host(iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24"))),
            "eth1",
            "198.18.0.50/24",
        ),
        (
            "2001:2::50",
            host(iface("eth1", stationary("2001:2::2/64"), owned("2001:2::50/64"))),
            "eth1",
            "2001:2::50/64",
        ),
    ],
    ids=["v4-held-here", "v4-held-here-with-prefix", "v6-held-here"],
)
def test_decide_placement_already_held(
    text: str, hoststate: HostState, expected_iface: str, expected_address: str
) -> None:
    placement = place(text, hoststate)
    assert placement.already_held is True
    assert placement.interface == expected_iface
    assert placement.address == ipaddress.ip_interface(expected_address)


def test_owned_address_equal_to_alias_is_not_a_stationary_conflict() -> None:
    # The alias itself is ours: it neither refuses as StationaryAddress nor covers itself.
    hoststate = host(iface("eth1", owned("198.18.0.50/24")))
    with pytest.raises(errors.NoCoveringInterface):
        place("198.18.0.50", hoststate)


def test_admin_down_interface_is_still_checked_before_the_link() -> None:
    # Both flags clear: the message names the administrative state, not the carrier.
    hoststate = host(iface("eth1", stationary("198.18.0.2/24"), admin_up=False, carrier=False))
    with pytest.raises(errors.InterfaceDown) as caught:
        place("198.18.0.50", hoststate)
    assert "carrier" not in caught.value.message


def test_explicit_interface_needs_no_unique_coverage() -> None:
    hoststate = host(
        iface("eth1", stationary("198.18.0.2/24")),
        iface("eth2", stationary("198.18.0.3/24")),
    )
    assert place("198.18.0.50", hoststate, "eth2").interface == "eth2"


def test_decide_placement_accepts_a_request_built_directly() -> None:
    request = AliasRequest(ip=ipaddress.ip_address("198.18.0.50"), prefixlen=24, interface="eth1")
    assert decide_placement(request, NODE).address == ipaddress.ip_interface("198.18.0.50/24")


# ---- select_release -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "hoststate", "expected"),
    [
        (
            "198.18.0.50",
            host(iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24"))),
            [("eth1", "198.18.0.50/24")],
        ),
        (
            "198.18.0.50",
            host(iface("eth1", stationary("198.18.0.2/24"))),
            [],
        ),
        (
            "198.18.0.50",
            host(
                iface("eth1", stationary("198.18.0.2/24"), owned("198.18.0.50/24")),
                iface("eth2", owned("198.18.0.50/32"), owned("198.18.0.51/32")),
            ),
            [("eth1", "198.18.0.50/24"), ("eth2", "198.18.0.50/32")],
        ),
        (
            "198.18.0.50",
            host(
                iface("eth1", owned("198.18.0.50/24")),
                iface("eth2", stationary("198.18.0.50/24")),
            ),
            [("eth1", "198.18.0.50/24")],
        ),
        (
            "2001:2::50",
            host(iface("eth1", stationary("2001:2::2/64"), owned("2001:2::50/64"))),
            [("eth1", "2001:2::50/64")],
        ),
    ],
    ids=[
        "held-here",
        "absent-is-nothing-to-do",
        "held-twice",
        "ours-only-when-a-foreign-twin-exists",
        "v6-held-here",
    ],
)
def test_select_release(ip: str, hoststate: HostState, expected: list[tuple[str, str]]) -> None:
    held = select_release(ipaddress.ip_address(ip), hoststate)
    assert [(h.interface, str(h.address)) for h in held] == expected


@pytest.mark.parametrize(
    ("ip", "fragment"),
    [
        ("198.18.0.2", "198.18.0.2/24 on eth1 was not added by aliasip"),
        ("2001:2::2", "2001:2::2/64 on eth1 was not added by aliasip"),
        ("fe80::2", "fe80::2/64 on eth1"),
        ("127.0.0.1", "127.0.0.1/8 on lo"),
    ],
    ids=["v4-stationary", "v6-stationary", "link-local", "loopback"],
)
def test_select_release_refuses_foreign(ip: str, fragment: str) -> None:
    with pytest.raises(errors.NotOwned) as caught:
        select_release(ipaddress.ip_address(ip), NODE)
    assert fragment in caught.value.message


def test_ipv6_zone_does_not_slip_past_the_stationary_check() -> None:
    # '2001:2::2%eth1' is the stationary address of eth1 written with a zone: it must be
    # refused (as invalid input or as stationary), never placed and later marked ours.
    with pytest.raises(errors.AliasError):
        place("2001:2::2%eth1", NODE)
