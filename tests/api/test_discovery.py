"""Discovery, /version, health, and CRDs becoming served resources.

"When you create a new CustomResourceDefinition, the Kubernetes API Server creates a new
RESTful resource path for each version you specify" and serves it as soon as the CRD is
Established — https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
Discovery documents: https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api
"""

from __future__ import annotations

from typing import Any

from tests.api.support import WIDGETS, ApiLab, install_crd, widget, widget_crd

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _resources(lab: ApiLab, path: str) -> dict[str, dict[str, Any]]:
    reply = lab.client.get(path)
    assert reply.status == 200, reply.body
    assert reply.json["kind"] == "APIResourceList"
    return {r["name"]: r for r in reply.json["resources"]}


def test_builtin_discovery(lab: ApiLab) -> None:
    assert lab.client.get("/api").json["versions"] == ["v1"]
    core = _resources(lab, "/api/v1")
    assert set(core) >= {"namespaces", "nodes", "nodes/status", "events"}
    assert (core["nodes"]["namespaced"], core["events"]["namespaced"]) == (False, True)
    assert core["nodes"]["kind"] == "Node" and "watch" in core["nodes"]["verbs"]
    assert core["nodes/status"]["verbs"] == ["get", "patch", "update"]
    groups = {g["name"]: g for g in lab.client.get("/apis").json["groups"]}
    assert (
        groups["coordination.k8s.io"]["preferredVersion"]["groupVersion"]
        == "coordination.k8s.io/v1"
    )
    assert "apiextensions.k8s.io" in groups
    leases = _resources(lab, "/apis/coordination.k8s.io/v1")["leases"]
    assert (leases["kind"], leases["namespaced"]) == ("Lease", True)


def test_version_health_and_openapi(lab: ApiLab) -> None:
    version = lab.client.get("/version").json
    assert (version["major"], version["minor"]) == ("1", "32")
    for path in ("/healthz", "/livez", "/readyz"):
        reply = lab.client.request("GET", path, accept=None)
        assert (reply.status, reply.body) == (200, b"ok")
    assert lab.client.get("/openapi/v2").status == 404
    index = lab.client.get("/openapi/v3").json["paths"]
    assert "api/v1" in index and "apis/coordination.k8s.io/v1" in index
    document = lab.client.get(index["api/v1"]["serverRelativeURL"]).json
    patch = document["paths"]["/api/v1/nodes/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "",
        "version": "v1",
        "kind": "Node",
    }
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}


def test_a_new_crd_is_established_served_and_discoverable_at_once(lab: ApiLab) -> None:
    assert lab.client.get(WIDGETS).status == 404
    crd = install_crd(lab, widget_crd())
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["status"]["storedVersions"] == ["v1"]
    assert crd["spec"]["names"]["singular"] == "widget"  # defaulted, as the server does
    groups = {g["name"] for g in lab.client.get("/apis").json["groups"]}
    assert "example.io" in groups
    assert lab.client.get("/apis/example.io").json["preferredVersion"]["version"] == "v1"
    resources = _resources(lab, "/apis/example.io/v1")
    widgets = resources["widgets"]
    assert (widgets["kind"], widgets["namespaced"], widgets["shortNames"]) == (
        "Widget",
        False,
        ["wd"],
    )
    assert resources["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert lab.client.post(WIDGETS, widget("w1")).status == 201
    assert "apis/example.io/v1" in lab.client.get("/openapi/v3").json["paths"]


def test_deleting_a_crd_stops_serving_it(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1"))
    assert lab.client.delete(f"{CRDS}/widgets.example.io").status == 200
    assert lab.client.get(WIDGETS).status == 404
    assert lab.client.get("/apis/example.io/v1").status == 404
    assert "example.io" not in {g["name"] for g in lab.client.get("/apis").json["groups"]}
    install_crd(lab, widget_crd())  # and a new one starts empty
    assert lab.client.get(WIDGETS).json["items"] == []


def test_namespaced_crd_routes(lab: ApiLab) -> None:
    install_crd(lab, widget_crd(scope="Namespaced"))
    path = "/apis/example.io/v1/namespaces/default/widgets"
    created = lab.client.post(path, widget("w1"))
    assert created.status == 201 and created.json["metadata"]["namespace"] == "default"
    assert lab.client.get(f"{path}/w1").status == 200
    assert lab.client.get(f"{WIDGETS}/w1").status == 404  # no cluster-scoped item path
    assert [i["metadata"]["name"] for i in lab.client.get(WIDGETS).json["items"]] == ["w1"]
    assert lab.client.get("/apis/example.io/v1/namespaces/kube-system/widgets").json["items"] == []


def test_invalid_crds_are_422(lab: ApiLab) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "wrong.example.io"
    reply = lab.client.post(CRDS, crd)
    assert reply.status == 422
    assert reply.json["details"]["causes"][0]["field"] == "metadata.name"
    del crd["spec"]["versions"][0]["schema"]
    crd["metadata"]["name"] = "widgets.example.io"
    reply = lab.client.post(CRDS, crd)
    assert reply.status == 422
    assert "schemas are required" in reply.json["message"]
