"""PATCH: merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch, content types.

kube-apiserver picks the patch type from Content-Type: application/merge-patch+json,
application/json-patch+json, application/strategic-merge-patch+json (built-in types only:
custom resources answer 415), application/apply-patch+yaml (server-side apply; not
implemented here: 415). https://kubernetes.io/docs/tasks/manage-kubernetes-objects/
update-api-object-kubectl-patch/
"""

from __future__ import annotations

from typing import Any

import pytest

from aliasip_lab.apiserver.errors import ApiError
from aliasip_lab.apiserver.patch import json_patch, merge_patch, strategic_merge_patch
from tests.api.support import (
    JSON_PATCH,
    MERGE,
    STRATEGIC,
    WIDGETS,
    ApiLab,
    install_crd,
    node,
    widget,
    widget_crd,
)

# RFC 7386 Appendix A, every example.
RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC7386)
def test_merge_patch_rfc7386_appendix_a(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


def test_json_patch_operations_rfc6902() -> None:
    doc = {"foo": ["bar", "baz"], "a": {"b": 1}}
    ops = [
        {"op": "add", "path": "/foo/1", "value": "qux"},
        {"op": "remove", "path": "/foo/0"},
        {"op": "replace", "path": "/a/b", "value": 2},
        {"op": "copy", "from": "/a", "path": "/c"},
        {"op": "move", "from": "/c/b", "path": "/d"},
        {"op": "add", "path": "/foo/-", "value": "end"},
        {"op": "add", "path": "/m~1n", "value": True},
        {"op": "test", "path": "/d", "value": 2},
    ]
    assert json_patch(doc, ops) == {
        "foo": ["qux", "baz", "end"],
        "a": {"b": 2},
        "c": {},
        "d": 2,
        "m/n": True,
    }
    assert doc == {"foo": ["bar", "baz"], "a": {"b": 1}}  # the input is left alone


@pytest.mark.parametrize(
    ("ops", "code"),
    [
        ({"op": "add"}, 400),  # not a list of operations
        ([{"op": "test", "path": "/a", "value": 2}], 422),
        ([{"op": "test", "path": "/a", "value": True}], 422),  # true is not 1
        ([{"op": "remove", "path": "/missing"}], 422),
        ([{"op": "replace", "path": "/missing", "value": 1}], 422),
        ([{"op": "add", "path": "/x/y", "value": 1}], 422),
        ([{"op": "frobnicate", "path": "/a"}], 422),
    ],
)
def test_json_patch_failures(ops: Any, code: int) -> None:
    with pytest.raises(ApiError) as caught:
        json_patch({"a": 1}, ops)
    assert caught.value.code == code


def test_strategic_merge_merges_lists_by_their_merge_key() -> None:
    keys: dict[str, str | None] = {"status.conditions": "type", "metadata.finalizers": None}
    original = {
        "metadata": {"finalizers": ["a"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Disk", "status": "False"}]
        },
        "spec": {"taints": [{"key": "x"}]},
    }
    patch = {
        "metadata": {"finalizers": ["b", "a"]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False"},
                {"type": "Net", "status": "True"},
                {"type": "Disk", "$patch": "delete"},
            ]
        },
        "spec": {"taints": [{"key": "y"}]},  # no merge key declared: replaced
    }
    assert strategic_merge_patch(original, patch, keys) == {
        "metadata": {"finalizers": ["a", "b"]},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "Net", "status": "True"}]
        },
        "spec": {"taints": [{"key": "y"}]},
    }
    directives = {
        "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
        "spec": {"$patch": "replace", "unschedulable": True},
    }
    assert strategic_merge_patch(original, directives, keys) == {
        "metadata": {"finalizers": []},
        "status": original["status"],
        "spec": {"unschedulable": True},
    }


def test_merge_patch_replaces_a_dict_by_a_scalar_and_null_deletes(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1", extra={"nested": {"a": 1}, "keep": 1}, tags=["a"]))
    reply = lab.client.patch(
        f"{WIDGETS}/w1", {"spec": {"extra": {"nested": "flat", "keep": None}, "tags": ["b", "c"]}}
    )
    assert reply.status == 200, reply.body
    assert reply.json["spec"]["extra"] == {"nested": "flat"}
    assert reply.json["spec"]["tags"] == ["b", "c"]


def test_json_patch_over_http_and_its_failures(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1"))
    ok = lab.client.patch(
        f"{WIDGETS}/w1", [{"op": "replace", "path": "/spec/size", "value": 8}], JSON_PATCH
    )
    assert ok.status == 200 and ok.json["spec"]["size"] == 8
    failed = lab.client.patch(
        f"{WIDGETS}/w1", [{"op": "test", "path": "/spec/size", "value": 9}], JSON_PATCH
    )
    assert failed.status == 422
    # NewGenericServerResponse(422, ...): a fixed message, as kubectl then prints it.
    assert (
        failed.json["message"] == "the server rejected our request due to an error in our request"
    )
    assert failed.json["reason"] == "Invalid"
    malformed = lab.client.patch(f"{WIDGETS}/w1", {"op": "replace"}, JSON_PATCH)
    assert malformed.status == 400


def test_strategic_merge_patch_of_node_conditions_by_type(lab: ApiLab) -> None:
    lab.client.post("/api/v1/nodes", node("n1"))
    patch = {
        "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "KubeletDown"}]}
    }
    reply = lab.client.patch("/api/v1/nodes/n1/status", patch, STRATEGIC)
    assert reply.status == 200, reply.body
    conditions = {c["type"]: c for c in reply.json["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Ready"]["reason"] == "KubeletDown"
    assert conditions["Ready"]["message"] == "ok"  # merged into the existing entry
    assert conditions["MemoryPressure"]["status"] == "False"  # untouched entry kept
    # the same body as a JSON merge patch replaces the whole list
    merged = lab.client.patch("/api/v1/nodes/n1/status", patch, MERGE).json
    assert [c["type"] for c in merged["status"]["conditions"]] == ["Ready"]


def test_content_types_are_honoured(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1"))
    smp = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}, STRATEGIC)
    assert smp.status == 415 and smp.json["reason"] == "UnsupportedMediaType"
    apply = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}, "application/apply-patch+yaml")
    assert apply.status == 422  # served (server-side apply), but fieldManager is required
    assert apply.json["details"]["causes"][0]["field"] == "fieldManager"
    plain = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}, "application/json")
    assert plain.status == 415
    assert "application/merge-patch+json" in plain.json["message"]
    charset = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 2}}, f"{MERGE}; charset=utf-8")
    assert charset.status == 200
