"""Label selectors match like Kubernetes' labels.Selector; candidates keep spec order."""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_api.nodes import parse_node
from aliasip_api.selector import LabelSelector
from aliasip_api.spec import parse_spec
from tests.model.objects import DROP, node, spec


def selector(body: dict[str, Any]) -> LabelSelector:
    parsed = parse_spec(spec(nodeSelector=body)).node_selector
    assert parsed is not None
    return parsed


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    body: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        body["values"] = list(values)
    return body


EDGE = {"role": "edge", "zone": "a"}


@pytest.mark.parametrize(
    ("body", "labels", "matches"),
    [
        ({}, {}, True),
        ({}, EDGE, True),
        ({"matchLabels": {"role": "edge"}}, EDGE, True),
        ({"matchLabels": {"role": "edge"}}, {"role": "core"}, False),
        ({"matchLabels": {"role": "edge"}}, {}, False),
        ({"matchLabels": {"role": "edge", "zone": "b"}}, EDGE, False),
        ({"matchLabels": {"role": ""}}, {"role": ""}, True),
        ({"matchExpressions": [expr("zone", "In", "a", "b")]}, EDGE, True),
        ({"matchExpressions": [expr("zone", "In", "b")]}, EDGE, False),
        ({"matchExpressions": [expr("zone", "In", "a")]}, {}, False),
        ({"matchExpressions": [expr("zone", "NotIn", "b")]}, EDGE, True),
        ({"matchExpressions": [expr("zone", "NotIn", "a")]}, EDGE, False),
        ({"matchExpressions": [expr("zone", "NotIn", "a")]}, {}, True),
        ({"matchExpressions": [expr("zone", "Exists")]}, EDGE, True),
        ({"matchExpressions": [expr("zone", "Exists")]}, {}, False),
        ({"matchExpressions": [expr("zone", "DoesNotExist")]}, EDGE, False),
        ({"matchExpressions": [expr("zone", "DoesNotExist")]}, {}, True),
        (
            {"matchLabels": {"role": "edge"}, "matchExpressions": [expr("zone", "NotIn", "a")]},
            EDGE,
            False,
        ),
        (
            {"matchExpressions": [expr("zone", "Exists"), expr("role", "In", "edge")]},
            EDGE,
            True,
        ),
    ],
    ids=[
        "empty-matches-no-labels",
        "empty-matches-anything",
        "label-equal",
        "label-other-value",
        "label-missing",
        "labels-all-must-hold",
        "label-empty-value",
        "in",
        "in-other-value",
        "in-missing-key",
        "notin",
        "notin-value-listed",
        "notin-missing-key-matches",
        "exists",
        "exists-missing",
        "doesnotexist-present",
        "doesnotexist-missing",
        "labels-and-expressions-anded",
        "expressions-anded",
    ],
)
def test_selector_matches(body: dict[str, Any], labels: dict[str, str], matches: bool) -> None:
    assert selector(body).matches(labels) is matches


def test_selector_round_trips_to_the_stored_body() -> None:
    body = {"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [expr("zone", "In", "a")]}
    assert selector(body).to_dict() == body
    assert selector({}).to_dict() == {}


NODES = [
    parse_node(node("node-c", {"aliasip.io/standby": "true"})),
    parse_node(node("node-a", {"aliasip.io/standby": "true"})),
    parse_node(node("node-b")),
    parse_node(node("node-0", {"aliasip.io/standby": "true"})),
]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, ("node-a", "node-b")),
        ({"nodes": ["node-b", "node-a"]}, ("node-b", "node-a")),
        ({"nodes": ["node-b", "node-gone"]}, ("node-b", "node-gone")),
        ({"nodes": DROP, "nodeSelector": {}}, ("node-0", "node-a", "node-b", "node-c")),
        (
            {"nodes": DROP, "nodeSelector": {"matchLabels": {"aliasip.io/standby": "true"}}},
            ("node-0", "node-a", "node-c"),
        ),
        (
            {
                "nodes": ["node-b", "node-c"],
                "nodeSelector": {"matchLabels": {"aliasip.io/standby": "true"}},
            },
            ("node-b", "node-c", "node-0", "node-a"),
        ),
    ],
    ids=[
        "nodes-in-order",
        "order-is-preference",
        "missing-node-stays-a-candidate",
        "empty-selector-all-by-name",
        "selector-by-name",
        "listed-first-then-selected",
    ],
)
def test_candidates(changes: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert parse_spec(spec(**changes)).candidates(NODES) == expected
