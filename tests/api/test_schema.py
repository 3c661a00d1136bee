"""Custom resources against their CRD schema: validation, defaults, pruning, fieldValidation.

https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
("Validation", "Defaulting", "Field pruning"); fieldValidation (Strict: 400 on unknown
fields; Warn, the default: a Warning header; Ignore): https://kubernetes.io/docs/reference/
using-api/api-concepts/#field-validation . Uses the project's own crds/aliasip.yaml.
"""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_lab.apiserver import schema as apischema
from aliasip_lab.apiserver.formats import go_parse_cidr
from tests.api.support import ALIASIP_CRD, JSON_PATCH, ApiLab, aliasip, install_crd, load_yaml

AIPS = "/apis/aliasip.io/v1alpha1/aliasips"


@pytest.fixture
def aip(lab: ApiLab) -> ApiLab:
    install_crd(lab, load_yaml(ALIASIP_CRD))
    return lab


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("198.18.0.50/24", True),  # host bits set: fine for ParseCIDR
        ("198.18.0.0/32", True),
        ("0.0.0.0/0", True),
        ("198.18.0.50/024", True),  # dtoi accepts leading zeros in the prefix length
        ("2001:2::50/64", True),
        ("::ffff:198.18.0.1/120", True),
        ("198.18.0.50", False),  # no prefix
        ("198.18.0.50/", False),
        ("198.18.0.50/33", False),
        ("198.18.0.50/+8", False),
        ("198.18.0.300/24", False),
        ("198.018.0.50/24", False),  # leading zero in an octet: rejected since Go 1.17
        ("198.18.0/24", False),
        ("2001:2::50/129", False),
        ("fe80::1%eth0/64", False),  # zones are not CIDRs
        (" 198.18.0.50/24", False),
        ("198.18.0.50/\uff12\uff14", False),  # fullwidth digits: not ASCII
    ],
)
def test_cidr_format_has_go_parse_cidr_semantics(text: str, valid: bool) -> None:
    assert go_parse_cidr(text) is valid


def _causes(reply: Any) -> dict[str, str]:
    assert reply.status == 422, reply.body
    assert reply.json["reason"] == "Invalid"
    return {c["field"]: c["message"] for c in reply.json["details"]["causes"]}


def test_invalid_objects_are_422_naming_the_field(aip: ApiLab) -> None:
    bad = aliasip("web", "198.18.0.300/24")
    reply = aip.client.post(AIPS, bad)
    detail = (
        'Invalid value: "198.18.0.300/24": spec.addresses[0] in body must be of type cidr: '
        '"198.18.0.300/24"'
    )
    assert _causes(reply) == {"spec.addresses[0]": detail}
    assert (
        reply.json["message"] == f'AliasIP.aliasip.io "web" is invalid: spec.addresses[0]: {detail}'
    )
    assert reply.json["details"]["group"] == "aliasip.io"
    assert reply.json["details"]["kind"] == "AliasIP"


def test_schema_rules_each_with_kube_apiservers_wording(aip: ApiLab) -> None:
    body = aliasip("web", "198.18.0.50/24", "198.18.0.50/24")
    body["spec"]["failback"] = "Sometimes"
    body["spec"]["announce"] = {"count": 0}
    body["spec"]["interface"] = "x" * 16
    causes = _causes(aip.client.post(AIPS, body))
    assert causes == {
        "spec.addresses[1]": 'Duplicate value: "198.18.0.50/24"',
        "spec.failback": 'Unsupported value: "Sometimes": supported values: "Manual", "Auto"',
        "spec.announce.count": (
            "Invalid value: 0: spec.announce.count in body should be greater than or equal to 1"
        ),
        "spec.interface": "Too long: may not be longer than 15",
    }
    missing = {
        "apiVersion": "aliasip.io/v1alpha1",
        "kind": "AliasIP",
        "metadata": {"name": "m"},
        "spec": {},
    }
    causes = _causes(aip.client.post(AIPS, missing))
    assert causes["spec.addresses"] == "Required value"
    assert causes["spec.nodes"] == "Required value"  # from the anyOf alternatives
    assert "must validate at least one schema (anyOf)" in causes["spec"]


def test_a_list_over_max_items_is_rejected_by_max_items_alone(aip: ApiLab) -> None:
    """kube-apiserver's order: 10,000 addresses are "Too many", and the list is not also
    scanned for duplicates (there are 9,999 of them here: not one is reported, so the
    uniqueness check never ran over it). Other objects are unaffected."""
    addresses = ["198.18.0.50/24"] * 10_000
    reply = aip.client.post(AIPS, aliasip("huge", *addresses))
    assert reply.status == 422
    assert _causes(reply) == {"spec.addresses": "Too many: 10000: must have at most 16 items"}
    assert aip.client.get(f"{AIPS}/huge").status == 404
    assert aip.client.post(AIPS, aliasip("web")).status == 201


def test_list_uniqueness_is_one_pass_over_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    """Duplicates within maxItems are still reported, each at its own index, and the check
    visits every element once (hash-based, as kube-apiserver's): the identities it
    computes are counted, one per element."""
    schema = load_yaml(ALIASIP_CRD)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    body = aliasip("web", *[f"198.18.0.{n % 4 + 1}/24" for n in range(16)])
    calls: list[object] = []
    original = apischema._identity

    def counting(value: object) -> str:
        calls.append(value)
        return original(value)

    monkeypatch.setattr(apischema, "_identity", counting)
    causes = list(apischema._list_types(body, schema, ""))
    duplicates = [c for c in causes if c.reason == "FieldValueDuplicate"]
    assert [c.field for c in duplicates] == [f"spec.addresses[{i}]" for i in range(4, 16)]
    assert len([v for v in calls if isinstance(v, str) and v.startswith("198.18.0.")]) == 16


def test_defaults_are_applied(aip: ApiLab) -> None:
    created = aip.client.post(AIPS, aliasip("web")).json
    assert created["spec"]["failback"] == "Manual"
    assert created["spec"]["announce"] == {"count": 4, "intervalMs": 1100}


def test_unknown_fields_are_pruned_with_a_warning_or_refused_when_strict(aip: ApiLab) -> None:
    body = aliasip("web")
    body["spec"]["colour"] = "blue"
    body["metadata"]["bogus"] = 1
    warned = aip.client.post(AIPS, body)
    assert warned.status == 201
    assert "colour" not in warned.json["spec"] and "bogus" not in warned.json["metadata"]
    assert sorted(warned.warnings()) == [
        '299 - "unknown field \\"metadata.bogus\\""',
        '299 - "unknown field \\"spec.colour\\""',
    ]
    body["metadata"]["name"] = "web2"
    strict = aip.client.post(AIPS, body, fieldValidation="Strict")
    assert strict.status == 400 and strict.json["reason"] == "BadRequest"
    assert strict.json["message"] == (
        'AliasIP in version "v1alpha1" cannot be handled as a AliasIP: strict decoding error: '
        'unknown field "metadata.bogus", unknown field "spec.colour"'
    )
    ignored = aip.client.post(AIPS, body, fieldValidation="Ignore")
    assert ignored.status == 201 and ignored.warnings() == []
    assert aip.client.post(AIPS, body, fieldValidation="Loose").status == 400


def test_status_keeps_unknown_fields_where_the_schema_says_so(aip: ApiLab) -> None:
    aip.client.post(AIPS, aliasip("web"))
    status = {
        "activeNode": "node1",
        "phase": "Active",
        "nodes": {"node1": {"state": "holding", "epoch": 3, "stray": "pruned"}},
        "kopf": {"progress": {"h": {"retries": 1}}},
    }
    reply = aip.client.patch(f"{AIPS}/web/status", {"status": status})
    assert reply.status == 200, reply.body
    got = reply.json["status"]
    assert got["kopf"] == status["kopf"]  # x-kubernetes-preserve-unknown-fields
    assert got["nodes"] == {"node1": {"state": "holding", "epoch": 3}}  # declared map values
    # nullable: true keeps an explicit null (a merge patch's null would delete the key)
    null = [{"op": "replace", "path": "/status/activeNode", "value": None}]
    kept = aip.client.patch(f"{AIPS}/web/status", null, JSON_PATCH).json["status"]
    assert kept["activeNode"] is None
    bad = aip.client.patch(
        f"{AIPS}/web/status", {"status": {"nodes": {"node1": {"state": "lost"}}}}
    )
    assert _causes(bad) == {
        "status.nodes.node1.state": (
            'Unsupported value: "lost": supported values: "holding", "released", "standby", "error"'
        )
    }


def test_cel_rules_are_not_evaluated(aip: ApiLab) -> None:
    # A documented difference: kube-apiserver would refuse this (epoch must never
    # decrease, a CEL rule); the lab accepts it. The operator's pure logic must not rely
    # on the API to enforce CEL rules (the model package checks them).
    aip.client.post(AIPS, aliasip("web"))
    assert aip.client.patch(f"{AIPS}/web/status", {"status": {"epoch": 5}}).status == 200
    assert aip.client.patch(f"{AIPS}/web/status", {"status": {"epoch": 4}}).status == 200


def test_object_names_and_labels_are_validated(aip: ApiLab) -> None:
    bad_name = aip.client.post(AIPS, aliasip("Web_1"))
    assert "a lowercase RFC 1123 subdomain must consist of" in _causes(bad_name)["metadata.name"]
    body = aliasip("web")
    body["metadata"]["labels"] = {"ok": "bad value!"}
    assert (
        "a valid label must be an empty string"
        in _causes(aip.client.post(AIPS, body))["metadata.labels"]
    )
