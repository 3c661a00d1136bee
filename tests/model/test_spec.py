"""parse_aliasip / parse_spec: valid objects parse with defaults, invalid ones name the field."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any

import pytest

from aliasip_api.errors import INVALID_SPEC, Finding, InvalidAliasIP
from aliasip_api.selector import LabelSelector, Operator, Requirement
from aliasip_api.spec import Announce, Failback, parse_aliasip, parse_spec
from tests.model.objects import DROP, aliasip, spec

NODE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
IFACE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
DEFAULTS = {"failback": "Manual", "announce": {"count": 4, "intervalMs": 1100}}
SEVENTEEN = [f"198.18.0.{n}/24" for n in range(1, 18)]


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (spec(), {**spec(), **DEFAULTS}),
        (
            {"addresses": ["2001:2::50/64"], "nodeSelector": {}},
            {"addresses": ["2001:2::50/64"], "nodeSelector": {}, **DEFAULTS},
        ),
        (
            spec(addresses=["198.18.0.50/32", "2001:2::50/128", "198.19.255.254/15"]),
            {
                **spec(addresses=["198.18.0.50/32", "2001:2::50/128", "198.19.255.254/15"]),
                **DEFAULTS,
            },
        ),
        (spec(addresses=SEVENTEEN[:16]), {**spec(addresses=SEVENTEEN[:16]), **DEFAULTS}),
        # Go's ParseCIDR accepts leading zeros in the prefix; the model keeps what it means.
        (spec(addresses=["198.18.0.50/024"]), {**spec(), **DEFAULTS}),
        (spec(interface="bond0.100"), {**spec(interface="bond0.100"), **DEFAULTS}),
        (spec(interface="eth1"), {**spec(interface="eth1"), **DEFAULTS}),
        # null for a non-nullable field is pruned, then defaulted, as kube-apiserver does.
        (spec(interface=None, failback=None), {**spec(), **DEFAULTS}),
        (
            spec(failback="Auto", announce={"count": 1, "intervalMs": 10}),
            {**spec(), "failback": "Auto", "announce": {"count": 1, "intervalMs": 10}},
        ),
        (
            spec(announce={"count": 100, "intervalMs": 60000}),
            {**spec(), "failback": "Manual", "announce": {"count": 100, "intervalMs": 60000}},
        ),
        (
            spec(
                nodeSelector={
                    "matchLabels": {"aliasip.io/standby": "true"},
                    "matchExpressions": [
                        {"key": "zone", "operator": "In", "values": ["a", "b"]},
                        {"key": "example.com/retired", "operator": "DoesNotExist"},
                        {"key": "disk", "operator": "Exists", "values": []},
                    ],
                }
            ),
            {
                **spec(
                    nodeSelector={
                        "matchLabels": {"aliasip.io/standby": "true"},
                        "matchExpressions": [
                            {"key": "zone", "operator": "In", "values": ["a", "b"]},
                            {"key": "example.com/retired", "operator": "DoesNotExist"},
                            {"key": "disk", "operator": "Exists"},
                        ],
                    }
                ),
                **DEFAULTS,
            },
        ),
    ],
    ids=[
        "minimal",
        "v6-empty-selector-matches-all",
        "host-prefixes-and-wide-subnet",
        "sixteen-addresses",
        "prefix-leading-zero",
        "vlan-interface",
        "interface",
        "nulls-pruned-then-defaulted",
        "lower-bounds",
        "upper-bounds",
        "selector-expressions",
    ],
)
def test_valid_specs_parse_to_what_the_api_stores(
    body: dict[str, Any], stored: dict[str, Any]
) -> None:
    assert parse_spec(body).to_dict() == stored
    assert parse_aliasip(aliasip(body=body)).spec.to_dict() == stored


def test_parsed_spec_is_typed() -> None:
    parsed = parse_spec(
        spec(
            addresses=["198.18.0.50/24", "2001:2::50/64"],
            nodeSelector={
                "matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]
            },
            failback="Auto",
            announce={"count": 2},
        )
    )
    assert parsed.addresses == (
        ipaddress.ip_interface("198.18.0.50/24"),
        ipaddress.ip_interface("2001:2::50/64"),
    )
    assert parsed.nodes == ("node-a", "node-b")
    assert parsed.node_selector == LabelSelector(
        match_expressions=(Requirement("zone", Operator.NOT_IN, ("a",)),)
    )
    assert parsed.interface is None
    assert parsed.failback is Failback.AUTO
    assert parsed.announce == Announce(count=2, interval_ms=1100)
    assert parsed.announce.interval_s == pytest.approx(1.1)


def test_parse_aliasip_reads_metadata_and_ignores_status() -> None:
    obj = aliasip("web", created="2025-01-02T03:04:05Z", status={"phase": "NotAPhase"})
    parsed = parse_aliasip(obj)
    assert parsed.name == "web"
    assert parsed.uid == "uid-web"
    assert parsed.generation == 1
    assert parsed.creation_timestamp == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_defaults_apply_without_touching_the_input() -> None:
    body = spec(announce={"intervalMs": 500})
    parsed = parse_spec(body)
    assert parsed.failback is Failback.MANUAL
    assert parsed.announce == Announce(count=4, interval_ms=500)
    assert body == spec(announce={"intervalMs": 500})
    assert parse_spec(spec()).announce == Announce(count=4, interval_ms=1100)


INVALID_SPECS: list[tuple[str, dict[str, Any], str, str]] = [
    ("addresses-missing", spec(addresses=DROP), "spec.addresses", "required value is missing"),
    ("addresses-empty", spec(addresses=[]), "spec.addresses", "must have at least 1 item (got 0)"),
    (
        "addresses-seventeen",
        spec(addresses=SEVENTEEN),
        "spec.addresses",
        "must have at most 16 items (got 17)",
    ),
    (
        "addresses-not-a-list",
        spec(addresses="198.18.0.50/24"),
        "spec.addresses",
        "must be of type array (got string)",
    ),
    (
        "address-not-a-string",
        spec(addresses=[5]),
        "spec.addresses[0]",
        "must be of type string (got integer)",
    ),
    (
        "address-without-prefix",
        spec(addresses=["198.18.0.50"]),
        "spec.addresses[0]",
        '"198.18.0.50" is not a valid cidr: the /PREFIX is missing'
        " (write ADDRESS/PREFIX, e.g. 198.18.0.50/24)",
    ),
    (
        "v4-prefix-33",
        spec(addresses=["198.18.0.50/33"]),
        "spec.addresses[0]",
        '"198.18.0.50/33" is not a valid cidr: prefix must be a number from 0 to 32',
    ),
    (
        "v6-prefix-129",
        spec(addresses=["2001:2::50/129"]),
        "spec.addresses[0]",
        '"2001:2::50/129" is not a valid cidr: prefix must be a number from 0 to 128',
    ),
    (
        "netmask-form",
        spec(addresses=["198.18.0.50/255.255.255.0"]),
        "spec.addresses[0]",
        '"198.18.0.50/255.255.255.0" is not a valid cidr: prefix must be a number from 0 to 32',
    ),
    (
        "leading-zero-octet",
        spec(addresses=["198.018.0.50/24"]),
        "spec.addresses[0]",
        "\"198.018.0.50/24\" is not a valid cidr: '198.018.0.50' is not an IPv4 or IPv6 address",
    ),
    (
        "leading-space",
        spec(addresses=[" 198.18.0.50/24"]),
        "spec.addresses[0]",
        "\" 198.18.0.50/24\" is not a valid cidr: ' 198.18.0.50' is not an IPv4 or IPv6 address",
    ),
    (
        "v6-zone",
        spec(addresses=["2001:2::50%eth1/64"]),
        "spec.addresses[0]",
        '"2001:2::50%eth1/64" is not a valid cidr: a zone (%eth1) is not allowed',
    ),
    (
        "address-too-long",
        # Valid for Go (leading zeros everywhere) but longer than any sane CIDR.
        spec(addresses=["2001:0002:0000:0000:0000:0000:0000:0050/0000000064"]),
        "spec.addresses[0]",
        "must have at most 49 characters (got 50)",
    ),
    (
        "address-twice",
        spec(addresses=["198.18.0.50/24", "198.18.0.50/24"]),
        "spec.addresses[1]",
        'duplicate value "198.18.0.50/24"',
    ),
    (
        "no-candidates",
        spec(nodes=DROP),
        "spec",
        "at least one of nodes, nodeSelector is required",
    ),
    ("nodes-empty", spec(nodes=[]), "spec.nodes", "must have at least 1 item (got 0)"),
    (
        "node-name-uppercase",
        spec(nodes=["Node_A"]),
        "spec.nodes[0]",
        f'must match the pattern {NODE_PATTERN} (got "Node_A")',
    ),
    (
        "node-name-trailing-newline",
        spec(nodes=["node-a\n"]),
        "spec.nodes[0]",
        f'must match the pattern {NODE_PATTERN} (got "node-a\\n")',
    ),
    ("node-twice", spec(nodes=["node-a", "node-a"]), "spec.nodes[1]", 'duplicate value "node-a"'),
    (
        "failback-lowercase",
        spec(failback="auto"),
        "spec.failback",
        'must be one of "Manual", "Auto" (got "auto")',
    ),
    (
        "announce-count-0",
        spec(announce={"count": 0}),
        "spec.announce.count",
        "must be greater than or equal to 1 (got 0)",
    ),
    (
        "announce-count-101",
        spec(announce={"count": 101}),
        "spec.announce.count",
        "must be less than or equal to 100 (got 101)",
    ),
    (
        "announce-count-string",
        spec(announce={"count": "4"}),
        "spec.announce.count",
        "must be of type integer (got string)",
    ),
    (
        "announce-count-float",
        spec(announce={"count": 4.5}),
        "spec.announce.count",
        "must be of type integer (got number)",
    ),
    (
        "announce-count-bool",
        spec(announce={"count": True}),
        "spec.announce.count",
        "must be of type integer (got boolean)",
    ),
    (
        "announce-interval-9",
        spec(announce={"intervalMs": 9}),
        "spec.announce.intervalMs",
        "must be greater than or equal to 10 (got 9)",
    ),
    (
        "announce-interval-60001",
        spec(announce={"intervalMs": 60001}),
        "spec.announce.intervalMs",
        "must be less than or equal to 60000 (got 60001)",
    ),
    (
        "announce-not-an-object",
        spec(announce=4),
        "spec.announce",
        "must be of type object (got integer)",
    ),
    (
        "interface-16-characters",
        spec(interface="abcdefghijklmnop"),
        "spec.interface",
        "must have at most 15 characters (got 16)",
    ),
    (
        "interface-trailing-newline",
        spec(interface="eth0\n"),
        "spec.interface",
        f'must match the pattern {IFACE_PATTERN} (got "eth0\\n")',
    ),
    (
        "interface-slash",
        spec(interface="eth/0"),
        "spec.interface",
        f'must match the pattern {IFACE_PATTERN} (got "eth/0")',
    ),
    (
        "interface-dot",
        spec(interface="."),
        "spec.interface",
        f'must match the pattern {IFACE_PATTERN} (got ".")',
    ),
    ("unknown-field", spec(failbak="Auto"), "spec.failbak", "unknown field"),
    (
        "unknown-nested-field",
        spec(announce={"counts": 2}),
        "spec.announce.counts",
        "unknown field",
    ),
    (
        "selector-not-an-object",
        spec(nodeSelector="role=edge"),
        "spec.nodeSelector",
        "must be of type object (got string)",
    ),
    (
        "selector-in-without-values",
        spec(nodeSelector={"matchExpressions": [{"key": "zone", "operator": "In"}]}),
        "spec.nodeSelector.matchExpressions[0].values",
        "must be non-empty when operator is In",
    ),
    (
        "selector-notin-empty-values",
        spec(
            nodeSelector={"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": []}]}
        ),
        "spec.nodeSelector.matchExpressions[0].values",
        "must be non-empty when operator is NotIn",
    ),
    (
        "selector-exists-with-values",
        spec(
            nodeSelector={
                "matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["a"]}]
            }
        ),
        "spec.nodeSelector.matchExpressions[0].values",
        "must be empty when operator is Exists",
    ),
    (
        "selector-unknown-operator",
        spec(
            nodeSelector={"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}
        ),
        "spec.nodeSelector.matchExpressions[0].operator",
        'must be one of "In", "NotIn", "Exists", "DoesNotExist" (got "Gt")',
    ),
    (
        "selector-operator-missing",
        spec(nodeSelector={"matchExpressions": [{"key": "zone"}]}),
        "spec.nodeSelector.matchExpressions[0].operator",
        "required value is missing",
    ),
    (
        "selector-bad-expression-key",
        spec(nodeSelector={"matchExpressions": [{"key": "-zone", "operator": "Exists"}]}),
        "spec.nodeSelector.matchExpressions[0].key",
        f'must match the pattern {KEY_PATTERN} (got "-zone")',
    ),
    (
        "selector-bad-label-value",
        spec(nodeSelector={"matchLabels": {"role": "edge router"}}),
        "spec.nodeSelector.matchLabels[role]",
        f'must match the pattern {VALUE_PATTERN} (got "edge router")',
    ),
    (
        "selector-bad-label-key",
        spec(nodeSelector={"matchLabels": {"edge role": "yes"}}),
        "spec.nodeSelector.matchLabels",
        f'invalid key "edge role": must match the pattern {KEY_PATTERN} (got "edge role")',
    ),
]


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [case[1:] for case in INVALID_SPECS],
    ids=[case[0] for case in INVALID_SPECS],
)
def test_invalid_spec_names_the_field(body: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(InvalidAliasIP) as caught:
        parse_spec(body)
    assert caught.value.findings == (Finding(path, message, INVALID_SPEC),)
    assert str(caught.value) == f"{path}: {message}"
    assert caught.value.reason == INVALID_SPEC
    with pytest.raises(InvalidAliasIP) as whole:
        parse_aliasip(aliasip(body=body))
    assert whole.value.findings == caught.value.findings


def without(obj: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != key}


INVALID_OBJECTS: list[tuple[str, Any, str, str]] = [
    ("not-an-object", ["web"], "", "an AliasIP must be an object"),
    ("spec-missing", without(aliasip(), "spec"), "spec", "required value is missing"),
    ("spec-null", aliasip(body=None) | {"spec": None}, "spec", "required value is missing"),
    ("spec-not-an-object", aliasip() | {"spec": []}, "spec", "must be of type object (got array)"),
    ("wrong-kind", aliasip() | {"kind": "Service"}, "kind", "must be AliasIP (got 'Service')"),
    (
        "wrong-version",
        aliasip() | {"apiVersion": "aliasip.io/v1"},
        "apiVersion",
        "must be aliasip.io/v1alpha1 (got 'aliasip.io/v1')",
    ),
    ("unknown-top-level-field", aliasip() | {"data": {}}, "data", "unknown field"),
    ("name-missing", aliasip(name=""), "metadata.name", "required value is missing"),
    (
        "creation-timestamp-garbage",
        aliasip(created="yesterday"),
        "metadata.creationTimestamp",
        "'yesterday' is not an RFC 3339 date-time (like 2006-01-02T15:04:05Z)",
    ),
]


@pytest.mark.parametrize(
    ("obj", "path", "message"),
    [case[1:] for case in INVALID_OBJECTS],
    ids=[case[0] for case in INVALID_OBJECTS],
)
def test_invalid_object_names_the_field(obj: Any, path: str, message: str) -> None:
    with pytest.raises(InvalidAliasIP) as caught:
        parse_aliasip(obj)
    assert caught.value.findings == (Finding(path, message, INVALID_SPEC),)


def test_every_finding_is_reported_at_once() -> None:
    body = spec(addresses=["198.18.0.50"], failback="auto", announce={"count": 0})
    with pytest.raises(InvalidAliasIP) as caught:
        parse_spec(body)
    assert [f.path for f in caught.value.findings] == [
        "spec.addresses[0]",
        "spec.failback",
        "spec.announce.count",
    ]
    assert str(caught.value).count("; ") == 2


def test_an_object_not_yet_created_has_no_timestamp() -> None:
    assert parse_aliasip(aliasip(created=None)).creation_timestamp is None
