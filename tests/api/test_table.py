"""The Table format kubectl asks for, and the other representations a client can accept.

Server-side printing: https://kubernetes.io/docs/reference/using-api/api-concepts/#receiving-resources-as-tables
Printer columns: https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#additional-printer-columns
(a string column of a list prints it as JSON, as kube-apiserver's jsonpath printer does).
"""

from __future__ import annotations

import pytest

from aliasip_lab.apiserver.table import find, human_duration, parse_json_path, print_text
from tests.api.support import ALIASIP_CRD, TABLE, ApiLab, aliasip, install_crd, load_yaml

AIPS = "/apis/aliasip.io/v1alpha1/aliasips"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600 + 60, "3h1m"),
     (9 * 3600, "9h"), (3 * 86400 + 3600, "3d1h"), (400 * 86400, "400d"), (3 * 365 * 86400, "3y")],
)  # fmt: skip
def test_human_duration_like_kubectl(seconds: int, text: str) -> None:
    assert human_duration(seconds) == text


def test_json_path_subset_and_printing() -> None:
    obj = {"spec": {"a.b": [{"x": 1}, {"x": 2}], "m": {"z": "<", "a": 1}}}
    assert find(obj, parse_json_path(".spec['a.b'][1].x")) == [2]
    assert find(obj, parse_json_path("{.spec.a\\.b}")) == []
    assert find(obj, parse_json_path(".spec['a.b'][*].x")) == [1, 2]
    assert find(obj, parse_json_path(".spec.missing")) == []
    assert print_text(obj["spec"]["m"]) == '{"a":1,"z":"\\u003c"}'  # Go's json.Marshal
    assert print_text(["198.18.0.50/24", "2001:2::50/64"]) == '["198.18.0.50/24","2001:2::50/64"]'
    assert print_text(1.5) == "1.5" and print_text(True) == "true"


def test_custom_resource_table_has_name_and_the_printer_columns(lab: ApiLab) -> None:
    install_crd(lab, load_yaml(ALIASIP_CRD))
    lab.client.post(AIPS, aliasip("web", "198.18.0.50/24", "2001:2::50/64"))
    lab.client.patch(
        f"{AIPS}/web/status", {"status": {"activeNode": "node1", "phase": "Active", "epoch": 3}}
    )
    lab.client.post(AIPS, aliasip("db", "198.18.0.60/24"))
    table = lab.client.request("GET", AIPS, accept=TABLE).json
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert [(c["name"], c["type"]) for c in table["columnDefinitions"]] == [
        ("Name", "string"), ("ADDRESSES", "string"), ("ACTIVE", "string"), ("PHASE", "string"),
        ("EPOCH", "integer"), ("AGE", "date"),
    ]  # fmt: skip
    rows = {r["cells"][0]: r for r in table["rows"]}
    assert rows["web"]["cells"][1:5] == ['["198.18.0.50/24","2001:2::50/64"]', "node1", "Active", 3]
    assert rows["db"]["cells"][1:5] == ['["198.18.0.60/24"]', None, None, None]
    assert rows["web"]["cells"][5].endswith("s")
    partial = rows["web"]["object"]
    assert (partial["kind"], partial["apiVersion"]) == ("PartialObjectMetadata", "meta.k8s.io/v1")
    assert partial["metadata"]["name"] == "web" and "spec" not in partial
    assert (
        table["metadata"]["resourceVersion"]
        == lab.client.get(AIPS).json["metadata"]["resourceVersion"]
    )


def test_include_object_and_single_object_tables(lab: ApiLab) -> None:
    install_crd(lab, load_yaml(ALIASIP_CRD))
    lab.client.post(AIPS, aliasip("web"))
    full = lab.client.request("GET", AIPS, accept=TABLE, params={"includeObject": "Object"}).json
    assert full["rows"][0]["object"]["spec"]["addresses"] == ["198.18.0.50/24"]
    none = lab.client.request("GET", AIPS, accept=TABLE, params={"includeObject": "None"}).json
    assert "object" not in none["rows"][0]
    one = lab.client.request("GET", f"{AIPS}/web", accept=TABLE).json
    assert one["kind"] == "Table" and len(one["rows"]) == 1


def test_builtin_tables_and_other_representations(lab: ApiLab) -> None:
    namespaces = lab.client.request("GET", "/api/v1/namespaces", accept=TABLE).json
    assert [c["name"] for c in namespaces["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert namespaces["rows"][0]["cells"][:2] == ["default", "Active"]
    crds = lab.client.request(
        "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", accept=TABLE
    ).json
    assert [c["name"] for c in crds["columnDefinitions"]] == ["Name", "Created At"]
    metadata = lab.client.request(
        "GET",
        "/api/v1/namespaces",
        accept="application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    ).json
    assert metadata["kind"] == "PartialObjectMetadataList"
    assert "status" not in metadata["items"][0]
    yaml_reply = lab.client.request("GET", "/api/v1/namespaces/default", accept="application/yaml")
    assert yaml_reply.headers["Content-Type"] == "application/yaml"
    assert b"name: default" in yaml_reply.body
    protobuf_only = lab.client.request(
        "GET", "/api/v1/namespaces", accept="application/vnd.kubernetes.protobuf"
    )
    assert protobuf_only.status == 406 and protobuf_only.json["reason"] == "NotAcceptable"
    fallback = lab.client.request(
        "GET", "/api/v1/namespaces", accept="application/vnd.kubernetes.protobuf, application/json"
    )
    assert fallback.status == 200 and fallback.json["kind"] == "NamespaceList"
