"""The example AliasIP (manifests/example/) is valid against the CRD it will be applied to.

kubernetes-validate knows only built-in kinds, so the example is checked against the CRD's
own openAPIV3Schema with jsonschema (``format: cidr`` checked with the model's parser), and
for fields the schema does not declare, which ``kubectl apply`` (strict field validation)
rejects. The same checks on broken copies show the validator is not vacuous.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema
import pytest
import yaml

from aliasip_api.addresses import parse_cidr
from tests.manifests.kustomize import REPO, Obj

TEST_RANGES = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:2::/48")]


def crd_schema() -> Obj:
    crd: Obj = yaml.safe_load((REPO / "crds" / "aliasip.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema: Obj = version["schema"]["openAPIV3Schema"]
    return schema


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("cidr", raises=ValueError)
def _is_cidr(value: object) -> bool:
    return not isinstance(value, str) or bool(parse_cidr(value))


def undeclared_fields(value: Any, schema: Obj, path: str = "") -> Iterator[str]:
    """Paths in ``value`` that ``schema`` does not declare (what the API server would prune)."""
    if isinstance(value, dict) and schema.get("type") == "object":
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return
        properties: Obj = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if path == ".metadata" or (not properties and extra is None):
            return  # ObjectMeta is validated by the API server itself
        for name, item in value.items():
            if name in properties:
                yield from undeclared_fields(item, properties[name], f"{path}.{name}")
            elif isinstance(extra, dict):
                yield from undeclared_fields(item, extra, f"{path}.{name}")
            else:
                yield f"{path}.{name}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from undeclared_fields(item, schema["items"], f"{path}[{index}]")


def problems(obj: Obj) -> list[str]:
    schema = crd_schema()
    validator = jsonschema.Draft4Validator(schema, format_checker=FORMATS)
    found = [
        f"{'.'.join(map(str, error.path))}: {error.message}" for error in validator.iter_errors(obj)
    ]
    found += [f"{path}: not in the schema" for path in undeclared_fields(obj, schema)]
    return found


@pytest.fixture(scope="module")
def aliasip(example: list[Obj]) -> Obj:
    (obj,) = example
    return obj


def test_the_example_is_one_cluster_scoped_aliasip(aliasip: Obj) -> None:
    assert (aliasip["apiVersion"], aliasip["kind"]) == ("aliasip.io/v1alpha1", "AliasIP")
    assert "namespace" not in aliasip["metadata"]


def test_the_example_is_valid_against_the_crd(aliasip: Obj) -> None:
    assert problems(aliasip) == []


def test_the_example_uses_only_test_addresses(aliasip: Obj) -> None:
    for text in aliasip["spec"]["addresses"]:
        address = parse_cidr(text).ip
        assert any(address in net for net in TEST_RANGES), text


def test_the_example_moves_between_node1_and_node2(aliasip: Obj) -> None:
    assert aliasip["spec"]["nodes"] == ["node1", "node2"]


def _without_candidates(spec: Obj) -> None:
    spec.pop("nodes", None)
    spec.pop("nodeSelector", None)


def _set(field: str, value: Any) -> Callable[[Obj], None]:
    def change(spec: Obj) -> None:
        spec[field] = value

    return change


BROKEN: list[tuple[str, Callable[[Obj], None], str]] = [
    ("no-candidates", _without_candidates, "is not valid under any of the given schemas"),
    ("no-prefix", _set("addresses", ["198.18.0.60"]), "is not a 'cidr'"),
    ("not-an-address", _set("addresses", ["node1/24"]), "is not a 'cidr'"),
    ("no-addresses", _set("addresses", []), "should be non-empty"),
    ("bad-failback", _set("failback", "Sometimes"), "is not one of"),
    ("bad-node-name", _set("nodes", ["Node_1"]), "does not match"),
    ("typo", _set("adresses", ["198.18.0.60/24"]), "spec.adresses: not in the schema"),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_a_broken_copy_is_refused(
    aliasip: Obj, change: Callable[[Obj], None], message: str
) -> None:
    broken = copy.deepcopy(aliasip)
    change(broken["spec"])
    found = problems(broken)
    assert any(message in problem for problem in found), found
