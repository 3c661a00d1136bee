"""placement.parse_request and the subnet-independent reserved kinds: table-driven."""

from __future__ import annotations

import ipaddress

import pytest

from aliasip_nodeagent import errors
from aliasip_nodeagent.placement import parse_request, reserved_kind, subnet_reserved_kind


@pytest.mark.parametrize(
    ("text", "interface", "ip", "prefixlen"),
    [
        ("198.18.0.50", None, "198.18.0.50", None),
        ("198.18.0.50/24", None, "198.18.0.50", 24),
        ("198.19.255.254/15", None, "198.19.255.254", 15),
        ("198.18.0.50/32", None, "198.18.0.50", 32),
        ("198.18.0.50/0", None, "198.18.0.50", 0),
        ("  198.18.0.50/24\n", None, "198.18.0.50", 24),
        ("198.18.0.50", "eth1", "198.18.0.50", None),
        ("2001:2::50", None, "2001:2::50", None),
        ("2001:2::50/64", None, "2001:2::50", 64),
        ("2001:2:0:0::50/128", "eth1", "2001:2::50", 128),
        ("2001:0002:0000:0000:0000:0000:0000:0050/120", None, "2001:2::50", 120),
    ],
    ids=[
        "v4-bare",
        "v4-prefix",
        "v4-prefix-15",
        "v4-host-prefix",
        "v4-prefix-0",
        "v4-surrounding-whitespace",
        "v4-with-interface",
        "v6-bare",
        "v6-prefix",
        "v6-host-prefix-interface",
        "v6-long-form",
    ],
)
def test_parse_request_valid(
    text: str, interface: str | None, ip: str, prefixlen: int | None
) -> None:
    request = parse_request(text, interface)
    assert request.ip == ipaddress.ip_address(ip)
    assert request.prefixlen == prefixlen
    assert request.interface == interface


def test_parse_request_str_shows_the_prefix_only_when_given() -> None:
    assert str(parse_request("198.18.0.50/24")) == "198.18.0.50/24"
    assert str(parse_request("2001:2::50")) == "2001:2::50"


@pytest.mark.parametrize(
    ("text", "interface", "fragment"),
    [
        ("not-an-ip", None, "'not-an-ip' is not an IPv4 or IPv6 address"),
        ("", None, "is not an IPv4 or IPv6 address"),
        ("198.18.0", None, "is not an IPv4 or IPv6 address"),
        ("198.18.0.256", None, "is not an IPv4 or IPv6 address"),
        ("198.018.0.1", None, "is not an IPv4 or IPv6 address"),
        ("2001:2::50::1", None, "is not an IPv4 or IPv6 address"),
        ("/24", None, "is not an IPv4 or IPv6 address"),
        ("198.18.0.50/", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/abc", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/-1", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/+24", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/24/24", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/255.255.255.0", None, "prefix must be a number from 0 to 32"),
        ("198.18.0.50/33", None, "prefix must be a number from 0 to 32"),
        ("2001:2::50/129", None, "prefix must be a number from 0 to 128"),
        ("2001:2::50/x", None, "prefix must be a number from 0 to 128"),
        ("198.18.0.50", "", "--interface must not be empty"),
        # U+00B2 SUPERSCRIPT TWO: str.isdigit() says yes, int() says no.
        ("198.18.0.50/\u00b2", None, "prefix must be a number from 0 to 32"),
    ],
    ids=[
        "garbage",
        "empty",
        "three-octets",
        "octet-too-big",
        "leading-zero-octet",
        "v6-two-double-colons",
        "prefix-only",
        "empty-prefix",
        "prefix-letters",
        "prefix-negative",
        "prefix-plus-sign",
        "two-prefixes",
        "netmask-form",
        "v4-prefix-33",
        "v6-prefix-129",
        "v6-prefix-letters",
        "empty-interface",
        "prefix-superscript-digit",
    ],
)
def test_parse_request_invalid(text: str, interface: str | None, fragment: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        parse_request(text, interface)
    assert type(caught.value) is errors.InvalidInput
    assert caught.value.code == "InvalidAddress"
    assert caught.value.exit_code == 2
    assert fragment in caught.value.message
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("127.0.0.5", "loopback"),
        ("127.0.0.1/8", "loopback"),
        ("::1", "loopback"),
        ("224.0.0.1", "multicast"),
        ("239.255.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("ff05::1:3", "multicast"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fe80::1/64", "link-local"),
        ("255.255.255.255", "broadcast"),
        ("::ffff:198.18.0.50", "IPv4-mapped"),
    ],
    ids=[
        "v4-unspecified",
        "v6-unspecified",
        "v4-loopback",
        "v4-loopback-with-prefix",
        "v6-loopback",
        "v4-multicast-local",
        "v4-multicast-admin",
        "v6-multicast-all-nodes",
        "v6-multicast-site",
        "v4-link-local",
        "v6-link-local",
        "v6-link-local-with-prefix",
        "v4-limited-broadcast",
        "v6-ipv4-mapped",
    ],
)
def test_parse_request_reserved(text: str, kind: str) -> None:
    with pytest.raises(errors.ReservedAddress) as caught:
        parse_request(text)
    assert caught.value.code == "ReservedAddress"
    assert caught.value.exit_code == 2
    article = "an" if kind[0] in "aeiouI" else "a"
    assert f"is {article} {kind} address and cannot be an alias" in caught.value.message


@pytest.mark.parametrize(
    "text",
    ["198.18.0.1", "198.19.255.255", "2001:2::1", "2001:2:0:ffff::1"],
    ids=["v4-low", "v4-high", "v6-low", "v6-high"],
)
def test_reserved_kind_none_for_ordinary_addresses(text: str) -> None:
    assert reserved_kind(ipaddress.ip_address(text)) is None


def test_parse_request_refuses_an_ipv6_zone() -> None:
    # A zone suffix makes IPv6Address('2001:2::1%eth1') != IPv6Address('2001:2::1'), so
    # every later equality check (stationary address, already held, release) misses it.
    with pytest.raises(errors.InvalidInput):
        parse_request("2001:2::50%eth1")


@pytest.mark.parametrize(
    ("ip", "network", "kind"),
    [
        ("198.18.0.0", "198.18.0.0/24", "network"),
        ("198.18.0.255", "198.18.0.0/24", "broadcast"),
        ("198.18.0.1", "198.18.0.0/24", None),
        ("198.18.0.254", "198.18.0.0/24", None),
        ("198.18.0.0", "198.18.0.0/30", "network"),
        ("198.18.0.3", "198.18.0.0/30", "broadcast"),
        ("198.18.0.0", "198.18.0.0/31", None),
        ("198.18.0.1", "198.18.0.0/31", None),
        ("198.18.0.0", "198.18.0.0/32", None),
        ("2001:2::", "2001:2::/64", "network"),
        ("2001:2::ffff:ffff:ffff:ffff", "2001:2::/64", None),
        ("2001:2::", "2001:2::/126", "network"),
        ("2001:2::", "2001:2::/127", None),
        ("2001:2::1", "2001:2::/127", None),
        ("2001:2::", "2001:2::/128", None),
    ],
    ids=[
        "v4-24-network",
        "v4-24-broadcast",
        "v4-24-first-host",
        "v4-24-last-host",
        "v4-30-network",
        "v4-30-broadcast",
        "v4-31-low",
        "v4-31-high",
        "v4-32",
        "v6-64-network",
        "v6-64-all-ones-is-no-broadcast",
        "v6-126-network",
        "v6-127-low",
        "v6-127-high",
        "v6-128",
    ],
)
def test_subnet_reserved_kind(ip: str, network: str, kind: str | None) -> None:
    assert subnet_reserved_kind(ipaddress.ip_address(ip), ipaddress.ip_network(network)) == kind
