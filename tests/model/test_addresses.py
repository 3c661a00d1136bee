"""aliasip_api.addresses: CIDR syntax with Go's net.ParseCIDR semantics.

kube-apiserver checks ``format: cidr`` with Go's ``net.ParseCIDR``; the model must accept
and refuse exactly the same strings, or an object valid in a cluster would be Invalid
here (or the reverse). Each row states what Go does.
"""

from __future__ import annotations

import ipaddress

import pytest

from aliasip_api.addresses import parse_cidr, parse_prefixlen


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("198.18.0.50/24", "198.18.0.50/24"),
        ("198.18.0.0/15", "198.18.0.0/15"),
        ("198.18.0.50/0", "198.18.0.50/0"),
        ("198.18.0.50/32", "198.18.0.50/32"),
        ("198.18.0.50/024", "198.18.0.50/24"),
        ("2001:2::50/64", "2001:2::50/64"),
        ("2001:0002:0000::0050/128", "2001:2::50/128"),
        ("2001:2::C6:12/64", "2001:2::c6:12/64"),
        ("2001:2::198.18.0.50/120", "2001:2::c612:32/120"),
        ("::ffff:198.18.0.50/120", "::ffff:c612:32/120"),
    ],
    ids=[
        "v4-host-bits-kept",
        "v4-network",
        "v4-prefix-0",
        "v4-prefix-32",
        "prefix-leading-zero-go-accepts",
        "v6",
        "v6-long-form",
        "v6-uppercase",
        "v6-embedded-v4",
        "v4-mapped-parses-reserved-later",
    ],
)
def test_parse_cidr_accepts_what_go_accepts(text: str, expected: str) -> None:
    assert parse_cidr(text) == ipaddress.ip_interface(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("198.18.0.50", "the /PREFIX is missing (write ADDRESS/PREFIX, e.g. 198.18.0.50/24)"),
        ("198.18.0.50/", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/+24", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/-1", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/24 ", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/\u00b2", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/255.255.255.0", "prefix must be a number from 0 to 32"),
        ("198.18.0.50/24/24", "prefix must be a number from 0 to 32"),
        ("2001:2::50/129", "prefix must be a number from 0 to 128"),
        ("198.018.0.50/24", "'198.018.0.50' is not an IPv4 or IPv6 address"),
        (" 198.18.0.50/24", "' 198.18.0.50' is not an IPv4 or IPv6 address"),
        ("198.18.0/24", "'198.18.0' is not an IPv4 or IPv6 address"),
        ("/24", "'' is not an IPv4 or IPv6 address"),
        ("2001:2::50::1/64", "'2001:2::50::1' is not an IPv4 or IPv6 address"),
        (
            "\uff11\uff19\uff18.18.0.50/24",
            "'\uff11\uff19\uff18.18.0.50' is not an IPv4 or IPv6 address",
        ),
        ("2001:2::50%eth1/64", "a zone (%eth1) is not allowed"),
    ],
    ids=[
        "no-prefix",
        "empty-prefix",
        "plus-sign",
        "negative",
        "trailing-space",
        "superscript-digit",
        "netmask",
        "two-prefixes",
        "v6-prefix-129",
        "leading-zero-octet",
        "leading-space",
        "three-octets",
        "no-address",
        "two-double-colons",
        "fullwidth-digits",
        "zone",
    ],
)
def test_parse_cidr_refuses_what_go_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cidr(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("text", "maximum", "expected"),
    [
        ("0", 32, 0),
        ("32", 32, 32),
        ("0032", 32, 32),
        ("33", 32, None),
        ("", 32, None),
        ("1e1", 32, None),
    ],
    ids=["zero", "max", "leading-zeros", "over", "empty", "exponent"],
)
def test_parse_prefixlen(text: str, maximum: int, expected: int | None) -> None:
    assert parse_prefixlen(text, maximum) == expected
