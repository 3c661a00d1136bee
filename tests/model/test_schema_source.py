"""The CRD is the single source of the schema: the model reads enums, bounds and defaults
from it, and the few things Python must name (enum members) are pinned to it here."""

from __future__ import annotations

from enum import StrEnum

import pytest

from aliasip_api.conditions import ConditionStatus
from aliasip_api.crd import packaged_crd
from aliasip_api.errors import Finding, InvalidAliasIP
from aliasip_api.selector import Operator
from aliasip_api.spec import Failback, parse_spec
from aliasip_api.status import NodeState, Phase
from tests.model.objects import crd_document, edited_crd, openapi, spec


@pytest.mark.parametrize(
    ("enum", "fields"),
    [
        (Failback, ("spec", "failback")),
        (Operator, ("spec", "nodeSelector", "matchExpressions", "[]", "operator")),
        (Phase, ("status", "phase")),
        (NodeState, ("status", "nodes", "{}", "state")),
        (ConditionStatus, ("status", "conditions", "[]", "status")),
    ],
    ids=["failback", "operator", "phase", "node-state", "condition-status"],
)
def test_python_enums_mirror_the_crd(enum: type[StrEnum], fields: tuple[str, ...]) -> None:
    assert tuple(member.value for member in enum) == packaged_crd().enum(*fields)


def test_an_enum_narrowed_in_the_crd_is_enforced_without_python_changes() -> None:
    document = crd_document()
    openapi(document)["properties"]["spec"]["properties"]["failback"]["enum"] = ["Manual"]
    with pytest.raises(InvalidAliasIP) as caught:
        parse_spec(spec(failback="Auto"), edited_crd(document))
    assert caught.value.findings == (
        Finding("spec.failback", 'must be one of "Manual" (got "Auto")'),
    )


def test_bounds_come_from_the_crd() -> None:
    document = crd_document()
    spec_schema = openapi(document)["properties"]["spec"]["properties"]
    spec_schema["announce"]["properties"]["count"]["maximum"] = 5
    spec_schema["addresses"]["maxItems"] = 2
    crd = edited_crd(document)
    with pytest.raises(InvalidAliasIP) as caught:
        parse_spec(
            spec(
                addresses=["198.18.0.1/24", "198.18.0.2/24", "198.18.0.3/24"], announce={"count": 6}
            ),
            crd,
        )
    assert caught.value.findings == (
        Finding("spec.addresses", "must have at most 2 items (got 3)"),
        Finding("spec.announce.count", "must be less than or equal to 5 (got 6)"),
    )
    assert parse_spec(spec(announce={"count": 6})).announce.count == 6


def test_defaults_come_from_the_crd() -> None:
    document = crd_document()
    announce = openapi(document)["properties"]["spec"]["properties"]["announce"]
    announce["properties"]["count"]["default"] = 7
    openapi(document)["properties"]["spec"]["properties"]["failback"]["default"] = "Auto"
    parsed = parse_spec(spec(), edited_crd(document))
    assert parsed.announce.count == 7
    assert parsed.failback is Failback.AUTO


def test_a_crd_with_a_cel_rule_the_model_cannot_enforce_is_refused() -> None:
    document = crd_document()
    openapi(document)["properties"]["spec"]["x-kubernetes-validations"] = [
        {"rule": "size(self.addresses) < 3", "message": "at most two"}
    ]
    with pytest.raises(LookupError, match=r"size\(self.addresses\) < 3"):
        edited_crd(document)
