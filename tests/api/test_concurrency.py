"""Optimistic concurrency: 409 Conflict on a stale resourceVersion, as kube-apiserver does.

"If the resourceVersion [of an update] does not match the current one, the server
rejects the request with 409 Conflict" — https://kubernetes.io/docs/reference/using-api/
api-concepts/#conflict-detection ; delete preconditions: DeleteOptions.preconditions.
"""

from __future__ import annotations

from typing import Any

from tests.api.support import JSON_PATCH, WIDGETS, ApiLab, install_crd, widget, widget_crd

CONFLICT = (
    'Operation cannot be fulfilled on widgets.example.io "w1": the object has been modified; '
    "please apply your changes to the latest version and try again"
)


def _setup(lab: ApiLab) -> dict[str, Any]:
    install_crd(lab, widget_crd())
    created: dict[str, Any] = lab.client.post(WIDGETS, widget("w1")).json
    lab.client.patch(f"{WIDGETS}/w1", {"spec": {"size": 5}})  # the created RV is now stale
    return created


def test_merge_patch_carrying_a_stale_resource_version_is_409(lab: ApiLab) -> None:
    stale = _setup(lab)["metadata"]["resourceVersion"]
    reply = lab.client.patch(
        f"{WIDGETS}/w1", {"metadata": {"resourceVersion": stale}, "spec": {"size": 9}}
    )
    assert reply.status == 409
    assert (reply.json["reason"], reply.json["message"]) == ("Conflict", CONFLICT)
    assert reply.json["details"] == {"name": "w1", "group": "example.io", "kind": "widgets"}
    current = lab.client.get(f"{WIDGETS}/w1").json
    assert current["spec"]["size"] == 5
    fresh = current["metadata"]["resourceVersion"]
    ok = lab.client.patch(
        f"{WIDGETS}/w1", {"metadata": {"resourceVersion": fresh}, "spec": {"size": 9}}
    )
    assert ok.status == 200 and int(ok.json["metadata"]["resourceVersion"]) > int(fresh)


def test_put_with_a_stale_resource_version_is_409(lab: ApiLab) -> None:
    stale = _setup(lab)
    reply = lab.client.put(f"{WIDGETS}/w1", stale)
    assert reply.status == 409 and reply.json["message"] == CONFLICT


def test_put_of_a_custom_resource_must_carry_a_resource_version(lab: ApiLab) -> None:
    # customResourceStrategy.AllowUnconditionalUpdate() is false.
    _setup(lab)
    reply = lab.client.put(f"{WIDGETS}/w1", widget("w1", size=7))
    assert reply.status == 422
    assert reply.json["message"] == (
        'Widget.example.io "w1" is invalid: metadata.resourceVersion: Invalid value: 0: '
        "must be specified for an update"
    )


def test_json_patch_test_of_a_stale_resource_version_is_422(lab: ApiLab) -> None:
    # kopf guards its finalizer patches this way and expects 422 when the test fails.
    stale = _setup(lab)["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": stale},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x.io/f"]},
    ]
    reply = lab.client.patch(f"{WIDGETS}/w1", ops, JSON_PATCH)
    assert reply.status == 422 and reply.json["reason"] == "Invalid"
    assert "finalizers" not in lab.client.get(f"{WIDGETS}/w1").json["metadata"]


def test_delete_preconditions_are_checked(lab: ApiLab) -> None:
    created = _setup(lab)
    meta = created["metadata"]
    stale = lab.client.delete(
        f"{WIDGETS}/w1", {"preconditions": {"resourceVersion": meta["resourceVersion"]}}
    )
    assert stale.status == 409 and stale.json["reason"] == "Conflict"
    current = lab.client.get(f"{WIDGETS}/w1").json["metadata"]
    assert stale.json["message"] == (
        'Operation cannot be fulfilled on widgets.example.io "w1": Precondition failed: '
        f"ResourceVersion in precondition: {meta['resourceVersion']}, ResourceVersion in "
        f"object meta: {current['resourceVersion']}"
    )
    wrong_uid = lab.client.delete(f"{WIDGETS}/w1", {"preconditions": {"uid": "0000"}})
    assert wrong_uid.status == 409 and "Precondition failed: UID" in wrong_uid.json["message"]
    ok = lab.client.delete(
        f"{WIDGETS}/w1",
        {"preconditions": {"uid": current["uid"], "resourceVersion": current["resourceVersion"]}},
    )
    assert ok.status == 200
    assert lab.client.get(f"{WIDGETS}/w1").status == 404
