"""Finalizers and deletionTimestamp, as kube-apiserver's generic store handles them.

"When you tell Kubernetes to delete an object that has finalizers specified for it, the
Kubernetes API marks the object for deletion by populating .metadata.deletionTimestamp,
and returns a 202 [sic: 200 unless orphanDependents=false] ... The object remains in a
terminating state ... Once the finalizers field is empty, Kubernetes considers the
deletion complete and deletes the object."
https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/
"""

from __future__ import annotations

from tests.api.support import JSON_PATCH, WIDGETS, ApiLab, install_crd, widget, widget_crd


def test_finalizers_defer_deletion_until_the_last_one_is_removed(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    body = widget("w1")
    body["metadata"]["finalizers"] = ["example.io/a", "example.io/b"]
    created = lab.client.post(WIDGETS, body).json
    with lab.client.watch(WIDGETS, resourceVersion=created["metadata"]["resourceVersion"]) as watch:
        deleting = lab.client.delete(f"{WIDGETS}/w1", {"propagationPolicy": "Foreground"})
        assert deleting.status == 200
        meta = deleting.json["metadata"]
        assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0
        assert watch.next()["type"] == "MODIFIED"
        assert lab.client.get(f"{WIDGETS}/w1").status == 200  # still there

        again = lab.client.delete(f"{WIDGETS}/w1")
        assert again.json["metadata"]["resourceVersion"] == meta["resourceVersion"]

        added = lab.client.patch(
            f"{WIDGETS}/w1",
            {"metadata": {"finalizers": ["example.io/a", "example.io/b", "example.io/c"]}},
        )
        assert added.status == 422
        assert added.json["details"]["causes"][0]["field"] == "metadata.finalizers"
        assert (
            "no new finalizers can be added if the object is being deleted" in added.json["message"]
        )

        one_left = lab.client.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": ["example.io/b"]}})
        assert one_left.status == 200
        assert watch.next()["type"] == "MODIFIED"
        last = lab.client.patch(
            f"{WIDGETS}/w1", [{"op": "remove", "path": "/metadata/finalizers"}], JSON_PATCH
        )
        assert last.status == 200
        gone = watch.next()
        # deleteWithoutFinalizers: the object goes at once; no MODIFIED without finalizers.
        assert gone["type"] == "DELETED"
        assert gone["object"]["metadata"]["name"] == "w1"
        assert watch.quiet(0.1) == []
    assert lab.client.get(f"{WIDGETS}/w1").status == 404


def test_delete_without_finalizers_is_immediate_and_propagation_policy_is_checked(
    lab: ApiLab,
) -> None:
    install_crd(lab, widget_crd())
    lab.client.post(WIDGETS, widget("w1"))
    assert lab.client.delete(f"{WIDGETS}/w1", {"propagationPolicy": "Sideways"}).status == 400
    reply = lab.client.delete(f"{WIDGETS}/w1", propagationPolicy="Background")
    assert reply.status == 200 and reply.json["metadata"]["name"] == "w1"
    assert lab.client.get(f"{WIDGETS}/w1").status == 404
    assert lab.client.delete(f"{WIDGETS}/w1").status == 404
    # built-ins answer a delete with a Status (their stores do not return the object)
    lab.client.post(
        "/api/v1/nodes", {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}
    )
    status = lab.client.delete("/api/v1/nodes/n1").json
    assert (status["kind"], status["status"], status["details"]["name"]) == (
        "Status",
        "Success",
        "n1",
    )


def test_delete_collection_by_label(lab: ApiLab) -> None:
    install_crd(lab, widget_crd())
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        body = widget(name)
        body["metadata"]["labels"] = {"team": team}
        lab.client.post(WIDGETS, body)
    reply = lab.client.delete(WIDGETS, labelSelector="team=x")
    assert reply.status == 200
    assert [i["metadata"]["name"] for i in reply.json["items"]] == ["a", "b"]
    assert [i["metadata"]["name"] for i in lab.client.get(WIDGETS).json["items"]] == ["c"]
