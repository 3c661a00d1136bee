"""The /status subresource and metadata.generation, as kube-apiserver separates them.

"When the status subresource is enabled ... PUT/POST/PATCH requests to the custom
resource ignore changes to the status stanza; PUT/POST/PATCH requests to the /status
subresource ignore changes to anything except the status stanza; the .metadata.generation
value is incremented for all changes, except for changes to .metadata or .status."
https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource
"""

from __future__ import annotations

from tests.api.support import STRATEGIC, WIDGETS, ApiLab, install_crd, node, widget, widget_crd


def test_create_drops_status_and_starts_generation_at_one(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    created = lab.client.post(WIDGETS, {**widget("w1"), "status": {"phase": "Forged"}}).json
    assert "status" not in created
    assert created["metadata"]["generation"] == 1


def test_main_resource_writes_keep_status_and_bump_generation_on_spec(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1"))
    lab.client.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "Active"}})
    spec = lab.client.patch(
        f"{WIDGETS}/w1", {"spec": {"size": 4}, "status": {"phase": "Forged"}}
    ).json
    assert spec["status"] == {"phase": "Active"}
    assert spec["metadata"]["generation"] == 2
    labels = lab.client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}}).json
    assert labels["metadata"]["generation"] == 2  # metadata changes do not count
    assert int(labels["metadata"]["resourceVersion"]) > int(spec["metadata"]["resourceVersion"])


def test_status_writes_change_only_status(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    created = lab.client.post(WIDGETS, widget("w1")).json
    reply = lab.client.patch(
        f"{WIDGETS}/w1/status",
        {
            "metadata": {"labels": {"sneaky": "yes"}},
            "spec": {"size": 99},
            "status": {"phase": "Active"},
        },
    )
    assert reply.status == 200, reply.body
    after = reply.json
    assert after["status"] == {"phase": "Active"}
    assert after["spec"] == created["spec"]
    assert "labels" not in after["metadata"]
    assert after["metadata"]["generation"] == 1
    assert int(after["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    stale = {**after, "status": {"phase": "Other"}}
    stale["metadata"] = {
        **after["metadata"],
        "resourceVersion": created["metadata"]["resourceVersion"],
    }
    assert lab.client.put(f"{WIDGETS}/w1/status", stale).status == 409
    assert lab.client.put(f"{WIDGETS}/w1/status", {**after, "status": {"phase": "Put"}}).json[
        "status"
    ] == {"phase": "Put"}


def test_without_a_status_subresource_status_is_ordinary_content(lab: ApiLab) -> None:
    install_crd(lab, widget_crd(status=False))
    created = lab.client.post(WIDGETS, {**widget("w1"), "status": {"phase": "Kept"}}).json
    assert created["status"] == {"phase": "Kept"}
    assert lab.client.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "x"}}).status == 404
    changed = lab.client.patch(f"{WIDGETS}/w1", {"status": {"phase": "New"}}).json
    assert changed["metadata"]["generation"] == 2  # everything but metadata counts


def test_node_status_is_separate_but_node_status_may_set_labels(lab: ApiLab) -> None:
    # Nodes may set status on create (nodeStrategy.PrepareForCreate keeps it); the main
    # resource keeps status; /status keeps spec (nodeStatusStrategy resets only spec).
    created = lab.client.post("/api/v1/nodes", node("n1")).json
    assert created["status"]["conditions"][0]["type"] == "Ready"
    main = lab.client.patch(
        "/api/v1/nodes/n1", {"spec": {"unschedulable": True}, "status": {"phase": "x"}}, STRATEGIC
    ).json
    assert main["spec"] == {"unschedulable": True}
    assert main["status"] == created["status"]
    status = lab.client.patch(
        "/api/v1/nodes/n1/status",
        {
            "metadata": {"labels": {"via": "status"}},
            "spec": {"unschedulable": False},
            "status": {"phase": "Running"},
        },
        STRATEGIC,
    ).json
    assert status["spec"] == {"unschedulable": True}
    assert status["status"]["phase"] == "Running"
    assert status["metadata"]["labels"]["via"] == "status"
    assert "generation" not in status["metadata"]


def test_crd_generation_bumps_on_spec_only(lab: ApiLab) -> None:
    crd = install_crd(lab, widget_crd())
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.io"
    assert crd["metadata"]["generation"] == 1
    annotated = lab.client.patch(path, {"metadata": {"annotations": {"a": "b"}}}).json
    assert annotated["metadata"]["generation"] == 1
    spec = lab.client.patch(path, {"spec": {"names": {"shortNames": ["wd", "wdg"]}}}).json
    assert spec["metadata"]["generation"] == 2
