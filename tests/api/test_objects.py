"""System metadata, creation and error bodies, pinned to kube-apiserver's documented behaviour.

Docs: https://kubernetes.io/docs/reference/using-api/api-concepts/ and
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.api.support import (
    WIDGETS,
    ApiLab,
    install_crd,
    widget,
    widget_crd,
)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"


def lease(name: str, holder: str = "a") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10},
    }


def test_create_sets_uid_resource_version_timestamp_and_generation(lab: ApiLab) -> None:
    # ObjectMeta: uid and creationTimestamp are set by the server on create and never
    # change; resourceVersion is opaque but here, as with etcd, one global counter;
    # generation "is set by the system" for custom resources and starts at 1.
    install_crd(lab, widget_crd())
    first = lab.client.post(LEASES, lease("l1"))
    created = lab.client.post(WIDGETS, widget("w1"))
    assert (first.status, created.status) == (201, 201)
    meta = created.json["metadata"]
    uuid.UUID(meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["generation"] == 1
    assert int(meta["resourceVersion"]) > int(first.json["metadata"]["resourceVersion"])
    fetched = lab.client.get(f"{WIDGETS}/w1").json
    assert fetched == created.json
    # built-in types without a generation strategy (leases) carry none
    assert "generation" not in first.json["metadata"]


def test_uid_and_creation_timestamp_survive_updates(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    created = lab.client.post(WIDGETS, widget("w1")).json
    forged = {
        **created,
        "metadata": {**created["metadata"], "creationTimestamp": "2000-01-01T00:00:00Z"},
    }
    updated = lab.client.put(f"{WIDGETS}/w1", forged).json
    assert updated["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    other_uid = {**created, "metadata": {**created["metadata"], "uid": str(uuid.uuid4())}}
    reply = lab.client.put(f"{WIDGETS}/w1", other_uid)
    assert reply.status == 409 and "Precondition failed: UID" in reply.json["message"]


def test_generate_name_appends_five_characters(lab: ApiLab) -> None:
    body = lease("")
    body["metadata"] = {"generateName": "agent-"}
    names = {lab.client.post(LEASES, body).json["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3
    assert all(re.fullmatch(r"agent-[bcdfghjklmnpqrstvwxz2456789]{5}", n) for n in names)


def test_namespace_comes_from_the_url(lab: ApiLab) -> None:
    created = lab.client.post(LEASES, lease("l1")).json
    assert created["metadata"]["namespace"] == "default"
    assert (
        lab.client.get("/apis/coordination.k8s.io/v1/leases").json["items"][0]["metadata"]["name"]
        == "l1"
    )
    body = lease("l2")
    body["metadata"]["namespace"] = "kube-system"
    reply = lab.client.post(LEASES, body)
    assert reply.status == 400
    assert reply.json["message"] == (
        "the namespace of the provided object does not match the namespace sent on the request"
    )


def test_namespaced_objects_need_an_existing_namespace(lab: ApiLab) -> None:
    reply = lab.client.post("/apis/coordination.k8s.io/v1/namespaces/nope/leases", lease("l1"))
    assert reply.status == 404
    assert reply.json["message"] == 'namespaces "nope" not found'


def test_initial_namespaces_exist_and_carry_their_name_label(lab: ApiLab) -> None:
    items = lab.client.get("/api/v1/namespaces").json["items"]
    names = {ns["metadata"]["name"]: ns for ns in items}
    assert set(names) >= {"default", "kube-system", "kube-public", "kube-node-lease"}
    default = names["default"]
    assert default["status"]["phase"] == "Active"
    assert default["metadata"]["labels"]["kubernetes.io/metadata.name"] == "default"


def test_create_of_an_existing_name_is_409_already_exists(lab: ApiLab) -> None:
    assert lab.client.post(LEASES, lease("l1")).status == 201
    reply = lab.client.post(LEASES, lease("l1"))
    assert reply.status == 409
    assert reply.json["reason"] == "AlreadyExists"
    assert reply.json["message"] == 'leases.coordination.k8s.io "l1" already exists'
    assert reply.json["details"] == {"name": "l1", "group": "coordination.k8s.io", "kind": "leases"}


def test_resource_version_on_create_is_refused(lab: ApiLab) -> None:
    # etcd3 store Create: "resourceVersion should not be set on objects to be created".
    body = lease("l1")
    body["metadata"]["resourceVersion"] = "5"
    reply = lab.client.post(LEASES, body)
    assert reply.status == 500
    assert "resourceVersion should not be set on objects to be created" in reply.json["message"]


def test_kind_and_api_version_default_from_the_url_for_builtin_types_only(lab: ApiLab) -> None:
    bare = lab.client.post(LEASES, {"metadata": {"name": "bare"}, "spec": {}})
    assert bare.status == 201
    assert (bare.json["apiVersion"], bare.json["kind"]) == ("coordination.k8s.io/v1", "Lease")
    install_crd(lab, widget_crd())
    missing = lab.client.post(WIDGETS, {"metadata": {"name": "w"}, "spec": {"size": 1}})
    assert missing.status == 400
    assert missing.json["message"].startswith("Object 'Kind' is missing in")


def test_errors_are_status_objects_with_code_and_reason(lab: ApiLab) -> None:
    cases = [
        (lab.client.get("/apis/nothing.io/v1/things"), 404, "NotFound"),
        (lab.client.get(f"{LEASES}/missing"), 404, "NotFound"),
        (lab.client.put(LEASES, lease("x")), 405, "MethodNotAllowed"),
        (lab.client.post(LEASES, {**lease("x"), "kind": "Node"}), 400, "BadRequest"),
        (lab.client.get("/api/v1/nodes", labelSelector="a in ("), 400, "BadRequest"),
        # across all namespaces kube-apiserver serves list and watch only
        (lab.client.delete("/apis/coordination.k8s.io/v1/leases"), 405, "MethodNotAllowed"),
        (lab.client.request("POST", LEASES, raw=b"{" * 4_000_000), 413, "RequestEntityTooLarge"),
        (lab.client.request("POST", LEASES, raw=b"{not json"), 400, "BadRequest"),
    ]
    for reply, code, reason in cases:
        status = reply.json
        assert reply.status == code, status
        assert status["kind"] == "Status" and status["apiVersion"] == "v1"
        assert status["status"] == "Failure"
        assert (status["code"], status["reason"]) == (code, reason)
    missing = cases[1][0].json
    assert missing["message"] == 'leases.coordination.k8s.io "missing" not found'
    assert missing["details"] == {
        "name": "missing",
        "group": "coordination.k8s.io",
        "kind": "leases",
    }
    assert cases[0][0].json["message"] == "the server could not find the requested resource"


def test_a_write_that_changes_nothing_keeps_the_resource_version(lab: ApiLab) -> None:
    # The etcd3 store skips a write whose result equals the stored object: no new
    # resourceVersion, no watch event.
    install_crd(lab, widget_crd())
    created = lab.client.post(WIDGETS, widget("w1")).json
    rv = created["metadata"]["resourceVersion"]
    with lab.client.watch(WIDGETS, resourceVersion=rv) as watch:
        same = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 3}}).json
        assert same["metadata"]["resourceVersion"] == rv
        assert lab.client.put(f"{WIDGETS}/w1", created).json["metadata"]["resourceVersion"] == rv
        changed = lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 4}}).json
        event = watch.next()
        assert event["type"] == "MODIFIED"
        assert (
            event["object"]["metadata"]["resourceVersion"] == changed["metadata"]["resourceVersion"]
        )


def test_dry_run_changes_nothing(lab: ApiLab) -> None:
    reply = lab.client.post(LEASES, lease("l1"), dryRun="All")
    assert reply.status == 201 and reply.json["metadata"]["name"] == "l1"
    assert lab.client.get(f"{LEASES}/l1").status == 404
    assert lab.client.post(LEASES, lease("l1"), dryRun="Some").status == 400
