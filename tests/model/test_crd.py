"""The CRD itself: a well-formed structural schema that kube-apiserver would accept.

kube-apiserver refuses a non-structural schema, a default that does not validate, or a
list-map key that is neither required nor defaulted; kubectl shows printer columns only if
their jsonPaths lead somewhere. These tests check what can be checked without a cluster.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aliasip_api import cel
from aliasip_api.crd import packaged_crd
from aliasip_api.findings import address_findings
from aliasip_api.spec import parse_aliasip
from aliasip_api.validation import OpenAPISchema
from tests.model.objects import CRD_PATH, EXAMPLE_PATH, ROOT

DOCUMENT: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
VERSION = DOCUMENT["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
LOGIC = ("anyOf", "allOf", "oneOf", "not")
# Inside anyOf/allOf/oneOf/not a structural schema allows value validations only.
NOT_IN_LOGIC = {"type", "description", "default", "nullable", "additionalProperties", "items"}
TEST_V4 = ipaddress.ip_network("198.18.0.0/15")
TEST_V6 = ipaddress.ip_network("2001:2::/48")


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node with its field path (logic branches excluded)."""
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")


def logic_branches(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in LOGIC:
        branches = schema.get(key, [])
        yield from [branches] if isinstance(branches, dict) else branches


def test_names_match_the_metadata_name() -> None:
    spec = DOCUMENT["spec"]
    assert DOCUMENT["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}"
    assert spec["scope"] == "Cluster"
    assert spec["names"]["shortNames"] == ["aip"]
    assert [v["name"] for v in spec["versions"] if v["storage"]] == ["v1alpha1"]
    assert VERSION["served"] is True
    assert VERSION["subresources"] == {"status": {}}


def test_the_crd_validates_against_kubernetes_own_schema() -> None:
    kubernetes_validate.validate(DOCUMENT, "1.32", strict=True)


@pytest.mark.parametrize(
    ("path", "node"), list(nodes(SCHEMA)), ids=[p or "<root>" for p, _ in nodes(SCHEMA)]
)
def test_every_node_is_structural_and_described(path: str, node: dict[str, Any]) -> None:
    assert "type" in node, f"{path} has no type"
    assert "$ref" not in node and not node.get("uniqueItems"), path
    if path != ".metadata":
        assert node.get("description", "").strip(), f"{path} has no description"
    else:
        assert node == {"type": "object"}, "only name/generateName may be restricted in metadata"
    if node["type"] == "object":
        assert not ("properties" in node and "additionalProperties" in node), path
    if node["type"] == "array":
        assert "items" in node, path
    for branch in logic_branches(node):
        assert not NOT_IN_LOGIC & set(branch), f"{path}: {sorted(NOT_IN_LOGIC & set(branch))}"
        for name in branch.get("required", []):
            assert name in node.get("properties", {}), f"{path}: {name} only in a branch"
    if "default" in node:
        assert OpenAPISchema(node).validate(OpenAPISchema(node).default(node["default"])) == []
    if node.get("x-kubernetes-list-type") == "map":
        items = node["items"]
        for key in node["x-kubernetes-list-map-keys"]:
            assert key in items.get("required", []) or "default" in items["properties"][key], path
    for rule in node.get("x-kubernetes-validations", []):
        assert rule["message"].strip(), path
        if cel.is_transition(rule["rule"]):
            cel.transition_counterpart(rule["rule"])
        else:
            cel.counterpart(rule["rule"])


def test_the_status_keeps_kopfs_fields() -> None:
    assert SCHEMA["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True


def schema_for(json_path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = SCHEMA
    for name in json_path.lstrip(".").split("."):
        if name not in node.get("properties", {}):
            return None
        node = node["properties"][name]
    return node


@pytest.mark.parametrize(
    "column",
    VERSION["additionalPrinterColumns"],
    ids=[c["name"] for c in VERSION["additionalPrinterColumns"]],
)
def test_printer_columns_lead_to_fields_of_their_type(column: dict[str, Any]) -> None:
    path = column["jsonPath"]
    if path.startswith(".metadata."):
        assert path == ".metadata.creationTimestamp" and column["type"] == "date"
        return
    target = schema_for(path)
    assert target is not None, f"{path} is not in the schema"
    allowed = {"integer": {"integer"}, "string": {"string", "array"}, "date": {"string"}}
    assert target["type"] in allowed[column["type"]]


def test_printer_columns_are_the_documented_ones() -> None:
    assert [(c["name"], c["jsonPath"], c["type"]) for c in VERSION["additionalPrinterColumns"]] == [
        ("ADDRESSES", ".spec.addresses", "string"),
        ("ACTIVE", ".status.activeNode", "string"),
        ("PHASE", ".status.phase", "string"),
        ("EPOCH", ".status.epoch", "integer"),
        ("AGE", ".metadata.creationTimestamp", "date"),
    ]


def test_the_package_loads_the_same_file() -> None:
    assert packaged_crd().document == DOCUMENT
    assert (ROOT / "crds" / "aliasip_api" / "aliasip.yaml").resolve() == CRD_PATH.resolve()


def test_the_example_is_valid_and_uses_test_addresses_only() -> None:
    example = yaml.safe_load(EXAMPLE_PATH.read_text())
    parsed = parse_aliasip(example)
    assert address_findings(parsed.spec) == ()
    for address in parsed.spec.addresses:
        assert address.ip in (TEST_V4 if address.version == 4 else TEST_V6)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_kustomization_builds_the_crd() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / "crds")],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert list(yaml.safe_load_all(built)) == [DOCUMENT]
